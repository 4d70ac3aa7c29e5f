"""Stored models as the generated SQL functions serve them.

A model is loaded once per process from its catalog artifact and cached per database instance.
Scoring a DuckDB batch (2048 rows) through a scikit-learn pipeline costs far more in per-call
validation and thread start-up than in arithmetic, so pipelines made only of imputers, scalers and
a linear or histogram-boosting model are compiled here into the same numpy operations the pipeline
performs, in the same order, and give the same numbers. Every other pipeline is called as is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import expit
from sklearn import config_context
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import softmax

from sqlml.catalog import artifacts
from sqlml.catalog import store as catalog
from sqlml.errors import ArtifactError, PredictionInputError
from sqlml.train.preprocessing import Feature, to_frame

if TYPE_CHECKING:
    # Loaded only with a recommender (see load): most scoring never needs sqlml.recommend.
    from sqlml.recommend.model import RecommenderModel

# Scores for a batch of arrow feature columns, as StoredModel.scores gives them: (columns, fn).
FastPath = Callable[[list, str], np.ndarray]


@dataclass
class StoredModel:
    name: str
    version: int
    problem_type: str
    model_type: str
    function_name: str
    features: list[Feature]
    classes: list | None
    positive_class: object
    threshold: float | None
    pipeline: Pipeline
    _fast: FastPath | None = field(default=None, repr=False)

    @property
    def is_classifier(self) -> bool:
        return self.problem_type != "regression"

    @property
    def class_list(self) -> list:
        """A classifier's classes, which the catalog stores for every classifier."""
        if self.classes is None:
            raise ArtifactError(f"model {self.name!r} version {self.version}: a "
                                f"{self.problem_type} model must have its classes recorded in "
                                f"the catalog, got none. {artifacts.REMEDY}")
        return self.classes

    def frame(self, columns: list, fn: str) -> pd.DataFrame:
        return to_frame(columns, self.features, fn)

    # -- prediction on arrow columns (the UDF path) ---------------------------------------------
    def scores(self, columns: list, fn: str) -> np.ndarray:
        """Class probabilities (n, k) for classifiers; predicted values (n,) for regression."""
        if self._fast is not None:
            return self._fast(columns, fn)
        frame = self.frame(columns, fn)
        with config_context(assume_finite=True, skip_parameter_validation=True):
            if self.is_classifier:
                return self.pipeline.predict_proba(frame)
            return self.pipeline.predict(frame).astype(np.float64, copy=False)

    def labels_from_scores(self, scores: np.ndarray) -> np.ndarray:
        if not self.is_classifier:
            return scores
        classes = np.asarray(self.class_list, dtype=object)
        if len(classes) == 2:
            pos = self.class_list.index(self.positive_class)
            return np.where(scores[:, pos] >= self.threshold, classes[pos], classes[1 - pos])
        return classes[np.argmax(scores, axis=1)]

    # -- prediction on a DataFrame (the Python API) ---------------------------------------------
    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        # Columns found as a whole-row call finds them: by name, without regard to case.
        at, missing = find_features(self, [str(c) for c in df.columns])
        if missing:
            raise PredictionInputError(
                f"predict_proba: the DataFrame has no column {', '.join(map(repr, missing))}, "
                f"which model {self.name!r} needs. It expects {_signature(self)}. Add those "
                f"columns to the DataFrame.")
        if len(df) == 0:   # as SQL returns no rows for no rows; scikit-learn would refuse
            return np.empty((0, len(self.class_list)) if self.is_classifier else 0)
        cols = [pa.array(df.iloc[:, i]) for i in at]
        return self.scores(cols, self.function_name)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return self.labels_from_scores(self.predict_proba(df))


@dataclass
class StoredRecommender:
    name: str
    version: int
    function_name: str
    model: RecommenderModel
    problem_type: str = "recommendation"

    def serving(self, cur, codes: np.ndarray) -> RecommenderModel:
        """The model to recommend for the users ``codes`` with: itself, or, when its seen pairs
        are kept in its ``_seen`` table (engine 'spark'), a copy holding those users' pairs,
        read from the table in SQL; the whole table never comes into this process."""
        model = self.model
        if not model.seen_in_table or not len(codes):
            return model
        from sqlml.catalog import generated

        kind = {"int": "BIGINT", "str": "VARCHAR", "uuid": "UUID"}[model.user_kind]
        ids = model.user_ids[np.unique(codes)].tolist()
        got = cur.execute(f"SELECT user_id, item_id, value FROM "
                          f"{generated.factor_table(self.name, self.version)}_seen WHERE user_id "
                          f"IN (SELECT unnest(?::{kind}[]))", [ids]).fetchnumpy()
        users = model._codes(np.asarray(got["user_id"]), "user")
        items = model._codes(np.asarray(got["item_id"]), "item")
        return model.with_seen(users, items, np.asarray(got["value"], np.float64))


def load(cur, name: str, version: int) -> StoredModel | StoredRecommender:
    row = catalog.version_row(cur, name, version, with_artifact=True)
    if artifacts.sha256(row["artifact"]) != row["artifact_sha256"]:
        raise ArtifactError(
            f"model {name!r} version {version}: the stored artifact does not match its recorded "
            f"checksum, so the file was altered or damaged. Retrain the model with sqlml, or "
            f"restore the file from a trusted copy.")
    if row["problem_type"] == "forecast":
        raise PredictionInputError(
            f"model {name!r} is a forecast: its forecasts were computed at training and are "
            f"stored, with nothing to score row by row. Read them with FROM "
            f"{row['function_name']}() (horizon := n for fewer periods), and its backtest with "
            f"FROM ml_backtest('{name}').")
    if row["problem_type"] == "recommendation":
        from sqlml.recommend.train import loads

        recommender = loads(row["artifact"], f"model {name!r} version {version}")
        return StoredRecommender(name, version, row["function_name"], recommender)
    pipeline = artifacts.loads(row["artifact"], name=f"model {name!r} version {version}")
    classes = json.loads(row["classes"]) if row["classes"] else None
    positive = None
    if classes is not None and row["positive_class"] is not None:
        positive = next(c for c in classes if str(c) == row["positive_class"])
    model = StoredModel(
        name=name, version=version, problem_type=row["problem_type"],
        model_type=row["model_type"], function_name=row["function_name"],
        features=[Feature(**f) for f in json.loads(row["features"])], classes=classes,
        positive_class=positive, threshold=row["threshold"], pipeline=pipeline)
    model._fast = compile_fast_path(model)
    return model


class ModelCache:
    """Loaded models of one database instance, keyed by name and version."""

    def __init__(self, instance) -> None:
        self._instance = instance
        self._lock = threading.Lock()
        self._active: dict[str, int] = {}
        self._models: dict[tuple[str, int], StoredModel | StoredRecommender] = {}

    def get(self, ref: str) -> StoredModel | StoredRecommender:
        name, _, pinned = ref.partition("@")
        with self._lock:
            # A pin that is not a number is left to catalog.resolve_version, which explains it.
            version = (int(pinned) if pinned.isdigit() else None) if pinned \
                else self._active.get(name)
            model = self._models.get((name, version)) if version else None
        if model is not None:
            return model
        cur = self._instance.cursor()
        try:
            version = catalog.resolve_version(cur, name, pinned, ref)
            model = load(cur, name, version)
        finally:
            cur.close()
        with self._lock:
            self._models[(name, version)] = model
            if not pinned:
                self._active[name] = version
        return model

    def forget(self, name: str) -> None:
        """Called after a new version, a rollback or a drop, so the next call re-reads."""
        with self._lock:
            self._active.pop(name, None)
            for key in [k for k in self._models if k[0] == name]:
                del self._models[key]


def feature_columns(model: StoredModel, args: list, fn: str) -> list:
    """The UDF's feature arguments in training order: positional, or one whole-row STRUCT."""
    n = len(model.features)
    # One STRUCT argument is a whole row (STRUCT columns are never features themselves).
    if len(args) == 1 and pa.types.is_struct(args[0].type):
        row = args[0].combine_chunks() if isinstance(args[0], pa.ChunkedArray) else args[0]
        at, missing = find_features(model, [row.type.field(i).name
                                            for i in range(row.type.num_fields)])
        if missing:
            raise PredictionInputError(
                f"{fn}: the row passed has no column {', '.join(map(repr, missing))}, which "
                f"model {model.name!r} needs. It expects {_signature(model)}. Select those "
                f"columns in the row, or pass them positionally.")
        return [row.field(i) for i in at]
    if len(args) != n:
        raise PredictionInputError(
            f"{fn}: model {model.name!r} version {model.version} takes {n} feature columns in "
            f"training order, {_signature(model)}; got {len(args)} argument(s). Pass them in that "
            f"order, a whole row ({fn}(t) FROM t), or *COLUMNS(...).")
    return args


def find_features(model: StoredModel, names: list[str]) -> tuple[list[int], list[str]]:
    """Where the model's features stand among ``names``, in training order, matched without
    regard to case as DuckDB matches column names; and the features that are not there (the
    positions are empty then)."""
    lowered = {n.lower(): i for i, n in enumerate(names)}
    missing = [f.name for f in model.features if f.name.lower() not in lowered]
    return ([] if missing else [lowered[f.name.lower()] for f in model.features]), missing


def _signature(model: StoredModel) -> str:
    return "(" + ", ".join(f"{f.name} {f.type}" for f in model.features) + ")"


# ---------------------------------------------------------------------------------------------
# The fast path
# ---------------------------------------------------------------------------------------------
_LINEAR = (LinearRegression, Ridge, Lasso, ElasticNet)
_HGB = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def compile_fast_path(model: StoredModel) -> FastPath | None:
    """A function (columns, fn) -> scores equal to the pipeline's, or None where not covered."""
    steps = model.pipeline.steps
    if len(steps) != 2 or any(f.kind not in ("numeric", "boolean") for f in model.features):
        return None
    prep, est = steps[0][1], steps[1][1]
    blocks = [_numeric_block(t) for _, t, cols in prep.transformers_
              if not (t == "drop" and len(cols) == 0)]
    if len(blocks) != len(model.features) or any(b is None for b in blocks):
        return None
    predict = _estimator_fast(est)
    if predict is None:
        return None
    # The ColumnTransformer's output layout: per feature its value, then its missing-value
    # indicator where the imputer keeps one. Scaling is elementwise, so scaling the whole matrix
    # at once gives the same numbers as scaling block by block (x - 0 and x / 1 are exact).
    layout: list[tuple[int, float, bool]] = []
    means: list[float] = []
    scales: list[float] = []
    for stat, indicate, mean, scale in blocks:
        layout.append((len(means), stat, indicate))
        width = 2 if indicate else 1
        means += list(mean) if mean is not None else [0.0] * width
        scales += list(scale) if scale is not None else [1.0] * width
    mean_row, scale_row = np.array(means), np.array(scales)
    scaled = bool(np.any(mean_row != 0.0) or np.any(scale_row != 1.0))
    width = len(means)

    def fast(columns: list, fn: str) -> np.ndarray:
        X = np.empty((len(columns[0]), width))
        for (j, stat, indicate), col, f in zip(layout, columns, model.features, strict=True):
            x = _as_float(col, f, fn)
            missing = np.isnan(x)
            X[:, j] = x
            if missing.any():
                X[missing, j] = stat
            if indicate:
                X[:, j + 1] = missing
        if scaled:
            X -= mean_row
            X /= scale_row
        return predict(X)

    return fast


def _numeric_block(trans):
    if not isinstance(trans, Pipeline):
        return None
    kinds = [type(s) for _, s in trans.steps]
    if kinds not in ([SimpleImputer], [SimpleImputer, StandardScaler]):
        return None
    imputer = trans.steps[0][1]
    indicate = imputer.indicator_ is not None and len(imputer.indicator_.features_) > 0
    mean = scale = None
    if len(kinds) == 2:
        scaler = trans.steps[1][1]
        if not (scaler.with_mean and scaler.with_std):
            return None
        mean, scale = scaler.mean_, scaler.scale_
    return float(imputer.statistics_[0]), indicate, mean, scale


def _estimator_fast(est):
    if isinstance(est, LogisticRegression):
        coef_t, intercept = est.coef_.T, est.intercept_
        if len(est.classes_) == 2:
            def predict(X):
                p = expit((X @ coef_t + intercept).ravel())
                return np.vstack([1 - p, p]).T
        else:
            def predict(X):
                return softmax(X @ coef_t + intercept, copy=False)
        return predict
    if isinstance(est, _LINEAR) and np.ndim(est.coef_) == 1:
        coef_t, intercept = est.coef_.T, est.intercept_
        return lambda X: X @ coef_t + intercept
    cats = getattr(getattr(est, "_bin_mapper", None), "is_categorical_", None)
    if isinstance(est, _HGB) and (cats is None or not np.any(cats)):
        baseline, loss = est._baseline_prediction, est._loss
        classifier = isinstance(est, HistGradientBoostingClassifier)
        known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        trees = [(k, p.nodes, p.raw_left_cat_bitsets) for it in est._predictors
                 for k, p in enumerate(it)]

        def predict(X):
            raw = np.zeros((X.shape[0], est.n_trees_per_iteration_), dtype=baseline.dtype,
                           order="F")
            raw += baseline
            out = np.empty(X.shape[0])
            # What HistGradientBoosting._predict_iterations does, tree by tree and in the same
            # order, minus its per-call set-up. One OpenMP thread per call: DuckDB already runs
            # one UDF call per core, and a thread team per 2048-row batch costs more than it saves.
            for k, nodes, cat_bitsets in trees:
                _predict_from_raw_data(nodes, X, cat_bitsets, known, f_idx_map, 1, out)
                raw[:, k] += out
            return loss.predict_proba(raw) if classifier else loss.link.inverse(raw.ravel())
        return predict
    return None


def _as_float(col, f: Feature, fn: str) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_float64(col.type):
        return col.to_numpy(zero_copy_only=False)
    try:
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return to_frame([col], [f], fn)[f.name].to_numpy()


__all__ = ["ModelCache", "StoredModel", "StoredRecommender", "feature_columns", "load"]
