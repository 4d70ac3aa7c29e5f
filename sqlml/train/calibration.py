"""Probability calibration of binary classifiers, and the reliability table of every binary model.

``settings := {calibrate: 'sigmoid'|'isotonic'}`` wraps the chosen classifier (after model
selection and tuning, which compare uncalibrated models) in scikit-learn's
``CalibratedClassifierCV`` with the same cross-validation folds as tuning. The reliability table
(``FROM ml_calibration(model)``) and the Brier score are computed for every binary model from its
validation predictions: one pass over the validation rows, so it costs next to nothing.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from sqlml.errors import TrainingError

FN = "ml_create_model"
N_BINS = 10   # equal-width bins over [0, 1], as sklearn.calibration.calibration_curve(n_bins=10)


def check_problem(method: str | None, problem_type: str, target: str) -> None:
    if method is not None and problem_type != "binary_classification":
        raise TrainingError(
            f"{FN}: setting calibrate {method!r} calibrates the probability of a binary "
            f"classifier, but target {target!r} is {problem_type}. Leave the calibrate setting "
            f"out.")


def wrap(pipeline: Pipeline, method: str, cv) -> Pipeline:
    """The pipeline with its model step calibrated (preprocessing stays outside, fitted once)."""
    return Pipeline([("prep", pipeline.named_steps["prep"]),
                     ("model", CalibratedClassifierCV(pipeline.named_steps["model"],
                                                      method=method, cv=cv))])


def prepare_for_storage(est) -> None:
    """A fitted calibrated model as stored: its folds object becomes their number (the artifact
    allow-list has no splitter types), and its inner models predict in one thread (see
    training.train)."""
    if not isinstance(est, CalibratedClassifierCV):
        return
    if hasattr(est.cv, "get_n_splits"):
        est.set_params(cv=est.cv.get_n_splits())
    for cc in getattr(est, "calibrated_classifiers_", ()):
        inner = cc.estimator
        if "n_jobs" in inner.get_params():
            inner.set_params(n_jobs=None)


def reliability(y_true, p_pos, method: str | None) -> list[tuple]:
    """Rows (bin, lower, upper, mean_predicted, observed_rate, count, brier, method).

    Bins as ``calibration_curve(y_true, p_pos, n_bins=10, strategy='uniform')``: empty bins are
    left out. The Brier score is the mean of (p - y)^2 over all validation rows, on every row.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p_pos, dtype=float)
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=N_BINS)
    sum_p = np.bincount(ids, weights=p, minlength=N_BINS)
    sum_y = np.bincount(ids, weights=y, minlength=N_BINS)
    brier = float(np.mean((p - y) ** 2)) if len(y) else None
    return [(i + 1, round(float(edges[i]), 10), round(float(edges[i + 1]), 10),
             float(sum_p[i] / count[i]), float(sum_y[i] / count[i]), int(count[i]), brier,
             method or "none")
            for i in range(N_BINS) if count[i] > 0]
