"""Periods of a time series: the frequency inferred from (or checked against) the timestamps,
each timestamp's period number, and the dating of future periods.

Periods are numbered by integers: months since year 0 for months, quarters and years (a quarter
is 3 months), and whole steps since the earliest timestamp for hours, days and weeks. The rule
for ``frequency: 'auto'`` is the most common step between consecutive periods of a series, over
every series; any other step must be a whole number of periods (the periods between are missing
and get filled), or the timestamps are irregular and refused with an example.

Month-based periods may be dated on their first day, their last day or one fixed day; the
engine sees each period's first day, and forecasts come back dated as the data was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sqlml.errors import TrainingError

FN = "ml_create_model"
MONTHS = {"month": 1, "quarter": 3, "year": 12}
STEP = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1),
        "week": pd.Timedelta(days=7)}
SEASON = {"hour": 24, "day": 7, "week": 52, "month": 12, "quarter": 4, "year": 1}
_MON = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class Frequency:
    name: str                   # hour | day | week | month | quarter | year
    alias: str                  # the engine's pandas offset alias ("MS", "QS-JAN", "W-MON"...)
    origin: pd.Timestamp        # fixed steps: the grid's origin (the earliest timestamp)
    anchor: str = "start"       # month-based: dated on day 1 ('start'), 'end', or 'day<N>'

    @property
    def season_length(self) -> int:
        return SEASON[self.name]

    @property
    def monthly(self) -> bool:
        return self.name in MONTHS

    def index(self, t: pd.Series) -> np.ndarray:
        """Each timestamp's period number."""
        if self.monthly:
            return (t.dt.year * 12 + t.dt.month - 1).to_numpy().astype(np.int64)
        return ((t - self.origin) // STEP[self.name]).to_numpy().astype(np.int64)

    def start(self, index: np.ndarray) -> pd.DatetimeIndex:
        """The engine's timestamp of each period number (a month's first day)."""
        index = np.asarray(index, dtype=np.int64)
        if self.monthly:
            years, months = np.divmod(index, 12)
            return pd.DatetimeIndex(pd.to_datetime(
                pd.DataFrame({"year": years, "month": months + 1, "day": 1})))
        return pd.DatetimeIndex(self.origin + index * STEP[self.name])

    def dated(self, ds: pd.Series) -> pd.Series:
        """The engine's timestamps dated as the data was (a month's last day, say)."""
        ds = pd.to_datetime(ds)
        if self.anchor == "end":
            return ds + pd.offsets.MonthEnd(0)
        if self.anchor.startswith("day"):
            return ds + pd.Timedelta(days=int(self.anchor[3:]) - 1)
        return ds


def show(t) -> str:
    t = pd.Timestamp(t)
    return str(t.date()) if t == t.normalize() else str(t)


def _anchor(t: pd.Series) -> str | None:
    if (t.dt.normalize() != t).any():
        return None
    if (t.dt.day == 1).all():
        return "start"
    if t.dt.is_month_end.all():
        return "end"
    days = t.dt.day.unique()
    return f"day{int(days[0])}" if len(days) == 1 and days[0] <= 28 else None


def _steps(series: pd.Series, index: np.ndarray, t: pd.Series) -> pd.DataFrame:
    """Consecutive distinct periods of each series: series, previous/current period number and
    timestamp."""
    u = pd.DataFrame({"series": series.to_numpy(), "i": index, "t": t.to_numpy()})
    u = u.drop_duplicates(["series", "i"]).sort_values(["series", "i"])
    g = u.groupby("series", sort=False)
    u["prev_i"], u["prev_t"] = g["i"].shift(), g["t"].shift()
    return u[u["prev_i"].notna()]


def _irregular(row, gap: str, freq: str) -> TrainingError:
    return TrainingError(
        f"{FN}: the timestamps of series {row['series']!r} are irregular for frequency "
        f"{freq!r}: {show(row['prev_t'])} is followed by {show(row['t'])} ({gap} later), not "
        f"a whole number of periods. Set settings frequency to the period you mean and date "
        f"every row by it in the query (date_trunc('{freq}', t)::DATE ... GROUP BY), or fix "
        f"the data.")


def infer(series: pd.Series, t: pd.Series, given: str) -> Frequency:
    """The frequency of the timestamps ``t`` of the rows of ``series`` (series ids)."""
    anchor = _anchor(t)
    if given in MONTHS or (given == "auto" and anchor is not None):
        freq = _monthly(series, t, given, anchor)
        if freq is not None:
            return freq
    return _fixed(series, t, given)


def _monthly(series: pd.Series, t: pd.Series, given: str, anchor: str | None
             ) -> Frequency | None:
    if anchor is None:
        odd = t[t.dt.normalize() != t]
        example = show(odd.iloc[0] if len(odd) else t.iloc[0])
        raise TrainingError(
            f"{FN}: frequency {given!r} needs every period dated the same way (the first or "
            f"the last day of its month, at midnight), got {example} among others. Date each "
            f"row by its period in the query, e.g. date_trunc('{given}', t)::DATE.")
    probe = Frequency("month", "MS", t.min(), anchor)
    steps = _steps(series, probe.index(t), t)
    gaps = (steps["i"] - steps["prev_i"]).to_numpy().astype(np.int64)
    name = given
    if given == "auto":
        mode = int(pd.Series(gaps).mode().iloc[0]) if len(gaps) else 1
        if mode not in (1, 3, 12):
            return None
        name = {1: "month", 3: "quarter", 12: "year"}[mode]
    bad = gaps % MONTHS[name] != 0
    if bad.any():
        row = steps[bad].iloc[0]
        raise _irregular(row, f"{int(row['i'] - row['prev_i'])} months", name)
    first = int(probe.index(t).min()) % 12
    alias = {"month": "MS", "quarter": f"QS-{_MON[first % 3]}", "year": f"YS-{_MON[first]}"}
    return Frequency(name, alias[name], t.min(), anchor)


def _fixed(series: pd.Series, t: pd.Series, given: str) -> Frequency:
    origin = t.min()
    step_ns = pd.Series(t - origin).dt.total_seconds().to_numpy()
    steps = _steps(series, step_ns, t)
    gaps = (steps["t"] - steps["prev_t"]).reset_index(drop=True)
    name = given
    if given == "auto":
        mode = gaps.mode().iloc[0] if len(gaps) else STEP["day"]
        name = next((k for k, v in STEP.items() if v == mode), "")
        if not name:
            row = steps[(steps["t"] - steps["prev_t"]).to_numpy() == mode].iloc[0]
            raise TrainingError(
                f"{FN}: the timestamps of series {row['series']!r} fit no frequency (hour, "
                f"day, week, month, quarter, year): their most common step is {mode}, e.g. "
                f"{show(row['prev_t'])} to {show(row['t'])}. Set settings frequency and date "
                f"every row by that period in the query (date_trunc('week', t) ... GROUP BY), "
                f"or fix the data.")
    step = STEP[name]
    bad = ((steps["t"] - steps["prev_t"]) % step != pd.Timedelta(0)).to_numpy()
    if bad.any():
        row = steps[bad].iloc[0]
        raise _irregular(row, str(row["t"] - row["prev_t"]), name)
    off = ((t - origin) % step != pd.Timedelta(0)).to_numpy()
    if off.any():   # every series on one grid: the same hour of the day, the same weekday
        j = int(np.flatnonzero(off)[0])
        raise TrainingError(
            f"{FN}: series {series.iloc[j]!r} has period {show(t.iloc[j])}, which is not a "
            f"whole number of {name}s after {show(origin)}, the earliest period. Date every "
            f"row by its period in the query, e.g. date_trunc('{name}', t).")
    alias = {"hour": "h", "day": "D", "week": "W-" + origin.day_name()[:3].upper()}[name]
    return Frequency(name, alias, origin)
