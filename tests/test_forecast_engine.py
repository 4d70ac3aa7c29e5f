"""The forecasting engine (sqlml.forecast): baselines, rolling-origin backtest, conformal
quantiles per horizon step, AUTO, metrics and errors, against hand-worked references."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import needs_statsforecast

from sqlml.errors import ForecastError
from sqlml.forecast import metrics
from sqlml.forecast.conformal import conformal_quantile
from sqlml.forecast.engine import fit_forecast, quantile_column
from sqlml.forecast.series import Batch, Settings

AIRLINE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "timeseries" / \
    "Airline.csv"


def monthly(values, uid="a", start="2020-01-01"):
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(values),
                                                               freq="MS"),
                         "y": np.asarray(values, dtype=float)})


def synthetic_panel(n_series=40, length=72, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    parts = []
    for i in range(n_series):
        level = rng.uniform(20, 200)
        season = level * rng.uniform(0, 0.3) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6))
        trend = level * rng.uniform(-0.003, 0.01) * t
        y = level + trend + season + rng.normal(0, level * 0.08, length)
        parts.append(monthly(np.maximum(y, 0), uid=f"s{i:03d}"))
    return pd.concat(parts, ignore_index=True)


# -- names and metrics, against hand-worked examples ------------------------------------------
@pytest.mark.parametrize(("q", "name"), [(0.1, "p10"), (0.5, "p50"), (0.9, "p90"),
                                         (0.025, "p2_5"), (0.975, "p97_5"), (0.001, "p0_1")])
def test_quantile_column_names(q, name):
    assert quantile_column(q) == name


def test_scales_are_the_in_sample_seasonal_naive_errors():
    y = np.array([1.0, 2, 3, 5, 4, 6])
    # season 2: differences 3-1, 5-2, 4-3, 6-5 -> |.| = 2, 3, 1, 1
    assert metrics.scales(y, 2) == (7 / 4, (4 + 9 + 1 + 1) / 4)
    # a constant series: mean |y|
    assert metrics.scales(np.full(5, 3.0), 1) == (3.0, 9.0)


def test_series_metrics_by_hand():
    actual = np.array([10.0, 20.0])
    forecast = np.array([[8.0, 11.0, 12.0], [15.0, 18.0, 25.0]])
    out = metrics.series_metrics(np.array([0, 0]), actual, forecast, (0.1, 0.5, 0.9),
                                 np.array([2.0]), np.array([4.0]), ["p10", "p50", "p90"])
    row = out.iloc[0]
    assert row["mase"] == pytest.approx((1 + 2) / 2 / 2)
    assert row["rmsse"] == pytest.approx(np.sqrt((1 + 4) / 2 / 4))
    assert row["smape"] == pytest.approx((200 * 1 / 21 + 200 * 2 / 38) / 2)
    # pinball: q=0.1 -> 0.1*2, 0.1*5; q=0.5 -> 0.5*1 (under: actual 10 < 11), 0.5*2;
    # q=0.9 -> (0.1)*2 (actual under), 0.9*0 ... 20 < 25 -> 0.1*5
    p10, p50, p90 = (0.2 + 0.5) / 2, (0.5 + 1.0) / 2, (0.2 + 0.5) / 2
    assert (row["pinball_p10"], row["pinball_p50"], row["pinball_p90"]) == pytest.approx(
        (p10, p50, p90))
    assert row["scaled_pinball"] == pytest.approx((p10 + p50 + p90) / 3 / 2)
    assert row["coverage"] == 1.0


def test_conformal_quantile_ranks():
    values = np.arange(1.0, 10.0)        # n = 9
    assert conformal_quantile(values, 0.9) == 9.0      # ceil(10 * 0.9) = 9th
    assert conformal_quantile(values, 0.1) == 1.0      # floor(10 * 0.1) = 1st
    assert conformal_quantile(values, 0.5) == 5.0      # ceil(5) = 5th


# -- baselines and the result's shape ---------------------------------------------------------
def test_seasonal_naive_forecast_and_result_shape():
    y = np.tile([1.0, 5.0, 3.0, 7.0], 6) + np.repeat(np.arange(6.0), 4) * 0
    fit = fit_forecast(monthly(y), horizon=6, quantiles=[0.1, 0.5, 0.9], season_length=4,
                       method="seasonal_naive")
    f = fit.forecasts
    assert list(f.columns) == ["unique_id", "ds", "step", "p10", "p50", "p90"]
    assert f["p50"].tolist() == [1.0, 5.0, 3.0, 7.0, 1.0, 5.0]
    assert f["ds"].iloc[0] == pd.Timestamp("2022-01-01")
    assert list(fit.backtest.columns) == ["unique_id", "window", "step", "ds", "actual",
                                          "p10", "p50", "p90"]
    assert fit.max_horizon == 6 and fit.selection == "global"
    assert {t["candidate"] for t in fit.trials} == {"naive", "seasonal_naive", "drift"}
    assert set(fit.metrics) == {"mase", "smape", "rmsse", "coverage", "scaled_pinball",
                                "pinball_p10", "pinball_p50", "pinball_p90"}
    assert fit.methods.loc[0, "season_length"] == 4


def test_drift_and_naive_by_hand():
    y = [1.0, 2.0, 4.0, 4.0, 6.0, 9.0]      # slope (9 - 1) / 5 = 1.6
    drift = fit_forecast(monthly(y), horizon=2, season_length=1, method="drift")
    naive = fit_forecast(monthly(y), horizon=2, season_length=1, method="naive")
    # a one-series backtest's median residual shifts P50; the base forecasts are checked here
    from sqlml.forecast.baselines import drift as drift_fn
    from sqlml.forecast.baselines import naive as naive_fn
    from sqlml.forecast.series import Batch, Settings

    batch = Batch(["a"], [np.array(y)], [np.zeros(6, "datetime64[ns]")], [1], "MS")
    settings = Settings((0.5,), "MS")
    assert drift_fn(batch, 2, settings)[0, :, 0].tolist() == pytest.approx([10.6, 12.2])
    assert naive_fn(batch, 2, settings)[0, :, 0].tolist() == [9.0, 9.0]
    assert drift.forecasts["step"].tolist() == naive.forecasts["step"].tolist() == [1, 2]


@needs_statsforecast
def test_non_negative_history_is_never_forecast_below_zero():
    rng = np.random.default_rng(3)
    y = np.where(rng.random(48) < 0.6, 0.0, rng.poisson(3, 48).astype(float))
    fit = fit_forecast(monthly(y), horizon=12, quantiles=[0.05, 0.5, 0.95], season_length=12,
                       method="theta")
    q = fit.forecasts[["p5", "p50", "p95"]].to_numpy()
    assert (q >= 0).all() and (np.diff(q, axis=1) >= 0).all()
    assert (fit.backtest[["p5", "p50", "p95"]].to_numpy() >= 0).all()
    assert "intermittent" in set(fit.diagnostics["flag"])


def split_last(panel, h):
    cut = panel.groupby("unique_id")["ds"].transform("max") - pd.DateOffset(months=h)
    return panel[panel["ds"] <= cut], panel[panel["ds"] > cut]


@pytest.fixture(scope="module")
def held_out():
    """A 40-series panel, its last 12 months held out, fitted by Theta (statsforecast's
    AutoTheta): the calibration is the same for every method."""
    train, test = split_last(synthetic_panel(), 12)
    fit = fit_forecast(train, horizon=12, quantiles=[0.1, 0.5, 0.9], season_length=12,
                       method="theta")
    return train, test, fit


@needs_statsforecast
def test_coverage_holds_on_a_held_out_synthetic_panel(held_out):
    _, test, fit = held_out
    joined = test.merge(fit.forecasts, on=["unique_id", "ds"])
    assert len(joined) == len(test) == len(fit.forecasts)
    inside = (joined["p10"] <= joined["y"]) & (joined["y"] <= joined["p90"])
    assert 0.70 <= inside.mean() <= 0.90
    # the backtest's own coverage (each window calibrated on the others) is a held-out figure
    assert 0.70 <= fit.metrics["coverage"] <= 0.90
    assert {t["candidate"] for t in fit.trials} == {"naive", "seasonal_naive", "drift", "theta"}
    assert set(fit.methods["method"]) == {"theta"}


@needs_statsforecast
def test_backtest_is_rolling_origin_over_the_last_windows(held_out):
    train, _, fit = held_out
    bt = fit.backtest
    # 40 series: ceil(100 / 40) = 3 windows, one horizon (12) apart, ending at the last point
    assert sorted(bt["window"].unique()) == [1, 2, 3]
    last = bt[bt["window"] == 3].groupby("unique_id")["ds"].max()
    assert (last == train.groupby("unique_id")["ds"].max()).all()
    one = bt[bt["unique_id"] == "s000"].merge(train, on=["unique_id", "ds"])
    assert (one["actual"] == one["y"]).all() and len(one) == 36


@needs_statsforecast
def test_racing_goes_on_only_past_the_leader_and_joins_to_the_whole_backtest(held_out,
                                                                            monkeypatch):
    """AUTO races a statistical candidate on a probe of the series against the best so far;
    a candidate that goes on scores as if it had never been raced (the same backtest rows)."""
    from sqlml.forecast import backtest, engine, select
    from sqlml.forecast.baselines import BASELINES
    from sqlml.forecast.statistical import STATISTICAL

    train, _, theta_fit = held_out
    monkeypatch.setattr(engine, "extra_methods",
                        lambda: {n: STATISTICAL[n] for n in ("theta", "theta_log")})
    fit = fit_forecast(train, horizon=12, quantiles=[0.1, 0.5, 0.9], season_length=12)
    raced = {t["candidate"]: t for t in fit.trials if "race" in t["params"]}
    assert set(raced) == {"theta", "theta_log"}
    for t in raced.values():
        race = t["params"]["race"]
        assert race["probe_series"] == select.PROBE_MIN
        behind = race["probe_score"] >= race["leader_probe_score"]
        assert (t["status"] == "dropped_behind") == behind
        assert (t["score"] is None) == behind
    theta_score = next(t["score"] for t in theta_fit.trials if t["candidate"] == "theta")
    if raced["theta"]["score"] is not None:
        assert raced["theta"]["score"] == pytest.approx(theta_score, rel=1e-12)
    # the probe's backtest joined to the rest's is the whole backtest, row for row
    run = engine._prepare(train, 12, (0.1, 0.5, 0.9), "MS", 12, [], 0, ["p10", "p50", "p90"],
                          lambda _: None)
    the_plan = backtest.plan([len(y) for y in run.batch.ys], 12, run.batch.seasons)
    method = BASELINES["seasonal_naive"]
    whole = backtest.run(method, run.batch, the_plan, 12, run.settings)
    probe = select.probe_rows(len(run.batch))
    rest = np.setdiff1d(np.arange(len(run.batch)), probe)
    joined = backtest.run(method, run.batch, backtest.only(the_plan, probe), 12,
                          run.settings).join(backtest.run(method, run.batch,
                                                          backtest.only(the_plan, rest), 12,
                                                          run.settings))
    for name in ("sid", "window", "step", "index", "actual", "base"):
        assert np.array_equal(getattr(whole, name), getattr(joined, name))


@needs_statsforecast
def test_statsforecast_called_directly_gives_our_point_forecast():
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    from sqlml.forecast.statistical import STATISTICAL

    panel = synthetic_panel(n_series=1, length=60, seed=5)
    direct = StatsForecast(models=[AutoETS(season_length=12)], freq="MS", n_jobs=1).forecast(
        df=panel, h=6)
    y = panel["y"].to_numpy()
    batch = Batch(["s000"], [y], [panel["ds"].to_numpy()], [12], "MS")
    ours = STATISTICAL["ets"].run(batch, 6, Settings((0.5,), "MS"))[0, :, 0]
    np.testing.assert_allclose(ours, direct["AutoETS"].to_numpy(), rtol=1e-9)


def test_global_gbm_uses_known_future_covariates(monkeypatch):
    """A promotion adds 40 to sales in the months it runs: with the promotion calendar as a
    covariate, the global model forecasts those months higher, by about the effect."""
    from sqlml.forecast import gbm

    monkeypatch.setattr(gbm, "MAX_ITER", 40)     # 6 windows x 3 quantiles: keep each fit short
    rng = np.random.default_rng(1)
    parts, future = [], []
    for i in range(24):
        promo = (rng.random(60) < 0.25).astype(float)
        y = 100 + 10 * np.sin(np.arange(60) * np.pi / 6) + 40 * promo + rng.normal(0, 3, 60)
        part = monthly(y, uid=f"s{i:02d}").assign(promo=promo)
        parts.append(part.iloc[:54])
        future.append(part.iloc[54:][["unique_id", "ds", "promo"]])
    panel, fut = pd.concat(parts), pd.concat(future)
    fit = fit_forecast(panel, horizon=6, quantiles=[0.1, 0.5, 0.9], season_length=12,
                       method="gbm", future=fut)
    joined = fit.forecasts.merge(fut, on=["unique_id", "ds"])
    lift = joined.groupby("promo")["p50"].mean()
    assert 25 < lift[1.0] - lift[0.0] < 55
    assert set(fit.methods["method"]) == {"gbm"}
    assert fit.trials[-1]["params"]["strategy"] == "direct"
    q = fit.forecasts[["p10", "p50", "p90"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()


@needs_statsforecast
def test_max_runtime_falls_back_to_the_baselines_and_records_every_candidate():
    fit = fit_forecast(synthetic_panel(n_series=3, length=40), horizon=6, season_length=12,
                       max_runtime=1e-6)
    status = {t["candidate"]: t["status"] for t in fit.trials}
    assert set(status) == {"naive", "seasonal_naive", "drift", "theta", "theta_log", "ets",
                           "ets_log", "arima"}     # 3 series: too few for the global model
    assert {status[c] for c in ("theta", "ets", "arima")} == {"skipped_max_runtime"}
    assert fit.methods["method"].iloc[0] in {"naive", "seasonal_naive", "drift"}
    assert "chosen" in {status[c] for c in ("naive", "seasonal_naive", "drift")}


@needs_statsforecast
def test_a_candidate_that_runs_out_of_max_runtime_stops_between_series():
    import time

    from sqlml.forecast import backtest, select
    from sqlml.forecast.statistical import STATISTICAL

    ys = [np.arange(30.0) + i for i in range(3)]
    batch = Batch(["a", "b", "c"], ys, [np.zeros(30, "datetime64[ns]")] * 3, [1] * 3, "MS")
    plan = backtest.plan([30] * 3, 3, [1] * 3)
    late = Settings((0.1, 0.5, 0.9), "MS", deadline=time.monotonic() - 1)
    out = select.evaluate(STATISTICAL["ets"], batch, plan, 3, late, np.ones(3),
                          lambda sid, q: q)
    assert out.status == "stopped_max_runtime"
    assert out.trial("naive")["score"] is None


def test_past_max_runtime_the_best_candidate_whose_final_forecast_fits_is_used():
    import time

    from sqlml.forecast import engine, select
    from sqlml.forecast.gbm import GBM
    from sqlml.forecast.statistical import STATISTICAL

    outcomes = [select.Outcome(select.BASELINES["naive"], score=0.5),
                select.Outcome(GBM, score=0.2, seconds=100.0),            # refits: 100 s
                select.Outcome(STATISTICAL["ets"], score=0.3, seconds=100.0)]  # runs forward
    notes: list[str] = []
    chosen = engine._choose(select.Comparison(outcomes), "auto", notes, time.monotonic() + 5, 1)
    assert chosen.method.name == "ets"
    assert notes == ["max_runtime left no time to refit gbm; ets was used instead"]
    roomy = engine._choose(select.Comparison(outcomes), "auto", [], time.monotonic() + 500, 1)
    assert roomy.method.name == "gbm"


def test_short_series_and_flat_forecasts_are_diagnosed():
    seasonal = 50 + 10 * np.sin(np.arange(40) * np.pi / 6) + np.arange(40) % 3
    panel = pd.concat([monthly(np.arange(8.0) + 1, "short"), monthly(np.full(30, 4.0), "flat"),
                       monthly(seasonal, "s000")])
    fit = fit_forecast(panel, horizon=4, season_length=12, method="seasonal_naive")
    flags = set(zip(fit.diagnostics["unique_id"], fit.diagnostics["flag"], strict=True))
    assert ("short", "too_short_for_seasonality") in flags
    assert ("flat", "flat_forecast") in flags
    seasons = dict(zip(fit.methods["unique_id"], fit.methods["season_length"], strict=True))
    assert seasons == {"short": 1, "flat": 1, "s000": 12}
    assert any("'short' has 8 points: too short for seasonality" in n for n in fit.notes)


@pytest.mark.slow
@needs_statsforecast
def test_airline_auto_beats_seasonal_naive_on_the_last_24_months():
    if not AIRLINE.exists():
        pytest.skip(f"{AIRLINE} is absent (../shared/data)")
    from statsforecast.models import SeasonalNaive

    df = pd.read_csv(AIRLINE)
    panel = monthly(df["Passengers"].to_numpy(), uid="airline", start="1949-01-01")
    train, test = panel.iloc[:-24], panel.iloc[-24:]
    y, actual = train["y"].to_numpy(), test["y"].to_numpy()
    scale = np.mean(np.abs(y[12:] - y[:-12]))

    def scaled_pinball(p10, p50, p90):
        return np.mean([metrics.pinball(actual, p, q).mean()
                        for p, q in ((p10, 0.1), (p50, 0.5), (p90, 0.9))]) / scale

    # seasonal naive as statsforecast computes it, with its 80% interval as P10..P90
    ref = SeasonalNaive(season_length=12).forecast(y=y, h=24, level=[80])
    naive_loss = scaled_pinball(ref["lo-80"], ref["mean"], ref["hi-80"])
    fit = fit_forecast(train, horizon=24, quantiles=[0.1, 0.5, 0.9], season_length=12)
    f = fit.forecasts
    auto_loss = scaled_pinball(f["p10"].to_numpy(), f["p50"].to_numpy(), f["p90"].to_numpy())
    assert auto_loss < naive_loss
    inside = np.mean((f["p10"].to_numpy() <= actual) & (actual <= f["p90"].to_numpy()))
    assert 0.6 <= inside <= 1.0


# -- errors ----------------------------------------------------------------------------------
def test_too_few_points_names_the_series():
    panel = pd.concat([monthly(range(20), "long"), monthly([1, 2, 3], "tiny")])
    with pytest.raises(ForecastError, match=r"series 'tiny' \(3 points\) have fewer than 5 "
                                            r"points, the minimum per series"):
        fit_forecast(panel, horizon=3)


@pytest.mark.parametrize(("quantiles", "words"), [
    ([0.1, 1.0], "each quantile must be a number strictly between 0 and 1, got 1.0"),
    ([0.0, 0.5], "each quantile must be a number strictly between 0 and 1, got 0.0"),
    ([0.9, 0.1], "quantiles must be sorted and distinct, got [0.9, 0.1]"),
    ([0.5, 0.5], "quantiles must be sorted and distinct, got [0.5, 0.5]"),
    ([], "quantiles must be a non-empty list of numbers in (0, 1), got []"),
])
def test_invalid_quantiles_are_refused(quantiles, words):
    with pytest.raises(ForecastError) as info:
        fit_forecast(monthly(range(30)), horizon=3, quantiles=quantiles)
    assert words in str(info.value)


@pytest.mark.parametrize("horizon", [0, -2, 1.5, True])
def test_horizon_below_one_is_refused(horizon):
    with pytest.raises(ForecastError, match=r"horizon must be a whole number of periods >= 1, "
                                            rf"got {horizon!r}\. Pass the number of periods"):
        fit_forecast(monthly(range(30)), horizon=horizon)


def test_unknown_method_suggests_the_closest():
    with pytest.raises(ForecastError, match=r"method must be one of auto, .*got 'seasonal'.*"
                                            r"Did you mean 'seasonal_naive'\?"):
        fit_forecast(monthly(range(30)), method="seasonal")


def test_missing_future_covariates_are_refused_with_the_period():
    panel = monthly(range(24)).assign(price=1.0)
    future = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2022-01-01", periods=2,
                                                                 freq="MS"), "price": 2.0})
    with pytest.raises(ForecastError, match=r"future covariate values are missing for series "
                                            r"'a' at 2022-03-01 \(column 'price'\); pass a "
                                            r"value for every period of the horizon "
                                            r"\(2022-01-01 to 2022-03-01\)"):
        fit_forecast(panel, horizon=3, method="naive", future=future)
    with pytest.raises(ForecastError, match=r"the panel has covariates \(price\) but no future "
                                            r"values were passed"):
        fit_forecast(panel, horizon=3, method="naive")


def test_a_null_target_names_the_series():
    panel = pd.concat([monthly(range(10), "ok"), monthly([1.0, np.nan, 3, 4, 5, 6], "gap")])
    with pytest.raises(ForecastError, match=r"series 'gap' has a NULL or non-numeric target "
                                            r"value; fill or drop the missing values"):
        fit_forecast(panel, horizon=2)


# -- without the 'forecast' extra (statsforecast) ----------------------------------------------
def test_without_statsforecast_auto_records_ets_arima_theta_as_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsforecast", None)     # as if not installed
    panel = synthetic_panel(n_series=3, length=40)
    fit = fit_forecast(panel, horizon=6, season_length=12)
    status = {t["candidate"]: t["status"] for t in fit.trials}
    assert {status[c] for c in ("theta", "theta_log", "ets", "ets_log", "arima")} == {
        "skipped_missing_dependency"}
    assert "chosen" in {status[c] for c in ("naive", "seasonal_naive", "drift")}
    assert any(n.startswith("ETS, ARIMA and Theta were not tried: the statsforecast package "
                            "is not installed (pip install 'sqlml[forecast]' adds them)")
               for n in fit.notes)
    # the baselines' forecasts are those of the baseline asked for by name
    chosen = next(t["candidate"] for t in fit.trials if t["status"] == "chosen")
    alone = fit_forecast(panel, horizon=6, season_length=12, method=chosen)
    np.testing.assert_allclose(fit.forecasts["p50"], alone.forecasts["p50"])


@pytest.mark.parametrize(("method", "model"), [("ets", "AutoETS"), ("arima", "AutoARIMA"),
                                               ("theta", "AutoTheta")])
def test_without_statsforecast_a_statistical_method_is_refused(monkeypatch, method, model):
    from sqlml.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "statsforecast", None)
    with pytest.raises(MissingDependencyError) as info:
        fit_forecast(synthetic_panel(n_series=2, length=30), horizon=3, method=method)
    assert str(info.value) == (
        f"forecast: method '{method}' ({model}) needs the statsforecast package, which is not "
        f"installed. Install sqlml's forecast extra: pip install 'sqlml[forecast]', or pick a "
        f"method without it: auto, naive, seasonal_naive, drift or gbm.")
