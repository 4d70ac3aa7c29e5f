"""Forecast metrics, scaled by each series' in-sample seasonal-naive errors.

- scale (the denominator of MASE and of the scaled pinball loss): the mean absolute error of the
  seasonal naive forecast in sample, mean |y[t] - y[t - m]|; the naive one (m = 1) for a series
  without a full season; for a constant series, mean |y|, or 1 when that is 0 too.
- MASE: mean |actual - p50| / scale, with p50 the quantile nearest 0.5.
- RMSSE: sqrt(mean (actual - p50)^2 / mean (y[t] - y[t - m])^2), the same fallbacks.
- sMAPE: mean of 200 |actual - p50| / (|actual| + |p50|), in percent, 0 where both are 0.
- pinball_<col>: the mean pinball loss of one quantile (as ml_pinball_loss), unscaled.
- scaled_pinball: the mean over the quantiles of the pinball loss, divided by scale.
- coverage: the share of actuals between the lowest and the highest quantile, bounds included.
The global figure of each is the mean of the per-series figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def scales(y: np.ndarray, season: int) -> tuple[float, float]:
    """(mean absolute, mean squared) in-sample error of the seasonal naive forecast."""
    m = season if len(y) > season else 1
    if len(y) <= m:
        level = float(np.mean(np.abs(y))) or 1.0
        return level, level ** 2
    diff = y[m:] - y[:-m]
    mae, mse = float(np.mean(np.abs(diff))), float(np.mean(diff ** 2))
    if mae <= 0 or not np.isfinite(mae):
        level = float(np.mean(np.abs(y))) or 1.0
        return level, level ** 2
    return mae, mse


def pinball(actual: np.ndarray, predicted: np.ndarray, q: float) -> np.ndarray:
    diff = actual - predicted
    return np.maximum(q * diff, (q - 1) * diff)


def median_column(quantiles: tuple[float, ...]) -> int:
    return int(np.argmin([abs(q - 0.5) for q in quantiles]))


def series_metrics(sid: np.ndarray, actual: np.ndarray, forecast: np.ndarray,
                   quantiles: tuple[float, ...], scale: np.ndarray, scale_sq: np.ndarray,
                   columns: list[str]) -> pd.DataFrame:
    """Per-series metrics of the rows (series index ``sid``, actual, forecast per quantile):
    one row per series index that has rows, the column ``sid`` first."""
    p50 = forecast[:, median_column(quantiles)]
    err = actual - p50
    denom = np.abs(actual) + np.abs(p50)
    frame = pd.DataFrame({
        "sid": sid,
        "mase": np.abs(err) / scale[sid],
        "smape": np.divide(200 * np.abs(err), denom, out=np.zeros_like(denom), where=denom > 0),
        "sq": err ** 2 / scale_sq[sid],
        "coverage": ((forecast[:, 0] <= actual) & (actual <= forecast[:, -1])).astype(float),
        "scaled_pinball": np.mean([pinball(actual, forecast[:, j], q)
                                   for j, q in enumerate(quantiles)], axis=0) / scale[sid],
    })
    for j, (q, col) in enumerate(zip(quantiles, columns, strict=True)):
        frame[f"pinball_{col}"] = pinball(actual, forecast[:, j], q)
    out = frame.groupby("sid", sort=True).mean()
    out.insert(2, "rmsse", np.sqrt(out.pop("sq")))
    return out.reset_index()


def global_metrics(per_series: pd.DataFrame) -> dict[str, float]:
    return {c: float(per_series[c].mean()) for c in per_series.columns
            if c not in ("sid", "unique_id")}
