"""The baselines, always computed: the fallback for very short series and the denominator of
every scaled metric. Point forecasts; their quantiles come from the backtest residuals."""

from __future__ import annotations

import numpy as np

from sqlml.forecast.series import Batch, Method, Settings


def naive(batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
    """The last value, repeated."""
    out = np.empty((len(batch), horizon, 1))
    for i, y in enumerate(batch.ys):
        out[i, :, 0] = y[-1]
    return out


def seasonal_naive(batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
    """The value one season back; the naive forecast where a series has no full season."""
    out = np.empty((len(batch), horizon, 1))
    steps = np.arange(horizon)
    for i, (y, m) in enumerate(zip(batch.ys, batch.seasons, strict=True)):
        out[i, :, 0] = y[len(y) - m + steps % m] if 1 < m <= len(y) else y[-1]
    return out


def drift(batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
    """A random walk with drift: the last value plus the mean change per period so far."""
    out = np.empty((len(batch), horizon, 1))
    steps = np.arange(1, horizon + 1)
    for i, y in enumerate(batch.ys):
        slope = (y[-1] - y[0]) / (len(y) - 1) if len(y) > 1 else 0.0
        out[i, :, 0] = y[-1] + slope * steps
    return out


BASELINES = {
    "naive": Method("naive", naive, min_points=1),
    "seasonal_naive": Method("seasonal_naive", seasonal_naive, min_points=1),
    "drift": Method("drift", drift, min_points=2),
}
