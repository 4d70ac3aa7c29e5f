"""The regular panel the engine reads: one row per series and period, no gap, no duplicate.

Rows of one series and period are summed (``duplicates: 'aggregate'``, covariates averaged) or
refused. Each series runs from its own first period to its own last; a period missing in
between, or a NULL target, becomes what ``fill`` says (0, a straight line between the
neighbouring values, the previous value) or is refused. Every change is counted in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sqlml.errors import TrainingError
from sqlml.forecast.periods import Frequency, show
from sqlml.forecast.prepare import MIN_POINTS, Settings

FN = "ml_create_model"


@dataclass
class Panel:
    frame: pd.DataFrame          # unique_id, ds, y, covariates (regular, sorted)
    freq: Frequency
    series: pd.DataFrame         # series_id, values (text per series column), points, filled,
    #                              first, last (period numbers)
    notes: list[str] = field(default_factory=list)


def _aggregate(frame: pd.DataFrame, s: Settings, keys: list[str]) -> tuple[pd.DataFrame,
                                                                          list[str]]:
    dup = frame.duplicated(["__series", "__i"], keep=False)
    if not dup.any():
        return frame, []
    first = frame[dup].iloc[0]
    n = int(frame[dup].groupby(["__series", "__i"]).ngroups)
    if s.duplicates == "refuse":
        count = int(((frame["__series"] == first["__series"]) & (frame["__i"] == first["__i"]))
                    .sum())
        raise TrainingError(
            f"{FN}: series {first['__series']!r} has {count} rows for period "
            f"{show(first['__time'])} ({n} such period(s) in all), and settings duplicates is "
            f"'refuse'. Aggregate them in the query (sum(...) ... GROUP BY the time and series "
            f"columns), or use duplicates: 'aggregate' to sum them.")
    agg = {"__y": lambda v: v.sum(min_count=1), "__time": "first",
           **{c: "mean" for c in s.covariates}, **{k: "first" for k in keys}}
    out = frame.groupby(["__series", "__i"], sort=False, as_index=False).agg(agg)
    return out, [f"{n} period(s) had several rows of one series; their targets were summed"
                 + (" and their covariates averaged" if s.covariates else "")
                 + f" (e.g. series {first['__series']!r} at {show(first['__time'])})"]


def _fill(y: pd.Series, rule: str) -> pd.Series:
    if rule == "zero":
        return y.fillna(0.0)
    if rule == "previous":
        return y.ffill().bfill()
    return y.interpolate(method="linear", limit_area="inside").ffill().bfill()


def build(frame: pd.DataFrame, s: Settings, freq: Frequency) -> Panel:
    """The panel from the rows read by ``prepare.read_rows`` (with ``__series`` set)."""
    keys = [f"__s{i}" for i in range(len(s.series_cols))]
    frame = frame.assign(__i=freq.index(frame["__time"]))
    frame, notes = _aggregate(frame, s, keys)
    frame = frame.sort_values(["__series", "__i"])
    g = frame.groupby("__series", sort=True)
    info = g.agg(first=("__i", "min"), last=("__i", "max"),
                 points=("__y", "count"), rows=("__i", "size"))
    first = g[keys].first() if keys else None
    info["values"] = [[] for _ in range(len(info))] if first is None else np.column_stack(
        [first[k].to_numpy(dtype=object) for k in keys]).tolist()
    _check_points(info, s, frame, freq)
    lengths = (info["last"] - info["first"] + 1).to_numpy()
    ids = np.repeat(info.index.to_numpy(), lengths)
    starts = np.repeat(info["first"].to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = pd.DataFrame({"__series": ids, "__i": starts + offsets})
    full = grid.merge(frame[["__series", "__i", "__y", *s.covariates]],
                      on=["__series", "__i"], how="left")
    missing = full["__y"].isna()
    info["filled"] = missing.groupby(full["__series"]).sum().reindex(info.index).to_numpy()
    if missing.any():
        notes.append(_fill_note(full, missing, info, frame, s))
        if s.fill == "refuse":
            raise _refused(full, missing, freq, s)
        full["__y"] = full.groupby("__series", sort=False)["__y"].transform(
            lambda y: _fill(y, s.fill))
    for c in s.covariates:
        if full[c].isna().any():
            notes.append(f"covariate {c!r}: {int(full[c].isna().sum())} missing value(s) "
                         f"carried forward from the period before (backward at the start)")
            full[c] = full.groupby("__series", sort=False)[c].transform(
                lambda v: v.ffill().bfill())
    panel = pd.DataFrame({"unique_id": full["__series"].astype(str),
                          "ds": freq.start(full["__i"].to_numpy()),
                          "y": full["__y"].astype("float64")})
    for c in s.covariates:
        panel[c] = full[c].astype("float64").to_numpy()
    series = info.reset_index().rename(columns={"__series": "series_id"})
    return Panel(panel.reset_index(drop=True), freq, series, notes)


def _fill_note(full, missing, info, frame, s: Settings) -> str:
    nulls = int(frame["__y"].isna().sum())
    gaps = int(missing.sum()) - nulls
    what = {"zero": "set to 0", "interpolate": "interpolated linearly between the neighbouring "
            "periods", "previous": "set to the previous period's value", "refuse": "refused"}
    worst = info["filled"].idxmax()
    parts = [f"{gaps} missing period(s)" if gaps else "",
             f"{nulls} NULL target value(s)" if nulls else ""]
    return (" and ".join(p for p in parts if p) + f" {what[s.fill]} (settings fill: "
            f"{s.fill!r}; most in series {worst!r}: {int(info.loc[worst, 'filled'])})")


def _refused(full, missing, freq: Frequency, s: Settings) -> TrainingError:
    row = full[missing].iloc[0]
    when = show(freq.dated(pd.Series(freq.start(np.array([row["__i"]]))))[0])
    return TrainingError(
        f"{FN}: series {row['__series']!r} has no target value for period {when} (a missing "
        f"period or a NULL; {int(missing.sum())} in all), and settings fill is 'refuse'. Fill "
        f"them in the query, or use fill: 'zero', 'interpolate' or 'previous'.")


def _check_points(info: pd.DataFrame, s: Settings, frame, freq: Frequency) -> None:
    need = MIN_POINTS
    short = info[info["points"] < need]
    if len(short):
        first = short.index[0]
        more = f" ({len(short)} series in all)" if len(short) > 1 else ""
        raise TrainingError(
            f"{FN}: series {first!r} has {int(short.loc[first, 'points'])} observed "
            f"period(s){more}; a forecast needs at least {need} per series (a backtest "
            f"window needs 3 to learn from and 2 to check). Filter short series out in the "
            f"query (e.g. QUALIFY count(*) OVER (PARTITION BY the series columns) >= {need}), or "
            f"aggregate them into a coarser series.")


def future_frame(future: pd.DataFrame, freq: Frequency) -> pd.DataFrame:
    """The future covariate rows read by ``prepare.read_rows`` as the engine's unique_id, ds
    and covariates (the engine refuses a series-period of the horizon without a value)."""
    out = future.drop(columns=[c for c in future.columns if c.startswith("__")])
    out.insert(0, "ds", freq.start(freq.index(future["__time"])))
    out.insert(0, "unique_id", future["__series"].astype(str).to_numpy())
    return out.drop_duplicates(["unique_id", "ds"]).reset_index(drop=True)
