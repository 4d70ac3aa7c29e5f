"""fit_forecast: a regular panel in, quantile forecasts, their backtest and metrics out.

A fit runs: the checks (sqlml.forecast.checks); the panel as arrays, each series with the season
length asked for (1 where it has fewer than two seasons); the rolling-origin backtest of every
candidate (backtest.plan: the same windows for all), each calibrated by conformal prediction
from its own residuals (conformal); AUTO's choice by scaled pinball loss (select); the final
forecast of the chosen method from every point, calibrated by all its backtest residuals,
sorted per row and clipped at 0 for a non-negative history; then the metrics of the backtest
and the per-series diagnostics. The result holds only DataFrames, lists, dicts and scalars,
which the SQL side stores as tables, never pickled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sqlml.errors import ForecastError
from sqlml.forecast import backtest, checks, conformal, diagnostics, select, statistical
from sqlml.forecast.metrics import global_metrics, scales, series_metrics
from sqlml.forecast.series import Batch, Method, Settings


@dataclass
class ForecastFit:
    forecasts: pd.DataFrame      # unique_id, ds, step, then one column per quantile
    backtest: pd.DataFrame       # unique_id, window, step, ds, actual, then the quantiles
    metrics: dict[str, float]
    series_metrics: pd.DataFrame
    methods: pd.DataFrame        # unique_id, method, season_length, notes
    trials: list[dict[str, Any]]
    notes: list[str]
    diagnostics: pd.DataFrame    # unique_id, flag, detail
    selection: str               # "global": AUTO chose one method for the panel
    max_horizon: int
    quantiles: list[float] = field(default_factory=list)


def quantile_column(q: float) -> str:
    """The column of quantile q: 0.1 -> p10, 0.5 -> p50, 0.025 -> p2_5."""
    text = f"{round(float(q) * 100, 8):.8f}".rstrip("0").rstrip(".")
    return "p" + text.replace(".", "_")


def extra_methods() -> dict[str, Method]:
    """The models beyond the baselines, cheapest first (AUTO's order when time is short)."""
    from sqlml.forecast.gbm import GBM
    from sqlml.forecast.statistical import STATISTICAL, available

    order = ("theta", "theta_log", "ets", "ets_log", "gbm", "arima") if available() else ("gbm",)
    return {name: GBM if name == "gbm" else STATISTICAL[name] for name in order}


@dataclass
class _Run:
    """What the stages of one fit share."""

    batch: Batch
    horizon: int
    settings: Settings
    columns: list[str]
    scale: np.ndarray
    scale_sq: np.ndarray
    nonneg: np.ndarray
    notes: list[str]
    progress: Callable[[str], None]
    season_length: int

    def finish(self, sid: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Monotone quantiles (sorted per row), clipped at 0 for a non-negative history."""
        q = np.sort(q, axis=1)
        return np.where(self.nonneg[sid][:, None], np.maximum(q, 0.0), q)


def fit_forecast(panel: pd.DataFrame, horizon: int = 12,
                 quantiles: Sequence[float] = (0.1, 0.5, 0.9), freq: str = "MS",
                 season_length: int = 12, method: str = "auto",
                 max_runtime: float | None = None, future: pd.DataFrame | None = None,
                 seed: int = 0, on_progress: Callable[[str], None] | None = None) -> ForecastFit:
    """Backtest the candidates, choose, calibrate and forecast (the module docstring says how).

    ``panel`` is regular: unique_id, ds, y, then covariate columns, one row per series and
    period. ``future`` holds the covariates' values over the horizon (unique_id, ds, ...).
    Raises ForecastError for an argument or a series that cannot be forecast."""
    started = time.monotonic()
    horizon = checks.check_horizon(horizon)
    qs = checks.check_quantiles(quantiles)
    checks.check_method(method, season_length, max_runtime)
    columns = [quantile_column(q) for q in qs]
    if len(set(columns)) < len(columns):
        raise ForecastError(f"forecast: quantiles {list(qs)!r} name the same column twice "
                            f"({', '.join(columns)}); pass quantiles that differ by 1e-10.")
    covariates = checks.check_panel(panel)
    run = _prepare(panel, horizon, qs, freq, int(season_length), covariates, seed, columns,
                   on_progress or (lambda _: None))
    run.batch.x_future = _future(future, covariates, run.batch, horizon)
    the_plan = backtest.plan([len(y) for y in run.batch.ys], horizon, run.batch.seasons)
    deadline = None if max_runtime is None else started + float(max_runtime)
    cands = select.candidates(method, len(run.batch), extra_methods())
    comparison = select.compare(cands, run.batch, the_plan, horizon, run.settings, run.scale,
                                run.finish, deadline, run.progress, race=method == "auto")
    skipped, note = statistical.unavailable(method)     # AUTO without statsforecast
    comparison.outcomes += [select.Outcome(m, status=statistical.SKIPPED) for m in skipped]
    run.notes[:0] = note
    chosen = _choose(comparison, method, run.notes, deadline, the_plan.windows)
    return _result(run, comparison, chosen, the_plan)


def _prepare(panel: pd.DataFrame, horizon: int, qs: tuple[float, ...], freq: str,
             season_length: int, covariates: list[str], seed: int, columns: list[str],
             progress: Callable[[str], None]) -> _Run:
    frame = panel.assign(unique_id=panel["unique_id"].astype(str),
                         ds=pd.to_datetime(panel["ds"])).sort_values(["unique_id", "ds"],
                                                                     kind="stable")
    uids, starts = np.unique(frame["unique_id"].to_numpy(dtype=object), return_index=True)
    cuts = starts[1:]
    ids = [str(u) for u in uids]
    ys = np.split(frame["y"].to_numpy(dtype=np.float64), cuts)
    ds = np.split(frame["ds"].to_numpy(dtype="datetime64[ns]"), cuts)
    xs = np.split(frame[covariates].to_numpy(dtype=np.float64), cuts) if covariates else []
    seasons = [season_length if len(y) >= 2 * season_length else 1 for y in ys]
    notes = [f"series {uid!r} has {len(y)} points: too short for seasonality "
             f"({season_length}); seasonal models fitted without it"
             for uid, y in zip(ids, ys, strict=True)
             if season_length > 1 and len(y) < 2 * season_length]
    batch = Batch(ids, ys, ds, seasons, freq, xs if covariates else None, None,
                  tuple(covariates))
    pairs = [scales(y, season_length) for y in ys]
    return _Run(batch, horizon, Settings(qs, freq, seed), columns,
                np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]),
                np.array([bool(np.all(y >= 0)) for y in ys]), notes, progress, season_length)


def _future(future: pd.DataFrame | None, covariates: list[str], batch: Batch,
            horizon: int) -> list[np.ndarray] | None:
    values = checks.check_future(future, covariates, batch.ids, batch.future(horizon))
    return None if values is None else list(values)


def _choose(comparison: select.Comparison, method: str, notes: list[str],
            deadline: float | None, windows: int) -> select.Outcome:
    """AUTO's pick, or the method asked for; the best baseline where it failed. Past
    max_runtime, the best candidate whose final forecast still fits: a baseline or a model run
    forward from its backtest models takes no time to speak of; another needs one window's
    share of its backtest time."""
    baselines = list(select.BASELINES)
    names = select.variants(method)
    asked = [o for o in comparison.outcomes if o.method.name in names]
    if method == "auto":
        best = comparison.best()
    elif any(o in comparison.ok() for o in asked):
        best = comparison.best(names)
    else:
        best = comparison.best(baselines)
        if asked:
            notes.append(f"method {method!r} {asked[0].status} ({asked[0].error or 'no time'}); "
                         f"{best.method.name} was used instead")
    if deadline is None:
        return best
    left = deadline - time.monotonic()

    def fits(o: select.Outcome) -> bool:
        return (o.method.family == "baseline" or o.method.forward is not None
                or o.seconds / windows <= left)

    if not fits(best):
        allowed = None if method == "auto" else [*baselines, *names]
        fallback = comparison.best([o.method.name for o in comparison.ok() if fits(o)
                                    and (allowed is None or o.method.name in allowed)])
        notes.append(f"max_runtime left no time to refit {best.method.name}; "
                     f"{fallback.method.name} was used instead")
        best = fallback
    return best


def _final(run: _Run, chosen: select.Outcome) -> np.ndarray:
    """(series, horizon, quantiles): the chosen method refitted on every point, calibrated by
    the offsets of all its backtest rows."""
    assert chosen.runs is not None
    run.progress(f"final fit of {chosen.method.name}")
    base = backtest.final_forecast(chosen.method, chosen.runs, run.batch, run.horizon,
                                   run.settings)
    base = conformal.base_columns(base, len(run.settings.quantiles))
    level = conformal.norms(chosen.runs, run.scale)
    res = conformal.scaled_residuals(chosen.runs, level, len(run.settings.quantiles))
    off = conformal.offsets(res, chosen.runs.step, run.horizon, run.settings.quantiles)
    q = base + off[None, :, :] * level[:, None, None]
    n, h, k = q.shape
    sid = np.repeat(np.arange(n), h)
    return run.finish(sid, q.reshape(n * h, k)).reshape(n, h, k)


def _result(run: _Run, comparison: select.Comparison, chosen: select.Outcome,
            the_plan: backtest.Plan) -> ForecastFit:
    batch, h = run.batch, run.horizon
    q = _final(run, chosen)
    dates = batch.future(h)
    forecasts = pd.DataFrame({
        "unique_id": np.repeat(batch.ids, h),
        "ds": np.concatenate([d.to_numpy(dtype="datetime64[ns]") for d in dates]),
        "step": np.tile(np.arange(1, h + 1), len(batch)),
        **{c: q[:, :, j].ravel() for j, c in enumerate(run.columns)}})
    runs = chosen.runs
    assert runs is not None and chosen.quantiles is not None
    ids = np.array(batch.ids, dtype=object)
    starts = np.concatenate([[0], np.cumsum([len(d) for d in batch.ds])[:-1]])
    bt = pd.DataFrame({
        "unique_id": ids[runs.sid], "window": runs.window, "step": runs.step,
        "ds": np.concatenate(batch.ds).astype("datetime64[ns]")[starts[runs.sid] + runs.index],
        "actual": runs.actual,
        **{c: chosen.quantiles[:, j] for j, c in enumerate(run.columns)}})
    per = series_metrics(runs.sid, runs.actual, chosen.quantiles, run.settings.quantiles,
                         run.scale, run.scale_sq, run.columns)
    metrics = global_metrics(per)
    per.insert(0, "unique_id", ids[per.pop("sid").to_numpy()])
    methods, flags = _per_series(run, chosen, q)
    notes = [*run.notes, f"backtest: {the_plan.windows} window(s) {the_plan.spacing} period(s) "
             f"apart; method used: {chosen.method.name} (one choice for the panel, by scaled "
             f"pinball loss)"]
    return ForecastFit(
        forecasts=forecasts, backtest=bt, metrics=metrics, series_metrics=per,
        methods=methods, trials=[o.trial(chosen.method.name) for o in comparison.outcomes],
        notes=notes, diagnostics=diagnostics.frame(flags), selection="global", max_horizon=h,
        quantiles=list(run.settings.quantiles))


def _per_series(run: _Run, chosen: select.Outcome,
                q: np.ndarray) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    batch, name = run.batch, chosen.method.name
    mid = int(np.argmin([abs(p - 0.5) for p in run.settings.quantiles]))
    rows, flags = [], []
    for i, (uid, y) in enumerate(zip(batch.ids, batch.ys, strict=True)):
        used = name if len(y) >= chosen.method.min_points else "seasonal_naive"
        note = "" if used == name else (f"{len(y)} points, fewer than {name} needs "
                                        f"({chosen.method.min_points})")
        found = diagnostics.seasonality_found(y, run.season_length)
        if found == 1 and batch.seasons[i] > 1:
            note = "; ".join(filter(None, [note, f"no seasonality of {run.season_length} found "
                                                 f"(the models test it themselves)"]))
        rows.append((uid, used, found, note))
        flags += diagnostics.series_flags(uid, y, run.season_length, q[i, :, mid], used)
    methods = pd.DataFrame(rows, columns=["unique_id", "method", "season_length", "notes"])
    return methods, flags
