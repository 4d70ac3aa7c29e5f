"""The panel as arrays, one entry per series, and the methods' common shape."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Settings:
    """What every method is told besides the data."""

    quantiles: tuple[float, ...]
    freq: str
    seed: int = 0
    n_jobs: int = 1
    deadline: float | None = None     # time.monotonic() by which a candidate must stop
    # (model, series, points, season) -> (fitted, mean): a statistical model's fits, which its
    # log variant reuses where a series has a value <= 0 (and so is fitted on y itself).
    fits: dict[tuple[str, str, int, int], Any] = field(default_factory=dict, compare=False,
                                                       hash=False, repr=False)

    def check_time(self) -> None:
        """Stop a candidate's backtest when max_runtime has run out (between series, windows
        or quantile models)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError("max_runtime ran out during the backtest")


@dataclass
class Batch:
    """Series histories (each ends at its forecast origin), with what a method may need."""

    ids: list[str]
    ys: list[np.ndarray]
    ds: list[np.ndarray]                 # the periods of each history (datetime64[ns])
    seasons: list[int]                   # the season length each series is fitted with
    freq: str
    xs: list[np.ndarray] | None = None   # covariates over the history, (n_i, k) each
    x_future: list[np.ndarray] | None = None   # covariates over the horizon, (h, k) each
    covariates: tuple[str, ...] = ()
    # A method that can forecast again from its fitted models (statsforecast's forward) leaves
    # them here, one per series (None where it fell back), for the final forecast to reuse.
    states: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.ys)

    def take(self, rows: list[int], cuts: list[int], horizon: int) -> Batch:
        """The histories of ``rows`` cut after ``cuts`` points: a backtest window's batch."""
        xs = x_future = None
        if self.xs is not None:
            xs = [self.xs[r][:c] for r, c in zip(rows, cuts, strict=True)]
            x_future = [_pad(self.xs[r][c:c + horizon], horizon)
                        for r, c in zip(rows, cuts, strict=True)]
        return replace(self, ids=[self.ids[r] for r in rows],
                       ys=[self.ys[r][:c] for r, c in zip(rows, cuts, strict=True)],
                       ds=[self.ds[r][:c] for r, c in zip(rows, cuts, strict=True)],
                       seasons=[self.seasons[r] if c >= 2 * self.seasons[r] else 1
                                for r, c in zip(rows, cuts, strict=True)],
                       xs=xs, x_future=x_future, states=None)

    def subset(self, rows: list[int]) -> Batch:
        """The series ``rows`` whole, with their future covariates and fitted models."""
        def pick(values: list[Any] | None) -> list[Any] | None:
            return None if values is None else [values[r] for r in rows]

        return replace(self, ids=[self.ids[r] for r in rows], ys=[self.ys[r] for r in rows],
                       ds=[self.ds[r] for r in rows], seasons=[self.seasons[r] for r in rows],
                       xs=pick(self.xs), x_future=pick(self.x_future), states=pick(self.states))

    def future(self, horizon: int) -> list[pd.DatetimeIndex]:
        """The periods each series' forecast covers: one date range per distinct last period
        (series that end together share it)."""
        ends = [d[-1] for d in self.ds]
        ranges = {end: future_dates(pd.Timestamp(end), horizon, self.freq)
                  for end in dict.fromkeys(ends)}
        return [ranges[end] for end in ends]


def _pad(x: np.ndarray, horizon: int) -> np.ndarray:
    """A window near a short series' end has fewer future rows than the horizon: repeat the
    last (the forecasts past the actuals are never scored)."""
    if len(x) >= horizon or len(x) == 0:
        return x
    return np.vstack([x, np.repeat(x[-1:], horizon - len(x), axis=0)])


def future_dates(end: pd.Timestamp, horizon: int, freq: str) -> pd.DatetimeIndex:
    return pd.date_range(end, periods=horizon + 1, freq=freq)[1:]


# A method turns a batch into base forecasts of shape (series, horizon, k): k = 1 for a point
# forecast, k = len(quantiles) for a method that forecasts each quantile itself.
Runner = Callable[[Batch, int, Settings], np.ndarray]


@dataclass(frozen=True)
class Method:
    name: str
    run: Runner
    quantile_output: bool = False      # True: one base column per quantile
    min_points: int = 2                # shorter series fall back to a baseline
    family: str = "baseline"           # baseline | statistical | global
    params: dict[str, Any] = field(default_factory=dict)
    # Forecast the batch's whole histories from the models a backtest window fitted (in
    # batch.states), instead of fitting again: the final forecast of a statistical model.
    forward: Runner | None = None
