"""``ml_create_model(..., problem_type := 'forecast')``: from rows to stored quantile forecasts.

The flow: settings → rows (``prepare``) → frequency (``periods``) → the regular panel
(``panel``) → ``engine.fit_forecast`` → tables. The forecasts, their backtest, the per-series
methods and flags are stored in the catalog at training (``sqlml.forecast_series``,
``sqlml.forecasts``, ``sqlml.forecast_backtest``, ``sqlml.forecast_diagnostics``), the metrics
in ``sqlml.model_metrics`` and AUTO's candidates in ``sqlml.trials``, all in the one
transaction that publishes the version; the generated functions are pure SQL over those tables
(``sqlml.catalog.generated.forecast_statements``), so every DuckDB client reads them. The
artifact is the JSON of what the version was trained with: nothing to unpickle.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from sqlml.catalog import artifacts, generated, sources
from sqlml.catalog import store as catalog
from sqlml.forecast import engine, panel, periods, prepare
from sqlml.forecast.metrics import scales
from sqlml.train import supervised as training

FORMAT = "sqlml.forecast/1+json"
OBJECTIVE = "scaled_pinball"


def train(cur, name: str, function: str, query: str, target: str, raw_settings: dict) -> dict:
    started = time.perf_counter()
    s = prepare.settings_of(raw_settings)
    rows, cols, s = prepare.read_rows(cur, query, s, target, name)
    freq = periods.infer(rows["__series"], rows["__time"], s.frequency)
    pnl = panel.build(rows, s, freq)
    future = None
    if s.covariates:
        assert s.future is not None   # settings_of refuses covariates without it
        fut, _, _ = prepare.read_rows(cur, sources.query_of(s.future), s, None, name,
                                      "future covariates (settings future)", single=target)
        future = panel.future_frame(fut, freq)
    fit = engine.fit_forecast(
        pnl.frame, horizon=s.horizon, quantiles=s.quantiles, freq=freq.alias,
        season_length=freq.season_length, method=s.method, max_runtime=s.max_runtime,
        future=future, seed=s.random_state)
    shape = generated.ForecastShape(
        series_cols=tuple((c, cols.types[c]) for c in s.series_cols), time_col=s.time,
        time_type=cols.output_type, quantiles=tuple(fit.quantiles),
        columns=tuple(engine.quantile_column(q) for q in fit.quantiles),
        horizon=fit.max_horizon, zone=cols.zone)
    chosen = next((t["candidate"] for t in fit.trials if t["status"] == "chosen"), s.method)
    notes = [*pnl.notes, *fit.notes]
    record = _record(name, function, query, target, s, cols, freq, pnl, fit, shape, chosen,
                     notes, started)
    tables = {"forecast_series": _series_table(pnl, fit, freq),
              "forecasts": _forecasts_table(fit, freq, shape),
              "forecast_backtest": _backtest_table(fit, freq, shape),
              "forecast_diagnostics": fit.diagnostics[["unique_id", "flag", "detail"]].rename(
                  columns={"unique_id": "series_id"})}
    trials = [{"trial": i, "model_type": t["candidate"], "parameters": t["params"],
               "objective": OBJECTIVE, "score": _finite(t["score"]), "fold_scores": None,
               "seconds": t["seconds"], "status": t["status"]}
              for i, t in enumerate(fit.trials, start=1)]
    metric_rows = [(k, None, _finite(v)) for k, v in fit.metrics.items()]
    ddl = []
    previous = catalog.model_row(cur, name)
    if previous and previous["function_name"] != function:
        ddl = generated.drop_statements(generated.all_names(previous["function_name"]))
    version = catalog.publish(
        cur, record, metric_rows, [], trials, ddl, extra_rows=tables,
        extra=lambda cur, version: generated.forecast_statements(name, function, version,
                                                                shape))
    return {"name": name, "version": version, "problem_type": "forecast", "model_type": chosen,
            "function": function, "objective": OBJECTIVE,
            "validation_score": _finite(fit.metrics.get(OBJECTIVE)), "threshold": None,
            "training_rows": len(rows), "seconds": round(time.perf_counter() - started, 3),
            "notes": _summary_notes(notes)}


def _summary_notes(notes: list[str], most: int = 8) -> str | None:
    """The summary's notes: the first ``most`` and a count of the rest (a panel of thousands
    of short series would otherwise make one note per series); all of them are in the
    artifact's JSON."""
    if len(notes) > most:
        notes = [*notes[:most - 1], f"{len(notes) - most} more notes (sqlml.model_versions "
                 f"artifact, and per series FROM ml_forecast_series(...))", notes[-1]]
    return "; ".join(notes) or None


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _series_table(pnl: panel.Panel, fit: engine.ForecastFit, freq: periods.Frequency
                  ) -> pa.Table:
    info = pnl.series.set_index("series_id")
    ids = info.index.to_numpy()
    methods = fit.methods.set_index("unique_id").reindex(ids)
    per = fit.series_metrics.set_index("unique_id").reindex(ids)
    ys = dict(tuple(pnl.frame.groupby("unique_id", sort=False)["y"]))
    pairs = [scales(ys[i].to_numpy(), freq.season_length) for i in ids]
    return pa.table({
        "series_id": pa.array(ids.tolist(), pa.string()),
        "series": pa.array(info["values"].tolist(), pa.list_(pa.string())),
        "method": pa.array(methods["method"].tolist(), pa.string()),
        "season_length": pa.array(methods["season_length"].astype("int64").tolist(),
                                  pa.int32()),
        "points": pa.array(info["points"].astype("int64")),
        "filled": pa.array(info["filled"].astype("int64")),
        "first_period": _dated(freq, info["first"]), "last_period": _dated(freq, info["last"]),
        "scale": pa.array([p[0] for p in pairs], pa.float64()),
        "scale_squared": pa.array([p[1] for p in pairs], pa.float64()),
        **{m: pa.array(per[m].astype("float64")) for m in ("mase", "smape", "rmsse",
                                                            "coverage", "scaled_pinball")},
        "notes": pa.array([n or None for n in methods["notes"].tolist()], pa.string()),
    })


def _dated(freq: periods.Frequency, index: pd.Series) -> pa.Array:
    starts = pd.Series(freq.start(index.to_numpy()))
    return pa.array(freq.dated(starts).astype("datetime64[us]"), pa.timestamp("us"))


def _forecasts_table(fit: engine.ForecastFit, freq: periods.Frequency,
                     shape: generated.ForecastShape) -> pa.Table:
    f = fit.forecasts
    values = f[list(shape.columns)].to_numpy(dtype=np.float64)
    k = len(shape.columns)
    return pa.table({
        "series_id": pa.array(f["unique_id"].astype(str).tolist(), pa.string()),
        "step": pa.array(f["step"].astype("int32")),
        "period": pa.array(freq.dated(f["ds"]).astype("datetime64[us]"), pa.timestamp("us")),
        "values": pa.ListArray.from_arrays(pa.array(np.arange(0, (len(f) + 1) * k, k,
                                                              dtype=np.int32)),
                                           pa.array(values.ravel())),
    })


def _backtest_table(fit: engine.ForecastFit, freq: periods.Frequency,
                    shape: generated.ForecastShape) -> pd.DataFrame:
    b = fit.backtest
    long = b.melt(id_vars=["unique_id", "window", "step", "ds", "actual"],
                  value_vars=list(shape.columns), var_name="column", value_name="forecast")
    quantile = dict(zip(shape.columns, shape.quantiles, strict=True))
    return pd.DataFrame({
        "series_id": long["unique_id"].astype(str), "window": long["window"].astype("int32"),
        "step": long["step"].astype("int32"),
        "period": freq.dated(long["ds"]).astype("datetime64[us]"),
        "actual": long["actual"].astype("float64"),
        "quantile": long["column"].map(quantile).astype("float64"),
        "forecast": long["forecast"].astype("float64")})


def _parameters(s: prepare.Settings, cols: prepare.Columns, freq: periods.Frequency,
                fit: engine.ForecastFit, shape: generated.ForecastShape) -> dict:
    return {"settings": s.as_dict(), "frequency": freq.name, "freq_alias": freq.alias,
            "anchor": freq.anchor, "season_length": freq.season_length,
            "selection": fit.selection, "max_horizon": fit.max_horizon,
            "quantiles": list(shape.quantiles), "columns": list(shape.columns),
            "time_type": cols.time_type, "output_type": cols.output_type, "zone": cols.zone,
            "series_types": dict(shape.series_cols)}


def _record(name: str, function: str, query: str, target: str, s: prepare.Settings,
            cols: prepare.Columns, freq: periods.Frequency, pnl: panel.Panel,
            fit: engine.ForecastFit, shape: generated.ForecastShape, chosen: str,
            notes: list[str], started: float) -> dict:
    """The version's catalog row; its artifact is the JSON of what it was trained with."""
    params = _parameters(s, cols, freq, fit, shape)
    blob = json.dumps({"format": FORMAT, "parameters": params, "notes": notes},
                      default=str).encode()
    roles = {c: "series" for c in s.series_cols} | {s.time: "time"} | {
        c: "covariate" for c in s.covariates}
    features = [{"name": c, "type": cols.types[c], "kind": k, "preprocessor": k}
                for c, k in roles.items()]
    excluded = [{"name": c, "reason": "not named in settings (series_cols, time_col, "
                 "covariates)"} for c in cols.types if c not in roles and c != target]
    frame = pnl.frame
    return {
        "name": name, "problem_type": "forecast", "model_type": chosen, "target": target,
        "target_type": cols.target_type, "features": features, "excluded": excluded,
        "classes": None, "positive_class": None, "function_name": function, "threshold": None,
        "threshold_reason": None, "objective": OBJECTIVE,
        "metrics": {k: _finite(v) for k, v in fit.metrics.items()}, "parameters": params,
        "training_rows": len(frame), "validation_rows": len(fit.backtest),
        "training_query": query, "data_fingerprint": training.fingerprint(
            frame[["unique_id", "ds"]], frame["y"].to_numpy()),
        "library_versions": training.library_versions(), "created_at": catalog.now(),
        "training_seconds": time.perf_counter() - started, "artifact_format": FORMAT,
        "artifact_sha256": artifacts.sha256(blob), "artifact": blob,
    }


def macros_for_version(name: str, row: dict) -> list[str]:
    """The generated functions of a stored forecast version, for a rollback or a migration."""
    p = json.loads(row["parameters"])
    shape = generated.ForecastShape(
        series_cols=tuple(p["series_types"].items()), time_col=p["settings"]["time_col"],
        time_type=p["output_type"], quantiles=tuple(p["quantiles"]),
        columns=tuple(p["columns"]), horizon=int(p["max_horizon"]), zone=p.get("zone", "UTC"))
    return generated.forecast_statements(name, row["function_name"], row["version"], shape)
