"""The report as one self-contained HTML document: inline CSS and SVG, no script, no font, no
request of any kind; a single column on a phone, two on a wide screen, and print-ready."""

from __future__ import annotations

import html
import math
from datetime import datetime

from sqlml.reporting.charts import Chart
from sqlml.reporting.gather import Facts
from sqlml.reporting.sections import Section, Table, metric_table

CSS = """
:root { --ink: #1b1f23; --muted: #57606a; --line: #d0d7de; --card: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 1rem; color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.6rem; margin: .2rem 0; } h2 { font-size: 1.25rem; margin: 1.6rem 0 .6rem;
     border-bottom: 1px solid var(--line); } h3 { font-size: 1rem; margin: 0 0 .4rem; }
.sub { color: var(--muted); margin: 0 0 1rem; }
.grid { display: grid; gap: 1rem;
        grid-template-columns: repeat(auto-fill, minmax(min(100%, 440px), 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
        padding: .8rem; margin: 0; min-width: 0; overflow-x: auto; }
.card svg { width: 100%; height: auto; display: block; background: #fff; }
.caption { color: var(--muted); font-size: .9rem; margin: .4rem 0; }
table { border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: .2rem .5rem; text-align: left;
         vertical-align: top; }
td.num { text-align: right; }
details { margin-top: .4rem; } summary { cursor: pointer; color: var(--muted); }
.notes li { color: var(--muted); }
.confusion td.num { font-weight: 600; }
footer { color: var(--muted); font-size: .85rem; margin-top: 2rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .grid { display: block; } .card { break-inside: avoid; margin-bottom: .8rem; border: 0;
  background: none; padding: 0; } summary { display: none; }
  details:not([open]) > :not(summary) { display: none; }
  h2 { break-after: avoid; }
}
"""


def fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:,.0f}" if abs(v) >= 1e5 and v == int(v) else f"{v:.4g}"
    return str(v)


def _cell(v) -> str:
    if isinstance(v, float) and not isinstance(v, bool):
        return f'<td class="num" data-value="{v!r}">{html.escape(fmt(v))}</td>'
    if isinstance(v, int) and not isinstance(v, bool):
        return f'<td class="num" data-value="{v}">{fmt(v)}</td>'
    return f"<td>{html.escape(fmt(v))}</td>"


def table_html(columns, rows, key: str = "", cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    ident = f' id="table-{key}"' if key else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<table{ident}{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(c: Chart) -> str:
    caption = f'<p class="caption">{html.escape(c.caption)}</p>' if c.caption else ""
    return (f'<figure class="card chart" data-chart="{c.key}" id="chart-{c.key}">'
            f"<h3>{html.escape(c.title)}</h3>{c.svg}{caption}"
            f"<details><summary>The numbers drawn</summary>"
            f"{table_html(c.columns, c.rows, c.key)}</details></figure>")


def _table(t: Table) -> str:
    caption = f'<p class="caption">{html.escape(t.caption)}</p>' if t.caption else ""
    return (f'<section class="card" data-table="{t.key}"><h3>{html.escape(t.title)}</h3>'
            f"{table_html(t.columns, t.rows, t.key, t.key)}{caption}</section>")


def _section(s: Section) -> str:
    items = "".join(_chart(i) if isinstance(i, Chart) else _table(i) for i in s.items)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in s.notes)
    return (f"<h2>{html.escape(s.title)}</h2><div class=\"grid\">{items}</div>"
            + (f'<ul class="notes">{notes}</ul>' if notes else ""))


def render(facts: Facts, sections: list[Section], generated: datetime) -> str:
    row = facts.row
    title = f"Model report: {row['name']} (version {row['version']})"
    trained = f"{row['created_at']:%Y-%m-%d %H:%M}"
    sub = (f"{row['problem_type'].replace('_', ' ')} · {row['model_type']} · objective "
           f"{row['objective']} · target {row['target']} · trained {trained} UTC on "
           f"{row['training_rows']:,} rows")
    body = "".join(_section(s) for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # No request leaves the page: the policy refuses any that a future edit might add.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p class=\"sub\">{html.escape(sub)}</p></header>"
        f"<main><h2>Metrics</h2><div class=\"grid\">{_table(metric_table(facts))}</div>{body}"
        f"</main><footer>Written by sqlml (SELECT ml_report('{html.escape(row['name'])}')) at "
        f"<time id=\"generated\">{generated:%Y-%m-%d %H:%M:%S} UTC</time>. Validation metrics "
        f"are measured on rows held out from training.</footer></body></html>\n")
