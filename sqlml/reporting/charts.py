"""The report's charts: matplotlib figures rendered to inline SVG, with the numbers they draw.

matplotlib draws without JavaScript or a browser, its SVG prints sharply and scales to a phone's
width, and it is installed nearly everywhere Python does data work. Figures are made through
``matplotlib.figure.Figure`` (never pyplot), so a report leaves a notebook's plotting state and
backend alone; text stays text in the SVG (``svg.fonttype: none``), which keeps each chart small
and lets the page's own font draw it; a fixed hash salt and no date make the SVG the same on
every run, so every way of asking gives the same document.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

# Colour-blind-safe pair (Okabe-Ito) and the marker of the chosen threshold.
BLUE, ORANGE, GREY, RED = "#0072B2", "#E69F00", "#999999", "#D55E00"
_RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "sqlml-report", "font.size": 10,
       "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
       "grid.alpha": 0.3, "font.family": "sans-serif"}
# Points a curve is drawn with, at most (the data table beside it lists a sparser subset).
CURVE_POINTS = 200
TABLE_ROWS = 25


@dataclass(frozen=True)
class Chart:
    """One chart: its title, its SVG, a one-line reading aid, and the numbers it draws."""
    key: str
    title: str
    svg: str
    columns: tuple[str, ...]
    rows: list[tuple]
    caption: str = ""


def figure(width: float = 6.0, height: float = 4.0):
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        return fig, fig.subplots()


def svg_of(fig, title: str) -> str:
    """The figure as an inline ``<svg>`` that scales with its container."""
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # The width and height attributes fix its size in pt: the CSS sizes it instead.
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  rf'<svg\1 role="img" aria-label="{html.escape(title)}"', text, count=1)
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S).strip()


def _axes(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def thin(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of 0..n-1, evenly spread, first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def curve(key: str, title: str, xlabel: str, ylabel: str, x, y, mark: tuple | None,
          *, label: str, diagonal: bool = False, extra: dict | None = None,
          caption: str = "", columns: tuple[str, ...] | None = None) -> Chart:
    """A line (ROC, precision-recall, cost against threshold) with the chosen point marked."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    idx = thin(len(x), CURVE_POINTS)
    fig, ax = figure()
    ax.plot(x[idx], y[idx], color=BLUE, lw=2, label=label)
    if diagonal:
        ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="chance")
    if mark is not None:
        ax.plot([mark[0]], [mark[1]], "o", color=RED, ms=9, label=mark[2])
    _axes(ax, title, xlabel, ylabel)
    ax.legend(loc="best", frameon=False)
    rows = [(float(x[i]), float(y[i]), *((float(v[i]),) if (v := (extra or {}).get("values"))
                                         is not None else ())) for i in thin(len(x), TABLE_ROWS)]
    cols = columns or (xlabel, ylabel)
    return Chart(key, title, svg_of(fig, title), cols, rows, caption)


def calibration(bins: list[tuple], brier: float | None) -> Chart:
    """Mean predicted probability against the observed rate per bin."""
    pred = [b[3] for b in bins]
    obs = [b[4] for b in bins]
    title = "Calibration" + (f" (Brier score {brier:.4f})" if brier is not None else "")
    fig, ax = figure()
    ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="perfectly calibrated")
    ax.plot(pred, obs, "o-", color=BLUE, lw=2, label="model")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _axes(ax, title, "mean predicted probability (per bin)", "observed positive rate")
    ax.legend(loc="upper left", frameon=False)
    rows = [(f"{b[1]:.1f}-{b[2]:.1f}", b[3], b[4], b[5]) for b in bins]
    return Chart("calibration", title, svg_of(fig, title),
                 ("bin", "mean predicted", "observed rate", "rows"), rows,
                 "Points on the diagonal mean a predicted 30% happens 30% of the time.")


def histogram(key: str, title: str, xlabel: str, groups: list[tuple[str, np.ndarray]],
              edges: np.ndarray, caption: str = "") -> Chart:
    """Counts per bin, one outline per group (e.g. the score distribution of each class)."""
    fig, ax = figure()
    colors = (BLUE, ORANGE, GREY)
    counts = []
    for n, (label, values) in enumerate(groups):
        c, _ = np.histogram(values, bins=edges)
        counts.append(c)
        ax.stairs(c, edges, color=colors[n % 3], lw=2, label=f"{label} ({len(values):,} rows)",
                  fill=len(groups) == 1, alpha=0.8 if len(groups) == 1 else 1.0)
    _axes(ax, title, xlabel, "rows")
    if len(groups) > 1:
        ax.legend(loc="best", frameon=False)
    rows = [(f"{edges[i]:.3g} to {edges[i + 1]:.3g}", *(int(c[i]) for c in counts))
            for i in range(len(edges) - 1)]
    return Chart(key, title, svg_of(fig, title), ("bin", *(g[0] for g in groups)), rows, caption)


def bars(key: str, title: str, xlabel: str, labels: list[str], values: list[float],
         errors: list[float] | None = None, caption: str = "",
         columns: tuple[str, ...] | None = None) -> Chart:
    """Horizontal bars, largest on top (feature importance, recommendations per decile)."""
    height = max(2.5, 0.35 * len(labels) + 1.2)
    fig, ax = figure(6.0, height)
    pos = np.arange(len(labels))[::-1]
    ax.barh(pos, values, xerr=errors, color=BLUE, ecolor=GREY)
    ax.set_yticks(pos, labels)
    ax.grid(axis="y", visible=False)
    _axes(ax, title, xlabel, "")
    rows = [(lab, float(v), *((float(errors[i]),) if errors else ()))
            for i, (lab, v) in enumerate(zip(labels, values, strict=True))]
    cols = columns or ("", xlabel, *(("std",) if errors else ()))
    return Chart(key, title, svg_of(fig, title), cols, rows, caption)


def lines(key: str, title: str, xlabel: str, ylabel: str, x, series: dict[str, list],
          caption: str = "", step: str | None = None) -> Chart:
    """Several lines over one x (a learning curve; trials with the best so far)."""
    fig, ax = figure()
    colors = (BLUE, ORANGE, GREY)
    for n, (label, values) in enumerate(series.items()):
        y = np.asarray(values, dtype=float)
        if label == step:
            ax.step(x, y, where="post", color=RED, lw=2, label=label)
        else:
            ax.plot(x, y, "o-" if len(x) < 60 else "-", color=colors[n % 3], lw=1.5,
                    label=label)
    _axes(ax, title, xlabel, ylabel)
    ax.legend(loc="best", frameon=False)
    rows = [(x[i], *(series[s][i] for s in series)) for i in range(len(x))]
    return Chart(key, title, svg_of(fig, title), (xlabel, *series), rows, caption)


def scatter(key: str, title: str, xlabel: str, ylabel: str, x, y, *, identity: bool,
            caption: str = "") -> Chart:
    """Points (predicted against actual), with y = x drawn when ``identity``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    fig, ax = figure()
    idx = thin(len(x), 2000)
    ax.scatter(x[idx], y[idx], s=8, alpha=0.5, color=BLUE, linewidths=0)
    if identity and len(x):
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color=RED, ls="--", lw=1, label="predicted = actual")
        ax.legend(loc="upper left", frameon=False)
    _axes(ax, title, xlabel, ylabel)
    rows = [(float(x[i]), float(y[i])) for i in thin(len(x), TABLE_ROWS)]
    return Chart(key, title, svg_of(fig, title), (xlabel, ylabel), rows, caption)


# PSI at which ml_drift calls a column shifted and broken (sql/drift.sql).
PSI_SHIFTED, PSI_BROKEN = 0.1, 0.25
VERDICT_COLOURS = {"stable": BLUE, "shifted": ORANGE, "broken": RED}


def drift_bars(key: str, title: str, xlabel: str, labels: list[str], values: list[float],
               verdicts: list[str], *, thresholds: bool, caption: str = "",
               columns: tuple[str, ...] = ()) -> Chart:
    """One bar per feature coloured by its verdict, with the PSI thresholds drawn
    (``thresholds``): the drift section's PSI and KS charts."""
    height = max(2.5, 0.35 * len(labels) + 1.4)
    fig, ax = figure(6.0, height)
    pos = np.arange(len(labels))[::-1]
    ax.barh(pos, values, color=[VERDICT_COLOURS.get(v, GREY) for v in verdicts])
    ax.set_yticks(pos, labels)
    ax.grid(axis="y", visible=False)
    if thresholds:
        ax.axvline(PSI_SHIFTED, color=ORANGE, ls="--", lw=1.2, label=f"shifted ({PSI_SHIFTED})")
        ax.axvline(PSI_BROKEN, color=RED, ls="--", lw=1.2, label=f"broken ({PSI_BROKEN})")
        ax.set_xlim(0, max(0.3, *(v * 1.08 for v in values)) if values else 0.3)
        ax.legend(loc="lower right", frameon=False)
    _axes(ax, title, xlabel, "")
    rows = [(lab, float(v), verdicts[i]) for i, (lab, v) in enumerate(zip(labels, values,
                                                                           strict=True))]
    return Chart(key, title, svg_of(fig, title), columns or ("feature", xlabel, "verdict"),
                 rows, caption)


def fan(key: str, title: str, ylabel: str, history: tuple[np.ndarray, np.ndarray],
        future: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], labels: tuple[str, str],
        caption: str = "") -> Chart:
    """A fan chart: the actuals, then the median forecast inside its band (lowest to highest
    quantile). ``history`` is (periods, actuals); ``future`` (periods, low, median, high);
    ``labels`` names the median and the band, e.g. ("P50", "P10-P90")."""
    (hx, hy), (fx, lo, mid, hi) = history, future
    fig, ax = figure()
    ax.plot(hx, hy, "o-" if len(hx) < 40 else "-", color=GREY, lw=1.5, ms=3, label="actual")
    ax.fill_between(fx, lo, hi, color=BLUE, alpha=0.25, lw=0, label=labels[1])
    ax.plot(fx, mid, "-", color=BLUE, lw=2, label=labels[0])
    _axes(ax, title, "period", ylabel)
    ax.legend(loc="upper left", frameon=False)
    fig.autofmt_xdate()
    day = "%Y-%m-%d"
    rows: list[tuple] = [(f"{np.datetime64(x, 'D').astype(object):{day}}", float(y), None, None,
                          None)
            for x, y in zip(hx, hy, strict=True)]
    rows += [(f"{np.datetime64(x, 'D').astype(object):{day}}", None, float(a), float(b),
              float(c)) for x, a, b, c in zip(fx, lo, mid, hi, strict=True)]
    low, high = labels[1].split("-")
    return Chart(key, title, svg_of(fig, title),
                 ("period", "actual", low, labels[0], high), rows, caption)
