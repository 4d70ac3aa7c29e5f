"""Fitted Spark ML pipelines converted into the scikit-learn pipelines sqlml stores, compiles to
SQL and serves: the same preprocessing (median imputation with a missing indicator, standard
scaling, one-hot categories) with Spark's fitted values, and the same estimator (coefficients,
or trees rebuilt node by node), so that scores agree with Spark's ``transform``.

The sklearn side is built by fitting sqlml's own preprocessing and estimator classes on a few
synthetic rows that give them the right shape (columns, missing indicators, categories,
classes), then setting Spark's fitted values on them: no private constructor is relied on
except scikit-learn's ``Tree`` state, which sqlml's artifact loader validates node by node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.tree._tree import NODE_DTYPE, Tree

from sqlml.errors import TrainingError
from sqlml.train import preprocessing
from sqlml.train.preprocessing import Feature

FN = "ml_create_model"
MISSING = "(missing)"        # the category of a NULL, as in-process


@dataclass(frozen=True)
class Layout:
    """Where each feature sits in Spark's assembled vector: the numeric block first (per
    feature: value, then its missing indicator when the data has NULLs), then per categorical
    feature its one-hot slots (labels in Spark's order, then one for unknown labels)."""
    features: list[Feature]
    nullable: dict[str, bool]      # numeric feature -> has NULL/NaN in the full data

    @property
    def numeric(self) -> list[Feature]:
        return [f for f in self.features if f.kind in ("numeric", "boolean")]

    @property
    def categorical(self) -> list[Feature]:
        return [f for f in self.features if f.kind == "categorical"]

    def numeric_width(self) -> int:
        return sum(1 + self.nullable[f.name] for f in self.numeric)

    def spark_positions(self, labels: dict[str, list[str]]) -> list[int]:
        """For each output column of the sklearn transformer, its index in Spark's vector."""
        num_at, at = {}, 0
        for f in self.numeric:
            num_at[f.name] = at
            at += 1 + self.nullable[f.name]
        cat_at = {}
        for f in self.categorical:
            cat_at[f.name] = at
            at += len(labels[f.name]) + 1
        out: list[int] = []
        for f in self.features:
            if f.name in num_at:
                out += list(range(num_at[f.name], num_at[f.name] + 1 + self.nullable[f.name]))
            else:
                spark_order = labels[f.name]
                out += [cat_at[f.name] + spark_order.index(c) for c in sorted(spark_order)]
        return out


def prep_of(layout: Layout, fitted_stages: dict, scale: bool, dense: bool = True):
    """sqlml's ColumnTransformer with Spark's medians, means, deviations and categories."""
    prep = preprocessing.build_transformer(layout.features, dense=dense)
    labels = fitted_stages["labels"]
    rows = max(2, *(len(v) for v in labels.values())) if labels else 2
    frame = {}
    for f in layout.features:
        if f.kind == "categorical":
            vals = labels[f.name]
            frame[f.name] = np.array([vals[k % len(vals)] for k in range(rows)], dtype=object)
        else:
            col = np.arange(rows, dtype=float) % 2
            if layout.nullable[f.name]:
                col[-1] = np.nan
            frame[f.name] = col
    for _, pipe, _ in prep.transformers:
        enc = dict(pipe.steps).get("encode")
        if enc is not None and hasattr(enc, "max_categories"):
            enc.set_params(max_categories=None)   # Spark keeps every label; so does this
    prep.fit(pd.DataFrame(frame))
    _set_numeric(prep, layout, fitted_stages, scale)
    return prep


def _set_numeric(prep, layout: Layout, fitted_stages: dict, scale: bool) -> None:
    medians, mean, std = fitted_stages["medians"], fitted_stages["mean"], fitted_stages["std"]
    at = 0
    for f in layout.numeric:
        pipe = prep.named_transformers_[f.name]
        steps = dict(pipe.steps)
        steps["impute"].statistics_ = np.array([medians[f.name]], dtype=float)
        width = 1 + layout.nullable[f.name]
        if scale:
            m, s = np.asarray(mean[at:at + width], float), np.asarray(std[at:at + width], float)
            sc = steps["scale"]
            sc.mean_, sc.scale_ = m, np.where(s > 0, s, 1.0)
            sc.var_ = sc.scale_ ** 2
        at += width


# -- estimators ---------------------------------------------------------------------------------
def _dummy(n: int, classes: list | None, dtype) -> tuple[np.ndarray, np.ndarray]:
    """A few rows that give an estimator ``n`` features and the classes (or a numeric y)."""
    k = 2 if classes is None else len(classes)
    X = (np.arange(2 * k * n, dtype=float).reshape(2 * k, n) % 3)
    y = (np.arange(2 * k, dtype=float) % 2 if classes is None
         else np.asarray(list(classes) * 2, dtype=dtype))
    return X, y


def linear_of(template, spark_model, positions: list[int], classes: list | None, dtype=None):
    """sqlml's linear estimator (a fitted clone of ``template``) with Spark's coefficients."""
    est = clone(template).fit(*_dummy(len(positions), classes, dtype))
    if classes is None:
        est.coef_ = np.asarray(spark_model.coefficients.toArray(), float)[positions]
        est.intercept_ = float(spark_model.intercept)
    elif len(classes) == 2:
        est.coef_ = np.asarray(spark_model.coefficients.toArray(), float)[positions][None, :]
        est.intercept_ = np.array([float(spark_model.intercept)])
    else:
        est.coef_ = np.asarray(spark_model.coefficientMatrix.toArray(), float)[:, positions]
        est.intercept_ = np.asarray(spark_model.interceptVector.toArray(), float)
    return est


def trees_of(template, nodes: dict[int, list[dict]], positions: list[int],
             classes: list | None, dtype=None):
    """sqlml's tree estimator (DecisionTree* or RandomForest*) whose trees are Spark's, node
    for node: ``nodes`` maps a tree's number to Spark's saved node rows."""
    n = len(positions)
    sklearn_of = {spark: j for j, spark in enumerate(positions)}
    est = clone(template)
    if hasattr(est, "n_estimators"):
        est.set_params(n_estimators=len(nodes), n_jobs=None)
    est.fit(*_dummy(n, classes, dtype))
    k = 1 if classes is None else len(classes)
    members = est.estimators_ if hasattr(est, "estimators_") else [est]
    for member, t in zip(members, sorted(nodes), strict=True):
        member.tree_ = _tree(nodes[t], n, k, classes is not None, sklearn_of)
    return est


def _tree(rows: list[dict], n_features: int, k: int, classifier: bool,
          sklearn_of: dict[int, int]) -> Tree:
    """One scikit-learn Tree from Spark's node rows (ids in pre-order, -1 for no child)."""
    rows = sorted(rows, key=lambda r: r["id"])
    count = len(rows)
    nodes = np.zeros(count, dtype=NODE_DTYPE)
    values = np.zeros((count, 1, k))
    depth = np.zeros(count, dtype=int)
    for r in rows:
        i = r["id"]
        left, right = r["leftChild"], r["rightChild"]
        stats = np.asarray(r["impurityStats"], float)
        values[i, 0] = stats / stats.sum() if classifier and stats.sum() > 0 else (
            stats if classifier else [r["prediction"]])
        node = nodes[i]
        node["impurity"], node["n_node_samples"] = r["impurity"], r["rawCount"]
        node["weighted_n_node_samples"] = float(r["rawCount"])
        if left < 0:
            node["left_child"] = node["right_child"] = -1
            node["feature"], node["threshold"] = -2, -2.0
            continue
        split = r["split"]
        threshold, swap = _threshold(split)
        node["feature"] = _feature(sklearn_of, split)
        node["threshold"] = threshold
        node["left_child"], node["right_child"] = (right, left) if swap else (left, right)
        depth[left] = depth[right] = depth[i] + 1
    tree = Tree(n_features, np.array([k if classifier else 1], dtype=np.intp), 1)
    tree.__setstate__({"max_depth": int(depth.max()), "node_count": count, "nodes": nodes,
                       "values": values})
    return tree


def _threshold(split: dict) -> tuple[float, bool]:
    """(threshold, swap children) of a Spark split as ``x <= threshold`` goes left. A
    continuous split is that already; a binary categorical one (one-hot and boolean features
    carry Spark's binary metadata) sends one of {0, 1} left: 0.5 splits them."""
    values = list(split["leftCategoriesOrThreshold"])
    if split["numCategories"] < 0:
        return float(values[0]), False
    if split["numCategories"] == 2 and values in ([0.0], [1.0]):
        return 0.5, values == [1.0]
    raise TrainingError(
        f"{FN}: a Spark tree split on a categorical feature with {split['numCategories']} "
        f"categories ({values}), which sqlml's trees cannot express. Please report this with "
        f"the Spark version.")


def boosting_of(template, nodes: dict[int, list[dict]], weights: list[float],
                positions: list[int], classes: list | None, dtype=None):
    """sqlml's HistGradientBoosting estimator carrying Spark's GBT trees. Spark's margin is
    ``sum_t w_t tree_t(x)``; a binary GBT's probability is ``1 / (1 + exp(-2 margin))``, so each
    leaf value becomes ``2 w_t`` (classifier) or ``w_t`` (regressor) times Spark's, under a zero
    baseline, and scikit-learn's logistic link gives Spark's probability."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    n = len(positions)
    sklearn_of = {spark: j for j, spark in enumerate(positions)}
    est = clone(template).set_params(max_iter=len(nodes), early_stopping=False)
    est.fit(*_dummy(n, classes, dtype))
    scale = 1.0 if classes is None else 2.0
    empty = np.zeros((0, 8), dtype=np.uint32)
    est._predictors = [[TreePredictor(_boosting_nodes(nodes[t], scale * w, sklearn_of), empty,
                                      empty.copy())]
                       for t, w in zip(sorted(nodes), weights, strict=True)]
    est._baseline_prediction = np.zeros_like(est._baseline_prediction)
    return est


def _boosting_nodes(rows: list[dict], scale: float, sklearn_of: dict[int, int]) -> np.ndarray:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    rows = sorted(rows, key=lambda r: r["id"])
    nodes = np.zeros(len(rows), dtype=PREDICTOR_RECORD_DTYPE)
    for r in rows:
        node = nodes[r["id"]]
        node["value"], node["count"] = scale * r["prediction"], r["rawCount"]
        node["gain"] = max(0.0, r["gain"])
        if r["leftChild"] < 0:
            node["is_leaf"] = 1
            continue
        split = r["split"]
        threshold, swap = _threshold(split)
        node["feature_idx"] = _feature(sklearn_of, split)
        node["num_threshold"] = threshold
        left, right = r["leftChild"], r["rightChild"]
        node["left"], node["right"] = (right, left) if swap else (left, right)
        nodes[left]["depth"] = nodes[right]["depth"] = node["depth"] + 1
    return nodes


def _feature(sklearn_of: dict[int, int], split: dict) -> int:
    if split["featureIndex"] not in sklearn_of:
        raise TrainingError(
            f"{FN}: a Spark tree splits on the unknown-category slot of a one-hot feature "
            f"(vector index {split['featureIndex']}), which sqlml's one-hot encoding has "
            f"no column for. Please report this with the Spark version.")
    return sklearn_of[split["featureIndex"]]


def pipeline_of(prep, estimator) -> Pipeline:
    return Pipeline([("prep", prep), ("model", estimator)])
