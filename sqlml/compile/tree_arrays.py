"""Tree ensembles as node arrays read by one fixed SQL traversal (Hummingbird's TreeTraversal).

DuckDB stores a macro as text and parses and binds it again in every query, so SQL spelling out
each node (:mod:`sqlml.compile.trees`' CASE form) costs seconds per query on a 100-tree model.
Here the nodes are data, stored with ``Params`` (sqlml.model_params) and read once per query by
an uncorrelated scalar subquery, and the SQL has the same few hundred characters whatever the
number of trees, nodes or levels:

- Nodes are renumbered breadth first within each tree, so an internal node's two children sit
  in adjacent slots ``l`` and ``l + 1``: a step is ``l[nd] + (x[f[nd]] > t[nd])::INTEGER``,
  with no CASE.
- A row's inputs are one DOUBLE[] ``[x1..xn, -x1..-xn, 0.0]``, NULL read as NaN. DuckDB orders
  NaN above every number, so ``NaN > t`` is true and a missing value takes the second slot.
  A split whose missing values go left compares the negated input with ``-nextafter(t, +inf)``
  (true exactly when x <= t) and holds its children the other way round, with no isnan test.
  Where a missing value goes is scikit-learn's ``missing_go_to_left``, or where the input's
  imputation constant goes (``missing_left``). Leaves compare the constant 0.0 with 0.0
  (false) and point at themselves, so a finished tree stays put.
- Each tree steps exactly its own depth (``list_reduce`` over ``range(depth)``): the text does
  not unroll the levels, so a tree 1,500 levels deep is no larger and nests no deeper.
- The leaves' values are then summed with ``list_sum`` from the left, baseline first, in the
  order scikit-learn accumulates them, so the result is the same float64 bit for bit.

The arrays are captured by one lambda over a one-element list that the subquery itself returns;
built outside the subquery, that list would copy every array into each row (a struct of them
and the inputs is what an input that itself reads a stored array gets: DuckDB allows no
subquery inside a lambda).

The SQL's size does not depend on the model, but each step is a DuckDB lambda evaluation: on a
million rows this is about ten times slower than numpy's predict_proba, where the CASE SQL of
a model small enough to bind quickly is close to it (figures in docs/speed.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sqlml.compile.expressions import num
from sqlml.compile.params import Params

M, X, LEAF = "__sqlml_m", "__sqlml_x", "__sqlml_leaf"   # the lambdas' variables


@dataclass
class Tree:
    """One tree in scikit-learn's layout: ``left[n] == -1`` marks a leaf; ``values`` has one
    column per output; ``missing_left[n]`` says where a missing input goes at split n."""
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    values: np.ndarray


@dataclass
class Nodes:
    """Every tree's nodes in traversal layout, 1-based, tree after tree."""
    feature: list[int]
    threshold: list[float]
    left: list[int]
    roots: list[int]
    depths: list[int]
    values: np.ndarray    # (nodes, outputs); internal nodes hold 0.0


def layout(trees: list[Tree], n_inputs: int) -> Nodes:
    zero = 2 * n_inputs + 1   # the slot of the constant 0.0
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    roots, depths, values = [], [], []
    for tree in trees:
        order, depth = _breadth_first(tree)
        base = len(feature) + 1
        roots.append(base)
        depths.append(depth)
        slot = {node: base + i for i, node in enumerate(order)}
        for node in order:
            f, t, lo = _split(tree, node, slot, n_inputs, zero)
            feature.append(f)
            threshold.append(t)
            left.append(lo)
        values.append(np.where((tree.left[order] == -1)[:, None], tree.values[order], 0.0))
    return Nodes(feature, threshold, left, roots, depths, np.vstack(values))


def _breadth_first(tree: Tree) -> tuple[list[int], int]:
    """The nodes in slot order (each split's two children adjacent, the one taken when the
    comparison is false first) and the tree's depth."""
    order, depth, queue = [0], 0, deque([(0, 0)])
    while queue:
        node, d = queue.popleft()
        depth = max(depth, d)
        lo = int(tree.left[node])
        if lo == -1:
            continue
        hi = int(tree.right[node])
        pair = (hi, lo) if tree.missing_left[node] else (lo, hi)
        order.extend(pair)
        queue.extend((c, d + 1) for c in pair)
    return order, depth


def _split(tree: Tree, node: int, slot: dict, n: int, zero: int) -> tuple[int, float, int]:
    """(input slot, threshold, first child's slot) of a node, as the traversal reads them."""
    lo = int(tree.left[node])
    if lo == -1:
        return zero, 0.0, slot[node]
    f, t = int(tree.feature[node]) + 1, float(tree.threshold[node])
    if not tree.missing_left[node]:
        return f, t, slot[lo]
    first = slot[int(tree.right[node])]
    if t == np.inf:
        # every number passes x <= inf and NaN goes left too: the constant slot, 0.0 > -1.0
        return zero, -1.0, first
    # -x > -nextafter(t, inf) iff x < nextafter(t, inf) iff x <= t: true takes the left child
    return n + f, -float(np.nextafter(t, np.inf)), first


def _array(store: Params | None, key: str, values, kind: str) -> str:
    if store is not None:
        sql = store.add(key, values, kind)
    elif kind == "ints":
        sql = "[" + ", ".join(str(int(v)) for v in values) + "]::BIGINT[]"
    else:
        sql = "[" + ", ".join(num(v) for v in values) + "]::DOUBLE[]"
    # the traversal's arithmetic is INTEGER; the cast runs once per query, in the subquery
    return f"{sql}::INTEGER[]" if kind == "ints" else sql


def traversal(nodes: Nodes, inputs: list[str], store: Params | None, body: str,
              key: str = "trees") -> str:
    """SQL binding the leaves every tree reaches (``__sqlml_leaf``, INTEGER[] in tree order)
    and the model's arrays (``__sqlml_m.v1``, ``.v2``, ... per output), then ``body``.
    ``key`` names the stored arrays (``trees.feature``, ...)."""
    fields = {"f": _array(store, f"{key}.feature", nodes.feature, "ints"),
              "t": _array(store, f"{key}.threshold", nodes.threshold, "doubles"),
              "l": _array(store, f"{key}.left", nodes.left, "ints"),
              "r": _array(store, f"{key}.roots", nodes.roots, "ints"),
              "d": _array(store, f"{key}.depths", nodes.depths, "ints")}
    for k in range(nodes.values.shape[1]):
        fields[f"v{k + 1}"] = _array(store, f"{key}.values{k + 1}", nodes.values[:, k],
                                     "doubles")
    packed = ", ".join(f"'{k}': {v}" for k, v in fields.items())
    xs = [f"coalesce(CAST({x} AS DOUBLE), CAST('NaN' AS DOUBLE))" for x in inputs]
    xe = (f"list_transform([[{', '.join(xs)}]], lambda __sqlml_in: __sqlml_in || "
          f"list_transform(__sqlml_in, lambda __sqlml_v: -__sqlml_v) || [0.0e0])[1]")
    nd = "__sqlml_nd"
    step = f"{M}.l[{nd}] + ({X}[{M}.f[{nd}]] > {M}.t[{nd}])::INTEGER"
    leaves = (f"list_transform({M}.r, lambda __sqlml_root, __sqlml_j: list_reduce("
              f"range({M}.d[__sqlml_j]), lambda {nd}, __sqlml_i: {step}, __sqlml_root))")
    inner = f"list_transform([{leaves}], lambda {LEAF}: {body})[1]"
    if any("__sqlml_x." in x for x in inputs):
        # Inputs are the variables of the lambda that binds a text block's entries once
        # (sqlml/compile/model.py dense_inputs), which also hoists the stored arrays' subqueries
        # out of its lambdas: none may stay here.
        return (f"list_transform([{{{packed}}}], lambda {M}: "
                f"list_transform([{xe}], lambda {X}: {inner})[1])[1]")
    if "SELECT" not in "".join(inputs):
        return (f"list_transform((SELECT [{{{packed}}}]), lambda {M}: "
                f"list_transform([{xe}], lambda {X}: {inner})[1])[1]")
    # An input that reads a stored array cannot go inside a lambda (DuckDB allows no subquery
    # there): both go into a struct, which copies every array into each row.
    return (f"list_transform([{{'m': (SELECT {{{packed}}}), 'x': {xe}}}], lambda __sqlml_s: "
            f"list_transform([__sqlml_s.m], lambda {M}: list_transform([__sqlml_s.x], "
            f"lambda {X}: {inner})[1])[1])[1]")


def leaf_sum(output: int, first: str = "", trees: tuple[int, int] | None = None) -> str:
    """``list_sum`` of an output's leaf values, left to right, after ``first`` if given;
    ``trees`` (1-based, inclusive) limits it to a run of trees."""
    leaves = LEAF if trees is None else f"{LEAF}[{trees[0]}:{trees[1]}]"
    picked = f"list_select({M}.v{output}, {leaves})"
    return f"list_sum([{first}] || {picked})" if first else f"list_sum({picked})"


def leaf_value(output: int) -> str:
    """The output's value at the only tree's leaf."""
    return f"{M}.v{output}[{LEAF}[1]]"


def mean(output: int, n_trees: int) -> str:
    # scikit-learn adds each tree's prediction into zeros, in order, then divides by the count
    return leaf_value(output) if n_trees == 1 else f"({leaf_sum(output)} / {num(n_trees)})"


# --- scikit-learn's trees as node arrays ------------------------------------------------------

def _sk_trees(members: list, fill: np.ndarray, values: list[np.ndarray]) -> list[Tree]:
    trees = []
    for m, v in zip(members, values, strict=True):
        t = m.tree_
        bounds = float32_bounds(t.threshold)
        trees.append(Tree(t.children_left, t.children_right, t.feature, bounds,
                          missing_left(t.feature, bounds, t.missing_go_to_left, fill), v))
    return trees


def forest_sql(members: list, inputs: list[str], fill: np.ndarray, store: Params | None) -> str:
    """A DecisionTree's or RandomForest's outputs (class fractions, or the prediction), one
    DOUBLE[] expression."""
    # scikit-learn (1.4 and later) stores each node's class fractions, and predict_proba
    # returns them as they are; dividing them by their sum again would move some by one bit
    trees = _sk_trees(members, fill, [m.tree_.value[:, 0, :] for m in members])
    nodes = layout(trees, len(inputs))
    outs = [mean(k + 1, len(members)) for k in range(nodes.values.shape[1])]
    return traversal(nodes, inputs, store, f"[{', '.join(outs)}]")


def leaf_ids_sql(members: list, leaf_ids: list[np.ndarray], inputs: list[str],
                 fill: np.ndarray, store: Params | None) -> str:
    """BIGINT[]: for each tree, ``leaf_ids[tree][leaf]`` of the leaf the row reaches (what a
    caller's per-leaf tables are indexed by; sqlml.compile.explain's contributions)."""
    trees = _sk_trees(members, fill, [ids.astype(np.float64)[:, None] for ids in leaf_ids])
    return traversal(layout(trees, len(inputs)), inputs, store,
                     f"CAST(list_select({M}.v1, {LEAF}) AS BIGINT[])", key="leaves")


def hgb_trees(estimator, k: int, fill: np.ndarray) -> list[Tree]:
    """Class ``k``'s trees of a HistGradientBoosting model, in iteration order, in
    scikit-learn's layout (both SQL forms read them from here)."""
    trees = []
    for iteration in estimator._predictors:
        nodes = iteration[k].nodes
        leaf = nodes["is_leaf"] == 1
        trees.append(Tree(
            np.where(leaf, -1, nodes["left"].astype(np.int64)),
            np.where(leaf, -1, nodes["right"].astype(np.int64)),
            nodes["feature_idx"], nodes["num_threshold"],
            missing_left(nodes["feature_idx"], nodes["num_threshold"],
                         nodes["missing_go_to_left"], fill),
            nodes["value"].astype(np.float64)[:, None]))
    return trees


def hgb_layout(estimator, fill: np.ndarray, n_inputs: int) -> tuple[Nodes, list[str]]:
    """A HistGradientBoosting model's nodes, and the SQL of each tree column's raw score
    (baseline, then every iteration's tree, in order) for the body of ``traversal``."""
    # Trees class after class, each class's in iteration order: its raw score is one run.
    n_classes, n_iter = estimator.n_trees_per_iteration_, len(estimator._predictors)
    trees = [t for k in range(n_classes) for t in hgb_trees(estimator, k, fill)]
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
    raws = [leaf_sum(1, num(baseline[k]), None if n_classes == 1 else
                     (k * n_iter + 1, (k + 1) * n_iter)) for k in range(n_classes)]
    return layout(trees, n_inputs), raws


def float32_bounds(thresholds: np.ndarray) -> np.ndarray:
    """For each float64 threshold t, the largest float64 T with ``float32(x) <= t`` iff x <= T.

    float32(x) <= t iff float32(x) <= f, the largest float32 not above t, iff x lies below the
    midpoint between f and the next float32 g, or on it when that tie rounds (to even) to f.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        f = t.astype(np.float32)
        f = np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)
        g = np.nextafter(f, np.float32(np.inf))
        f64, g64 = f.astype(np.float64), g.astype(np.float64)
        # the midpoint is exact in float64 (25 significant bits); beyond float32's largest
        # magnitude, rounding goes to infinity from half an ulp (2**103) out
        mid = np.where(np.isinf(g), f64 + 2.0 ** 103,
                       np.where(np.isinf(f), g64 - 2.0 ** 103, f64 + (g64 - f64) / 2))
        keep = mid.astype(np.float32) == f
    return np.where(keep, mid, np.nextafter(mid, -np.inf))


def missing_left(feature, threshold, native, fill: np.ndarray) -> np.ndarray:
    """Where a missing input goes at each split: left if its imputation constant passes the
    test (``x <= T``, T being the float32 bound for DecisionTree/RandomForest), else
    scikit-learn's own choice for a NaN."""
    feature = np.asarray(feature, dtype=np.int64)
    constant = fill[np.clip(feature, 0, None)]  # leaves (feature < 0) are never tested
    return np.where(np.isnan(constant), np.asarray(native).astype(bool),
                    constant <= np.asarray(threshold, dtype=np.float64))
