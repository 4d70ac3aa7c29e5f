"""The arguments of fit_forecast, checked before any work: each refusal names the argument or
series, the rule, the value and the remedy."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sqlml.errors import ForecastError, did_you_mean

METHODS = ("auto", "naive", "seasonal_naive", "drift", "ets", "arima", "theta", "gbm")
MIN_POINTS = 5      # the fewest points a series may have (a backtest window needs 3 + 2)


def check_horizon(horizon: object) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise ForecastError(
            f"forecast: horizon must be a whole number of periods >= 1, got {horizon!r}. Pass "
            f"the number of periods to forecast, e.g. horizon := 12 for a year of months.")
    return int(horizon)


def check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    values = list(quantiles) if isinstance(quantiles, Sequence | np.ndarray) else None
    if not values:
        raise ForecastError(
            f"forecast: quantiles must be a non-empty list of numbers in (0, 1), got "
            f"{quantiles!r}. Pass e.g. quantiles := [0.1, 0.5, 0.9].")
    for q in values:
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < float(q) < 1:
            raise ForecastError(
                f"forecast: each quantile must be a number strictly between 0 and 1, got {q!r} "
                f"in {values!r}. Pass e.g. quantiles := [0.1, 0.5, 0.9] (0.1 is P10).")
    floats = tuple(float(q) for q in values)
    if any(b <= a for a, b in itertools.pairwise(floats)):
        raise ForecastError(
            f"forecast: quantiles must be sorted and distinct, got {values!r}. Pass them in "
            f"increasing order, each once: {sorted(set(floats))!r}.")
    return floats


def check_method(method: str, season_length: object, max_runtime: object) -> None:
    """Also accepts AUTO's own variants (theta_log, ets_log), which a stored model may name."""
    from sqlml.forecast import statistical

    if method not in METHODS and method not in statistical.STATISTICAL:
        raise ForecastError(
            f"forecast: method must be one of {', '.join(METHODS)}, got {method!r}."
            + did_you_mean(str(method), METHODS))
    if (isinstance(season_length, bool) or not isinstance(season_length, numbers.Integral)
            or season_length < 1):
        raise ForecastError(
            f"forecast: season_length must be a whole number >= 1 (1: no seasonality), got "
            f"{season_length!r}. Pass e.g. 12 for monthly data with a yearly cycle.")
    if max_runtime is not None and (isinstance(max_runtime, bool) or not isinstance(
            max_runtime, numbers.Real) or not float(max_runtime) > 0):
        raise ForecastError(
            f"forecast: max_runtime must be a positive number of seconds or None, got "
            f"{max_runtime!r}.")
    statistical.require(method)


def check_panel(panel: pd.DataFrame) -> list[str]:
    """The covariate columns; refuses a panel without unique_id, ds and a numeric y without
    NULLs, and a series with fewer than MIN_POINTS points (naming it)."""
    missing = [c for c in ("unique_id", "ds", "y") if c not in panel.columns]
    if missing:
        raise ForecastError(
            f"forecast: the panel has no column {missing[0]!r}; it needs unique_id, ds and y "
            f"(columns: {', '.join(map(str, panel.columns))}).")
    if len(panel) == 0:
        raise ForecastError("forecast: the panel has no rows; pass at least one series of "
                            f"{MIN_POINTS} or more points.")
    y = pd.to_numeric(panel["y"], errors="coerce")
    if y.isna().any():
        bad = panel.loc[y.isna(), "unique_id"].iloc[0]
        raise ForecastError(
            f"forecast: series {str(bad)!r} has a NULL or non-numeric target value; fill or "
            f"drop the missing values before forecasting.")
    counts = panel.groupby("unique_id", sort=True).size()
    short = counts[counts < MIN_POINTS]
    if len(short):
        names = ", ".join(f"{str(k)!r} ({v} points)" for k, v in short.head(3).items())
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        raise ForecastError(
            f"forecast: series {names}{more} have fewer than {MIN_POINTS} points, the minimum "
            f"per series. Drop them (a WHERE on the series columns) or give a longer history.")
    return [c for c in panel.columns if c not in ("unique_id", "ds", "y")]


def check_future(future: pd.DataFrame | None, covariates: list[str], ids: list[str],
                 dates: list[pd.DatetimeIndex]) -> np.ndarray | None:
    """The covariates over the horizon, (series, horizon, covariates); each series needs a
    value per period of the horizon and covariate."""
    if not covariates:
        return None
    if future is None:
        raise ForecastError(
            f"forecast: the panel has covariates ({', '.join(covariates)}) but no future values "
            f"were passed; pass their values for each series over the horizon.")
    absent = [c for c in ("unique_id", "ds", *covariates) if c not in future.columns]
    if absent:
        raise ForecastError(
            f"forecast: the future covariate values have no column {absent[0]!r}; they need "
            f"unique_id, ds and {', '.join(covariates)}.")
    table = future.assign(unique_id=future["unique_id"].astype(str),
                          ds=pd.to_datetime(future["ds"])).set_index(["unique_id", "ds"])
    table = table[~table.index.duplicated(keep="last")]
    horizon = len(dates[0]) if dates else 0
    want = pd.MultiIndex.from_arrays([np.repeat(ids, horizon), np.concatenate(dates)])
    values = table.reindex(want)[covariates].to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if missing.any():
        row, col = np.argwhere(missing)[0]
        uid, ds = ids[row // horizon], dates[row // horizon]
        raise ForecastError(
            f"forecast: future covariate values are missing for series {uid!r} at "
            f"{ds[row % horizon].date()} (column {covariates[col]!r}); pass a value for every "
            f"period of the horizon ({ds[0].date()} to {ds[-1].date()}).")
    return values.reshape(len(ids), horizon, len(covariates))
