"""k nearest neighbours (KNeighborsClassifier, KNeighborsRegressor) compiled to plain SQL.

The training points are data, not SQL: the transformed training matrix is stored column-major
as one DOUBLE[] (``knn_x``: column j is elements ``j*n+1 .. (j+1)*n``) and the labels (class
indices into ``classes_``) or targets as another (``knn_y``), through
:class:`sqlml.compile.params.Params`. The macro is one correlated scalar subquery of fixed
shape: the row's transformed inputs once, joined with the training points unnested from those
arrays, and ``min_by(neighbour, (distance, index), k)``, which DuckDB runs as a join and a
grouped top-k (2,000 rows against 3,000 points of 12 columns: about 1 s). What scikit-learn does:

- **Distance**: the metric's own arithmetic, as scikit-learn's ``DistanceMetric`` does it: for
  the Euclidean metric, squared differences added in column order, then the square root;
  Manhattan, Chebyshev and Minkowski (``p``) likewise. Neighbours are chosen on the squared
  distance for the Euclidean metric (scikit-learn's "reduced" distance), on the distance itself
  otherwise. With ``metric='l2'`` (or any other metric but the default) scikit-learn computes
  exactly these numbers, and the SQL gives the same distances bit for bit. With the default
  (``minkowski``, p=2, which scikit-learn turns into ``euclidean``) scikit-learn instead takes
  ``|x|^2 - 2 x.y + |y|^2`` through BLAS, whose last bits depend on the BLAS and the machine:
  the distances then agree to about 1e-15 relative, and the probabilities to about 1e-15, but
  two points whose distances differ by less than that rounding (equal in exact arithmetic,
  as on small-integer or one-hot data) can be ordered either way.
- **Ties**: among training points at exactly the same distance, the one with the lower
  training index (its row in the training data) is nearer. scikit-learn keeps the k smallest
  in a heap whose eviction order among equal distances depends on the heap's history and, for
  small query batches, on its thread count, so no rule reproduces it in general; where the
  k-th and the (k+1)-th nearest are at the same distance, or within ``NEAR_TIE`` of it, the
  SQL can pick a different neighbour from scikit-learn's (``boundary_ties`` finds those rows;
  training verification skips them). Without such a tie, the neighbours are the same set.
- **Weights**: 'uniform' (1 each) or 'distance' (1 / distance; a row at distance 0 from some
  training points gets weight 1 on those and 0 on the others, as ``_get_weights`` does).
  Probabilities: per class, the weights of the neighbours with that label added nearest first,
  divided by their total over the classes (``predict_proba``). A regressor's prediction is the
  mean of the neighbours' targets, or their weighted mean.

Sparse training data (one-hot columns of many categories) is stored dense: the same distances.
Not compiled (NotCompilable says so): more than ``MAX_CELLS`` training values, multi-output
targets, callable weights, other metrics or metric parameters.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sqlml.compile.expressions import NotCompilable, num
from sqlml.compile.params import Params

# metric -> (reduced distance of one column difference `v`, how terms combine, distance of the
# reduced distance `r`). Euclidean neighbours are ranked on the squared distance, as
# scikit-learn's reduced distance.
_METRICS = {
    "euclidean": ("({v} * {v})", "+", "sqrt({r})"),
    "l2": ("({v} * {v})", "+", "sqrt({r})"),
    "sqeuclidean": ("({v} * {v})", "+", "{r}"),
    "manhattan": ("abs({v})", "+", "{r}"),
    "cityblock": ("abs({v})", "+", "{r}"),
    "l1": ("abs({v})", "+", "{r}"),
    "chebyshev": ("abs({v})", "greatest", "{r}"),
    "infinity": ("abs({v})", "greatest", "{r}"),
}


# Distances this close (relative) are ordered by rounding: scikit-learn's euclidean distances
# through BLAS move by about 1e-15 of the points' squared norms.
NEAR_TIE = 1e-9
MAX_CELLS = 20_000_000   # training points x columns: 160 MB of DOUBLE


def supports(est) -> bool:
    return type(est).__name__ in ("KNeighborsClassifier", "KNeighborsRegressor")


def _metric(est) -> tuple[str, str, str]:
    metric = est.effective_metric_
    params = dict(est.effective_metric_params_ or {})
    if metric == "minkowski":
        p = params.pop("p", est.p)
        if params or not (np.isfinite(p) and p > 0):
            raise NotCompilable(f"KNN model with metric minkowski and parameters {params!r}")
        return ("pow(abs({v}), " + num(p) + ")", "+", "pow({r}, " + num(1.0 / p) + ")")
    if metric not in _METRICS or params:
        raise NotCompilable(
            f"KNN model with metric {metric!r}{' and metric_params' if params else ''}: the "
            f"compiled metrics are euclidean, l2, sqeuclidean, manhattan, chebyshev and "
            f"minkowski (train with hyperparameters := {{metric: 'l2'}} for a compiled one)")
    return _METRICS[metric]


def check(est) -> None:
    """NotCompilable unless ``scores_sql`` reproduces ``est``."""
    n, d = est._fit_X.shape
    if n * d > MAX_CELLS:
        raise NotCompilable(
            f"KNN model with {n} training points of {d} columns: over the {MAX_CELLS:,} values "
            f"the compiled SQL stores and searches in every query")
    if getattr(est, "outputs_2d_", False) or np.ndim(est._y) != 1:
        raise NotCompilable("KNN model with several targets")
    if est.weights not in ("uniform", "distance"):
        raise NotCompilable(f"KNN model with weights {est.weights!r}")
    _metric(est)


def _array(store: Params | None, key: str, values: np.ndarray, kind: str) -> str:
    if store is not None:
        return store.add(key, values, kind)
    if kind == "ints":
        return "[" + ", ".join(str(int(v)) for v in values) + "]::BIGINT[]"
    return "[" + ", ".join(num(v) for v in values) + "]::DOUBLE[]"


def scores_sql(est, inputs: list[str], store: Params | None = None) -> list[str] | str:
    """A classifier's DOUBLE[] of class probabilities (``classes_`` order) as one expression,
    or a regressor's one-element list with the prediction."""
    check(est)
    term, combine, finish = _metric(est)
    X = _dense(est._fit_X)
    n, d = X.shape
    if len(inputs) != d:
        raise NotCompilable("the KNN model's input width differs from the preprocessing's")
    classifier = type(est).__name__ == "KNeighborsClassifier"
    xs = _array(store, "knn_x", X.T.ravel(), "doubles")
    ys = _array(store, "knn_y", np.asarray(est._y), "ints" if classifier else "doubles")
    k = int(est.n_neighbors)
    terms = [term.format(v=f"(__sqlml_q{j} - __sqlml_f{j})") for j in range(d)]
    # scikit-learn's DistanceMetric adds the terms into 0.0 in column order; 0.0 + t is t, so a
    # left-to-right chain is the same sum. greatest(...) is exact in any order.
    reduced = " + ".join(terms) if combine == "+" else f"greatest({', '.join(terms)})"
    unnest = ", ".join(f"unnest(__sqlml_x[{j * n + 1}:{(j + 1) * n}]) AS __sqlml_f{j}"
                       for j in range(d))
    train = (f"(SELECT unnest(range({n})) AS __sqlml_i, unnest(__sqlml_y) AS __sqlml_l, {unnest} "
             f"FROM (SELECT {xs} AS __sqlml_x, {ys} AS __sqlml_y))")
    # The row's inputs once per row, not once per (row, training point).
    row = "(SELECT " + ", ".join(f"{x} AS __sqlml_q{j}" for j, x in enumerate(inputs)) + ")"
    neighbours = (f"min_by({{'r': __sqlml_r, 'l': __sqlml_l}}, {{'r': __sqlml_r, 'i': __sqlml_i}}, "
                  f"{k})")
    out = _classifier(est, finish) if classifier else _regressor(est, finish)
    sql = (f"(SELECT list_transform([{neighbours}], lambda __sqlml_nb: {out})[1] "
           f"FROM (SELECT {reduced} AS __sqlml_r, __sqlml_i, __sqlml_l FROM {row}, {train}))")
    return sql if classifier else [sql]


def _weights(est, finish: str) -> str:
    """The neighbours' weights as a DOUBLE[], given ``__sqlml_nb`` (sklearn's _get_weights).
    Lambda parameters are prefixed: a bare name would be taken for a column of the caller's."""
    if est.weights == "uniform":
        return "list_transform(__sqlml_nb, lambda __sqlml_e: 1.0e0)"
    dist = finish.format(r="__sqlml_e.r")
    inv = (f"list_transform(__sqlml_nb, lambda __sqlml_e: CASE WHEN {dist} = 0 THEN "
           f"'inf'::DOUBLE ELSE 1.0e0 / {dist} END)")
    return (f"list_transform([{inv}], lambda __sqlml_iw: CASE WHEN list_bool_or(list_transform("
            f"__sqlml_iw, lambda __sqlml_v: isinf(__sqlml_v))) THEN list_transform(__sqlml_iw, "
            f"lambda __sqlml_v: CASE WHEN isinf(__sqlml_v) THEN 1.0e0 ELSE 0.0e0 END) "
            f"ELSE __sqlml_iw END)[1]")


def _classifier(est, finish: str) -> str:
    """predict_proba: per class, its neighbours' weights added nearest first; then each class
    divided by the total over the classes (a zero total divides by 1)."""
    c = len(est.classes_)
    per_class = (f"list_transform(range({c}), lambda __sqlml_c: list_sum(list_transform("
                 f"__sqlml_nb, lambda __sqlml_e, __sqlml_i: CASE WHEN __sqlml_e.l = __sqlml_c "
                 f"THEN __sqlml_w[__sqlml_i] ELSE 0.0e0 END)))")
    return (f"list_transform([{_weights(est, finish)}], lambda __sqlml_w: list_transform("
            f"[{per_class}], lambda __sqlml_p: list_transform(__sqlml_p, lambda __sqlml_v: "
            f"__sqlml_v / CASE WHEN list_sum(__sqlml_p) = 0 THEN 1.0e0 ELSE list_sum(__sqlml_p) "
            f"END))[1])[1]")


def _regressor(est, finish: str) -> str:
    if est.weights == "uniform":
        return "list_avg(list_transform(__sqlml_nb, lambda __sqlml_e: __sqlml_e.l::DOUBLE))"
    return (f"list_transform([{_weights(est, finish)}], lambda __sqlml_w: list_sum("
            f"list_transform(__sqlml_nb, lambda __sqlml_e, __sqlml_i: __sqlml_e.l * "
            f"__sqlml_w[__sqlml_i])) / list_sum(__sqlml_w))[1]")


def boundary_ties(est, Xt: np.ndarray) -> np.ndarray:
    """Rows of ``Xt`` (transformed) whose k-th and (k+1)-th nearest training points are at the
    same distance, or within ``NEAR_TIE`` (relative) of it: there the tie rule, or for the
    default euclidean metric the last bits of scikit-learn's BLAS distances, decide which is
    a neighbour (see the module docstring)."""
    X = _dense(est._fit_X)
    Xt = _dense(Xt)
    k = int(est.n_neighbors)
    if k >= len(X):
        return np.zeros(len(Xt), dtype=bool)
    out = np.zeros(len(Xt), dtype=bool)
    for start in range(0, len(Xt), 256):
        D = _distances(est, Xt[start:start + 256], X)
        part = np.partition(D, (k - 1, k), axis=1)
        gap = part[:, k] - part[:, k - 1]
        out[start:start + 256] = gap <= NEAR_TIE * np.maximum(1.0, part[:, k])
    return out


def ties_in(est, Xt) -> np.ndarray | None:
    """``boundary_ties`` of a KNN model, or of the KNN base models of a calibrated one (any
    fold's); None for a model without KNN."""
    if supports(est):
        return boundary_ties(est, Xt)
    bases = [cc.estimator for cc in getattr(est, "calibrated_classifiers_", ())]
    masks = [boundary_ties(b, Xt) for b in bases if supports(b)]
    return np.logical_or.reduce(masks) if masks else None


def _dense(X) -> np.ndarray:
    # A sparse matrix (one-hot columns of many categories) has the same distances dense:
    # scikit-learn's sparse distances add the nonzero differences in column order, and the
    # zero ones add 0.
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def _distances(est, Q: np.ndarray, X: np.ndarray) -> np.ndarray:
    from sklearn.metrics import DistanceMetric
    metric = est.effective_metric_
    params = dict(est.effective_metric_params_ or {})
    if metric == "minkowski":
        params.setdefault("p", est.p)
    return DistanceMetric.get_metric(metric, **params).pairwise(np.asarray(Q, np.float64), X)
