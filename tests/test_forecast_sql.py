"""Forecast models from SQL: training, the stored forecasts and their generated functions,
ml_backtest and the forecast metrics, explain/diagnose/trials, the Redshift grammar, and every
bad input the issue lists, each with its message.

References are independent of the SQL side: the engine called directly on a panel built here by
hand (sqlml.forecast.engine.fit_forecast), numpy formulas for the metrics, and a plain DuckDB
(the duckdb CLI and a Python connection without sqlml) reading the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import clients
import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

import sqlml
from sqlml.errors import ForecastError, TrainingError
from sqlml.forecast.engine import fit_forecast

HORIZON = 12
SALES = """CREATE TABLE sales AS
    SELECT store, dept, (DATE '2021-01-01' + INTERVAL (m) MONTH)::DATE AS month,
           round(100 + 10 * store + 5 * dept + 0.8 * m + 15 * sin(2 * pi() * m / 12)
                 + (m * 7919 + store * 31 + dept * 17) % 13, 1) AS sales
    FROM range(1, 4) s(store), range(1, 3) d(dept), range(48) t(m)"""
SETTINGS = ("{time_col: 'month', series_cols: ['store', 'dept'], horizon: 12, "
            "quantiles: [0.1, 0.5, 0.9], method: 'seasonal_naive'}")


def train(con, name="retail", source="SELECT store, dept, month, sales FROM sales",
          target="sales", settings=SETTINGS, function="forecast_sales"):
    return con.execute(
        f"SELECT s.* FROM (SELECT ml_create_model('{name}', $${source}$$, target := '{target}', "
        f"problem_type := 'forecast', function := '{function}', settings := {settings}) AS s)"
    ).df().iloc[0]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("forecast") / "shop.duckdb"
    con = sqlml.connect(path)
    con.execute(SALES)
    summary = train(con)
    yield con, path, summary
    con.close()


@pytest.fixture(scope="module")
def reference(shop):
    """The engine on the same rows, the panel built here from the table."""
    con, _, _ = shop
    rows = con.execute("SELECT store, dept, month, sales FROM sales").df()
    panel = pd.DataFrame({"unique_id": "store=" + rows["store"].astype(str) + ", dept="
                          + rows["dept"].astype(str), "ds": pd.to_datetime(rows["month"]),
                          "y": rows["sales"].astype(float)}).sort_values(["unique_id", "ds"])
    return fit_forecast(panel.reset_index(drop=True), horizon=HORIZON,
                        quantiles=[0.1, 0.5, 0.9], freq="MS", season_length=12,
                        method="seasonal_naive", max_runtime=300.0, seed=42)


def test_the_summary_names_the_forecast_and_its_score(shop, reference):
    _, _, s = shop
    assert (s["problem_type"], s["model_type"], s["function"]) == (
        "forecast", "seasonal_naive", "forecast_sales")
    assert s["objective"] == "scaled_pinball"
    assert s["validation_score"] == pytest.approx(reference.metrics["scaled_pinball"])
    assert s["training_rows"] == 6 * 48


def test_forecasts_equal_the_engine_called_directly(shop, reference):
    con, _, _ = shop
    got = con.execute("SELECT 'store=' || store || ', dept=' || dept AS unique_id, month, step, "
                      "p10, p50, p90 FROM forecast_sales()").df()
    want = reference.forecasts.sort_values(["unique_id", "step"]).reset_index(drop=True)
    assert len(got) == 6 * HORIZON == len(want)
    assert list(got["unique_id"]) == list(want["unique_id"])
    assert list(pd.to_datetime(got["month"])) == list(want["ds"])
    for col in ("p10", "p50", "p90"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-12)
    assert (got["p10"] <= got["p50"]).all() and (got["p50"] <= got["p90"]).all()


def test_columns_keep_their_names_and_types(shop):
    con, _, _ = shop
    described = con.execute("DESCRIBE FROM forecast_sales()").fetchall()
    assert [(r[0], r[1]) for r in described] == [
        ("store", "BIGINT"), ("dept", "BIGINT"), ("month", "DATE"), ("step", "INTEGER"),
        ("p10", "DOUBLE"), ("p50", "DOUBLE"), ("p90", "DOUBLE")]


def test_horizon_where_and_row_counts(shop):
    con, _, _ = shop
    count = "SELECT count(*) FROM forecast_sales({}) {}"
    assert con.execute(count.format("", "")).fetchall()[0][0] == 6 * HORIZON
    assert con.execute(count.format("horizon := 6", "")).fetchall()[0][0] == 6 * 6
    assert con.execute(count.format("horizon := 6", "WHERE store = 2 AND dept = 1")
                       ).fetchall()[0][0] == 6
    assert con.execute("SELECT max(step), min(month) FROM forecast_sales(horizon := 3) "
                       "WHERE store = 1").fetchall()[0] == (3, pd.Timestamp("2025-01-01").date())


def test_a_longer_horizon_is_refused_naming_the_stored_maximum(shop):
    con, _, _ = shop
    with pytest.raises(duckdb.Error) as info:
        con.execute("FROM forecast_sales(horizon := 24)").fetchall()
    assert ("forecast_sales: horizon 24 is longer than the 12 periods model 'retail' stored at "
            "training (its maximum). Pass horizon := 12 or less") in str(info.value)
    with pytest.raises(duckdb.Error, match="horizon must be a positive whole number"):
        con.execute("FROM forecast_sales(horizon := 0)").fetchall()


PLAIN = """import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
names = {r[0] for r in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()}
rows = con.execute("FROM forecast_sales() WHERE store = 3").fetchall()
n = con.execute("SELECT count(*) FROM ml_backtest('retail')").fetchall()[0][0]
print(json.dumps({"udf": "__sqlml_instance" in names, "rows": rows, "backtest": n}, default=str))
"""


def test_plain_duckdb_reads_the_forecasts_without_sqlml(shop, tmp_path):
    con, path, _ = shop
    want = con.execute("FROM forecast_sales() WHERE store = 3").fetchall()
    con.execute("CHECKPOINT")
    copy = tmp_path / "copy.duckdb"   # the fixture's connection holds the file's write lock
    shutil.copyfile(path, copy)
    done = subprocess.run([sys.executable, "-c", PLAIN, str(copy)], capture_output=True,
                          text=True, check=True, timeout=120)
    plain = json.loads(done.stdout)
    assert plain["udf"] is False and plain["backtest"] > 0
    assert [(r[0], r[1], r[3]) for r in plain["rows"]] == [(w[0], w[1], w[3]) for w in want]
    assert [r[5] for r in plain["rows"]] == pytest.approx([w[5] for w in want], rel=1e-12)
    got = clients.cli_json(copy, "SELECT store, dept, month, step, p50 FROM "
                                 "forecast_sales(horizon := 2) WHERE store = 3 ORDER BY dept, step")
    assert isinstance(got, list), got
    assert [(r["store"], r["dept"], r["step"]) for r in got] == [(3, 1, 1), (3, 1, 2),
                                                               (3, 2, 1), (3, 2, 2)]
    assert [r["p50"] for r in got] == pytest.approx([w[5] for w in want if w[3] <= 2])


def test_ml_backtest_is_the_engines_backtest(shop, reference):
    con, _, _ = shop
    got = con.execute("SELECT series, \"window\", step, period, actual, quantile, forecast "
                      "FROM ml_backtest('retail')").df()
    b = reference.backtest
    want = b.melt(id_vars=["unique_id", "window", "step", "ds", "actual"],
                  value_vars=["p10", "p50", "p90"], var_name="q", value_name="forecast")
    want["quantile"] = want["q"].map({"p10": 0.1, "p50": 0.5, "p90": 0.9})
    want = want.sort_values(["unique_id", "window", "step", "quantile"]).reset_index(drop=True)
    assert len(got) == len(want)
    assert list(got["series"]) == list(want["unique_id"])
    np.testing.assert_allclose(got["forecast"], want["forecast"], rtol=1e-12)
    np.testing.assert_allclose(got["actual"], want["actual"], rtol=1e-12)
    wide = con.execute("SELECT count(*), count(DISTINCT store) FROM forecast_sales_backtest()"
                       ).fetchall()[0]
    assert wide == (len(b), 3)


def _scale(y: np.ndarray, m: int = 12) -> tuple[float, float]:
    d = y[m:] - y[:-m]
    return float(np.mean(np.abs(d))), float(np.mean(d ** 2))


def test_metric_aggregates_match_numpy_and_the_stored_figures(shop, reference):
    con, _, _ = shop
    got = con.execute("""
        SELECT 'store=' || store || ', dept=' || dept AS series,
               ml_mase(actual, p50, scale) AS mase, ml_smape(actual, p50) AS smape,
               ml_rmsse(actual, p50, scale_squared) AS rmsse,
               ml_interval_coverage(actual, p10, p90) AS coverage
        FROM forecast_sales_backtest() GROUP BY ALL ORDER BY series""").df().set_index("series")
    pinball = con.execute("""
        SELECT series, ml_scaled_pinball_loss(actual, forecast, quantile, scale) AS sp
        FROM ml_backtest('retail') GROUP BY series ORDER BY series""").df().set_index("series")
    rows = con.execute("SELECT store, dept, sales FROM sales ORDER BY store, dept, month").df()
    b = reference.backtest
    for sid, part in b.groupby("unique_id"):
        store, dept = (int(x.split("=")[1]) for x in sid.split(", "))
        y = rows[(rows.store == store) & (rows.dept == dept)]["sales"].to_numpy(float)
        mae, mse = _scale(y)
        a, p = part["actual"].to_numpy(), part["p50"].to_numpy()
        assert got.loc[sid, "mase"] == pytest.approx(np.mean(np.abs(a - p)) / mae)
        assert got.loc[sid, "rmsse"] == pytest.approx(np.sqrt(np.mean((a - p) ** 2) / mse))
        assert got.loc[sid, "smape"] == pytest.approx(
            np.mean(200 * np.abs(a - p) / (np.abs(a) + np.abs(p))))
        assert got.loc[sid, "coverage"] == pytest.approx(
            np.mean((part["p10"] <= a) & (a <= part["p90"])))
        losses = [np.maximum(q * (a - part[c]), (q - 1) * (a - part[c]))
                  for q, c in ((0.1, "p10"), (0.5, "p50"), (0.9, "p90"))]
        assert pinball.loc[sid, "sp"] == pytest.approx(np.mean(losses) / mae)
    per = reference.series_metrics.set_index("unique_id")
    np.testing.assert_allclose(got["mase"], per.loc[got.index, "mase"], rtol=1e-9)
    stored = dict(con.execute("SELECT metric, value FROM ml_model_metrics('retail')").fetchall())
    assert stored["mase"] == pytest.approx(got["mase"].mean())
    assert stored["coverage"] == pytest.approx(reference.metrics["coverage"])


def test_trials_explain_and_diagnose(shop, reference):
    con, _, _ = shop
    trials = con.execute("SELECT model_type, score, status FROM ml_trials('retail')").fetchall()
    assert [(t[0], t[2]) for t in trials] == [(t["candidate"], t["status"])
                                              for t in reference.trials]
    explained = con.execute("SELECT kind, feature, term, importance FROM "
                            "ml_explain_model('retail')").fetchall()
    methods = reference.methods.sort_values("unique_id")
    assert explained == [("method", u, m, float(sl)) for u, m, sl in zip(
        methods["unique_id"], methods["method"], methods["season_length"], strict=True)]
    con.execute("""CREATE TABLE sparse AS SELECT (DATE '2022-01-01' + INTERVAL (m) MONTH)::DATE
                   AS month, CASE WHEN m % 4 = 0 THEN 3 ELSE 0 END AS units FROM range(30) t(m)""")
    train(con, "sparse_fc", "sparse", "units", "{horizon: 3, method: 'naive'}", "forecast_sparse")
    flags = con.execute("SELECT kind, verdict, remedy FROM ml_diagnose('sparse_fc')").fetchall()
    assert ("forecast", "intermittent") in {(k, v) for k, v, _ in flags}
    assert any(r.startswith("series 'units': ") for _, _, r in flags)
    assert con.execute("SELECT verdict FROM ml_diagnose('retail') WHERE kind = 'forecast'"
                       ).fetchall()[0][0] in ("no_flags", "too_short_for_seasonality",
                                              "intermittent", "flat_forecast")


def test_redshift_create_model_forecast_and_select_forecast(shop):
    con, _, _ = shop
    with pytest.warns(sqlml.SqlmlNotice):
        results = sqlml.execute(con, """
            CREATE MODEL rs_fc FROM (SELECT store, month, sales FROM sales WHERE dept = 1)
            TARGET sales IAM_ROLE default AUTO ON MODEL_TYPE FORECAST
            SETTINGS (S3_BUCKET 'bucket', HORIZON 6, FREQUENCY 'M', PERCENTILES '0.25,0.5,0.75',
                      METHOD 'drift');
            SELECT FORECAST(rs_fc);""")
    assert results[0].rows[0][results[0].columns.index("function")] == "forecast_rs_fc"
    # Redshift's shape: the item id, the time, one column per percentile
    assert results[1].columns == ["id", "time", "p25", "p50", "p75"]
    assert len(results[1].rows) == 3 * 6
    wide = con.execute("SELECT store::VARCHAR, month::TIMESTAMP, p25, p50, p75 FROM "
                       "forecast_rs_fc() ORDER BY 1, 2").fetchall()
    assert sorted(results[1].rows) == wide
    assert [c[0] for c in con.execute("DESCRIBE FROM forecast_rs_fc()").fetchall()] == [
        "store", "month", "step", "p25", "p50", "p75"]
    with pytest.raises(sqlml.errors.SqlSyntaxError, match=r"use 0\.5 for the median"):
        sqlml.execute(con, "CREATE MODEL x FROM sales TARGET sales MODEL_TYPE FORECAST "
                           "SETTINGS (PERCENTILES '0.1,mean')")
    with pytest.raises(sqlml.errors.SqlSyntaxError, match="aggregate the rows to hours"):
        sqlml.execute(con, "CREATE MODEL x FROM sales TARGET sales MODEL_TYPE FORECAST "
                           "SETTINGS (FREQUENCY '15min')")


def test_redshift_forecast_objectives_are_accepted_with_a_notice(shop):
    """Amazon Forecast's objectives (AverageWeightedQuantileLoss, WAPE, RMSE, MASE, MAPE) go
    with a notice on MODEL_TYPE FORECAST, and are an error on any other model."""
    con, _, _ = shop
    with pytest.warns(sqlml.SqlmlNotice) as notes:
        sqlml.execute(con, "CREATE MODEL rs_obj FROM (SELECT store, month, sales FROM sales "
                           "WHERE dept = 2) TARGET sales AUTO ON MODEL_TYPE FORECAST OBJECTIVE "
                           "'AverageWeightedQuantileLoss' SETTINGS (HORIZON 3, METHOD 'naive')")
    assert ("OBJECTIVE 'AverageWeightedQuantileLoss' is accepted for Redshift compatibility and "
            "ignored: sqlml's AUTO chooses a forecast method by the scaled pinball loss over its "
            "backtest") in " ".join(str(n.message) for n in notes)
    with pytest.raises(sqlml.errors.SqlSyntaxError) as info:
        sqlml.execute(con, "CREATE MODEL x FROM sales TARGET sales FUNCTION f OBJECTIVE 'WAPE'")
    assert "'WAPE' is Amazon Forecast's: it applies with MODEL_TYPE FORECAST only." in str(
        info.value)


def test_a_forecast_model_is_not_scored_row_by_row_and_drops_cleanly(shop):
    con, _, _ = shop
    con.execute("CREATE TABLE one AS SELECT month, sales FROM sales WHERE store = 1 AND dept = 1")
    train(con, "gone", "one", "sales", "{horizon: 2, method: 'naive'}", "forecast_gone")
    with pytest.raises(duckdb.Error, match="model 'gone' is a forecast: its forecasts were"):
        con.execute("SELECT ml_predict('gone', 1)").fetchall()
    with pytest.raises(duckdb.Error, match="is regression, not a forecast"):
        con.execute("CREATE TABLE r AS SELECT sales AS y, store AS x FROM sales")
        con.execute("SELECT ml_create_model('reg', 'r', target := 'y', model_type := 'linear')")
        con.execute("FROM ml_backtest('reg')").fetchall()
    con.execute("SELECT ml_drop_model('gone')")
    for table in ("forecast_series", "forecasts", "forecast_backtest", "forecast_diagnostics"):
        assert con.execute(f"SELECT count(*) FROM sqlml.{table} WHERE name = 'gone'"
                           ).fetchall()[0][0] == 0
    assert not con.execute("SELECT * FROM duckdb_functions() WHERE function_name = "
                           "'forecast_gone'").fetchall()


# -- frequencies, dates and the rules for awkward rows ---------------------------------------------
@pytest.fixture
def con():
    c = sqlml.connect()
    yield c
    c.close()


@pytest.mark.parametrize(("expr", "n", "frequency", "next_period"), [
    ("TIMESTAMP '2024-01-01 00:00' + INTERVAL (i) HOUR", 60, "hour", "2024-01-03 12:00:00"),
    ("DATE '2024-01-01' + INTERVAL (i) DAY", 30, "day", "2024-01-31 00:00:00"),
    ("DATE '2024-01-01' + INTERVAL (7 * i) DAY", 20, "week", "2024-05-20 00:00:00"),
    ("DATE '2020-01-01' + INTERVAL (3 * i) MONTH", 12, "quarter", "2023-01-01 00:00:00"),
    ("last_day(DATE '2020-01-01' + INTERVAL (i) MONTH)", 14, "month", "2021-03-31 00:00:00"),
    ("DATE '2000-01-01' + INTERVAL (i) YEAR", 10, "year", "2010-01-01 00:00:00"),
])
def test_frequency_inferred_and_periods_dated_as_the_data(con, expr, n, frequency, next_period):
    con.execute(f"CREATE TABLE t AS SELECT ({expr})::TIMESTAMP AS t, 10 + (i % 5) AS y "
                f"FROM range({n}) r(i)")
    train(con, "f", "t", "y", "{horizon: 2, method: 'naive'}", "forecast_f")
    params = con.execute("SELECT parameters->>'$.frequency' FROM sqlml.model_versions").fetchall()
    assert params[0][0] == frequency
    assert str(con.execute("SELECT min(t) FROM forecast_f()").fetchall()[0][0]) == next_period


def test_timestamptz_and_text_dates(con):
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE tz AS SELECT (TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) "
                "DAY) AS t, i % 3 + 1.0 AS y FROM range(20) r(i)")
    train(con, "tz", "tz", "y", "{horizon: 2, method: 'naive'}", "forecast_tz")
    assert con.execute("SELECT typeof(t) FROM forecast_tz() LIMIT 1").fetchall()[0][0] \
        == "TIMESTAMP WITH TIME ZONE"
    # Local midnights across the switch to daylight saving time are one day apart (23 hours in
    # UTC): the periods are read, and given back, in settings time_zone.
    con.execute("CREATE TABLE dst AS SELECT timezone('America/New_York', TIMESTAMP '2024-03-01' "
                "+ INTERVAL (i) DAY) AS t, 5.0 + i % 7 AS y FROM range(20) r(i)")
    with pytest.raises(duckdb.Error, match="irregular for frequency 'day': 2024-03-10 05:00:00"):
        train(con, "dst", "dst", "y", "{horizon: 2, method: 'naive'}", "forecast_dst")
    train(con, "dst", "dst", "y", "{horizon: 2, method: 'naive', "
          "time_zone: 'America/New_York'}", "forecast_dst")
    assert [str(r[0]) for r in con.execute("SELECT t FROM forecast_dst() ORDER BY t").fetchall()
            ] == ["2024-03-21 04:00:00+00:00", "2024-03-22 04:00:00+00:00"]
    con.execute("CREATE TABLE txt AS SELECT strftime(DATE '1981-01-01' + INTERVAL (i) MONTH, "
                "'%Y %b') AS month, 100 + i AS y FROM range(24) r(i)")
    with pytest.raises(duckdb.Error) as info:
        train(con, "txt", "txt", "y", "{time_col: 'month', horizon: 3}", "forecast_txt")
    assert ("time column 'month' is text (first value '1981 Jan'); a text date needs settings "
            "time_format") in str(info.value)
    assert "'1982 Apr' needs time_format: '%Y %b'" in str(info.value)
    assert "'1981 Jan' reads with time_format: '%Y %b'." in str(info.value)
    train(con, "txt", "txt", "y", "{time_col: 'month', horizon: 3, time_format: '%Y %b', "
          "method: 'naive'}", "forecast_txt")
    assert con.execute("SELECT month FROM forecast_txt() ORDER BY month LIMIT 1"
                       ).fetchall()[0][0] == pd.Timestamp("1983-01-01").date()


def test_missing_periods_are_filled_and_reported(con):
    con.execute("CREATE TABLE gaps AS SELECT (DATE '2020-01-01' + INTERVAL (i) MONTH)::DATE AS m, "
                "CASE WHEN i = 7 THEN NULL ELSE 10.0 + i END AS y FROM range(24) r(i) "
                "WHERE i NOT IN (3, 4)")
    s = train(con, "g", "gaps", "y", "{horizon: 2, method: 'naive'}", "forecast_g")
    assert "2 missing period(s) and 1 NULL target value(s) set to 0 (settings fill: 'zero'" \
        in s["notes"]
    s = train(con, "g2", "gaps", "y", "{horizon: 2, method: 'naive', fill: 'interpolate'}",
              "forecast_g2")
    assert "interpolated linearly" in s["notes"]
    assert con.execute("SELECT filled FROM ml_forecast_series('g2')").fetchall()[0][0] == 3
    with pytest.raises(duckdb.Error) as info:
        train(con, "g3", "gaps", "y", "{horizon: 2, fill: 'refuse'}", "forecast_g3")
    assert ("series 'y' has no target value for period 2020-04-01 (a missing period or a NULL; "
            "3 in all), and settings fill is 'refuse'") in str(info.value)


def test_duplicates_are_summed_or_refused(con):
    con.execute("CREATE TABLE d AS SELECT (DATE '2020-01-01' + INTERVAL (i % 12) MONTH)::DATE "
                "AS m, 1.0 AS y FROM range(36) r(i)")
    s = train(con, "d", "d", "y", "{horizon: 2, method: 'naive'}", "forecast_d")
    assert "12 period(s) had several rows of one series; their targets were summed" \
        in s["notes"]
    assert con.execute("SELECT max(p50) FROM forecast_d()").fetchall()[0][0] == pytest.approx(3)
    with pytest.raises(duckdb.Error) as info:
        train(con, "d2", "d", "y", "{horizon: 2, duplicates: 'refuse'}", "forecast_d2")
    assert ("series 'y' has 3 rows for period 2020-01-01 (12 such period(s) in all), and "
            "settings duplicates is 'refuse'") in str(info.value)


# -- bad input -----------------------------------------------------------------------------------
BAD = [
    ("SELECT store, sales FROM sales", "{horizon: 3}",
     "a forecast needs a time column, and settings time_col names none while the training data "
     "has no single date or timestamp column to take: none of its columns is a DATE"),
    ("SELECT store, year(month) AS yr, sales FROM sales", "{time_col: 'yr'}",
     "time column 'yr' must be a DATE, TIMESTAMP or TIMESTAMPTZ (or text with settings "
     "time_format), got BIGINT. Convert it in the query, e.g. make_date(yr, 1, 1)"),
    ("SELECT store, month, sales FROM sales WHERE store < 3 OR month < DATE '2021-04-01'",
     "{series_cols: 'store'}",
     "series 'store=3' has 3 observed period(s); a forecast needs at least 5 per series"),
    ("SELECT month, sales::VARCHAR AS sales FROM sales", "{horizon: 12}",
     "the target 'sales' of a forecast must be numeric, got VARCHAR"),
    ("SELECT store, dept, month, sales FROM sales", "{series_cols: ['store', 'dept'], horizon: 0}",
     "setting horizon must be a positive integer, got 0"),
    ("SELECT store, dept, month, sales FROM sales", "{series_cols: ['stor', 'dept']}",
     "series column (settings series_cols) 'stor' is not a column of the training data. Did "
     "you mean 'store'?"),
    ("SELECT month + INTERVAL (store * 36) HOUR AS t, sales FROM sales WHERE dept = 1",
     "{frequency: 'day'}",
     "the timestamps of series 'sales' are irregular for frequency 'day'"),
    ("SELECT store, month, sales, dept::DOUBLE AS price FROM sales",
     "{series_cols: 'store', covariates: ['price'], future: 'SELECT store, month + INTERVAL 4 "
     "YEAR AS month, 1.0 AS price FROM sales WHERE dept = 1 AND month < DATE ''2021-06-01'''}",
     "future covariate values are missing for series 'store=1' at 2025-06-01 (column 'price')"),
]


@pytest.mark.parametrize(("source", "settings", "message"), BAD,
                         ids=["no_time", "wrong_type", "short", "text_target", "horizon",
                              "unknown_series", "irregular", "future"])
def test_bad_input_names_the_rule_and_the_remedy(shop, source, settings, message):
    con, _, _ = shop
    with pytest.raises(duckdb.Error) as info:
        train(con, "bad", source, "sales", settings, "forecast_bad")
    assert message in str(info.value)


@pytest.mark.parametrize(("quantiles", "message"), [
    ("[0.1, 1.5]", "each quantile must be a number strictly between 0 and 1, got 1.5"),
    ("[0.9, 0.1]", "quantiles must be sorted and distinct, got [0.9, 0.1]"),
    ("[0.5, 0.5]", "quantiles must be sorted and distinct, got [0.5, 0.5]"),
])
def test_invalid_quantiles(shop, quantiles, message):
    con, _, _ = shop
    with pytest.raises(duckdb.Error) as info:
        train(con, "bad", "SELECT month, sales FROM sales WHERE store = 1 AND dept = 1", "sales",
              f"{{quantiles: {quantiles}}}", "forecast_bad")
    assert message in str(info.value)


def test_model_type_does_not_apply_to_forecasts(shop):
    con, _, _ = shop
    with pytest.raises(duckdb.Error) as info:
        con.execute("SELECT ml_create_model('bad', 'sales', target := 'sales', problem_type := "
                    "'forecast', model_type := 'linear', settings := {series_cols: '*'})")
    assert ("model_type 'linear' does not apply to a forecast model, which AUTO chooses by "
            "scaled pinball loss over its backtest") in str(info.value)


def test_error_classes():
    assert issubclass(ForecastError, sqlml.errors.SqlmlError)
    assert issubclass(TrainingError, sqlml.errors.SqlmlError)


def test_covariates_with_future_values_and_a_rollback(con):
    con.execute("""CREATE TABLE s AS SELECT k AS store,
                   (DATE '2019-01-01' + INTERVAL (m) MONTH)::DATE AS month,
                   100 + 10 * k + m AS sales, (m % 3)::DOUBLE AS price
                   FROM range(1, 3) a(k), range(30) c(m)""")
    con.execute("""CREATE TABLE fut AS SELECT k AS store,
                   (DATE '2021-07-01' + INTERVAL (m) MONTH)::DATE AS month, 1.0 AS price
                   FROM range(1, 3) a(k), range(3) c(m)""")
    train(con, "cov", "s", "sales", "{series_cols: 'store', horizon: 3, covariates: ['price'], "
          "future: 'fut', method: 'naive'}", "forecast_cov")
    features = con.execute("SELECT features FROM sqlml.model_versions WHERE name = 'cov'"
                           ).fetchall()[0][0]
    assert '"kind": "covariate"' in features
    assert con.execute("SELECT count(*) FROM forecast_cov()").fetchall()[0][0] == 2 * 3
    with pytest.raises(duckdb.Error, match=r"settings covariates \['price'\] need their future"):
        train(con, "cov", "s", "sales", "{series_cols: 'store', covariates: ['price']}",
              "forecast_cov")
    train(con, "cov", "s", "sales", "{series_cols: 'store', horizon: 2, method: 'drift'}",
          "forecast_cov")
    assert con.execute("SELECT max(step) FROM forecast_cov()").fetchall()[0][0] == 2
    con.execute("SELECT ml_rollback_model('cov', 1)").fetchall()
    assert con.execute("SELECT max(step) FROM forecast_cov()").fetchall()[0][0] == 3
    assert con.execute("SELECT max(step) FROM ml_backtest('cov')").fetchall()[0][0] == 3


def test_the_method_setting_offers_the_engines_methods():
    from sqlml import spec
    from sqlml.forecast import checks

    assert ("auto", *spec.FORECAST_METHODS) == checks.METHODS


@pytest.mark.slow
def test_airline_passengers_through_sql_match_the_engine_and_cover_the_held_out_months():
    """../shared/data/timeseries/Airline.csv: dates as text ('1949-01'), the last 24 months held
    out, AUTO; the stored forecasts are the engine's on the same panel, and the P10-P90
    interval covers the held-out months near its nominal 80%."""
    csv = shared_file("timeseries", "Airline.csv")
    con = sqlml.connect()
    con.execute(f"CREATE TABLE air AS FROM read_csv('{csv}', types = {{'Date': 'VARCHAR'}})")
    train(con, "air", "SELECT * FROM air WHERE Date < '1959-01'", "Passengers",
          "{time_col: 'Date', time_format: '%Y-%m', horizon: 24}", "forecast_air")
    got = con.execute("SELECT f.Date, f.p10, f.p50, f.p90, a.Passengers FROM forecast_air() f "
                      "JOIN air a ON strftime(f.Date, '%Y-%m') = a.Date ORDER BY f.Date").df()
    rows = con.execute("SELECT Date, Passengers FROM air WHERE Date < '1959-01' ORDER BY Date"
                       ).df()
    panel = pd.DataFrame({"unique_id": "Passengers", "ds": pd.to_datetime(rows["Date"]),
                          "y": rows["Passengers"].astype(float)})
    want = fit_forecast(panel, horizon=24, freq="MS", season_length=12, method="auto",
                        max_runtime=300.0, seed=42).forecasts
    assert len(got) == 24
    np.testing.assert_allclose(got["p50"], want["p50"], rtol=1e-9)
    covered = ((got["p10"] <= got["Passengers"]) & (got["Passengers"] <= got["p90"])).mean()
    assert 0.6 <= covered <= 1.0
    con.close()


def test_the_summary_keeps_a_few_notes_and_counts_the_rest():
    from sqlml.forecast.train import _summary_notes

    notes = [f"series 's{i}' is short" for i in range(30)] + ["backtest: 1 window(s)"]
    text = _summary_notes(notes)
    assert text.startswith("series 's0' is short; ") and text.endswith("; backtest: 1 window(s)")
    assert "23 more notes" in text and text.count("is short") == 7


def test_without_statsforecast_auto_notes_and_trials_say_what_was_not_tried(con, monkeypatch):
    monkeypatch.setitem(sys.modules, "statsforecast", None)     # as if not installed
    con.execute(SALES)
    summary = train(con, settings="{time_col: 'month', series_cols: ['store', 'dept'], "
                                  "horizon: 6}")
    assert ("ETS, ARIMA and Theta were not tried: the statsforecast package is not installed "
            "(pip install 'sqlml[forecast]' adds them)") in summary["notes"]
    trials = dict(con.execute("SELECT model_type, status FROM ml_trials('retail')").fetchall())
    assert {trials[c] for c in ("ets", "arima", "theta")} == {"skipped_missing_dependency"}
    assert summary["model_type"] in {"naive", "seasonal_naive", "drift"}
    with pytest.raises(duckdb.Error) as info:
        train(con, settings="{time_col: 'month', series_cols: ['store', 'dept'], horizon: 6, "
                            "method: 'arima'}")
    assert ("forecast: method 'arima' (AutoARIMA) needs the statsforecast package, which is not "
            "installed. Install sqlml's forecast extra: pip install 'sqlml[forecast]'"
            ) in str(info.value)
