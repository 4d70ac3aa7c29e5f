"""sqlml's model types and hyperparameter names, mapped onto Spark MLlib estimators.

Hyperparameters keep sqlml's (scikit-learn's) names and meaning where MLlib has the same
parameter; the penalties are rescaled because MLlib averages the loss over the rows where
scikit-learn sums it: logistic ``C`` becomes ``regParam = 1 / (C n)``, ridge ``alpha`` becomes
``regParam = alpha / n``; lasso and elastic net already average (``regParam = alpha``,
``elasticNetParam = l1_ratio``).
"""

from __future__ import annotations

from typing import Any

from sqlml.errors import TrainingError, did_you_mean

FN = "ml_create_model"
SPARK_MODEL_TYPES = ("logistic", "linear", "lasso", "elastic_net", "decision_tree",
                     "random_forest", "gradient_boosting")
# model type -> {sqlml hyperparameter: default}
ACCEPTED: dict[str, dict[str, Any]] = {
    "logistic": {"C": 1.0, "max_iter": 100},
    "linear": {"C": 1.0, "alpha": 1.0, "max_iter": 100},
    "lasso": {"alpha": 0.01, "max_iter": 100},
    "elastic_net": {"alpha": 0.01, "l1_ratio": 0.5, "max_iter": 100},
    "decision_tree": {"max_depth": 12, "min_samples_leaf": 5},
    "random_forest": {"n_estimators": 200, "max_depth": 12, "min_samples_leaf": 2,
                      "max_features": None},
    "gradient_boosting": {"max_iter": 100, "learning_rate": 0.1, "max_depth": 5,
                          "min_samples_leaf": 20},
}


def _hyper(req, problem_type: str) -> dict:
    accepted = dict(ACCEPTED[req.model_type])
    if req.model_type == "linear":
        accepted.pop("alpha" if problem_type != "regression" else "C")
    for key, value in req.hyperparameters.items():
        if key not in accepted:
            raise TrainingError(
                f"{FN}: hyperparameter {key!r} is not available for model_type "
                f"{req.model_type!r} with engine 'spark'.{did_you_mean(key, accepted)} "
                f"Valid names: {', '.join(accepted)}.")
        if isinstance(value, dict | list):
            raise TrainingError(
                f"{FN}: hyperparameter {key!r} {value!r}: tuning ranges are not available with "
                f"engine 'spark' yet. Give one value, or train in-process.")
    return {**accepted, **req.hyperparameters}


def spark_estimator(req, problem, rows: int):
    """The MLlib estimator for the request, and the parameters it was given."""
    from pyspark.ml import classification as C
    from pyspark.ml import regression as R

    h = _hyper(req, problem.problem_type)
    seed = int(req.settings["random_state"])
    clf = problem.classes is not None
    mt = req.model_type
    if mt in ("logistic", "linear") and clf:
        params: dict[str, Any] = {
            "regParam": 1.0 / (float(h["C"]) * rows), "maxIter": int(h["max_iter"]),
            "elasticNetParam": 0.0, "standardization": False}
        return C.LogisticRegression(**params), {"estimator": "LogisticRegression", **params}
    if mt in ("linear", "lasso", "elastic_net"):
        l1 = {"linear": 0.0, "lasso": 1.0}.get(mt, h.get("l1_ratio", 0.5))
        reg = float(h["alpha"]) / rows if mt == "linear" else float(h["alpha"])
        params = {"regParam": reg, "elasticNetParam": float(l1), "maxIter": int(h["max_iter"]),
                  "standardization": False}
        return R.LinearRegression(**params), {"estimator": "LinearRegression", **params}
    cls: Any
    tree: dict[str, Any] = {"maxDepth": min(30, int(h["max_depth"])),
            "minInstancesPerNode": int(h["min_samples_leaf"]), "seed": seed}
    if mt == "decision_tree":
        cls = C.DecisionTreeClassifier if clf else R.DecisionTreeRegressor
        return cls(**tree), {"estimator": cls.__name__, **tree}
    if mt == "gradient_boosting":
        if clf and len(problem.classes) > 2:
            raise TrainingError(
                f"{FN}: model_type 'gradient_boosting' with engine 'spark' is binary or "
                f"regression only (MLlib's GBTClassifier has two classes); target "
                f"{req.target!r} has {len(problem.classes)}. Use 'random_forest' or "
                f"'logistic', or train in-process.")
        tree |= {"maxIter": int(h["max_iter"]), "stepSize": float(h["learning_rate"])}
        cls = C.GBTClassifier if clf else R.GBTRegressor
        return cls(**tree), {"estimator": cls.__name__, **tree}
    strategy = h["max_features"] or ("sqrt" if clf else "all")
    tree |= {"numTrees": int(h["n_estimators"]),
             "featureSubsetStrategy": str(strategy if strategy != 1.0 else "all")}
    cls = C.RandomForestClassifier if clf else R.RandomForestRegressor
    return cls(**tree), {"estimator": cls.__name__, **tree}
