import duckdb
import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.metrics import brier_score_loss

import sqlml
from sqlml.catalog import artifacts
from sqlml.train import calibration


def col(con, sql):
    return [r[0] for r in con.execute(sql).fetchall()]


@pytest.fixture
def spy(monkeypatch):
    """The validation labels and probabilities training hands to the reliability table."""
    seen = []
    real = calibration.reliability

    def record(y_true, p_pos, method):
        seen.append((np.asarray(y_true), np.asarray(p_pos)))
        return real(y_true, p_pos, method)

    monkeypatch.setattr(calibration, "reliability", record)
    return seen


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", None])
def test_reliability_table_and_brier_match_sklearn(customers, spy, method):
    settings = {"calibrate": method} if method else {}
    sqlml.create_model(customers, "churn", "customers", target="churned",
                       model_type="gradient_boosting", settings=settings)
    (y_val, p_val), = spy
    assert len(y_val) == col(customers, "SELECT validation_rows FROM sqlml.model_versions")[0]
    rows = customers.execute("SELECT bin, mean_predicted, observed_rate, n, brier_score, method "
                             "FROM ml_calibration('churn')").fetchall()
    prob_true, prob_pred = calibration_curve(y_val, p_val, n_bins=10, strategy="uniform")
    np.testing.assert_allclose([r[1] for r in rows], prob_pred, rtol=1e-12)
    np.testing.assert_allclose([r[2] for r in rows], prob_true, rtol=1e-12)
    assert sum(r[3] for r in rows) == len(y_val)
    assert [r[4] for r in rows] == pytest.approx([brier_score_loss(y_val, p_val)] * len(rows))
    assert {r[5] for r in rows} == {method or "none"}


@pytest.mark.parametrize("model_type", ["logistic", "random_forest"])
@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibrated_model_round_trips_and_sql_equals_pipeline(customers, model_type, method):
    sqlml.create_model(customers, "churn", "customers", target="churned",
                       model_type=model_type, settings={"calibrate": method})
    model = sqlml.load_model(customers, "churn")
    est = model.pipeline.named_steps["model"]
    assert isinstance(est, CalibratedClassifierCV) and est.method == method
    again = artifacts.loads(artifacts.dumps(model.pipeline))
    df = customers.sql("FROM customers").df().drop(columns=["churned", "customer_id"])
    ref = model.pipeline.predict_proba(df)[:, 1]
    np.testing.assert_array_equal(again.predict_proba(df)[:, 1], ref)
    got = np.array(col(customers, "SELECT predict_churn_probability(c) FROM customers c"))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_unknown_calibrate_value_names_setting_value_and_options(customers):
    with pytest.raises(duckdb.Error) as err:
        sqlml.create_model(customers, "churn", "customers", target="churned",
                           settings={"calibrate": "platt"})
    msg = str(err.value)
    assert "calibrate" in msg and "'platt'" in msg and "'sigmoid'" in msg and "'isotonic'" in msg


def test_calibrate_refuses_regression(customers):
    with pytest.raises(duckdb.Error, match=r"binary classifier.*regression"):
        sqlml.create_model(customers, "spend", "customers", target="monthly_spend",
                           function="predict_spend", settings={"calibrate": "sigmoid"})


def test_sql_setting_and_drop(customers):
    customers.execute("SELECT ml_create_model('churn', 'customers', target := 'churned', "
                      "model_type := 'logistic', settings := {calibrate: 'sigmoid'})").fetchall()
    assert col(customers, "SELECT DISTINCT method FROM ml_calibration('churn')") == ["sigmoid"]
    customers.execute("SELECT ml_drop_model('churn')").fetchall()
    assert col(customers, "SELECT count(*) FROM sqlml.calibration") == [0]
