"""model_type 'mlp' for regression learns a standardised target (sqlml.train.scaled_mlp)."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

import sqlml
from sqlml.train.scaled_mlp import ScaledTargetMLPRegressor

PARAMS = dict(hidden_layer_sizes=(16,), max_iter=60, random_state=0)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, scaled=False)
    return StandardScaler().fit_transform(X), y


def test_predicts_as_scikit_learns_transformed_target_regressor(diabetes):
    X, y = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ScaledTargetMLPRegressor(**PARAMS).fit(X, y)
        ref = TransformedTargetRegressor(MLPRegressor(**PARAMS),
                                         transformer=StandardScaler()).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-12)
    assert ours.target_mean_ == pytest.approx(y.mean()) and ours.target_scale_ > 10


def test_a_warm_start_keeps_the_scale_it_was_trained_on(diabetes):
    X, y = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ScaledTargetMLPRegressor(**{**PARAMS, "max_iter": 5, "warm_start": True}).fit(X, y)
        mean = est.target_mean_
        est.fit(X[:50], y[:50])   # another epoch on other rows: same target scale
    assert est.target_mean_ == mean
    assert clone(est).get_params() == est.get_params()


def test_sql_mlp_regression_beats_the_unscaled_network(con, diabetes):
    X, y = load_diabetes(return_X_y=True, scaled=False, as_frame=True)
    frame = X.assign(progression=y)  # noqa: F841  (read by CREATE TABLE below)
    con.execute("CREATE TABLE diabetes AS FROM frame")
    sqlml.create_model(con, "prog", "diabetes", target="progression", model_type="mlp",
                       function="predict_progression")
    r2 = dict(con.execute("SELECT metric, value FROM ml_model_metrics('prog')").fetchall())["r2"]
    model = sqlml.load_model(con, "prog")
    assert isinstance(model.pipeline.named_steps["model"], ScaledTargetMLPRegressor)
    # The same network fitted on the unscaled target, on the same split, scores below zero.
    plain = clone(model.pipeline).set_params(
        model=MLPRegressor(**{k: v for k, v in model.pipeline.named_steps["model"].get_params()
                              .items()}))
    from sqlml.train import evaluation
    tr, va = evaluation.split(len(y), y.to_numpy(), "regression", 0.2, 42, "test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(X.iloc[tr], y.iloc[tr])
    from sklearn.metrics import r2_score
    assert r2_score(y.iloc[va], plain.predict(X.iloc[va])) < 0.2 < r2
    got = [r[0] for r in con.execute("SELECT predict_progression_sql(d) FROM diabetes d")
           .fetchall()]
    np.testing.assert_allclose(got, model.pipeline.predict(X), rtol=0, atol=1e-9)
