"""Decision trees, random forests and histogram gradient boosting compiled to exact plain SQL.

The scores are the float64 operations scikit-learn performs, in the same order, so they come out
equal bit for bit (except through ``exp``, whose last bit may differ from numpy's):

- Each tree is one ``CASE`` per heavy path: from a node the path continues into the child with
  more nodes, and every split on the way is a ``WHEN`` that sends rows to the other (lighter)
  child, compiled the same way. DuckDB then copies each row's leaf value once per ``CASE`` it
  passes through rather than once per tree level: 40% less time than one nested ``CASE`` per
  split (a 100-iteration boosting model scores 1M rows in about numpy's time), and
  nesting stays below log2(nodes) levels however deep the tree is, far from DuckDB's
  ``max_expression_depth`` (1000).
- Trees are added with ``list_sum([...])``, which adds left to right from the first element, as
  scikit-learn accumulates tree by tree into zeros. A chain ``a + b + ...`` does the same, but
  nests one level per tree and costs DuckDB more to bind.
- DecisionTree and RandomForest cast the input to float32 and test ``float32(x) <= threshold``.
  Rounding to float32 is monotonic, so that test equals ``x <= T`` for one float64 ``T`` per
  split (``_float32_bounds``): the SQL compares the DOUBLE input itself, with no cast per
  comparison and no reliance on how an engine rounds DOUBLE to FLOAT. HistGradientBoosting
  compares float64 with float64 thresholds, as the SQL does.
- A missing input, NULL or NaN, goes where scikit-learn sends a NaN: to the side
  ``missing_go_to_left`` names. With ``missing_as`` (an imputation constant per input) it goes
  where the constant goes instead, which is the tree applied to the imputed value.

That SQL grows with the model, and DuckDB binds a macro's text again in every query (10-60
microseconds per node, more where the inputs are long expressions). A model of more than
``CASE_MAX_NODES`` nodes, or whose CASE SQL would exceed ``CASE_MAX_CHARS``, is therefore
compiled to node arrays stored as data, read by SQL of one fixed size
(:mod:`sqlml.compile.tree_arrays`), equally exact.

Not compiled (``supports`` is False): unfitted or multi-output estimators, HistGradientBoosting
with native categorical features, regression losses whose link is not identity or log, and
ensembles of more than ``MAX_NODES`` nodes per score.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from sqlml.compile import tree_arrays
from sqlml.compile.estimators import Vector
from sqlml.compile.params import Params
from sqlml.compile.tree_arrays import float32_bounds as _float32_bounds
from sqlml.compile.tree_arrays import missing_left as _missing_left

# The CASE SQL is kept while it binds in under 50 ms: up to 1,500 nodes and 60 KB of SQL per
# score (a 1,220-node boosting model, 49 KB, binds in 29 ms on a loaded 2-core machine; 2,440
# nodes in 42 ms; benchmarks/bench_clients.py prints it). There it scores a million rows
# several times faster than the node arrays, whose every step is a DuckDB lambda call.
CASE_MAX_NODES = 1_500
CASE_MAX_CHARS = 60_000
# The arrays path reads its arrays (about 30 bytes a node) into memory once per query, and
# numbers nodes with INTEGER: 5M nodes is 150 MB per query, 20 times a 200-tree forest on
# 100,000 rows.
MAX_NODES = 5_000_000

_TREE = (DecisionTreeClassifier, DecisionTreeRegressor)
_FOREST = (RandomForestClassifier, RandomForestRegressor)
_HGB = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
_HGB_LINKS = {HistGradientBoostingClassifier: ("LogitLink", "MultinomialLogit"),
              HistGradientBoostingRegressor: ("IdentityLink", "LogLink")}


def supports(estimator) -> bool:
    """True when ``scores_sql`` compiles this fitted estimator exactly."""
    try:
        return _reason(estimator) is None
    except (AttributeError, TypeError, ValueError, IndexError, KeyError):
        return False


def scores_sql(estimator, inputs: list[str], *, missing_as=None,
               store: Params | None = None) -> list[str] | Vector:
    """Pure-SQL scores of a fitted tree model, one DOUBLE expression each.

    ``inputs`` are DOUBLE SQL expressions, one per column of the matrix the estimator receives.
    A classifier gets one expression per class, in ``classes_`` order, equal to that column of
    ``predict_proba``; a regressor gets a one-element list equal to ``predict``.

    A NULL or NaN input goes where scikit-learn sends a NaN. ``missing_as`` (optional, one
    float or None per input) instead says that input is imputed with a constant: pass the
    unimputed expression and the constant, and each split sends a missing value where the
    constant goes. That is the same tree on the imputed value, without evaluating an imputation
    expression at every split that reads the input (DuckDB does not share work across CASE
    branches).

    Above ``CASE_MAX_NODES`` nodes or ``CASE_MAX_CHARS`` characters of CASE SQL the result is
    one ``Vector`` of every output, reading node arrays that ``store`` keeps as data (None:
    spelled out in the SQL, for tests).
    """
    inputs, fill = _prepare(estimator, inputs, missing_as)
    if _node_count(estimator) <= CASE_MAX_NODES:
        case = _case_scores(estimator, inputs, fill)
        if sum(map(len, case)) <= CASE_MAX_CHARS:
            return case
    return Vector(_arrays_sql(estimator, inputs, fill, store))


def _case_scores(estimator, inputs: list[str], fill: np.ndarray) -> list[str]:
    if isinstance(estimator, _HGB):
        return _hgb_scores(estimator, inputs, fill)
    members = [estimator] if isinstance(estimator, _TREE) else list(estimator.estimators_)
    if isinstance(estimator, (DecisionTreeClassifier, RandomForestClassifier)):
        fractions = [_class_fractions(m.tree_) for m in members]
        return [_mean([_sk_tree_sql(m.tree_, f[:, k], inputs, fill)
                       for m, f in zip(members, fractions, strict=True)])
                for k in range(len(estimator.classes_))]
    return [_mean([_sk_tree_sql(m.tree_, m.tree_.value[:, 0, 0], inputs, fill)
                   for m in members])]


def probabilities_sql(estimator, inputs: list[str], *, missing_as=None,
                      store: Params | None = None) -> str:
    """One ``DOUBLE[]`` expression with every class's probability, in ``classes_`` order.

    For a multiclass boosting model this evaluates the trees once, where each per-class
    expression of ``scores_sql`` evaluates all of them (the softmax needs every class).
    """
    if isinstance(estimator, HistGradientBoostingClassifier) and supports(estimator) \
            and estimator.n_trees_per_iteration_ > 1 and _node_count(estimator) <= CASE_MAX_NODES:
        inputs, fill = _prepare(estimator, inputs, missing_as)
        case = _softmax_list(_hgb_raw(estimator, inputs, fill))
        if len(case) <= CASE_MAX_CHARS:
            return case
        return _arrays_sql(estimator, inputs, fill, store)
    scores = scores_sql(estimator, inputs, missing_as=missing_as, store=store)
    return scores if isinstance(scores, Vector) else "[" + ", ".join(scores) + "]"


def decision_sql(estimator, inputs: list[str], store: Params | None = None) -> str:
    """A binary HistGradientBoostingClassifier's ``decision_function``: its raw score."""
    inputs, fill = _prepare(estimator, inputs, None)
    if _node_count(estimator) <= CASE_MAX_NODES:
        raw = _hgb_raw(estimator, inputs, fill)[0]
        if len(raw) <= CASE_MAX_CHARS:
            return raw
    nodes, raws = tree_arrays.hgb_layout(estimator, fill, len(inputs))
    return f"({tree_arrays.traversal(nodes, inputs, store, f'[{raws[0]}]')})[1]"


def leaves_sql(members: list, leaf_ids: list[np.ndarray], inputs: list[str],
               fill: np.ndarray, store: Params | None = None) -> str:
    """BIGINT[]: per tree of a DecisionTree or RandomForest (``members``), ``leaf_ids[tree]``
    of the leaf the row reaches; ``inputs`` and ``fill`` as ``_prepare`` returns them."""
    if sum(m.tree_.node_count for m in members) <= CASE_MAX_NODES:
        case = [_leaf_sql(m.tree_, ids, inputs, fill)
                for m, ids in zip(members, leaf_ids, strict=True)]
        if sum(map(len, case)) <= CASE_MAX_CHARS:
            return f"[{', '.join(case)}]::BIGINT[]"
    return tree_arrays.leaf_ids_sql(members, leaf_ids, inputs, fill, store)


def _prepare(estimator, inputs, missing_as) -> tuple[list[str], np.ndarray]:
    reason = _reason(estimator)
    name = type(estimator).__name__
    if reason is not None:
        raise ValueError(f"compile_trees: {name} cannot be compiled to exact SQL: {reason}. "
                         f"Score it with the Python prediction function instead.")
    n_features = int(estimator.n_features_in_)
    if len(inputs) != n_features:
        raise ValueError(
            f"compile_trees: {name} takes {n_features} inputs, got {len(inputs)} SQL "
            f"expressions. Pass one per column of the transformed matrix.")
    fill = np.full(n_features, np.nan)
    if missing_as is not None:
        if len(missing_as) != n_features:
            raise ValueError(
                f"compile_trees: missing_as has {len(missing_as)} entries for {name}'s "
                f"{n_features} inputs. Give one constant (or None) per input.")
        for j, v in enumerate(missing_as):
            if v is not None:
                if not np.isfinite(v):
                    raise ValueError(
                        f"compile_trees: missing_as[{j}] must be a finite imputation constant, "
                        f"got {v!r}. Use None for an input that is not imputed.")
                fill[j] = float(v)
    else:
        # compile_preprocessing's Input carries the column before imputation and the value imputed:
        # splitting on the bare column binds and runs faster than an imputation CASE per split.
        inputs = list(inputs)
        for j, x in enumerate(inputs):
            raw, value = getattr(x, "raw", None), getattr(x, "fill", None)
            if raw is not None and value is not None and np.isfinite(value):
                inputs[j], fill[j] = raw, float(value)
    return [f"({x})" for x in inputs], fill


def _reason(estimator) -> str | None:
    """Why the estimator cannot be compiled, or None."""
    if isinstance(estimator, _HGB):
        if not hasattr(estimator, "_predictors"):
            return "it is not fitted"
        if getattr(estimator, "_preprocessor", None) is not None:
            return "it has native categorical features (bitset splits)"
        link = type(estimator._loss.link).__name__
        if link not in _HGB_LINKS[type(estimator)]:
            return f"its loss has a {link}, which is not compiled"
        trees = [p.nodes for it in estimator._predictors for p in it]
        if any(n["is_categorical"][n["is_leaf"] == 0].any() for n in trees):
            return "it has categorical splits"
    elif not isinstance(estimator, (*_TREE, *_FOREST)):
        return "it is not a decision tree, random forest or histogram gradient boosting model"
    else:
        members = [estimator] if isinstance(estimator, _TREE) else \
            getattr(estimator, "estimators_", None)
        if not members or not all(hasattr(m, "tree_") for m in members):
            return "it is not fitted"
        if estimator.n_outputs_ != 1:
            return f"it has {estimator.n_outputs_} outputs; one is compiled"
    nodes = _node_count(estimator)
    if nodes > MAX_NODES:
        return (f"it has {nodes} tree nodes, above the {MAX_NODES} whose arrays a query reads "
                f"into memory (train fewer or shallower trees to get a compiled macro)")
    return None


def _node_count(estimator) -> int:
    """Nodes evaluated per score (a class's softmax needs every class's trees)."""
    if isinstance(estimator, _HGB):
        return sum(p.nodes.size for it in estimator._predictors for p in it)
    members = [estimator] if isinstance(estimator, _TREE) else estimator.estimators_
    return sum(m.tree_.node_count for m in members)


# --- scikit-learn trees (DecisionTree*, RandomForest*) -------------------------------------

def _class_fractions(tree) -> np.ndarray:
    # scikit-learn (1.4 and later) stores each node's class fractions, and predict_proba returns
    # them as they are; dividing them by their sum again would move some by one bit.
    return tree.value[:, 0, :]


def _sk_tree_sql(tree, leaf_values: np.ndarray, inputs: list[str], fill: np.ndarray) -> str:
    bounds = _float32_bounds(tree.threshold)
    return _tree_sql(tree.children_left, tree.children_right, tree.feature, bounds,
                     _missing_left(tree.feature, bounds, tree.missing_go_to_left, fill),
                     leaf_values, inputs)


def _leaf_sql(tree, leaf_id: np.ndarray, inputs: list[str], fill: np.ndarray) -> str:
    """The row's leaf in one tree, as ``leaf_id[leaf]`` (a DOUBLE), routed as _sk_tree_sql."""
    return _sk_tree_sql(tree, leaf_id.astype(np.float64), inputs, fill)


def _mean(trees: list[str]) -> str:
    # scikit-learn adds each tree's prediction into zeros, in order, then divides by the count
    if len(trees) == 1:
        return trees[0]
    return f"(list_sum([{', '.join(trees)}]) / {_num(len(trees))})"


# --- HistGradientBoosting ---------------------------------------------------------------

def _hgb_raw(estimator, inputs: list[str], fill: np.ndarray) -> list[str]:
    """The raw score of each tree column: baseline, then every iteration's tree, in order."""
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
    raws = []
    for k in range(estimator.n_trees_per_iteration_):
        terms = [_num(baseline[k])]
        for t in tree_arrays.hgb_trees(estimator, k, fill):
            terms.append(_tree_sql(t.left, t.right, t.feature, t.threshold, t.missing_left,
                                   t.values[:, 0], inputs))
        raws.append(f"list_sum([{', '.join(terms)}])")
    return raws


def _hgb_scores(estimator, inputs: list[str], fill: np.ndarray) -> list[str]:
    raws = _hgb_raw(estimator, inputs, fill)
    link = type(estimator._loss.link).__name__
    if link == "IdentityLink":
        return raws
    if link == "LogLink":
        return [f"exp({raws[0]})"]
    if link == "LogitLink":
        # scipy's expit: 1 / (1 + exp(-x)); predict_proba's first column is 1 - that
        p = f"(1.0e0 / (1.0e0 + exp(-{raws[0]})))"
        return [f"(1.0e0 - {p})", p]
    probabilities = _softmax_list(raws)
    return [f"{probabilities}[{k + 1}]" for k in range(len(raws))]


def _softmax_list(raws: list[str]) -> str:
    # As sklearn.utils.extmath.softmax: subtract the row's max, exp, divide by the sum. The
    # one-element list binds the raw scores once per row for the lambda; writing them out in
    # each term instead costs DuckDB 40% more.
    return (f"list_transform([[{', '.join(raws)}]], lambda r: list_transform(r, "
            f"lambda v: exp(v - list_max(r)) / list_sum(list_transform(r, "
            f"lambda w: exp(w - list_max(r))))))[1]")


# --- node arrays (models of more than CASE_MAX_NODES nodes) ----------------------------------

def _arrays_sql(estimator, inputs: list[str], fill: np.ndarray, store: Params | None) -> str:
    if not isinstance(estimator, _HGB):
        members = [estimator] if isinstance(estimator, _TREE) else list(estimator.estimators_)
        return tree_arrays.forest_sql(members, inputs, fill, store)
    nodes, raws = tree_arrays.hgb_layout(estimator, fill, len(inputs))
    link = type(estimator._loss.link).__name__
    if link == "IdentityLink":
        body = f"[{raws[0]}]"
    elif link == "LogLink":
        body = f"[exp({raws[0]})]"
    elif link == "LogitLink":
        p = f"(1.0e0 / (1.0e0 + exp(-{raws[0]})))"
        body = f"list_transform([{p}], lambda __sqlml_p: [1.0e0 - __sqlml_p, __sqlml_p])[1]"
    else:
        body = _softmax_list(raws)
    return tree_arrays.traversal(nodes, inputs, store, body)


# --- SQL text ---------------------------------------------------------------------------

def _num(value: float) -> str:
    """A DOUBLE literal that DuckDB reads back as exactly this float64.

    repr() is the shortest text that round-trips; the exponent makes DuckDB read a DOUBLE (a
    plain 0.1 is a DECIMAL, converted by a different route).
    """
    v = float(value)
    if np.isnan(v):
        return "CAST('NaN' AS DOUBLE)"
    if np.isinf(v):
        return f"CAST('{'' if v > 0 else '-'}Infinity' AS DOUBLE)"
    text = repr(v)
    return text if "e" in text else text + "e0"


def _subtree_sizes(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    size = np.ones(len(left), dtype=np.int64)
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if left[node] != -1:
            stack.extend((int(left[node]), int(right[node])))
    for node in reversed(order):  # children before parents
        if left[node] != -1:
            size[node] += size[left[node]] + size[right[node]]
    return size


def _tree_sql(left, right, feature, threshold, missing_left, leaf_values, inputs) -> str:
    """One tree as CASE expressions along heavy paths (see the module docstring).

    ``missing_left[n]``: where a NULL or NaN input goes at split n. Each WHEN selects one child
    and the rest of the path continues into the other, so the condition has four forms; DuckDB
    orders NaN above every number and makes a comparison with NULL NULL (not selected).
    """
    size = _subtree_sizes(left, right)

    def path(node: int) -> str:
        if left[node] == -1:
            return _num(leaf_values[node])
        whens = []
        while left[node] != -1:
            x, t = inputs[int(feature[node])], _num(threshold[node])
            lo, hi = int(left[node]), int(right[node])
            if size[lo] > size[hi]:  # continue left; WHEN selects the right child
                cond = f"{x} > {t} AND NOT isnan({x})" if missing_left[node] \
                    else f"({x} <= {t}) IS NOT TRUE"
                whens.append(f"WHEN {cond} THEN {path(hi)}")
                node = lo
            else:
                cond = f"({x} <= {t} OR isnan({x}) IS NOT FALSE)" if missing_left[node] \
                    else f"{x} <= {t}"
                whens.append(f"WHEN {cond} THEN {path(lo)}")
                node = hi
        return f"CASE {' '.join(whens)} ELSE {_num(leaf_values[node])} END"

    return path(0)
