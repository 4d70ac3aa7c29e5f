"""Query results as box tables for a terminal, in the style of the duckdb CLI."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

MIN_WIDTH = 10         # columns are cut down to this before whole columns are hidden
MAX_CELL = 60          # no column is wider


def cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes):
        return value.hex()
    return str(value).replace("\r\n", " ").replace("\n", " ").replace("\t", " ")


def _numeric(value) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _total(widths: list[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1      # borders and padding


def _layout(natural: list[int], available: int) -> tuple[list[int], list[int]]:
    """(indices of the columns shown, their widths): the widest columns are narrowed first;
    when even that does not fit, middle columns are hidden (as the duckdb CLI does)."""
    keep = list(range(len(natural)))
    while True:
        widths = [min(natural[i], MAX_CELL) for i in keep]
        room = available - (3 if len(keep) < len(natural) else 0)    # the "…" column
        while _total(widths) > room and max(widths, default=0) > MIN_WIDTH:
            widths[widths.index(max(widths))] -= 1
        if _total(widths) <= room or len(keep) <= 2:
            return keep, widths
        del keep[len(keep) // 2]


def table(columns: list[str], rows: list[tuple], *, max_rows: int | None = None,
          width: int | None = None, wrap: bool = False) -> str:
    """A box table with a row count below it; more than ``max_rows`` rows show the first and
    last halves around a ``…`` row. Cells too wide for the terminal are cut with ``…``, or
    continued on the next lines with ``wrap``."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    shown: list[tuple | None] = list(rows)   # None: the "…" row
    cut = False
    if max_rows is not None and len(rows) > max_rows:
        cut = True
        half = max(1, max_rows // 2)
        shown = [*rows[:half], None, *rows[-half:]]
    texts = [None if r is None else [cell(v) for v in r] for r in shown]
    natural = [max([len(c)] + [len(t[i]) for t in texts if t is not None])
               for i, c in enumerate(columns)]
    keep, widths = _layout(natural, width)
    right = [any(_numeric(r[i]) for r in rows[:50]) and all(
        r[i] is None or _numeric(r[i]) for r in rows[:50]) for i in keep]
    hidden = len(columns) - len(keep)
    placed: list[int | None] = list(keep)    # None: the "…" column
    if hidden:
        # One narrow column of "…" stands where the hidden ones were.
        mid = next(k for k in range(1, len(keep)) if keep[k] != keep[k - 1] + 1)
        placed.insert(mid, None)
        widths.insert(mid, 1)
        right.insert(mid, False)
    columns = [("…" if i is None else columns[i]) for i in placed]
    texts = [None if t is None else [("…" if i is None else t[i]) for i in placed] for t in texts]

    def line(left: str, mid: str, end: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + end

    def row(values: list[str], align: list[bool]) -> str:
        if wrap:
            pieces = [[v[i:i + w] for i in range(0, len(v), w)] or [""]
                      for v, w in zip(values, widths, strict=True)]
        else:
            pieces = [[_fit(v, w)] for v, w in zip(values, widths, strict=True)]
        lines = []
        for k in range(max(len(p) for p in pieces)):
            parts = []
            for p, w, r in zip(pieces, widths, align, strict=True):
                v = p[k] if k < len(p) else ""
                parts.append(" " + (v.rjust(w) if r else v.ljust(w)) + " ")
            lines.append("│" + "│".join(parts) + "│")
        return "\n".join(lines)

    out = [line("┌", "┬", "┐"), row(list(columns), [False] * len(columns)), line("├", "┼", "┤")]
    for t in texts:
        out.append(row(["…"] * len(columns), [False] * len(columns)) if t is None
                   else row(t, right))
    out.append(line("└", "┴", "┘"))
    n = len(rows)
    count = f"({n} row{'' if n == 1 else 's'}"
    if cut:
        count += f", {len(texts) - 1} shown"
    if hidden:
        count += f"; {len(columns) - 1} of {len(columns) - 1 + hidden} columns shown"
    out.append(count + ")")
    return "\n".join(out)
