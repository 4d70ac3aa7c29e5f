"""Quantiles from the backtest residuals, per horizon step (split conformal prediction).

For each quantile q and step s, the offset is the conformal q-quantile of the scaled residuals
(actual - base forecast) / scale of the backtest rows at step s: the ceil((n + 1) q)-th smallest
of n for q >= 0.5, the floor((n + 1) q)-th for q < 0.5 (clipped to 1..n), so that the interval
between two quantiles covers at least its nominal share of held-out actuals. A step with fewer
than MIN_RESIDUALS residuals borrows those of its nearest steps, s - r .. s + r, the smallest r
that reaches the number. The forecast is then base + offset * scale, with ``base`` the method's
point forecast, or its own forecast of that quantile (conformalized quantile regression).
"""

from __future__ import annotations

import math

import numpy as np

from sqlml.forecast.backtest import Runs

MIN_RESIDUALS = 30
SHRINK = 6          # pseudo-rows pulling a series' error level toward the panel's typical one
ADAPTIVE = True


def norms(runs: Runs, scale: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Each series' error level: the mean absolute error of the method's (middle) base forecast
    over its backtest rows, shrunk toward the panel's median error-to-scale ratio by SHRINK
    pseudo-rows; a series without rows gets that median ratio times its scale."""
    if not ADAPTIVE:
        return scale
    rows = np.ones(len(runs.sid), bool) if rows is None else rows
    mid = runs.base[:, runs.base.shape[1] // 2]
    n = np.bincount(runs.sid[rows], minlength=len(scale)).astype(float)
    total = np.bincount(runs.sid[rows], np.abs(runs.actual - mid)[rows], minlength=len(scale))
    ratio = total[n > 0] / n[n > 0] / scale[n > 0]
    typical = float(np.median(ratio)) if len(ratio) else 1.0
    level = (total + SHRINK * typical * scale) / (n + SHRINK)
    return np.maximum(level, 1e-3 * scale)


def conformal_quantile(values: np.ndarray, q: float) -> float:
    n = len(values)
    k = math.ceil((n + 1) * q) if q >= 0.5 else math.floor((n + 1) * q)
    return float(np.sort(values)[min(max(k, 1), n) - 1])


def scaled_residuals(runs: Runs, scale: np.ndarray, n_quantiles: int) -> np.ndarray:
    """(rows, quantiles): the residual of each quantile's base column (a point forecast serves
    every quantile)."""
    return (runs.actual[:, None] - base_columns(runs.base, n_quantiles)) / scale[runs.sid][:, None]


def base_columns(base: np.ndarray, n_quantiles: int) -> np.ndarray:
    """A point forecast's one column repeated per quantile; a quantile method's as they are."""
    if base.shape[-1] == n_quantiles:
        return base
    return np.repeat(base[..., :1], n_quantiles, axis=-1)


def offsets(residuals: np.ndarray, steps: np.ndarray, horizon: int,
            quantiles: tuple[float, ...]) -> np.ndarray:
    """(horizon, quantiles) offsets in units of each series' scale."""
    out = np.zeros((horizon, len(quantiles)))
    if len(steps) == 0:
        return out
    for s in range(1, horizon + 1):
        near = np.abs(steps - s)
        radius = 0
        while (near <= radius).sum() < min(MIN_RESIDUALS, len(steps)):
            radius += 1
        rows = near <= radius
        for j, q in enumerate(quantiles):
            out[s - 1, j] = conformal_quantile(residuals[rows, j], q)
    return out


def calibrated_backtest(runs: Runs, scale: np.ndarray, horizon: int,
                        quantiles: tuple[float, ...]) -> np.ndarray:
    """The backtest's quantile forecasts, each window calibrated on the other windows only
    (on all of them where there is one window), so that their coverage is a held-out figure."""
    base = base_columns(runs.base, len(quantiles))
    out = np.empty_like(base)
    windows = np.unique(runs.window)
    for w in windows:
        mine = runs.window == w
        other = ~mine if len(windows) > 1 else mine
        level = norms(runs, scale, other)
        res = scaled_residuals(runs, level, len(quantiles))
        off = offsets(res[other], runs.step[other], horizon, quantiles)
        out[mine] = base[mine] + off[runs.step[mine] - 1] * level[runs.sid[mine]][:, None]
    return out
