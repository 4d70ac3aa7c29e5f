"""A global gradient-boosting model over all series: scikit-learn's
HistGradientBoostingRegressor with loss='quantile', one model per quantile.

Direct multi-horizon, not recursive: each training row is (series, origin o, step s) with the
features known at o, the step s and the calendar and covariates of period o + s, and the target
y[o + s]; one model serves every step, so no forecast is fed back and errors do not compound.
Values are made comparable across series: each series is centred on its level at the origin
(the mean of its last season) and divided by its scale (the in-sample seasonal-naive MAE).
Features: the last LAGS values, the value one season before the target period, the mean and the
spread of the last season, the step, the target period's month, quarter, week, weekday and hour,
and the known-future covariates at the target period. At most MAX_ROWS rows (drawn at random,
seeded) train each model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sqlml.forecast.metrics import scales
from sqlml.forecast.series import Batch, Method, Settings

MAX_LAGS = 24
MAX_ROWS = 40_000
MAX_ITER = 100
MIN_POINTS = 10


def _calendar(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.column_stack([dates.month, dates.quarter, dates.isocalendar().week.to_numpy(),
                            dates.dayofweek, dates.hour]).astype(np.float64)


def n_lags(batch: Batch) -> int:
    """The same lags for every series of a batch: two of the longest seasons, 6 to MAX_LAGS."""
    return min(MAX_LAGS, max(2 * max(batch.seasons), 6))


def _features(y: np.ndarray, season: int, origins: np.ndarray, steps: np.ndarray,
              scale: float, lags: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows for pairs (origin, step) of one series, without calendar and covariates, and the
    level each row's target is centred on."""
    width = max(season, 3)
    pad = np.concatenate([np.full(max(lags, width), y[0]), y])
    shift = max(lags, width)
    level = np.array([pad[o + shift - width + 1:o + shift + 1].mean() for o in range(len(y))])
    spread = np.array([pad[o + shift - width + 1:o + shift + 1].std() for o in range(len(y))])
    lag_idx = origins[:, None] + shift - np.arange(lags)[None, :]
    back = season * np.ceil(steps / season).astype(int) if season > 1 else steps
    anchor = pad[origins + steps - back + shift]
    lv = level[origins]
    return np.column_stack([(pad[lag_idx] - lv[:, None]) / scale, (anchor - lv) / scale,
                            spread[origins] / scale, steps]).astype(np.float64), lv


def _train_rows(batch: Batch, horizon: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    per_series = max(MAX_ROWS // max(len(batch), 1), 20)
    xs, ts = [], []
    for i, (y, m) in enumerate(zip(batch.ys, batch.seasons, strict=True)):
        n = len(y)
        o, s = np.meshgrid(np.arange(1, n - 1), np.arange(1, horizon + 1), indexing="ij")
        keep = (o + s) < n
        o, s = o[keep], s[keep]
        if len(o) > per_series:
            pick = rng.choice(len(o), per_series, replace=False)
            o, s = o[pick], s[pick]
        scale = scales(y, m)[0]
        base, level = _features(y, m, o, s, scale, n_lags(batch))
        extra = [_calendar(pd.DatetimeIndex(batch.ds[i][o + s]))]
        if batch.xs is not None:
            extra.append(batch.xs[i][o + s])
        xs.append(np.column_stack([base, *extra]))
        ts.append((y[o + s] - level) / scale)
    return np.vstack(xs), np.concatenate(ts)


def _predict_rows(batch: Batch, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, levels, scale_rows = [], [], []
    steps = np.arange(1, horizon + 1)
    for i, ((y, m), dates) in enumerate(zip(zip(batch.ys, batch.seasons, strict=True),
                                            batch.future(horizon), strict=True)):
        scale = scales(y, m)[0]
        base, level = _features(y, m, np.full(horizon, len(y) - 1), steps, scale,
                                n_lags(batch))
        extra = [_calendar(dates)]
        if batch.x_future is not None:
            extra.append(batch.x_future[i])
        xs.append(np.column_stack([base, *extra]))
        levels.append(level)
        scale_rows.append(np.full(horizon, scale))
    return np.vstack(xs), np.concatenate(levels), np.concatenate(scale_rows)


def run(batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(settings.seed)
    x, target = _train_rows(batch, horizon, rng)
    future, level, scale = _predict_rows(batch, horizon)
    out = np.empty((len(batch), horizon, len(settings.quantiles)))
    for j, q in enumerate(settings.quantiles):
        settings.check_time()
        model = HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=MAX_ITER,
                                              learning_rate=0.1, max_leaf_nodes=31,
                                              min_samples_leaf=20, early_stopping=False,
                                              random_state=settings.seed)
        model.fit(x, target)
        out[:, :, j] = (level + scale * model.predict(future)).reshape(len(batch), horizon)
    return out


GBM = Method("gbm", run, quantile_output=True, min_points=MIN_POINTS, family="global",
             params={"model": "HistGradientBoostingRegressor", "loss": "quantile",
                     "strategy": "direct", "max_rows": MAX_ROWS})
