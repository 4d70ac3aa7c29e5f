"""Regularisation strengths l1 / l2 (elastic net when both) on every model type that has them."""

import json

import duckdb
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sqlml.errors import TrainingError
from sqlml.train import estimators, penalties


def make(model_type, hyper, problem_type="binary_classification"):
    return estimators.lookup(model_type).make(problem_type, hyper, 0)


@pytest.mark.parametrize("model_type, problem_type, hyper, expected", [
    # C = 1 / (l1 + l2), l1_ratio = l1 / (l1 + l2); lbfgs has no L1: liblinear where it
    # applies (L1 alone, two classes), else saga.
    ("logistic", "binary_classification", {"l2": 0.5}, {"C": 2.0, "l1_ratio": 0.0,
                                                        "solver": "lbfgs"}),
    ("logistic", "binary_classification", {"l1": 0.25}, {"C": 4.0, "l1_ratio": 1.0,
                                                         "solver": "liblinear"}),
    ("logistic", "multiclass_classification", {"l1": 0.25}, {"C": 4.0, "l1_ratio": 1.0,
                                                             "solver": "saga"}),
    ("logistic", "binary_classification", {"l1": 0.1, "l2": 0.3}, {"C": 2.5, "l1_ratio": 0.25,
                                                                    "solver": "saga"}),
    ("logistic", "binary_classification", {"l1": 1.0, "solver": "saga"},
     {"C": 1.0, "l1_ratio": 1.0, "solver": "saga"}),
    ("linear", "regression", {"l2": 3.0}, {"alpha": 3.0}),
    ("lasso", "regression", {"l1": 0.2}, {"alpha": 0.2}),
    ("elastic_net", "regression", {"l1": 0.3, "l2": 0.1}, {"alpha": 0.4, "l1_ratio": 0.75}),
    ("elastic_net", "regression", {"l2": 0.1}, {"alpha": 0.1, "l1_ratio": 0.0}),
    ("gradient_boosting", "binary_classification", {"l2": 0.1}, {"l2_regularization": 0.1}),
    ("gradient_boosting", "regression", {"l2": 2}, {"l2_regularization": 2.0}),
    ("mlp", "binary_classification", {"l2": 0.01}, {"alpha": 0.01}),
])
def test_strengths_map_onto_each_estimators_parameters(model_type, problem_type, hyper,
                                                       expected):
    params = make(model_type, hyper, problem_type).get_params()
    for k, v in expected.items():
        assert params[k] == pytest.approx(v) if isinstance(v, float) else params[k] == v


def test_the_mapping_is_the_penalty_it_claims():
    # sklearn's objective: (1 - r)/2 |w|^2 + r |w|_1 + C * sum(loss); divided by C that is
    # sum(loss) + l1 |w|_1 + l2/2 |w|^2 exactly when C = 1/(l1+l2) and r = l1/(l1+l2).
    p = make("logistic", {"l1": 0.1, "l2": 0.3}).get_params()
    w = np.array([1.5, -2.0, 0.0, 0.5])
    sk = ((1 - p["l1_ratio"]) / 2 * w @ w + p["l1_ratio"] * np.abs(w).sum()) / p["C"]
    assert sk == pytest.approx(0.1 * np.abs(w).sum() + 0.3 / 2 * w @ w)


@pytest.mark.parametrize("model_type, hyper, words", [
    ("gradient_boosting", {"l1": 0.1},
     ["'l1' is an L1 penalty strength", "'gradient_boosting'", "has only l2", "Leave l1 out"]),
    ("random_forest", {"l2": 1.0}, ["'l2' is an L2 penalty strength",
                                    "has no l1 or l2 penalty", "model_type 'logistic'"]),
    ("logistic", {"l2": 0.1, "C": 3.0}, ["'l2' and 'C' both set the penalty",
                                         "'C' = 3.0", "not both"]),
    ("logistic", {"l1": 0}, ["'l1' is a penalty strength and must be a number > 0, got 0"]),
    ("logistic", {"l2": -1.0}, ["must be a number > 0, got -1.0"]),
    ("logistic", {"l2": "strong"}, ["must be a number > 0, got 'strong'"]),
    ("logistic", {"l3": 0.1}, ["'l3' is not a parameter of LogisticRegression",
                               "Did you mean 'l2' or 'l1'?"]),
])
def test_bad_penalties_get_clear_errors(model_type, hyper, words):
    with pytest.raises(TrainingError) as err:
        make(model_type, hyper)
    for w in words:
        assert w in str(err.value)


def test_lasso_and_ridge_say_which_model_type_has_the_other_penalty():
    with pytest.raises(TrainingError, match="'lasso' \\(Lasso\\) has only l1"):
        make("lasso", {"l2": 1.0}, "regression")
    with pytest.raises(TrainingError, match="model_type 'lasso' or 'elastic_net'"):
        make("linear", {"l1": 1.0}, "regression")
    assert penalties.accepted(type(make("random_forest", {}))) == ()


@pytest.fixture
def sparse_signal(con):
    """3 columns that drive the target and 8 that are noise."""
    rng = np.random.default_rng(0)
    n = 600
    X = rng.normal(size=(n, 11))
    logit = 2.0 * X[:, 0] - 1.5 * X[:, 1] + 1.0 * X[:, 2]
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    cols = ", ".join(f"x{j}" for j in range(11))
    frame = {f"x{j}": X[:, j] for j in range(11)} | {"y": y}
    import pandas as pd

    con.register("signal_frame", pd.DataFrame(frame))
    con.execute(f"CREATE TABLE signal AS SELECT {cols}, y FROM signal_frame")
    return con, X, y


def test_l1_zeroes_noise_features_and_explain_shows_them(sparse_signal):
    con, X, y = sparse_signal
    con.execute("""SELECT ml_create_model('sparse', 'signal', target := 'y',
                   model_type := 'logistic', hyperparameters := {l1: 30})""").fetchall()
    rows = con.execute("""SELECT feature, coefficient FROM ml_explain_model('sparse')
                          WHERE kind = 'coefficient'""").fetchall()
    coef = dict(rows)
    # Reference: scikit-learn on the same standardised columns (no NULLs, so sqlml's imputer
    # adds no indicator columns), with the parameters l1 = 30 stands for.
    old_api = {"penalty": "l1"} if penalties._NAMES_PENALTY else {}   # scikit-learn < 1.8
    ref = LogisticRegression(l1_ratio=1.0, C=1 / 30, solver="liblinear", max_iter=2000,
                             random_state=42, **old_api).fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose([coef[f"x{j}"] for j in range(11)], ref.coef_[0], atol=1e-6)
    zeroed = {f for f, c in coef.items() if c == 0}
    assert zeroed == {f"x{j}" for j in range(11) if ref.coef_[0][j] == 0}
    assert {"x0", "x1", "x2"}.isdisjoint(zeroed) and len(zeroed) >= 4
    params = json.loads(con.execute(
        "SELECT parameters FROM sqlml.model_versions WHERE name = 'sparse'").fetchall()[0][0])
    assert params["estimator"]["C"] == pytest.approx(1 / 30)
    assert params["hyperparameters"] == {"l1": 30}


def test_l2_as_a_tuning_range(sparse_signal):
    con = sparse_signal[0]
    con.execute("""SELECT ml_create_model('ridge_tuned', 'signal', target := 'y',
                   model_type := 'logistic',
                   hyperparameters := {l2: {'min': 0.01, 'max': 100.0}},
                   settings := {strategy: 'random', max_trials: 4})""").fetchall()
    rows = con.execute("SELECT parameters FROM ml_trials('ridge_tuned')").fetchall()
    cs = [json.loads(p)["C"] for (p,) in rows]
    assert len(cs) == 4 and all(0.01 <= c <= 100.0 for c in cs) and len(set(cs)) == 4
    assert all(json.loads(p)["l1_ratio"] == 0.0 for (p,) in rows)


def test_auto_with_l2_compares_only_the_model_types_that_have_it(sparse_signal):
    con = sparse_signal[0]
    con.execute("""SELECT ml_create_model('auto_l2', 'signal', target := 'y',
                   hyperparameters := {l2: 0.5})""").fetchall()
    rows = con.execute("SELECT model_type, parameters FROM ml_trials('auto_l2')").fetchall()
    got = {m: json.loads(p) for m, p in rows}
    assert set(got) == {"logistic", "gradient_boosting"}
    assert got["logistic"]["C"] == pytest.approx(2.0)
    assert got["gradient_boosting"]["l2_regularization"] == pytest.approx(0.5)


def test_a_fixed_l2_is_not_searched_again_by_the_default_space(sparse_signal):
    con = sparse_signal[0]
    con.execute("""SELECT ml_create_model('gb_l2', 'signal', target := 'y',
                   model_type := 'gradient_boosting', hyperparameters := {l2: 0.7},
                   settings := {max_trials: 3, median_stopping: false})""").fetchall()
    rows = con.execute("SELECT parameters FROM ml_trials('gb_l2')").fetchall()
    assert len(rows) == 3
    assert all(json.loads(p)["l2_regularization"] == pytest.approx(0.7) for (p,) in rows)
    assert len({json.loads(p)["learning_rate"] for (p,) in rows}) == 3


def test_penalty_errors_reach_sql(sparse_signal):
    con = sparse_signal[0]
    with pytest.raises(duckdb.Error, match="has no l1 or l2 penalty"):
        con.execute("""SELECT ml_create_model('bad', 'signal', target := 'y',
                       model_type := 'random_forest', hyperparameters := {l2: 1})""").fetchall()
