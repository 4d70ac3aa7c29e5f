"""The model types ``ml_create_model`` can train, and their scikit-learn estimators."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from sqlml import spec
from sqlml.errors import TrainingError, did_you_mean
from sqlml.train import (
    penalties,
    sklearn_compat,  # noqa: F401  (its import fixes older scikit-learn)
)
from sqlml.train.scaled_mlp import ScaledTargetMLPRegressor

CLASSIFICATION = spec.CLASSIFICATION
PROBLEM_TYPES = spec.SUPERVISED_PROBLEM_TYPES   # recommendation is trained by sqlml.recommend


@dataclass(frozen=True)
class ModelType:
    name: str
    classifier: Any             # estimator class for classification, or None
    regressor: Any              # estimator class for regression, or None
    needs_scaling: bool         # distances and gradients need comparable units
    sparse_ok: bool             # accepts the sparse matrix TF-IDF produces
    defaults: dict              # sqlml's defaults, which differ from scikit-learn's on purpose
    fixed: tuple = ()           # (parameter, value) pairs a user cannot change
    small_data: tuple = ()      # defaults replaced below SMALL_DATA_ROWS training rows
    held_out: tuple = ()        # defaults set from HELD_OUT_ROWS training rows (see below)

    def estimator_class(self, problem_type: str):
        cls = self.classifier if problem_type in CLASSIFICATION else self.regressor
        if cls is None:
            kind = "classification" if problem_type in CLASSIFICATION else "regression"
            fits = [m.name for m in MODEL_TYPES.values()
                    if (m.classifier if kind == "classification" else m.regressor) is not None]
            raise TrainingError(
                f"ml_create_model: model_type {self.name!r} does not do {kind}, which the target "
                f"asks for ({problem_type}). Use one of: {', '.join(fits)}, or 'auto'.")
        return cls

    def make(self, problem_type: str, hyperparameters: dict, random_state: int,
             rows: int | None = None):
        """The estimator; ``rows`` (training rows, when known) picks size-dependent defaults."""
        cls = self.estimator_class(problem_type)
        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        names = allowed + list(penalties.accepted(cls))
        for key in hyperparameters:
            if key not in names and key not in penalties.NAMES:
                raise TrainingError(
                    f"ml_create_model: hyperparameter {key!r} is not a parameter of "
                    f"{cls.__name__} (model_type {self.name!r}).{did_you_mean(key, names)} "
                    f"Valid names: {', '.join(names)}.")
        hyperparameters = penalties.translate(self.name, cls, hyperparameters, problem_type)
        small = dict(self.small_data) if rows is not None and rows < SMALL_DATA_ROWS else {}
        held = dict(self.held_out) if rows is not None and rows >= HELD_OUT_ROWS else {}
        params = {**self.defaults, **held, **small, **hyperparameters}
        if rows is not None and "n_neighbors" not in hyperparameters and "n_neighbors" in params:
            # KNN cannot ask a 10-row table for its 15 nearest neighbours.
            params["n_neighbors"] = max(1, min(params["n_neighbors"], rows))
        if "random_state" in allowed:
            params.setdefault("random_state", random_state)
        params = {k: v for k, v in params.items() if k in allowed}
        params.update(self.fixed)
        try:
            est = cls(**params)
            est._validate_params()
        except (TypeError, ValueError) as exc:
            raise TrainingError(
                f"ml_create_model: hyperparameters for model_type {self.name!r} are invalid: "
                f"{exc} Fix the value in hyperparameters := {{...}}.") from None
        return est


# The registry of estimators; sqlml.spec declares the same names (tests/test_spec.py checks).
MODEL_TYPES = {m.name: m for m in (
    ModelType("logistic", LogisticRegression, None, True, True, {"max_iter": 2000}),
    ModelType("linear", LogisticRegression, Ridge, True, True, {"max_iter": 2000}),
    ModelType("lasso", None, Lasso, True, True, {"alpha": 0.01, "max_iter": 5000}),
    ModelType("elastic_net", None, ElasticNet,
              True, True, {"alpha": 0.01, "l1_ratio": 0.5, "max_iter": 5000}),
    # One readable tree. Depth 12 (at most 8191 nodes) keeps it well inside the node limit of
    # sqlml.compile.trees, so it always gets a plain-SQL macro, and a single deeper tree mostly
    # memorises noise; min_samples_leaf 5 keeps a leaf's probability off one or two rows.
    ModelType("decision_tree", DecisionTreeClassifier, DecisionTreeRegressor, False, False,
              {"max_depth": 12, "min_samples_leaf": 5}),
    ModelType("random_forest", RandomForestClassifier, RandomForestRegressor, False, False,
              {"n_estimators": 200, "min_samples_leaf": 2, "n_jobs": -1}),
    # Early stopping on a held-out 10% of the rows (its loss, 10 rounds without gain) from
    # HELD_OUT_ROWS training rows, where scikit-learn's 'auto' waits for 10,000: on the demo's
    # 4,000 training rows it stops after ~40 of the 200 rounds at the same AUC, 3x faster
    # (benchmarks/bench_auto.py). Below, the held-out rows would be too few to judge a round.
    ModelType("gradient_boosting", HistGradientBoostingClassifier, HistGradientBoostingRegressor,
              False, False, {"max_iter": 200, "learning_rate": 0.1, "early_stopping": "auto"},
              held_out=(("early_stopping", True), ("n_iter_no_change", 10),
                        ("validation_fraction", 0.1))),
    # Brute force only: a stored KD/ball tree is an index structure a crafted file could point
    # out of bounds, and brute force is exact and fast enough at the sizes KNN suits.
    ModelType("knn", KNeighborsClassifier, KNeighborsRegressor, True, True,
              {"n_neighbors": 15, "weights": "distance"}, (("algorithm", "brute"),)),
    # Early stopping holds out 10% of the rows and stops after 10 epochs without a better
    # score on them. On small data those few rows often score the same for 10 epochs while the
    # network is still learning: on scikit-learn's iris data it stopped at chance (accuracy
    # 0.33, against 0.95 without it). So, as HistGradientBoosting's early_stopping='auto' does,
    # it is on only from 10,000 training rows.
    ModelType("mlp", MLPClassifier, ScaledTargetMLPRegressor, True, True,
              {"hidden_layer_sizes": (64,), "early_stopping": True, "max_iter": 300},
              small_data=(("early_stopping", False),)),
)}
SMALL_DATA_ROWS = 10_000
HELD_OUT_ROWS = 1_000

# Candidates 'auto' compares, quickest first so a short max_runtime still tries several.
AUTO_CANDIDATES = {
    "classification": ("logistic", "gradient_boosting", "random_forest"),
    "regression": ("linear", "gradient_boosting", "random_forest"),
}


def lookup(name: str) -> ModelType:
    return MODEL_TYPES[spec.check(spec.PARAM["model_type"], name)]   # 'auto' is no model type
