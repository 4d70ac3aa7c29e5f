"""The numpy fast path gives exactly what the stored scikit-learn pipeline gives.

The Python UDFs are called by name: a sqlml session serves a linear model's own functions
through its compiled SQL, which is not the path under test here."""

import numpy as np
import pytest

import sqlml
from sqlml.catalog import generated

PY_PROBABILITY = generated.PROBABILITY_UDF
PY_PREDICTION = generated.LABEL_UDF["DOUBLE"]


@pytest.fixture
def numeric(con):
    con.execute("SELECT setseed(0.42)")
    con.execute("""CREATE TABLE num AS SELECT
        CASE WHEN random() < 0.05 THEN NULL ELSE random() * 10 END AS a,
        (random() * 100)::INTEGER AS b, random() - 0.5 AS c, random() < 0.3 AS d,
        CASE WHEN random() < 0.1 THEN NULL ELSE random() * 3 END AS e
        FROM range(6000)""")
    con.execute("CREATE TABLE numt AS SELECT *, (coalesce(a, 5) + b / 20 + 4 * c + "
                "CASE WHEN d THEN 1 ELSE 0 END + random() * 3 > 8) AS y, "
                "coalesce(a, 5) * 2 + b / 10 + c + random() AS v FROM num")
    return con


@pytest.mark.parametrize("model_type", ["logistic", "gradient_boosting"])
def test_classifier_fast_path_is_exact(numeric, model_type):
    sqlml.create_model(numeric, "m", "SELECT * EXCLUDE (v) FROM numt", target="y",
                       model_type=model_type, function="score_m")
    model = sqlml.load_model(numeric, "m")
    assert model._fast is not None
    df = numeric.sql("SELECT * EXCLUDE (y, v) FROM numt").df()
    ref = model.pipeline.predict_proba(df)[:, 1]
    numeric.execute("SET threads = 2")
    got = np.array([r[0] for r in numeric.execute(
        f"SELECT {PY_PROBABILITY}('m', a, b, c, d, e) FROM numt").fetchall()])
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("model_type", ["linear", "gradient_boosting"])
def test_regressor_fast_path_is_exact(numeric, model_type):
    sqlml.create_model(numeric, "r", "SELECT * EXCLUDE (y) FROM numt", target="v",
                       model_type=model_type, function="score_r")
    model = sqlml.load_model(numeric, "r")
    assert model._fast is not None
    df = numeric.sql("SELECT * EXCLUDE (y, v) FROM numt").df()
    ref = model.pipeline.predict(df)
    got = np.array([r[0] for r in numeric.execute(
        f"SELECT {PY_PREDICTION}('r', a, b, c, d, e) FROM numt").fetchall()])
    assert np.array_equal(got, ref)


def test_multiclass_logistic_fast_path_is_exact(numeric):
    numeric.execute("CREATE TABLE mc AS SELECT a, b, c, (b % 3)::VARCHAR AS k FROM numt")
    sqlml.create_model(numeric, "k", "mc", target="k", model_type="logistic", function="score_k")
    model = sqlml.load_model(numeric, "k")
    assert model._fast is not None
    ref = model.pipeline.predict_proba(numeric.sql("SELECT a, b, c FROM mc").df())
    got = np.array([r[0]["probabilities"] for r in numeric.execute(
        f"SELECT {generated.PROBABILITIES_UDF}('k', a, b, c) FROM mc").fetchall()])
    assert np.array_equal(got, ref)
