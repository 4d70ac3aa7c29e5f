"""Regularisation strengths ``l1`` and ``l2``, mapped onto each estimator's own parameters.

``hyperparameters := {l1: 0.1}`` or ``{l2: 1.0}`` or both (elastic net) name a penalty the same way
for every model type that has one; each becomes the estimator's parameters, on its own scale:

- logistic (LogisticRegression): ``C = 1 / (l1 + l2)``, ``l1_ratio = l1 / (l1 + l2)``, so the
  penalty added to the summed log loss is ``l1 * |w|_1 + l2 / 2 * |w|_2^2``. lbfgs does no L1, so
  unless a solver is named: ``liblinear`` for L1 alone on a binary target (coordinate descent,
  far quicker than saga on sqlml's sparse TF-IDF features), else ``saga``.
- linear regression (Ridge): ``alpha = l2``. lasso (Lasso): ``alpha = l1``. elastic_net
  (ElasticNet): ``alpha = l1 + l2``, ``l1_ratio = l1 / (l1 + l2)``.
- gradient boosting: ``l2_regularization = l2``. mlp: ``alpha = l2`` (its L2 penalty).
"""

from __future__ import annotations

import inspect

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor

from sqlml.errors import TrainingError
from sqlml.train.scaled_mlp import ScaledTargetMLPRegressor

FN = "ml_create_model"
# scikit-learn before 1.8 reads LogisticRegression's l1_ratio only under penalty='elasticnet'
# (1.8 deprecates penalty and reads l1_ratio alone), so there the penalty is named as well.
_NAMES_PENALTY = inspect.signature(LogisticRegression).parameters["penalty"].default != "deprecated"
NAMES = ("l1", "l2")
# Per estimator: the penalties it has, and the parameters l1/l2 set (so giving both is a clash).
_TAKES = {
    LogisticRegression: (("l1", "l2"), ("C", "l1_ratio", "penalty")),
    Ridge: (("l2",), ("alpha",)),
    Lasso: (("l1",), ("alpha",)),
    ElasticNet: (("l1", "l2"), ("alpha", "l1_ratio")),
    HistGradientBoostingClassifier: (("l2",), ("l2_regularization",)),
    HistGradientBoostingRegressor: (("l2",), ("l2_regularization",)),
    MLPClassifier: (("l2",), ("alpha",)),
    MLPRegressor: (("l2",), ("alpha",)),
    ScaledTargetMLPRegressor: (("l2",), ("alpha",)),
}
_OTHER = {"l1": "model_type 'lasso' or 'elastic_net' (regression) or 'logistic' (classification)",
          "l2": "model_type 'logistic', 'linear', 'elastic_net', 'gradient_boosting' or 'mlp'"}


def accepted(cls) -> tuple[str, ...]:
    """The penalty names an estimator class takes."""
    return _TAKES.get(cls, ((), ()))[0]


def sets(cls) -> tuple[str, ...]:
    """The estimator parameters that l1 and l2 set."""
    return _TAKES.get(cls, ((), ()))[1]


def translate(model_type: str, cls, hyper: dict, problem_type: str) -> dict:
    """hyperparameters with l1/l2 replaced by the estimator's own parameters."""
    given = {k: hyper[k] for k in NAMES if hyper.get(k) is not None}
    if not given:
        return {k: v for k, v in hyper.items() if k not in NAMES}
    takes, sets = _TAKES.get(cls, ((), ()))
    for name, v in given.items():
        if name not in takes:
            has = f"only {' and '.join(takes)}" if takes else "no l1 or l2 penalty"
            raise TrainingError(
                f"{FN}: hyperparameter {name!r} is an {name.upper()} penalty strength, but "
                f"model_type {model_type!r} ({cls.__name__}) has {has}. Leave {name} out, or use "
                f"{_OTHER[name]}.")
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise TrainingError(
                f"{FN}: hyperparameter {name!r} is a penalty strength and must be a number > 0, "
                f"got {v!r}. Use e.g. {{{name}: 0.1}}, or leave it out for no {name.upper()} "
                f"penalty.")
    clash = [k for k in sets if k in hyper]
    if clash:
        named = " and ".join(map(repr, given))
        raise TrainingError(
            f"{FN}: hyperparameters {named} and {clash[0]!r} both set the penalty of "
            f"{cls.__name__} (model_type {model_type!r}), got {named} = "
            f"{' and '.join(map(repr, given.values()))} and {clash[0]!r} = {hyper[clash[0]]!r}. "
            f"Give the strength as {named} or as {clash[0]!r}, not both.")
    l1, l2 = float(given.get("l1", 0.0)), float(given.get("l2", 0.0))
    out = {k: v for k, v in hyper.items() if k not in NAMES}
    if cls is LogisticRegression:
        out.update(C=1.0 / (l1 + l2), l1_ratio=l1 / (l1 + l2))
        if _NAMES_PENALTY:
            out["penalty"] = "l1" if l2 == 0 else "l2" if l1 == 0 else "elasticnet"
        if l1 > 0:
            binary = problem_type == "binary_classification"
            out.setdefault("solver", "liblinear" if binary and l2 == 0 else "saga")
    elif cls is ElasticNet:
        out.update(alpha=l1 + l2, l1_ratio=l1 / (l1 + l2))
    elif cls is Lasso:
        out["alpha"] = l1
    elif cls in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        out["l2_regularization"] = l2
    else:   # Ridge and MLPs: alpha is their L2 strength
        out["alpha"] = l2
    return out

