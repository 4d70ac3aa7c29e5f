"""The forecasting engine (sqlml.forecast): baselines, rolling-origin backtest, conformal
quantiles per horizon step, AUTO, metrics and errors, against hand-worked references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sqlml.errors import ForecastError
from sqlml.forecast import metrics
from sqlml.forecast.conformal import conformal_quantile
from sqlml.forecast.engine import fit_forecast, quantile_column


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


def test_non_negative_history_is_never_forecast_below_zero():
    rng = np.random.default_rng(3)
    y = np.where(rng.random(48) < 0.6, 0.0, rng.poisson(3, 48).astype(float))
    fit = fit_forecast(monthly(y), horizon=12, quantiles=[0.05, 0.5, 0.95], season_length=12)
    q = fit.forecasts[["p5", "p50", "p95"]].to_numpy()
    assert (q >= 0).all() and (np.diff(q, axis=1) >= 0).all()
    assert (fit.backtest[["p5", "p50", "p95"]].to_numpy() >= 0).all()
    assert "intermittent" in set(fit.diagnostics["flag"])


def test_coverage_holds_on_a_held_out_synthetic_panel():
    panel = synthetic_panel()
    h = 12
    last = panel.groupby("unique_id")["ds"].transform("max")
    cut = last - pd.DateOffset(months=h)
    train, test = panel[panel["ds"] <= cut], panel[panel["ds"] > cut]
    fit = fit_forecast(train, horizon=h, quantiles=[0.1, 0.5, 0.9], season_length=12,
                       method="auto")
    joined = test.merge(fit.forecasts, on=["unique_id", "ds"])
    assert len(joined) == len(test)
    inside = (joined["p10"] <= joined["y"]) & (joined["y"] <= joined["p90"])
    assert 0.70 <= inside.mean() <= 0.90


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
