"""Estimators compiled to SQL. An estimator emitter turns the compiled preprocessing's
expressions (:mod:`sqlml.compile.preprocessing`) into the model's outputs:

    supports(estimator) -> bool
    scores_sql(estimator, inputs: list[str]) -> list[str] | Vector

one expression per class in ``estimator.classes_`` order (``predict_proba``'s columns) for a
classifier, a one-element list (``predict``) for a regressor, or one ``Vector`` of them all
where per-output expressions would repeat each other. Linear models and MLPs are emitted
here, trees and boosting in :mod:`sqlml.compile.trees`; :func:`emitter` picks the one for an
estimator. What differs from numpy: dot products are summed in another order, and a linear model
multiplies a standard-scaled input by coef / scale, with mean * coef / scale moved into the
intercept where the mean is within 16 scales of zero (``Column.times``), saving a division and a
subtraction per input and row; each moves a probability by about 1e-16.

Macros are inlined where they are called, so nothing is computed once per row unless DuckDB's
common-subexpression elimination extracts it; it does for repeated expressions outside CASE
branches, which is how an input used by every hidden unit of an MLP is computed once.
"""

from __future__ import annotations

import math
import re

import numpy as np
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor

from sqlml.compile.expressions import NotCompilable, num, text, total
from sqlml.compile.preprocessing import Column, OneHot
from sqlml.train.scaled_mlp import ScaledTargetMLPRegressor

MAX_SQL_CHARS = 2_000_000         # an inlined MLP above this binds each layer in a lambda
# An MLP whose inlined SQL would pass this keeps its weights as data: 100 kB of SQL binds in
# about 0.2 s per query, the data form in 10-70 ms whatever the size.
DATA_MLP_CHARS = 100_000


def expit(z: str) -> str:
    return f"(1.0e0 / (1.0e0 + exp(-({z}))))"   # scipy.special.expit: 1 / (1 + exp(-x))


class Vector(str):
    """One SQL expression giving the DOUBLE[] of every output, where per-output expressions
    would each repeat the others' text."""


# What an emitter's scores_sql returns: one expression per output, or a Vector of them all.
Scores = list[str] | Vector


INLINE_SOFTMAX_CHARS = 50_000


def softmax(zs: list[str]) -> Scores:
    """sklearn.utils.extmath.softmax: exp(z - max) / sum.

    Inlined, every output repeats every z about k + 1 times (DuckDB computes each once, but
    parses and binds every copy); above a size the z's are bound once by a lambda instead,
    which costs about 0.3 s per million rows.
    """
    def inline(z: list[str]) -> list[str]:
        top = f"greatest({', '.join(z)})"
        es = [f"exp({v} - {top})" for v in z]
        s = total(es)
        return [f"({e} / {s})" for e in es]

    k = len(zs)
    if sum(map(len, zs)) * k * (k + 1) <= INLINE_SOFTMAX_CHARS:
        return inline(zs)
    body = inline([f"__sqlml_z[{i + 1}]" for i in range(k)])
    return Vector(f"list_transform([[{', '.join(zs)}]], lambda __sqlml_z: "
                  f"[{', '.join(body)}])[1]")


_LINEAR = (LogisticRegression, Ridge, Lasso, ElasticNet, LinearRegression)


class linear:
    @staticmethod
    def supports(est) -> bool:
        return isinstance(est, _LINEAR)

    @staticmethod
    def scores_sql(est, inputs: list, raw_decision: bool = False) -> Scores:
        """``inputs`` are strings or Columns; Columns let one-hot blocks collapse to one CASE
        and let a single-output model skip imputation on rows where nothing is missing.
        ``raw_decision``: the decision function instead (one expression per row of coef_)."""
        coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
        cols = [c if isinstance(c, Column) else Column(c) for c in inputs]
        # The matrix column each Column starts at: a text block stands for its width of them.
        starts = np.cumsum([0] + [c.width for c in cols])

        binary = isinstance(est, LogisticRegression) and len(est.classes_) == 2 \
            and not raw_decision
        # A binary model's sigmoid needs -z; negating every weight gives exactly -z (IEEE
        # negation commutes with rounding) and saves DuckDB one pass over the rows.
        sign = -1.0 if binary else 1.0

        def decision(k: int, use_raw: bool) -> str:
            terms, seen, constant = [], set(), [sign * float(intercept[k])]
            for j, c in enumerate(cols):
                g = c.onehot
                if c.text is not None:
                    continue   # added by text_terms, outside the CASE below
                if g is not None:
                    if id(g) not in seen:
                        seen.add(id(g))
                        terms.append(_onehot_term(g, sign * coef[k]))
                    continue
                w = sign * float(coef[k, starts[j]])
                if w != 0.0:
                    term, offset = c.times(w, use_raw)
                    terms.append(term)
                    constant.append(offset)
            return f"({total(terms)} + {num(math.fsum(constant))})"

        zs = [decision(k, False) for k in range(coef.shape[0])]
        if len(zs) == 1 and any(c.raw is not None for c in cols):
            # Nothing missing (the common row): the unimputed sum is the same number, and a NULL
            # or NaN in it sends the row to the imputed sum.
            fast = decision(0, True)
            # Written so DuckDB's statistics fold the test away on columns with no NULL or NaN.
            zs = [f"(CASE WHEN NOT isnan({fast}) THEN {fast} ELSE {zs[0]} END)"]
        if len(zs) > 1 and any(c.text is not None for c in cols):
            return _bound_text_terms(est, zs, cols, coef)
        zs = text_terms(zs, cols, sign * coef)
        if raw_decision or not isinstance(est, LogisticRegression):
            return zs
        if binary:
            p = f"(1.0e0 / (1.0e0 + exp({zs[0]})))"   # expit(z), given -z
            return [f"(1.0e0 - {p})", p]
        return softmax(zs)


def _bound_text_terms(est, zs: list[str], cols: list[Column], coef: np.ndarray) -> Scores:
    """Several outputs over text: each block's dot products computed once, as one DOUBLE[]
    bound by a lambda around the outputs, rather than its subquery repeated per output."""
    blocks = [c.text for c in cols if c.text is not None]
    names = [f"d{b + 1}" for b in range(len(blocks))]
    zs = [f"({z} + {' + '.join(f'__sqlml_t.{n}[{k + 1}]' for n in names)})"
          for k, z in enumerate(zs)]
    out = softmax(zs) if isinstance(est, LogisticRegression) else zs
    vector = out if isinstance(out, Vector) else f"[{', '.join(out)}]"
    dots = ", ".join(f"'{n}': {b.dots(coef)}" for n, b in zip(names, blocks, strict=True))
    return Vector(f"list_transform([{{{dots}}}], lambda __sqlml_t: {vector})[1]")


def text_terms(zs: list[str], cols: list[Column], coef: np.ndarray) -> list[str]:
    """Each decision plus the sparse dot products of its text blocks: sum over the row's terms
    of tfidf * coef (the row's few terms, not one product per vocabulary column)."""
    for c in cols:
        if c.text is not None:
            dots = c.text.dots(coef)
            zs = [f"({z} + ({dots})[{k + 1}])" for k, z in enumerate(zs)]
    return zs


def _onehot_term(g: OneHot, w: np.ndarray) -> str:
    """sum_j onehot_j * w_j: exactly w of the column the category sets (the others add 0)."""
    arms = " ".join(f"WHEN {text(c)} THEN {num(w[g.start + j])}" for c, j in g.index.items())
    other = num(w[g.start + g.unknown]) if g.unknown is not None else "0.0e0"
    return f"(CASE {g.value} {arms} ELSE {other} END)"


_ACTIVATIONS = {
    "identity": lambda x: x,
    "relu": lambda x: f"greatest({x}, 0.0e0)",
    "tanh": lambda x: f"tanh({x})",
    "logistic": expit,
}


class mlp:
    @staticmethod
    def supports(est) -> bool:
        return isinstance(est, MLPClassifier | MLPRegressor) and \
            est.activation in _ACTIVATIONS and est.out_activation_ in (
                "identity", "logistic", "softmax")

    @staticmethod
    def scores_sql(est, inputs: list[str], store=None) -> Scores:
        """``store`` (sqlml.compile.params.Params): where a network whose inlined SQL would pass
        DATA_MLP_CHARS keeps its weights, as data (see _mlp_data)."""
        inputs = [c.sql if isinstance(c, Column) else c for c in inputs]
        size = _inlined_size(est, inputs)
        if store is not None and size > DATA_MLP_CHARS:
            return _mlp_data(est, inputs, store)
        return _mlp(est, inputs, bind=size > MAX_SQL_CHARS)


def _inlined_size(est, inputs: list[str]) -> float:
    """Characters of the inlined expressions, estimated without building them (a deep network
    inlined would run to gigabytes)."""
    size = float(np.mean([len(s) for s in inputs])) if inputs else 0.0
    for W in est.coefs_:
        size = W.shape[0] * (size + 30.0) + 60.0
    return size * max(2, est.coefs_[-1].shape[1])


def _layer(acts: list[str], W: np.ndarray, b: np.ndarray) -> list[str]:
    """activation @ W + b (safe_sparse_dot, then += intercept), one expression per unit."""
    out = []
    for j in range(W.shape[1]):
        terms = [f"({a} * {num(W[i, j])})" for i, a in enumerate(acts) if W[i, j] != 0.0]
        out.append(f"({total(terms)} + {num(b[j])})")
    return out


def _mlp(est, inputs: list[str], bind: bool) -> Scores:
    """BaseMultilayerPerceptron._forward_pass_fast. Inlined, each layer's expressions are
    repeated in every unit of the next (DuckDB computes them once, but the text multiplies);
    bound, each hidden layer becomes a list that a lambda over the next layer reads."""
    hidden = _ACTIVATIONS[est.activation]
    acts = inputs
    wrappers = []
    n = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        z = _layer(acts, np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64))
        if i == n - 1:
            acts = z
            break
        acts = [hidden(v) for v in z]
        if bind:
            var = f"__sqlml_h{i + 1}"
            wrappers.append((var, acts))
            acts = [f"{var}[{j + 1}]" for j in range(len(acts))]
    if est.out_activation_ == "softmax":
        outs = softmax(acts)
    elif est.out_activation_ == "logistic":
        p = expit(acts[0])
        outs = [f"(1.0e0 - {p})", p]
    else:
        outs = acts
        if isinstance(est, ScaledTargetMLPRegressor):
            outs = [f"(({v} * {num(est.target_scale_)}) + {num(est.target_mean_)})" for v in outs]
    if not bind:
        return outs
    # One list of every output, built inside the innermost lambda.
    body = outs if isinstance(outs, Vector) else f"[{', '.join(outs)}]"
    for var, vals in reversed(wrappers):
        body = f"list_transform([[{', '.join(vals)}]], lambda {var}: {body})[1]"
    return Vector(body)


def _data_layer(xs: str, w: str, b: str, n_in: int, n_out: int, act) -> str:
    """One layer as a correlated subquery: ``xs`` (the SQL of the layer's input DOUBLE[]) times
    the row-major weights ``w`` (n_in x n_out, stored), grouped per unit, plus the intercept,
    then the activation; a DOUBLE[] in unit order. A unit's products are added in input order
    (``list_sum`` of the ordered list: the same number every run, where DuckDB's ``sum`` adds
    in arrival order; about 1e-16 from numpy's dot)."""
    z = act("(__sqlml_z + __sqlml_b[__sqlml_j + 1])")
    return (f"(SELECT list({z} ORDER BY __sqlml_j) FROM (SELECT __sqlml_k % {n_out} AS __sqlml_j, "
            f"list_sum(list(__sqlml_x[__sqlml_k // {n_out} + 1] * __sqlml_w ORDER BY "
            f"__sqlml_k)) AS __sqlml_z FROM (SELECT "
            f"{xs} AS __sqlml_x, unnest({w}) AS __sqlml_w, unnest(range({n_in * n_out})) AS "
            f"__sqlml_k) GROUP BY __sqlml_j), (SELECT {b} AS __sqlml_b))")


def _mlp_data(est, inputs: list[str], store) -> Scores:
    """BaseMultilayerPerceptron._forward_pass_fast with the weights stored as data: the macro's
    text has one shape whatever the network's size; each layer is a join of the row's previous
    activations with the stored weights (sqlml/compile/params.py)."""
    hidden = _ACTIVATIONS[est.activation]
    x = f"[{', '.join(inputs)}]"
    n = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        W = np.asarray(W, dtype=np.float64)
        x = _data_layer(x, store.add(f"mlp_w{i + 1}", W.ravel(), "doubles"),
                        store.add(f"mlp_b{i + 1}", np.asarray(b, np.float64), "doubles"),
                        W.shape[0], W.shape[1], hidden if i < n - 1 else (lambda v: v))
    o = [f"__sqlml_o[{k + 1}]" for k in range(est.coefs_[-1].shape[1])]
    if est.out_activation_ == "softmax":
        outs = softmax(o)
        body = outs if isinstance(outs, Vector) else f"[{', '.join(outs)}]"
        return Vector(f"list_transform([{x}], lambda __sqlml_o: {body})[1]")
    if est.out_activation_ == "logistic":
        p = expit(o[0])
        return Vector(f"list_transform([{x}], lambda __sqlml_o: [(1.0e0 - {p}), {p}])[1]")
    out = f"({x})[1]"
    if isinstance(est, ScaledTargetMLPRegressor):
        out = f"(({out} * {num(est.target_scale_)}) + {num(est.target_mean_)})"
    return [out]


def emitter(est):
    """The module whose scores_sql compiles ``est``, or NotCompilable saying why not."""
    name = type(est).__name__
    if name == "CalibratedClassifierCV":
        from sqlml.compile import calibration
        return calibration
    from sqlml.compile import knn
    if knn.supports(est):
        knn.check(est)
        return knn
    for candidate in (linear, mlp):
        if candidate.supports(est):
            return candidate
    try:
        from sqlml.compile import trees as compile_trees
    except ImportError:
        compile_trees = None
    if compile_trees is not None and compile_trees.supports(est):
        return compile_trees
    if compile_trees is not None and name.startswith(
            ("DecisionTree", "RandomForest", "HistGradientBoosting")):
        raise NotCompilable(f"{name} model: {_tree_reason(compile_trees, est)}")
    raise NotCompilable(f"{name} model")


def _tree_reason(compile_trees, est) -> str:
    """The tree compiler's own reason, from the error it raises for this estimator."""
    try:
        compile_trees.scores_sql(est, ["0.0e0"] * int(getattr(est, "n_features_in_", 0)))
    except (ValueError, AttributeError, TypeError) as exc:
        m = re.search(r"exact SQL: (.*?)\. Score it", str(exc))
        if m:
            return m.group(1)
    return "of a kind or size the tree compiler does not cover"
