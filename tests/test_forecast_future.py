"""Known-future covariates passed at forecast time: ``forecast_x_future('query')`` fits the
stored model's method again with those values (sqlml/forecast/future.py), checked against the
engine called directly with the same values and against a hand-made promotion effect."""

from __future__ import annotations

import shutil

import clients
import duckdb
import numpy as np
import pandas as pd
import pytest

import sqlml
from sqlml.forecast import gbm
from sqlml.forecast.engine import fit_forecast

EFFECT = 40.0     # a promotion month sells this much more
# 3 stores x 36 months; promo in a fixed pseudo-random third of the months
SALES = f"""CREATE TABLE sales AS SELECT k AS store,
    (DATE '2021-01-01' + INTERVAL (m) MONTH)::DATE AS month,
    round(100 + 10 * k + 0.5 * m + 12 * sin(2 * pi() * m / 12)
          + {EFFECT} * ((m * 7 + k * 3) % 3 = 0)::INT + (m * 31 + k * 17) % 5, 1) AS sales,
    ((m * 7 + k * 3) % 3 = 0)::DOUBLE AS promo
    FROM range(1, 4) a(k), range(36) t(m)"""
# the horizon's months (2024-01 .. 2024-04), with the promotion pattern continued
FUTURE = """CREATE TABLE next_promos AS SELECT k AS store,
    (DATE '2024-01-01' + INTERVAL (m) MONTH)::DATE AS month,
    (((m + 36) * 7 + k * 3) % 3 = 0)::DOUBLE AS promo FROM range(1, 4) a(k), range(4) t(m)"""
SETTINGS = ("{series_cols: 'store', horizon: 4, covariates: ['promo'], future: 'next_promos', "
            "method: 'gbm'}")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("future") / "shop.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gbm, "MAX_ITER", 20)     # 3 quantile models per window: keep each fit short
        con = sqlml.connect(path)
        con.execute(SALES)
        con.execute(FUTURE)
        con.execute(f"SELECT ml_create_model('promo', 'sales', target := 'sales', problem_type "
                    f":= 'forecast', function := 'forecast_promo', settings := {SETTINGS})"
                    ).fetchall()
        yield con, path
    con.close()


_AGAIN: dict[str, pd.DataFrame] = {}


def again(con, future: str) -> pd.DataFrame:
    """FROM forecast_promo_future(...), each query computed once for the module (a fit of
    the global model each)."""
    if future not in _AGAIN:
        _AGAIN[future] = con.execute(f"SELECT store, month, step, p10, p50, p90 FROM "
                                     f"forecast_promo_future($${future}$$) ORDER BY store, "
                                     f"month").df()
    return _AGAIN[future]


def engine_forecast(con, future_sql: str) -> pd.DataFrame:
    """The engine on the same rows, the panel and the future values built here."""
    rows = con.execute("SELECT store, month, sales, promo FROM sales").df()
    panel = pd.DataFrame({"unique_id": "store=" + rows["store"].astype(str),
                          "ds": pd.to_datetime(rows["month"]), "y": rows["sales"],
                          "promo": rows["promo"]})
    fut = con.execute(future_sql).df()
    future = pd.DataFrame({"unique_id": "store=" + fut["store"].astype(str),
                           "ds": pd.to_datetime(fut["month"]), "promo": fut["promo"]})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gbm, "MAX_ITER", 20)
        fit = fit_forecast(panel, horizon=4, quantiles=[0.1, 0.5, 0.9], freq="MS",
                           season_length=12, method="gbm", future=future, seed=42)
    return fit.forecasts.sort_values(["unique_id", "ds"]).reset_index(drop=True)


ALL_PROMO = "SELECT store, month, 1.0 AS promo FROM next_promos"
NO_PROMO = "SELECT store, month, 0.0 AS promo FROM next_promos"


def test_new_future_values_equal_the_engine_called_directly_with_them(shop):
    con, _ = shop
    got = again(con, ALL_PROMO)
    want = engine_forecast(con, ALL_PROMO)
    assert len(got) == 3 * 4 and got["step"].tolist() == [1, 2, 3, 4] * 3
    np.testing.assert_allclose(got[["p10", "p50", "p90"]].to_numpy(),
                               want[["p10", "p50", "p90"]].to_numpy(), rtol=1e-9)


def test_the_training_future_gives_the_stored_forecasts_back(shop):
    con, _ = shop
    stored = con.execute("SELECT store, month, step, p10, p50, p90 FROM forecast_promo() "
                         "ORDER BY store, month").df()
    assert len(stored) == 12
    pd.testing.assert_frame_equal(again(con, "next_promos"), stored, check_exact=False,
                                  rtol=1e-9)


def test_a_promotion_raises_the_forecast_by_about_its_effect(shop):
    con, _ = shop
    on, off = (again(con, q)["p50"].to_numpy() for q in (ALL_PROMO, NO_PROMO))
    assert 0.5 * EFFECT < np.mean(on - off) < 1.5 * EFFECT


def test_a_shorter_horizon_needs_future_values_for_its_periods_only(shop):
    con, _ = shop
    two = "SELECT * FROM next_promos WHERE month < DATE '2024-03-01'"
    got = con.execute(f"SELECT store, step, p50 FROM forecast_promo_future($${two}$$, "
                      f"horizon := 2) ORDER BY store, step").df()
    full = again(con, "next_promos")
    assert got["step"].tolist() == [1, 2] * 3
    np.testing.assert_allclose(got["p50"], full[full["step"] <= 2]["p50"], rtol=1e-9)


# -- errors -------------------------------------------------------------------------------------
def error_of(con, sql: str) -> str:
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql).fetchall()
    return str(info.value)


def test_future_without_a_covariate_column_is_refused(shop):
    con, _ = shop
    message = error_of(con, "FROM forecast_promo_future('SELECT store, month FROM next_promos')")
    assert ("ForecastError: forecast_promo_future: covariate (settings covariates) 'promo' is "
            "not a column of the future covariates (forecast_promo_future). Columns: store, "
            "month.") in message


def test_future_missing_a_period_of_the_horizon_names_the_series_and_period(shop):
    con, _ = shop
    message = error_of(con, "FROM forecast_promo_future($$SELECT * FROM next_promos WHERE "
                            "NOT (store = 3 AND month = DATE '2024-02-01')$$)")
    assert ("forecast_promo_future: the future values have no 'promo' for series "
            "'store=3' at 2024-02-01, a period of the horizon; pass a value of promo for every "
            "series and period from 2024-01-01 to 2024-04-01 (3 series x 4 periods).") in message
    missing_series = error_of(con, "FROM forecast_promo_future($$SELECT * FROM next_promos "
                                   "WHERE store < 3$$)")
    assert "have no 'promo' for series 'store=3' at 2024-01-01" in missing_series


def test_a_model_without_covariates_refuses_future_values(shop):
    con, _ = shop
    con.execute("SELECT ml_create_model('plain', 'SELECT store, month, sales FROM sales', "
                "target := 'sales', problem_type := 'forecast', function := 'forecast_plain', "
                "settings := {series_cols: 'store', horizon: 4, method: 'naive'})").fetchall()
    message = error_of(con, "FROM forecast_plain_future('next_promos')")
    assert ("forecast_plain_future: the query passes new values of known-future covariates, "
            "but model 'plain' (version 1) was trained without covariates (settings "
            "covariates), so its forecasts do not depend on them. Read its forecasts with "
            "forecast_plain(), or retrain with settings := {covariates: [...], future: '...'}."
            ) in message


def test_changed_training_rows_are_refused(shop):
    con, _ = shop
    con.execute("CREATE TABLE sales_copy AS FROM sales")
    con.execute("SELECT ml_create_model('copy', 'sales_copy', target := 'sales', problem_type "
                f":= 'forecast', function := 'forecast_copy', settings := "
                f"{SETTINGS.replace('gbm', 'naive')})").fetchall()
    con.execute("UPDATE sales_copy SET sales = sales + 1 WHERE store = 1")
    message = error_of(con, "FROM forecast_copy_future('next_promos')")
    assert ("forecast_copy_future: the rows of model 'copy''s training query have changed since "
            "version 1 was trained") in message


def test_a_plain_duckdb_client_is_told_future_needs_sqlml(shop, tmp_path):
    con, path = shop
    con.execute("CHECKPOINT")
    copy = tmp_path / "copy.duckdb"   # the fixture's connection holds the file's write lock
    shutil.copyfile(path, copy)
    # forecast_promo() calls no sqlml function: `sqlml serve`'s read-only logins may call it,
    # while forecast_promo_future runs a query it is given (a writer, as ml_report(drift))
    body = con.execute("SELECT macro_definition FROM duckdb_functions() WHERE function_name = "
                       "'forecast_promo'").fetchall()[0][0]
    assert "__sqlml" not in body
    stored = clients.cli_json(copy, "SELECT count(*) AS n FROM forecast_promo()")
    assert stored == [{"n": 12}]
    message = clients.cli_json(copy, "FROM forecast_promo_future('next_promos')")
    assert isinstance(message, str)
    assert ("A forecast model's <fn>_future(query) function needs sqlml's Python package, "
            "which this DuckDB client does not have (it fits the model again with the new "
            "future values)") in message


def test_a_single_series_with_covariates_trains_and_forecasts_again(con):
    """One series (no series_cols): the future rows take the series id of the training rows,
    the target's name."""
    con.execute("""CREATE TABLE one AS SELECT (DATE '2019-01-01' + INTERVAL (m) MONTH)::DATE
                   AS month, 100 + m AS sales, (m % 3)::DOUBLE AS price FROM range(30) c(m)""")
    con.execute("""CREATE TABLE one_next AS SELECT (DATE '2021-07-01' + INTERVAL (m) MONTH)::DATE
                   AS month, 1.0 AS price FROM range(3) c(m)""")
    con.execute("SELECT ml_create_model('one', 'one', target := 'sales', problem_type := "
                "'forecast', settings := {horizon: 3, covariates: ['price'], future: 'one_next', "
                "method: 'naive'})").fetchall()
    stored = con.execute("FROM forecast_one()").fetchall()
    assert len(stored) == 3
    assert con.execute("FROM forecast_one_future('one_next')").fetchall() == stored
