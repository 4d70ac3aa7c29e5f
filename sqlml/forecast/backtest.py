"""Rolling-origin backtest over the last windows of each series.

Window w (1..W) of a series of n points is forecast from its first n - h - (W - w) * s points,
with W and the spacing s between origins common to all series: W = clip(ceil(100 / series),
1, 10), so that each horizon step has about 100 residuals for the calibration (ten windows for
one series, one window for a panel of a hundred or more), and s = h when the series are long
enough, else smaller (never below 1) so that the first origin keeps at least three seasons. A
window whose origin would leave fewer than 3 points is dropped for that series; a series with
no window left gets one, from its first 3 points, scored on the steps it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from sqlml.forecast.baselines import seasonal_naive
from sqlml.forecast.series import Batch, Method, Settings

MIN_ORIGIN = 3      # the fewest points a backtest window is forecast from
TARGET_RESIDUALS = 100
MAX_WINDOWS = 10


@dataclass(frozen=True)
class Plan:
    windows: int
    spacing: int
    cuts: dict[int, list[tuple[int, int]]]    # window -> [(series index, points kept)]


def plan(lengths: list[int], horizon: int, seasons: list[int]) -> Plan:
    windows = int(np.clip(math.ceil(TARGET_RESIDUALS / max(len(lengths), 1)), 1, MAX_WINDOWS))
    typical = int(np.median(lengths))
    first = max(8, 3 * int(np.median(seasons)), typical // 2)
    spacing = horizon
    if windows > 1:
        spacing = int(np.clip((typical - horizon - first) // (windows - 1), 1, horizon))
    cuts: dict[int, list[tuple[int, int]]] = {w: [] for w in range(1, windows + 1)}
    for i, n in enumerate(lengths):
        kept = [(w, n - horizon - (windows - w) * spacing) for w in range(1, windows + 1)]
        kept = [(w, c) for w, c in kept if c >= MIN_ORIGIN]
        for w, c in kept or [(windows, MIN_ORIGIN)]:
            cuts[w].append((i, c))
    return Plan(windows, spacing, {w: v for w, v in cuts.items() if v})


def only(the_plan: Plan, rows: np.ndarray) -> Plan:
    """The same windows for the series ``rows`` only (their indices unchanged)."""
    keep = set(int(r) for r in rows)
    cuts = {w: [(i, c) for i, c in pairs if i in keep] for w, pairs in the_plan.cuts.items()}
    return Plan(the_plan.windows, the_plan.spacing, {w: v for w, v in cuts.items() if v})


@dataclass
class Runs:
    """One method's backtest, a row per series, window and step that has an actual."""

    sid: np.ndarray        # series index
    window: np.ndarray
    step: np.ndarray       # 1..h
    index: np.ndarray      # position of the actual in its series
    actual: np.ndarray
    base: np.ndarray       # (rows, k): the method's base forecasts
    # series index -> the model its last window fitted (methods with a forward step only)
    models: dict[int, Any] = field(default_factory=dict)

    def rows(self, keep: np.ndarray) -> Runs:
        """The rows where ``keep`` (a boolean mask) holds."""
        return Runs(self.sid[keep], self.window[keep], self.step[keep], self.index[keep],
                    self.actual[keep], self.base[keep],
                    {i: m for i, m in self.models.items() if i in set(self.sid[keep])})

    def join(self, other: Runs) -> Runs:
        """Both backtests in one, ordered by window, series and step as run() orders them."""
        parts = [np.concatenate([a, b]) for a, b in
                 zip((self.sid, self.window, self.step, self.index, self.actual, self.base),
                     (other.sid, other.window, other.step, other.index, other.actual,
                      other.base), strict=True)]
        order = np.lexsort((parts[2], parts[0], parts[1]))
        sid, window, step, index, actual, base = (p[order] for p in parts)
        return Runs(sid, window, step, index, actual, base, {**self.models, **other.models})


def run(method: Method, batch: Batch, the_plan: Plan, horizon: int,
        settings: Settings) -> Runs:
    cols: list[list[np.ndarray]] = [[] for _ in range(6)]
    models: dict[int, Any] = {}
    for w, pairs in the_plan.cuts.items():       # windows in order: the last one's models stay
        settings.check_time()
        window = batch.take([i for i, _ in pairs], [c for _, c in pairs], horizon)
        base = forecast(method, window, horizon, settings)
        for k, (i, c) in enumerate(pairs):
            if window.states is not None:
                models[i] = window.states[k]
            steps = min(horizon, len(batch.ys[i]) - c)
            index = np.arange(c, c + steps)
            for col, part in zip(cols, (np.full(steps, i), np.full(steps, w),
                                        np.arange(1, steps + 1), index, batch.ys[i][index],
                                        base[k, :steps, :]), strict=True):
                col.append(part)
    sid, window_, step, index_, actual = (np.concatenate(c) for c in cols[:5])
    return Runs(sid, window_, step, index_, actual, np.vstack(cols[5]), models)


_CONTROLLER: list[ThreadpoolController] = []


def forecast(method: Method, batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
    """The method's base forecasts, (series, horizon, k); a series shorter than the method's
    minimum gets the seasonal naive forecast (in every column) instead. OpenMP and BLAS run
    ``settings.n_jobs`` threads (1 by default): the boosting's OpenMP threads only wait on each
    other on a busy machine (20x slower on 2 shared cores), and the statistical models make
    thousands of small BLAS calls."""
    with _threads(settings.n_jobs):
        return _forecast(method, batch, horizon, settings)


def _threads(n: int) -> Any:
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n)


def final_forecast(method: Method, runs: Runs, batch: Batch, horizon: int,
                   settings: Settings) -> np.ndarray:
    """The forecast from every point: by the method's forward step from the models of its last
    backtest window where it has them (no second fit), else fitted afresh."""
    have = [i for i in range(len(batch)) if runs.models.get(i) is not None]
    if method.forward is None or not have:
        return forecast(method, batch, horizon, settings)
    k = len(settings.quantiles) if method.quantile_output else 1
    out = np.empty((len(batch), horizon, k))
    rest = [i for i in range(len(batch)) if i not in set(have)]
    if rest:
        out[rest] = forecast(method, batch.subset(rest), horizon, settings)
    sub = batch.subset(have)
    sub.states = [runs.models[i] for i in have]
    with _threads(settings.n_jobs):
        out[have] = method.forward(sub, horizon, settings)
    return out


def _forecast(method: Method, batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
    k = len(settings.quantiles) if method.quantile_output else 1
    short = [i for i, y in enumerate(batch.ys) if len(y) < method.min_points]
    if not short:
        return method.run(batch, horizon, settings)
    full = np.empty((len(batch), horizon, k))
    full[short] = np.repeat(seasonal_naive(batch.subset(short), horizon, settings), k, axis=2)
    rest = [i for i in range(len(batch)) if i not in set(short)]
    if rest:
        sub = batch.subset(rest)
        full[rest] = method.run(sub, horizon, settings)
        if sub.states is not None:
            batch.states = [None] * len(batch)
            for j, i in enumerate(rest):
                batch.states[i] = sub.states[j]
    return full
