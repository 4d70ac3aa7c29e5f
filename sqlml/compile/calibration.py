"""Calibrated binary classifiers (``settings := {calibrate: 'sigmoid' | 'isotonic'}``, a
``CalibratedClassifierCV`` in the stored pipeline) compiled to plain SQL.

scikit-learn fits one calibrated classifier per cross-validation fold (``ensemble=True``): a
base model fitted on the fold's training part and a calibrator fitted on its held-out part.
``predict_proba`` is the mean over the folds of each one's ``[1 - p, p]``, where p is the
calibrator applied to the base model's score of the positive class: its ``decision_function``
where it has one (logistic regression: the log-odds; gradient boosting: the raw score), else
``predict_proba[:, 1]`` (trees, forests, MLPs, KNN). The SQL computes the same, fold by fold,
with each base model compiled by its own emitter:

- **sigmoid**: ``expit(-(a * s + b))``, scikit-learn's ``_SigmoidCalibration``.
- **isotonic**: the score clipped to the calibrator's ``[X_min_, X_max_]``, then ``np.interp``
  over its thresholds (``X_thresholds_``, ``y_thresholds_``, stored as data): the
  threshold's own value where the score equals one (or is the last), else
  ``slope * (s - x_j) + y_j`` on the segment ``x_j <= s < x_{j+1}``, as numpy computes it.
- Then each fold's probabilities slightly above 1 (at most 1 + 1e-5) become 1, the folds are
  added in order into zeros and divided by their number.

Exactness is the base models' (1e-15 for logistic models, bit for bit for trees until the
calibrator's ``exp``). Not compiled: multiclass calibration (sqlml calibrates binary models
only), other methods, a base model that does not compile (its reason is given).
"""

from __future__ import annotations

import numpy as np

from sqlml.compile.expressions import NotCompilable, num
from sqlml.compile.params import Params


class _Prefixed(Params):
    """A fold's view of the model's store: the same arrays, its keys prefixed."""

    def __init__(self, parent: Params, prefix: str):   # the parent holds the arrays
        self.parent, self.prefix = parent, prefix

    def add(self, key, values, kind) -> str:
        return self.parent.add(self.prefix + key, values, kind)


def probabilities_sql(est, cols: list, store: Params | None, scores_of) -> str:
    """The DOUBLE[] ``[P(classes_[0]), P(classes_[1])]``; ``scores_of(estimator, cols,
    problem_type, store)`` compiles a base model (sqlml.compile.model.estimator_scores)."""
    if len(est.classes_) != 2:
        raise NotCompilable("calibrated multiclass model: calibration is compiled for binary "
                            "models")
    if est.method not in ("sigmoid", "isotonic"):
        raise NotCompilable(f"calibrated model with method {est.method!r}")
    folds = est.calibrated_classifiers_
    ps = []
    for i, cc in enumerate(folds):
        if list(cc.estimator.classes_) != list(est.classes_) or len(cc.calibrators) != 1:
            raise NotCompilable("calibrated model whose fold saw one class only")
        sub = None if store is None else _Prefixed(store, f"fold{i + 1}_")
        score = _positive_score(cc.estimator, cols, sub, scores_of)
        cal = cc.calibrators[0]
        if est.method == "sigmoid":
            ps.append(f"(1.0e0 / (1.0e0 + exp((({num(cal.a_)} * {score}) + {num(cal.b_)}))))")
        else:
            ps.append(_isotonic(cal, score, store, f"fold{i + 1}_isotonic_"))
    cap = num(1.0 + 1e-5)

    def fix(v: str) -> str:
        return f"CASE WHEN {v} > 1.0e0 AND {v} <= {cap} THEN 1.0e0 ELSE {v} END"

    # Lambda parameters are prefixed: a bare name would be taken for a column of the caller's.
    return (f"list_transform([[{', '.join(ps)}]], lambda __sqlml_ps: list_transform("
            f"[list_transform(__sqlml_ps, lambda __sqlml_p: {fix('(1.0e0 - __sqlml_p)')}), "
            f"list_transform(__sqlml_ps, lambda __sqlml_p: {fix('__sqlml_p')})], "
            f"lambda __sqlml_c: list_sum(__sqlml_c) / {num(len(folds))}))[1]")


def _positive_score(base, cols: list, store, scores_of) -> str:
    """What scikit-learn calibrates: decision_function if the base has one, else
    predict_proba's positive column."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from sqlml.compile import estimators, trees
    if isinstance(base, LogisticRegression):
        return estimators.linear.scores_sql(base, cols, raw_decision=True)[0]
    if isinstance(base, HistGradientBoostingClassifier):
        if not trees.supports(base):
            estimators.emitter(base)   # raises with the tree compiler's reason
        return trees.decision_sql(base, [c.as_input() for c in cols], store)
    if hasattr(base, "decision_function"):
        raise NotCompilable(f"calibrated {type(base).__name__}: its decision function is not "
                            f"compiled")
    scores = scores_of(base, cols, "binary_classification", store)
    return scores[1] if isinstance(scores, list) else f"({scores})[2]"


def _isotonic(cal, score: str, store: Params | None, key: str) -> str:
    xs = np.asarray(cal.X_thresholds_, dtype=np.float64)
    ys = np.asarray(cal.y_thresholds_, dtype=np.float64)
    if len(xs) == 1:
        return num(ys[0])
    if store is None:
        X_sql = "[" + ", ".join(num(v) for v in xs) + "]::DOUBLE[]"
        Y_sql = "[" + ", ".join(num(v) for v in ys) + "]::DOUBLE[]"
    else:
        X_sql, Y_sql = store.add(key + "x", xs, "doubles"), store.add(key + "y", ys, "doubles")
    clipped = f"least(greatest({score}, {num(cal.X_min_)}), {num(cal.X_max_)})"
    # j (1-based) is the last threshold at or below x; x >= the first after clipping.
    x, tx, ty, j = "__sqlml_s.x", "__sqlml_s.xs", "__sqlml_s.ys", "__sqlml_j"
    slope = f"(({ty}[{j} + 1] - {ty}[{j}]) / ({tx}[{j} + 1] - {tx}[{j}]))"
    interp = (f"CASE WHEN {j} >= len({tx}) OR {tx}[{j}] = {x} THEN {ty}[{j}] "
              f"ELSE (({slope} * ({x} - {tx}[{j}])) + {ty}[{j}]) END")
    return (f"list_transform([{{'x': {clipped}, 'xs': {X_sql}, 'ys': {Y_sql}}}], "
            f"lambda __sqlml_s: "
            f"list_transform([len(list_filter({tx}, lambda __sqlml_v: __sqlml_v <= {x}))], "
            f"lambda {j}: {interp})[1])[1]")
