"""ETS, ARIMA and Theta per series, through Nixtla's statsforecast (AutoETS, AutoARIMA,
AutoTheta: each picks its own specification per series by information criterion).

statsforecast is imported here, inside the runners, only when a forecast is fitted: its import
costs seconds (statsmodels, fugue) that nothing else in sqlml should pay. It is the optional
extra ``forecast`` (pip install 'sqlml[forecast]'), not a dependency of sqlml: it declares
pandas<3, which would hold every user's pandas at 2.x. Without it AUTO compares the baselines
and the global GBM, recording ETS, ARIMA and Theta as skipped (``unavailable``), and a method
asked for by name is refused (``require``). From 2.1 its models
are compiled C++, with no numba JIT on the first call. A series where a model fails (too short,
a singular fit, a forecast that is not finite) gets the seasonal naive forecast.

The final forecast does not fit again: it runs the model of the last backtest window forward
over the whole history (statsforecast's ``forward``: the specification and parameters fitted on
all but the last horizon, the state updated to the last point), as statsforecast's own
cross_validation(refit=False) does. Each series is thus fitted once per backtest window, and
a log variant reuses the plain model's fit of a series with a value <= 0 (fitted on y itself).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from sqlml.errors import MissingDependencyError
from sqlml.forecast.baselines import seasonal_naive
from sqlml.forecast.series import Batch, Method, Runner, Settings

MIN_POINTS = 8      # a shorter series gets the seasonal naive forecast instead
MODELS = {"ets": "AutoETS", "arima": "AutoARIMA", "theta": "AutoTheta"}
_FAILED = (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError)
_LOG_MAX = float(np.log(np.finfo(float).max) / 2)
INSTALL = "pip install 'sqlml[forecast]'"
SKIPPED = "skipped_missing_dependency"     # a candidate's status in ml_trials without it


def available() -> bool:
    """Whether statsforecast can be imported, without importing it (that takes seconds)."""
    try:
        return importlib.util.find_spec("statsforecast") is not None
    except (ImportError, ValueError):      # a broken or half-removed install
        return False


def _missing(name: str, detail: str = "") -> MissingDependencyError:
    return MissingDependencyError(
        f"forecast: method {name!r} ({MODELS[name.removesuffix('_log')]}) needs the "
        f"statsforecast package, which is not installed{detail}. Install sqlml's forecast "
        f"extra: {INSTALL}, or pick a method without it: auto, naive, seasonal_naive, drift "
        f"or gbm.")


def require(method: str) -> None:
    """Refuse ETS, ARIMA or Theta asked for by name when statsforecast is missing."""
    if method in STATISTICAL and not available():
        raise _missing(method)


def unavailable(method: str) -> tuple[list[Method], list[str]]:
    """AUTO without statsforecast: the candidates it could not try and the note saying so."""
    if method != "auto" or available():
        return [], []
    return list(STATISTICAL.values()), [
        f"ETS, ARIMA and Theta were not tried: the statsforecast package is not installed "
        f"({INSTALL} adds them); AUTO compared the baselines and the global model"]


def model(name: str, season: int) -> Any:
    """A statsforecast model object, as statsforecast's own users build it."""
    try:
        from statsforecast import models
    except ImportError as exc:
        raise _missing(name, f" ({exc})") from exc
    return getattr(models, MODELS[name])(season_length=season)


def _inputs(batch: Batch, i: int, name: str, log: bool) -> tuple[np.ndarray, bool, dict]:
    """Series i's target as fitted (log y where asked and y > 0) and its covariates (ARIMA's
    exogenous regressors; ETS and Theta take none)."""
    y = batch.ys[i]
    logged = log and bool(np.all(y > 0))
    extra = {}
    if name == "arima" and batch.xs is not None and batch.x_future is not None:
        extra = {"X": batch.xs[i], "X_future": batch.x_future[i]}
    return (np.log(y) if logged else y), logged, extra


def _mean(out: dict[str, Any], logged: bool) -> np.ndarray:
    mean = np.asarray(out["mean"], dtype=np.float64)
    return np.exp(np.minimum(mean, _LOG_MAX)) if logged else mean


def _fallback(batch: Batch, i: int, horizon: int, settings: Settings,
              mean: np.ndarray) -> np.ndarray:
    if np.all(np.isfinite(mean)):
        return mean
    return seasonal_naive(batch.subset([i]), horizon, settings)[0, :, 0]


def _fit(name: str, season: int, y: np.ndarray, horizon: int, extra: dict,
         logged: bool) -> tuple[Any, np.ndarray]:
    try:
        fitted = model(name, season).fit(y=y, X=extra.get("X"))
        return fitted, _mean(fitted.predict(h=horizon, X=extra.get("X_future")), logged)
    except _FAILED:
        return None, np.full(horizon, np.nan)


def runner(name: str, log: bool = False) -> Runner:
    """Fit each series and forecast; the fitted models go to batch.states. With ``log``, the
    model is fitted to log(y) of a positive series and forecast as exp of its result (a
    multiplicative trend and season; the median on the original scale), to y itself where a
    series has a value <= 0."""
    def run(batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
        out = np.empty((len(batch), horizon, 1))
        states: list[Any] = []
        for i, m in enumerate(batch.seasons):
            settings.check_time()
            y, logged, extra = _inputs(batch, i, name, log)
            key = (name, batch.ids[i], len(y), m)
            if not logged and key in settings.fits:     # the plain model's fit, reused
                fitted, mean = settings.fits[key]
            else:
                fitted, mean = _fit(name, m, y, horizon, extra, logged)
                if not logged and not extra:
                    settings.fits[key] = (fitted, mean)
            out[i, :, 0] = _fallback(batch, i, horizon, settings, mean)
            states.append(fitted if np.all(np.isfinite(mean)) else None)
        batch.states = states
        return out

    run.__name__ = f"run_{name}{'_log' if log else ''}"
    return run


def forwarder(name: str, log: bool = False) -> Runner:
    """Forecast each series' whole history with the model in batch.states."""
    def forward(batch: Batch, horizon: int, settings: Settings) -> np.ndarray:
        assert batch.states is not None
        out = np.empty((len(batch), horizon, 1))
        for i, fitted in enumerate(batch.states):
            y, logged, extra = _inputs(batch, i, name, log)
            try:
                mean = _mean(fitted.forward(y=y, h=horizon, **extra), logged)
            except _FAILED:
                mean = np.full(horizon, np.nan)
            out[i, :, 0] = _fallback(batch, i, horizon, settings, mean)
        return out

    return forward


def _method(name: str, log: bool) -> Method:
    return Method(f"{name}_log" if log else name, runner(name, log), min_points=MIN_POINTS,
                  family="statistical", forward=forwarder(name, log),
                  params={"model": MODELS[name], "library": "statsforecast",
                          "transform": "log" if log else "none"})


# "ets_log" and so on: the same model on log(y), a candidate of AUTO only (ARIMA, the slowest,
# has none).
STATISTICAL = {m.name: m for name in MODELS for log in (False, True)
               if not (log and name == "arima") for m in [_method(name, log)]}
