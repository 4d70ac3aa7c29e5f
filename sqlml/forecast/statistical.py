"""ETS, ARIMA and Theta per series, through Nixtla's statsforecast (AutoETS, AutoARIMA,
AutoTheta: each picks its own specification per series by information criterion).

statsforecast is imported here, inside the runners, only when a forecast is fitted: its import
costs seconds (statsmodels, fugue) that nothing else in sqlml should pay. From 2.1 its models
are compiled C++, with no numba JIT on the first call. A series where a model fails (too short,
a singular fit, a forecast that is not finite) gets the seasonal naive forecast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sqlml.errors import MissingDependencyError
from sqlml.forecast.baselines import seasonal_naive
from sqlml.forecast.series import Batch, Method, Runner, Settings

MIN_POINTS = 8      # a shorter series gets the seasonal naive forecast instead
MODELS = {"ets": "AutoETS", "arima": "AutoARIMA", "theta": "AutoTheta"}


def model(name: str, season: int) -> Any:
    """A statsforecast model object, as statsforecast's own users build it."""
    try:
        from statsforecast import models
    except ImportError as exc:      # pragma: no cover - a dependency of sqlml
        raise MissingDependencyError(
            f"forecast: method {name!r} needs the statsforecast package, which is not "
            f"installed ({exc}); pip install 'statsforecast>=2.1'.") from exc
    return getattr(models, MODELS[name])(season_length=season)


def point_forecast(name: str, y: np.ndarray, horizon: int, season: int,
                   x: np.ndarray | None = None, x_future: np.ndarray | None = None
                   ) -> np.ndarray:
    """One series' mean forecast; ARIMA takes the covariates as exogenous regressors."""
    if name == "arima" and x is not None and x_future is not None:
        out = model(name, season).forecast(y=y, h=horizon, X=x, X_future=x_future)
    else:
        out = model(name, season).forecast(y=y, h=horizon)
    return np.asarray(out["mean"], dtype=np.float64)


def runner(name: str, log: bool = False) -> Runner:
    """The runner of one model; with ``log``, fitted to log(y) of a positive series and
    forecast as exp of the result (a multiplicative trend and season; the median, not the mean,
    on the original scale), to y itself where a series has a value <= 0."""
    def run(batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
        out = np.empty((len(batch), horizon, 1))
        for i, (y, m) in enumerate(zip(batch.ys, batch.seasons, strict=True)):
            x = batch.xs[i] if batch.xs is not None else None
            xf = batch.x_future[i] if batch.x_future is not None else None
            logged = log and bool(np.all(y > 0))
            try:
                mean = point_forecast(name, np.log(y) if logged else y, horizon, m, x, xf)
                if logged:
                    mean = np.exp(np.minimum(mean, np.log(np.finfo(float).max) / 2))
            except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError):
                mean = np.full(horizon, np.nan)
            if not np.all(np.isfinite(mean)):
                one = batch.take([i], [len(y)], horizon)
                mean = seasonal_naive(one, horizon, settings)[0, :, 0]
            out[i, :, 0] = mean
        return out

    run.__name__ = f"run_{name}{'_log' if log else ''}"
    return run


def _method(name: str, log: bool) -> Method:
    return Method(f"{name}_log" if log else name, runner(name, log), min_points=MIN_POINTS,
                  family="statistical", params={"model": MODELS[name], "library":
                                                "statsforecast", "transform":
                                                "log" if log else "none"})


# "ets_log" and so on: the same model on log(y). method := 'ets' backtests both and keeps the
# better; AUTO compares all of them.
STATISTICAL = {m.name: m for name in MODELS for log in (False, True)
               if not (log and name == "arima") for m in [_method(name, log)]}
