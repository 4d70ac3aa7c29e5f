import math

import duckdb
import numpy as np
import pandas as pd
import pytest

import sqlml
from sqlml.train import diagnose

COLUMNS = ("step", "kind", "objective", "train_rows", "training_score", "validation_score",
           "training_skill", "validation_skill", "verdict", "remedy")


def rows(con, model):
    return [dict(zip(COLUMNS, r, strict=True))
            for r in con.execute(f"FROM ml_diagnose('{model}')").fetchall()]


@pytest.fixture
def synthetic(con):
    rng = np.random.default_rng(0)
    n = 1000
    x = rng.uniform(-3, 3, n)
    con.register("quad_df", pd.DataFrame({"x": x, "y": x ** 2 + rng.normal(0, 0.5, n)}))
    con.execute("CREATE TABLE quadratic AS FROM quad_df")
    X = rng.normal(size=(n, 5))
    label = X[:, 0] + rng.normal(0, 1.5, n) > 0          # one weak signal, much label noise
    con.register("noisy_df", pd.DataFrame({**{f"f{i}": X[:, i] for i in range(5)},
                                           "label": label}))
    con.execute("CREATE TABLE noisy AS FROM noisy_df")
    return con


def test_deep_forest_on_noisy_data_is_overfitting(synthetic):
    synthetic.execute(
        "SELECT ml_create_model('deep', 'noisy', target := 'label', "
        "model_type := 'random_forest', "
        "hyperparameters := {max_depth: null, min_samples_leaf: 1, n_estimators: 50}, "
        "settings := {diagnose: true})").fetchall()
    d = rows(synthetic, "deep")
    head, curve = d[0], d[1:]
    assert head["kind"] == "holdout" and head["objective"] == "auc"
    assert head["verdict"] == "overfitting"
    assert "more regularisation" in head["remedy"] and "shallower trees" in head["remedy"]
    assert head["training_skill"] - head["validation_skill"] > diagnose.GAP
    assert head["training_score"] > 0.99 and head["train_rows"] == 800
    assert [r["kind"] for r in curve] == ["learning_curve"] * 5
    sizes = [r["train_rows"] for r in curve]
    assert sizes == sorted(sizes) and len(set(sizes)) == 5


def test_linear_model_on_a_square_is_underfitting(synthetic):
    synthetic.execute(
        "SELECT ml_create_model('flat', 'quadratic', target := 'y', model_type := 'linear', "
        "settings := {diagnose: true})").fetchall()
    head = rows(synthetic, "flat")[0]
    assert head["objective"] == "rmse" and head["training_score"] > 0   # rmse, natural units
    assert head["verdict"] == "underfitting"
    assert "richer features" in head["remedy"] and "less regularisation" in head["remedy"]
    assert head["validation_skill"] < diagnose.POOR
    # A non-linear model fixes it: the remedy is right.
    synthetic.execute(
        "SELECT ml_create_model('curved', 'quadratic', target := 'y', "
        "model_type := 'gradient_boosting', settings := {diagnose: true})").fetchall()
    assert rows(synthetic, "curved")[0]["verdict"] == "good_fit"


@pytest.mark.parametrize(("train", "val", "curve", "expected"), [
    (1.0, 0.5, [0.4, 0.45, 0.5], "overfitting"),
    (0.2, 0.15, [0.12, 0.125, 0.13], "underfitting"),
    (0.3, 0.25, [0.1, 0.15, 0.25], "needs_more_data"),
    (0.9, 0.85, [0.8, 0.84, 0.85], "good_fit"),
    (math.nan, 0.5, [], "inconclusive"),
])
def test_verdict_rules(train, val, curve, expected):
    assert diagnose.verdict(train, val, curve) == expected


@pytest.mark.parametrize(("curve_gap", "expected"), [
    (0.5, "overfitting"),       # both gaps: overfitting
    (0.02, "good_fit"),         # the curve's folds see no gap: the holdout's was chance
    (math.nan, "overfitting"),  # no curve to ask
])
def test_overfitting_needs_the_curve_to_agree_with_the_holdout(curve_gap, expected):
    assert diagnose.verdict(0.98, 0.85, [0.9, 0.95, 0.96], curve_gap) == expected


def test_skill_is_zero_for_a_constant_and_one_when_perfect():
    assert diagnose.skill(0.5, 0.5, 1.0) == 0 and diagnose.skill(1.0, 0.5, 1.0) == 1
    assert diagnose.skill(-1.0, -2.0, 0.0) == 0.5            # rmse halved
    assert math.isnan(diagnose.skill(1.0, 1.0, 1.0))


def test_default_training_stores_no_diagnosis(customers):
    sqlml.create_model(customers, "churn", "customers", target="churned",
                       model_type="logistic")
    (only,) = rows(customers, "churn")
    assert only["verdict"] == "not_computed" and "diagnose: true" in only["remedy"]
    assert customers.execute("SELECT count(*) FROM sqlml.diagnosis").fetchall() == [(0,)]


def test_bad_diagnose_setting_and_unknown_model(customers):
    with pytest.raises(duckdb.Error, match="setting diagnose must be true or false, got 'yes'"):
        sqlml.create_model(customers, "churn", "customers", target="churned",
                           settings={"diagnose": "yes"})
    with pytest.raises(duckdb.Error, match="model 'nope' does not exist"):
        customers.execute("FROM ml_diagnose('nope')").fetchall()
