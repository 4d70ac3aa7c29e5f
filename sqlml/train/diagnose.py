"""Over/underfitting diagnosis: ``settings := {diagnose: true}`` and ``FROM ml_diagnose(model)``.

Computed at training time, and only when asked: it costs one more fit on the training split plus
a learning curve (5 sizes x 3 folds = 15 fits on at most ``MAX_ROWS`` rows), which would more
than double the time of a default ``ml_create_model`` (that the benchmarks compare with
hand-written scikit-learn). Lazily computing it later would need the training query to return the
same rows again, which nothing guarantees.

Scores are the model's objective, in its own units (rmse, log_loss... positive, lower is better;
auc, accuracy, r2... greater is better). The verdict compares *skills* so that one set of
thresholds works for every objective:

    skill = (score - baseline) / (perfect - baseline)      in "greater is better" scorer units

where ``baseline`` is the score of a constant model (``DummyClassifier(strategy='prior')`` or
``DummyRegressor()``, fitted on the training split) on the same rows and ``perfect`` is the best
possible score (1 for bounded metrics, 0 for errors and losses). Skill 0 is no better than
predicting a constant; 1 is perfect (for auc, skill = 2 auc - 1; for rmse, 1 - rmse / rmse of the
mean). Learning-curve scores use the validation baseline.

Verdict, first rule that holds:
1. ``inconclusive``: a skill is undefined (the constant model is already perfect).
2. ``overfitting``: training skill - validation skill > ``GAP`` (0.10), on the holdout and,
   where there is a learning curve, at its full size too (a small holdout alone can show a
   gap by chance).
3. ``needs_more_data``: validation skill < ``POOR`` (0.5) and the curve still rises: its
   cross-validated skill at the full training size exceeds the one at 55% by more than ``RISE``
   (0.02).
4. ``underfitting``: validation skill < ``POOR`` (and the curve is flat).
5. ``good_fit``: otherwise.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import get_scorer
from sklearn.model_selection import learning_curve

GAP = 0.10
POOR = 0.5
RISE = 0.02
MAX_ROWS = 5000                              # rows of the training split the curve uses at most
SIZES = (0.1, 0.325, 0.55, 0.775, 1.0)       # fractions of each curve fold's training rows
CV_FOLDS = 3

REMEDIES = {
    "overfitting": "the model learns noise of the training rows: more regularisation (larger "
                   "l2 / alpha, smaller C), fewer features or smaller n-grams, fewer bins, "
                   "shallower trees (max_depth, larger min_samples_leaf), or more data",
    "underfitting": "the model is too simple for the data: more or richer features (larger "
                    "n-grams, crossed features, a non-linear model_type such as "
                    "gradient_boosting), less regularisation",
    "needs_more_data": "poor on both, but the learning curve still rises: more data (training "
                       "rows), or more passes (max_iter, n_estimators)",
    "good_fit": "no change needed: training and validation scores are close and good",
    "inconclusive": "a constant prediction already scores perfectly on these rows; check the "
                    "target",
}
VERDICTS = tuple(REMEDIES)


def _perfect(scoring: str | None) -> float:
    return 0.0 if isinstance(scoring, str) and scoring.startswith("neg_") else 1.0


def _natural(score: float, scoring) -> float:
    """Scorer units to the objective's own units (losses and errors positive)."""
    return -score if isinstance(scoring, str) and scoring.startswith("neg_") else score


def skill(score: float, baseline: float, perfect: float) -> float:
    span = perfect - baseline
    if not np.isfinite(score) or not np.isfinite(baseline) or abs(span) < 1e-12:
        return float("nan")
    return float((score - baseline) / span)


def verdict(train_skill: float, val_skill: float, curve_skills: list[float],
            curve_gap: float | None = None) -> str:
    """``curve_gap``: training minus cross-validated skill at the curve's full size. A holdout
    of a few dozen rows can show a gap by chance; the curve's folds score every training row,
    so overfitting needs both gaps."""
    if not (np.isfinite(train_skill) and np.isfinite(val_skill)):
        return "inconclusive"
    if train_skill - val_skill > GAP and (curve_gap is None or not np.isfinite(curve_gap)
                                          or curve_gap > GAP):
        return "overfitting"
    finite = [s for s in curve_skills if np.isfinite(s)]
    rising = len(finite) >= 3 and finite[-1] - finite[-3] > RISE
    if val_skill < POOR:
        return "needs_more_data" if rising else "underfitting"
    return "good_fit"


def diagnose(pipeline, X, y, train_idx, val_idx, problem_type: str, score_with, cv,
             random_state: int) -> list[tuple]:
    """Catalog rows (step, kind, train_rows, training_score, validation_score, training_skill,
    validation_skill, verdict, remedy). Step 0 is the holdout comparison with the verdict; steps
    1.. are the learning curve (mean scores over its folds)."""
    scorer = get_scorer(score_with) if isinstance(score_with, str) else score_with
    Xt, yt, Xv, yv = X.iloc[train_idx], y[train_idx], X.iloc[val_idx], y[val_idx]
    perfect = _perfect(score_with)
    fitted = clone(pipeline).fit(Xt, yt)
    dummy = (DummyRegressor() if problem_type == "regression"
             else DummyClassifier(strategy="prior")).fit(Xt, yt)
    tr, va = float(scorer(fitted, Xt, yt)), float(scorer(fitted, Xv, yv))
    base_tr, base_va = float(scorer(dummy, Xt, yt)), float(scorer(dummy, Xv, yv))
    tr_skill, va_skill = skill(tr, base_tr, perfect), skill(va, base_va, perfect)

    if len(yt) > MAX_ROWS:
        keep = np.random.default_rng(random_state).choice(len(yt), MAX_ROWS, replace=False)
        keep.sort()
        Xc, yc = Xt.iloc[keep], yt[keep]
    else:
        Xc, yc = Xt, yt
    curve = []
    try:
        sizes, train_scores, test_scores = learning_curve(
            clone(pipeline), Xc, yc, train_sizes=np.array(SIZES), cv=cv, scoring=score_with,
            error_score=np.nan)
        for n, a, b in zip(sizes, np.nanmean(train_scores, axis=1),
                           np.nanmean(test_scores, axis=1), strict=True):
            curve.append((int(n), float(a), float(b), skill(float(a), base_tr, perfect),
                          skill(float(b), base_va, perfect)))
    except ValueError:
        curve = []   # too few rows of a class for the smallest size: verdict without the curve
    v = verdict(tr_skill, va_skill, [c[4] for c in curve],
                curve[-1][3] - curve[-1][4] if curve else None)
    rows: list[tuple] = [(0, "holdout", len(yt), _natural(tr, score_with), _natural(va, score_with),
             tr_skill, va_skill, v, REMEDIES[v])]
    rows += [(i, "learning_curve", n, _natural(a, score_with), _natural(b, score_with), sa, sb,
              None, None) for i, (n, a, b, sa, sb) in enumerate(curve, start=1)]
    return [tuple(None if isinstance(x, float) and not np.isfinite(x) else x for x in r)
            for r in rows]
