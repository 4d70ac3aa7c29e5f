"""``<fn>_future('SELECT ...')``: a covariate model's forecasts again, with new future values.

The forecasts stored at training use the covariates' future values that training was given
(settings ``future``). ``<fn>_future(query)``, a generated function beside ``<fn>()``, asks
sqlml's Python (the UDF
``__sqlml_py_forecast_future``, through the dispatcher ``__sqlml_call_forecast_future``) for
the same model's forecasts with other values: the training query is read again and checked
against the version's data fingerprint, and the version's method (``model_type``, AUTO's pick)
is fitted with its settings, backtested and calibrated as at training, with the new values over
the horizon. The same values as training's thus give the stored forecasts back. Only the methods
that read covariates (the global GBM, ARIMA's exogenous regressors) change with them.

The new values must cover every series and period of the asked horizon; past it, up to the
stored horizon the fit runs with, each series' last given values are carried forward (a step's
forecast reads the covariates of its own period only, so those steps leave the asked ones alone).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from sqlml.catalog import sources
from sqlml.catalog import store as catalog
from sqlml.errors import ForecastError, TrainingError
from sqlml.forecast import engine, panel, periods, prepare
from sqlml.forecast.series import future_dates
from sqlml.train import supervised as training

ROW_TYPE = pa.list_(pa.struct([("series_id", pa.string()), ("step", pa.int32()),
                               ("period", pa.timestamp("us")),
                               ("values", pa.list_(pa.float64()))]))


def forecast_again(cur, ref: str, future: str, horizon: int | None) -> list[dict]:
    """The rows of sqlml.forecasts (series_id, step, period, values) for ``horizon`` steps of
    model version ``ref`` ('name@version'), with the covariates' values read from ``future``."""
    name, _, pin = ref.partition("@")
    row = catalog.version_row(cur, name, catalog.resolve_version(cur, name, pin, ref))
    params = json.loads(row["parameters"])
    fn, h = f"{row['function_name']}_future", int(params["max_horizon"])
    s = prepare.settings_of(params["settings"])
    if not s.covariates:
        raise ForecastError(
            f"{fn}: the query passes new values of known-future covariates, but model "
            f"{name!r} (version {row['version']}) was trained without covariates (settings "
            f"covariates), so its forecasts do not depend on them. Read its forecasts with "
            f"{row['function_name']}(), or retrain with settings := {{covariates: [...], "
            f"future: '...'}}.")
    rows, _, s = prepare.read_rows(cur, row["training_query"], s, row["target"], name)
    freq = periods.infer(rows["__series"], rows["__time"], s.frequency)
    pnl = panel.build(rows, s, freq)
    frame = pnl.frame
    if training.fingerprint(frame[["unique_id", "ds"]], frame["y"].to_numpy()) != \
            row["data_fingerprint"]:
        raise ForecastError(
            f"{fn}: the rows of model {name!r}'s training query have changed since version "
            f"{row['version']} was trained, so its forecasts cannot be computed again with new "
            f"future values. Retrain it (ml_create_model) on the current rows first. Query: "
            f"{row['training_query']}")
    try:
        fut, _, _ = prepare.read_rows(cur, sources.query_of(future), s, None, name,
                                      f"future covariates ({fn})", single=row["target"])
    except TrainingError as exc:
        raise ForecastError(str(exc).replace(f"{prepare.FN}: ", f"{fn}: ", 1)) from None
    asked = h if horizon is None else int(horizon)
    values = cover(panel.future_frame(fut, freq), frame, s.covariates, freq.alias, h, asked, fn)
    fit = engine.fit_forecast(frame, horizon=h, quantiles=params["quantiles"], freq=freq.alias,
                              season_length=freq.season_length, method=row["model_type"],
                              future=values, seed=s.random_state)
    f = fit.forecasts[fit.forecasts["step"] <= asked]
    dated = freq.dated(f["ds"]).astype("datetime64[us]")
    q = f[list(params["columns"])].to_numpy(dtype=np.float64)
    return [{"series_id": str(u), "step": int(st), "period": p, "values": v.tolist()}
            for u, st, p, v in zip(f["unique_id"], f["step"], pd.to_datetime(dated), q,
                                   strict=True)]


def cover(values: pd.DataFrame, frame: pd.DataFrame, covariates: list[str], alias: str,
          stored: int, asked: int, fn: str) -> pd.DataFrame:
    """The future values over every series' ``stored`` periods; refuses a series and period of
    the first ``asked`` without a value (naming them), and carries the last value past them."""
    last = frame.groupby("unique_id", sort=True)["ds"].max()
    ends = {end: future_dates(pd.Timestamp(end), stored, alias) for end in set(last)}
    ids = np.repeat(last.index.to_numpy(dtype=object), stored)
    want = pd.MultiIndex.from_arrays([ids, np.concatenate([ends[e] for e in last])],
                                     names=["unique_id", "ds"])
    table = values.assign(ds=pd.to_datetime(values["ds"])).set_index(["unique_id", "ds"])
    got = table[covariates].reindex(want)
    step = np.tile(np.arange(1, stored + 1), len(last))
    gaps = got.isna().to_numpy() & (step <= asked)[:, None]
    if gaps.any():
        at, col = np.argwhere(gaps)[0]
        uid, when = want[at]
        span = ends[last[uid]]
        raise ForecastError(
            f"{fn}: the future values have no {covariates[col]!r} for series "
            f"{uid!r} at {when.date()}, a period of the horizon; pass a value of "
            f"{', '.join(covariates)} for every series and period from {span[0].date()} to "
            f"{span[asked - 1].date()} ({len(last)} series x {asked} periods).")
    return got.groupby(level="unique_id").ffill().reset_index()
