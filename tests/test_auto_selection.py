"""AUTO's selection rule and boosting defaults (issue 14), against references computed apart:
scipy's standard error of the paired fold differences, and scikit-learn's estimator fitted
directly."""

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from sqlml.train import estimators, supervised


def _trials(folds: dict) -> list[dict]:
    return [{"trial": i, "model_type": m, "parameters": {}, "score": float(np.mean(f)),
             "fold_scores": f, "status": "completed", "seconds": 1.0}
            for i, (m, f) in enumerate(folds.items(), start=1)]


def _reference(folds: dict) -> str:
    """The rule spelt out with scipy: the best mean, unless a quicker candidate (earlier in
    the list) trails it by at most one standard error of the paired differences."""
    names = list(folds)
    best = max(names, key=lambda m: np.mean(folds[m]))
    for m in names[:names.index(best)]:
        d = np.subtract(folds[best], folds[m])
        if d.mean() <= stats.sem(d):
            return m
    return best


@pytest.mark.parametrize("folds", [
    # boosting ahead on every fold by far more than the noise: boosting
    {"logistic": [0.80, 0.81, 0.79], "gradient_boosting": [0.86, 0.87, 0.85],
     "random_forest": [0.84, 0.85, 0.83]},
    # boosting ahead on average, behind on one fold: within the noise, logistic is kept
    {"logistic": [0.85, 0.80, 0.86], "gradient_boosting": [0.84, 0.86, 0.87],
     "random_forest": [0.80, 0.80, 0.80]},
    # the forest best but within the noise of boosting, both beyond logistic's
    {"logistic": [0.70, 0.71, 0.69], "gradient_boosting": [0.86, 0.85, 0.87],
     "random_forest": [0.88, 0.84, 0.875]},
])
def test_noise_rule_matches_scipy_reference(folds):
    trials = _trials(folds)
    kept = supervised.choose(trials)
    assert kept == _reference(folds)
    rules = {t["model_type"]: t["parameters"]["selection"] for t in trials}
    assert [m for m, r in rules.items() if r.startswith("kept")] == [kept]


def test_noise_rule_off_keeps_the_best_mean(monkeypatch):
    folds = {"logistic": [0.85, 0.80, 0.86], "gradient_boosting": [0.84, 0.86, 0.87]}
    monkeypatch.setattr(supervised, "NOISE_RULE", False)
    assert supervised.choose(_trials(folds)) == "gradient_boosting"


def test_boosting_stops_early_from_held_out_rows_like_sklearn():
    X, y = make_classification(n_samples=1500, n_features=8, random_state=3)
    ours = estimators.lookup("gradient_boosting").make("binary_classification", {}, 0,
                                                       rows=len(y)).fit(X, y)
    ref = HistGradientBoostingClassifier(max_iter=200, early_stopping=True, n_iter_no_change=10,
                                         validation_fraction=0.1, random_state=0).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ < 200
    np.testing.assert_array_equal(ours.predict_proba(X), ref.predict_proba(X))
    small = estimators.lookup("gradient_boosting").make("binary_classification", {}, 0,
                                                        rows=estimators.HELD_OUT_ROWS - 1)
    assert small.early_stopping == "auto"   # scikit-learn's own rule below 1,000 rows
    given = estimators.lookup("gradient_boosting").make(
        "binary_classification", {"early_stopping": False}, 0, rows=5000)
    assert given.early_stopping is False    # a user's value wins
