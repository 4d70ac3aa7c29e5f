"""Per-row explanations compiled to plain SQL: ``<function>_explain_sql``, the same type as the
Python ``<function>_explain`` (``STRUCT(feature VARCHAR, contribution DOUBLE)[]``): the
``TOP_K`` input columns with the largest absolute contribution, largest first, ties in column
order (``np.argsort(-abs(c), kind='stable')``).

- **Linear models** (logistic, linear, lasso, elastic_net): exactly what
  :mod:`sqlml.score.explain` computes. A column's contribution is the sum over its transformed
  columns of value x coefficient, for the positive class (binary: log-odds towards it), the
  class with the largest decision value (multiclass) or the prediction (regression). The
  coefficients are stored as data.
- **Decision trees and random forests**: tree path contributions (Saabas): along the row's
  path from the root to its leaf, each split adds the change of the node value (P(positive
  class) for binary, P(predicted class) for multiclass, the prediction for regression) to the
  input column it splits on; the contributions plus the root's value are the tree's
  prediction, exactly. A forest's contribution is the mean over its trees, so contributions
  plus the mean root value are the forest's prediction. Each leaf's contributions are
  precomputed (its path is fixed) and stored as data; the SQL finds the row's leaf in each tree
  and reads them. The Python ``<function>_explain`` of a tree model measures something else:
  the change of the output when the column is replaced by its training baseline (median or
  most frequent value); the two rank columns alike on most rows but are different numbers.

Other models (KNN, MLP, boosting, calibrated) get no ``_explain_sql``.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from sqlml.catalog.generated import EXPLAIN_TYPE
from sqlml.compile import trees
from sqlml.compile.expressions import num, text
from sqlml.compile.params import Params

TOP_K = 5                                  # as sqlml.score.explain.TOP_K
PROBABILITIES = "__SQLML_PROBABILITIES__"  # replaced by the model's DOUBLE[] of probabilities
LINEAR = (LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet)
TREES = (DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier,
         RandomForestRegressor)


def supports(est) -> bool:
    return isinstance(est, LINEAR + TREES)


def _array(store: Params | None, key: str, values, kind: str) -> str:
    if store is not None:
        return store.add(key, values, kind)
    cast = "BIGINT" if kind == "ints" else "DOUBLE"
    return "[" + ", ".join(num(v) if kind == "doubles" else str(int(v)) for v in values) + \
        f"]::{cast}[]"


def blocks(prep, features) -> list[tuple[int, int]]:
    """(start, stop) of each input column's transformed columns (empty where it has none)."""
    out = []
    for f in features:
        sl = prep.output_indices_.get(f.name)
        out.append((0, 0) if sl is None else (sl.start, sl.stop))
    return out


def explain_sql(pipeline, features, inputs: list[str], problem_type: str, positive,
                store: Params | None) -> str | None:
    """The body of ``_explain_sql`` over the transformed inputs' SQL, or None."""
    est = pipeline.named_steps["model"]
    if not supports(est):
        return None
    spans = blocks(pipeline.named_steps["prep"], features)
    if isinstance(est, LINEAR):
        contributions = _linear(est, spans, inputs, problem_type, positive, store)
    else:
        contributions = _saabas_sql(est, spans, inputs, problem_type, positive, store)
    return top(contributions, [f.name for f in features])


def top(contributions: str, names: list[str]) -> str:
    """The TOP_K largest |contribution|, largest first, ties by column order."""
    labels = "[" + ", ".join(text(n) for n in names) + "]"
    return (f"list_transform(list_slice(list_sort(list_transform({contributions}, "
            f"lambda __sqlml_c, __sqlml_i: {{'k': -abs(__sqlml_c), 'i': __sqlml_i, "
            f"'c': __sqlml_c}})), 1, {TOP_K}), lambda __sqlml_e: {{'feature': "
            f"{labels}[__sqlml_e.i], 'contribution': __sqlml_e.c}})::{EXPLAIN_TYPE}")


def _argmax(z: str) -> str:
    """np.argmax, 0-based: the first largest."""
    return f"(list_position({z}, list_max({z})) - 1)"


# -- linear models -------------------------------------------------------------------------------
def _linear(est, spans, inputs, problem_type, positive, store) -> str:
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    width = coef.shape[1]
    multiclass = problem_type == "multiclass_classification"
    if not multiclass:
        coef = coef[:1]
        if problem_type == "binary_classification" and positive == est.classes_[0]:
            coef = -coef
    w = _array(store, "explain_coef", coef.ravel(), "doubles")
    x, s_w, k = "__sqlml_s.x", "__sqlml_s.w", "__sqlml_k"

    def dot(a: int, b: int, cls: str) -> str:
        # Python: Xt[:, slice] @ coef[:, slice].T, the block's products added in column order
        return (f"list_sum(list_transform(range({a}, {b}), lambda __sqlml_t: "
                f"{x}[__sqlml_t + 1] * {s_w}[{cls} * {width} + __sqlml_t + 1]))")

    per_column = "[" + ", ".join(dot(a, b, k) if b > a else "0.0e0" for a, b in spans) + "]"
    if multiclass:
        b = "[" + ", ".join(num(v) for v in np.asarray(est.intercept_, dtype=np.float64)) + "]"
        z = (f"list_transform(range({coef.shape[0]}), lambda __sqlml_z: "
             f"{dot(0, width, '__sqlml_z')} + {b}[__sqlml_z + 1])")
        chosen = _argmax(z)
    else:
        chosen = "0"
    return (f"list_transform([{{'x': [{', '.join(inputs)}], 'w': {w}}}], lambda __sqlml_s: "
            f"list_transform([{chosen}], lambda {k}: {per_column})[1])[1]")


# -- decision trees and random forests (Saabas) ----------------------------------------------------
def _node_values(tree, classifier: bool, cls: int | None) -> np.ndarray:
    """(nodes, outputs): what a node predicts, per explained output (classes for multiclass)."""
    v = tree.value[:, 0, :]
    if not classifier:
        return v[:, :1]
    return v if cls is None else v[:, cls:cls + 1]


def saabas_leaves(tree, values: np.ndarray, column_of: np.ndarray, n_columns: int
                  ) -> dict[int, np.ndarray]:
    """{leaf: (outputs, input columns)} path contributions, added root to leaf."""
    out: dict[int, np.ndarray] = {}
    stack = [(0, np.zeros((values.shape[1], n_columns)))]
    while stack:
        node, acc = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == -1:
            out[node] = acc
            continue
        j = column_of[tree.feature[node]]
        for child in (left, right):
            nxt = acc.copy()
            nxt[:, j] += values[child] - values[node]
            stack.append((child, nxt))
    return out


def _column_of(spans, width: int) -> np.ndarray:
    col = np.zeros(width, dtype=np.int64)
    for j, (a, b) in enumerate(spans):
        col[a:b] = j
    return col


def leaf_tables(est, spans, problem_type, positive):
    """Per tree: (leaf id per node, -1 off leaves) and the flattened contributions of every
    leaf of the model, (leaf, output, column) row-major; and the number of outputs."""
    members = [est] if isinstance(est, (DecisionTreeClassifier, DecisionTreeRegressor)) \
        else list(est.estimators_)
    classifier = hasattr(est, "classes_")
    cls = None if problem_type == "multiclass_classification" else (
        list(est.classes_).index(positive) if classifier else None)
    column_of = _column_of(spans, int(est.n_features_in_))
    ids, table, nxt = [], [], 0
    for m in members:
        values = _node_values(m.tree_, classifier, cls)
        leaves = saabas_leaves(m.tree_, values, column_of, len(spans))
        leaf_id = np.full(m.tree_.node_count, -1, dtype=np.int64)
        for node in sorted(leaves):
            leaf_id[node] = nxt
            table.append(leaves[node].ravel())
            nxt += 1
        ids.append(leaf_id)
    return members, ids, np.concatenate(table), values.shape[1]


def _saabas_sql(est, spans, inputs, problem_type, positive, store) -> str:
    members, ids, table, outputs = leaf_tables(est, spans, problem_type, positive)
    prepared, fill = trees._prepare(est, inputs, None)
    leaves = trees.leaves_sql(members, ids, prepared, fill, store)
    c = _array(store, "explain_saabas", table, "doubles")
    n = len(spans)
    # Everything that may read stored arrays (subqueries) goes in the lambda's input: DuckDB
    # refuses a subquery inside a lambda's body.
    chosen = _argmax(PROBABILITIES) if outputs > 1 else "0"
    per_column = (f"list_transform(range({n}), lambda __sqlml_j: list_sum(list_transform("
                  f"__sqlml_s.l, lambda __sqlml_l: __sqlml_s.c[(__sqlml_l * {outputs} + "
                  f"__sqlml_k) * {n} + __sqlml_j + 1])) / {num(len(members))})")
    # The explained class is bound outside the lambda: the probabilities of a large tree
    # model read its stored node arrays, and DuckDB allows no subquery inside a lambda.
    return (f"list_transform([{{'l': {leaves}, 'c': {c}, 'k': {chosen}}}], "
            f"lambda __sqlml_s: list_transform([__sqlml_s.k], lambda __sqlml_k: {per_column})"
            f"[1])[1]")


def saabas_reference(est, Xt, spans, problem_type, positive, k=None) -> np.ndarray:
    """(rows, input columns) contributions by the stored leaf tables (``apply``), for
    verification; ``k``: the explained class per row (multiclass)."""
    members, ids, table, outputs = leaf_tables(est, spans, problem_type, positive)
    n = len(spans)
    C = table.reshape(-1, outputs, n)
    rows = np.arange(Xt.shape[0])
    k = np.zeros(len(rows), dtype=np.int64) if k is None else k
    total = np.zeros((len(rows), n))
    for m, leaf_id in zip(members, ids, strict=True):
        total = total + C[leaf_id[m.apply(Xt)], k]
    return total / len(members)


def reference(pipeline, features, frame, problem_type: str, positive) -> list[list[tuple]]:
    """What ``explain_sql`` gives, computed in numpy: per row, the TOP_K (column, contribution)
    pairs. Linear models by sqlml.score.explain's own computation."""
    prep, est = pipeline.named_steps["prep"], pipeline.named_steps["model"]
    Xt = prep.transform(frame)
    spans = blocks(prep, features)
    if isinstance(est, LINEAR):
        C = linear_contributions(est, Xt, spans, problem_type, positive)
    else:
        Xd = Xt.toarray() if hasattr(Xt, "toarray") else np.asarray(Xt)
        k = None
        if problem_type == "multiclass_classification":
            k = np.argmax(est.predict_proba(Xd.astype(np.float32)), axis=1)
        C = saabas_reference(est, Xd.astype(np.float32), spans, problem_type, positive, k)
    names = [f.name for f in features]
    return [[(names[j], float(row[j])) for j in np.argsort(-np.abs(row), kind="stable")[:TOP_K]]
            for row in C]


def linear_contributions(est, Xt, spans, problem_type: str, positive) -> np.ndarray:
    """sqlml.score.explain._linear on the transformed rows."""
    coef = np.atleast_2d(est.coef_)
    n = Xt.shape[0]
    if problem_type == "multiclass_classification":
        k = np.argmax(np.asarray(Xt @ coef.T) + est.intercept_, axis=1)
    else:
        k = np.zeros(n, dtype=int)
        if problem_type == "binary_classification" and positive == est.classes_[0]:
            coef = -coef
    C = np.zeros((n, len(spans)))
    for j, (a, b) in enumerate(spans):
        if b > a:
            C[:, j] = np.asarray(Xt[:, a:b] @ coef[:, a:b].T)[np.arange(n), k]
    return C
