"""Models compiled to plain SQL: persisted macros that score in any DuckDB client, no Python.

A stored pipeline is ``[("prep", ColumnTransformer), ("model", estimator)]``. The preprocessing
becomes one DOUBLE expression per column of the matrix the estimator receives, each computing the
same float64 value scikit-learn computes (same operations in the same order: ``(x - mean) /
scale``, the median where the value is missing, the one-hot column a category lands in). An
estimator emitter turns those expressions into the model's outputs:

    supports(estimator) -> bool
    scores_sql(estimator, inputs: list[str]) -> list[str]

one expression per class in ``estimator.classes_`` order (``predict_proba``'s columns) for a
classifier, a one-element list (``predict``) for a regressor. Linear models and MLPs are emitted
here, trees and boosting in :mod:`sqlml.compile_trees`. What differs from numpy: dot products are
summed in another order, and a linear model multiplies a standard-scaled input by coef / scale,
with mean * coef / scale moved into the intercept where the mean is within 16 scales of zero
(:meth:`Column.times`), saving a division and a subtraction per input and row; each moves a
probability by about 1e-16.

Inputs are converted as ``preprocessing.to_frame`` converts them (pyarrow's casts, including its
DECIMAL rounding; DuckDB's differs in the last bit), for arguments of the training types. Before
a version is published its SQL is run on training rows and a row of NULLs and compared with the
pipeline (see :func:`verify`); SQL that disagrees is not published, and neither is SQL over
``MAX_MACRO_CHARS``: the model then gets a not-compiled note saying why.

Macros are inlined where they are called, so nothing is computed once per row unless DuckDB's
common-subexpression elimination extracts it; it does for repeated expressions outside CASE
branches, which is how an input used by every hidden unit of an MLP is computed once.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from sqlml import artifacts, catalog, generated, preprocessing
from sqlml.preprocessing import DateParts, Feature

SUFFIXES = generated.COMPILED_SUFFIXES
ROW = "row_or_feature"            # the whole-row parameter, as in sqlml/generated.py
MAX_SQL_CHARS = 2_000_000         # an inlined MLP above this binds each layer in a lambda
MAX_MACRO_CHARS = 5_000_000       # a model whose SQL is larger is not compiled
FOLD_MEAN = 16.0                  # see Column.times
VERIFY_ROWS = 256
VERIFY_TOLERANCE = 1e-9
VERIFY_OUTPUT_CHARS = 1_000_000   # larger outputs are checked through their inputs only


class NotCompilable(Exception):
    """The model has a part that plain SQL cannot reproduce exactly; the text says which."""


def names(fn: str, problem_type: str) -> list[str]:
    out = [fn + "_sql"]
    if problem_type == "binary_classification":
        out.append(fn + "_probability_sql")
    if problem_type != "regression":
        out.append(fn + "_probabilities_sql")
    return out


def all_names(fn: str) -> list[str]:
    return [fn + s for s in SUFFIXES]


# -- SQL text helpers ---------------------------------------------------------------------------
def num(x) -> str:
    """A float64 literal that DuckDB reads back to the same bits (a literal with an exponent is
    parsed as DOUBLE; without one it would be a DECIMAL, rounded twice on the way to DOUBLE)."""
    x = float(x)
    if np.isnan(x):
        return "'nan'::DOUBLE"
    if np.isinf(x):
        return "'inf'::DOUBLE" if x > 0 else "'-inf'::DOUBLE"
    r = repr(x)
    if "e" not in r:
        r += "e0"
    return f"({r})" if r.startswith("-") else r


def text(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def total(terms: list[str]) -> str:
    """A sum as a balanced tree: depth log2(n), far below DuckDB's expression depth limit."""
    if not terms:
        return "0.0e0"
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def expit(z: str) -> str:
    return f"(1.0e0 / (1.0e0 + exp(-({z}))))"   # scipy.special.expit: 1 / (1 + exp(-x))


class Vector(str):
    """One SQL expression giving the DOUBLE[] of every output, where per-output expressions
    would each repeat the others' text."""


INLINE_SOFTMAX_CHARS = 50_000


def softmax(zs: list[str]) -> list[str] | Vector:
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


# -- preprocessing --------------------------------------------------------------------------------
@dataclass
class OneHot:
    """A one-hot or ordinal block: lets a linear model add one CASE instead of a term per
    column. ``index[c]`` is the column category c sets to 1; ``unknown`` the one an unseen
    category sets (None: all zeros)."""
    value: str
    index: dict
    unknown: int | None
    start: int
    width: int


class Input(str):
    """An input handed to an estimator emitter: the imputed value's SQL, as a plain string, with
    what an emitter may use instead of repeating it: ``raw`` (the value before imputation,
    NULL or NaN where missing), ``missing`` (SQL, true where missing) and ``fill`` (the value
    imputed). A split ``input <= t`` is ``raw <= t`` when fill > t, else ``raw <= t OR
    missing``: a comparison of the column itself on most rows."""

    def __new__(cls, sql: str, raw: str, missing: str, fill: float):
        obj = super().__new__(cls, sql)
        obj.raw, obj.missing, obj.fill = raw, missing, fill
        return obj


@dataclass
class Column:
    """One column of the transformed matrix."""
    sql: str                       # the value, missing inputs imputed as the pipeline does
    raw: str | None = None         # the value before imputation (NULL/NaN propagate), if it differs
    onehot: OneHot | None = None   # the one-hot block the column belongs to
    centred: tuple | None = None   # standard-scaled: (x, mean, scale, missing, scaled fill,
    #                                 the imputed x in SQL or None, the median)
    choice: tuple | None = None    # an indicator: (missing, value if missing, value if not)
    missing: tuple | None = None   # unscaled and imputed: (x, missing, fill), see Input

    def as_input(self) -> str:
        return Input(self.sql, *self.missing) if self.missing else self.sql

    @property
    def unimputed(self) -> str:
        return self.sql if self.raw is None else self.raw

    def times(self, w: float, raw: bool) -> tuple[str, float]:
        """This column times a weight, as a linear model's term, and a constant the term leaves
        to the intercept.

        A standard-scaled column is multiplied as (x - mean) * (w / scale), saving a division
        per row; where |mean| <= FOLD_MEAN * scale, as x * (w / scale) with -mean * w / scale
        moved into the intercept, saving the subtraction too. Either moves the sum by a few
        roundings of its terms, far below 1e-12 of a probability (the bound on |mean| keeps
        the folded terms within 17 times the centred ones)."""
        w = np.float64(w)
        if self.centred is not None:
            x, mean, scale, miss, fill, imputed, med = self.centred
            factor = w / np.float64(scale)
            if abs(mean) <= FOLD_MEAN * scale:
                if raw:
                    return f"({x} * {num(factor)})", float(-np.float64(mean) * factor)
                if imputed is not None:
                    return f"({imputed} * {num(factor)})", float(-np.float64(mean) * factor)
                return (f"(CASE WHEN {miss} THEN {num(np.float64(med) * factor)} ELSE "
                        f"({x} * {num(factor)}) END)", float(-np.float64(mean) * factor))
            term = f"(({x} - {num(mean)}) * {num(factor)})"
            if raw:
                return term, 0.0
            if imputed is not None:
                return f"(({imputed} - {num(mean)}) * {num(factor)})", 0.0
            return (f"(CASE WHEN {miss} THEN {num(np.float64(fill) * w)} ELSE {term} END)",
                    0.0)
        if self.choice is not None:
            miss, yes, no = self.choice
            if raw:
                return num(np.float64(no) * w), 0.0
            return (f"(CASE WHEN {miss} THEN {num(np.float64(yes) * w)} ELSE "
                    f"{num(np.float64(no) * w)} END)", 0.0)
        return f"({self.unimputed if raw else self.sql} * {num(w)})", 0.0


FLOAT_TYPES = ("FLOAT", "DOUBLE")
CATEGORY_TYPES = ("VARCHAR", "ENUM", "BOOLEAN", *preprocessing.INTEGER_TYPES)


def double_input(f: Feature, p: str) -> str:
    """The feature as preprocessing.to_frame sees it: float64 as pyarrow casts it."""
    t = preprocessing.base_type(f.type)
    if t == "DECIMAL" or t in ("HUGEINT", "UHUGEINT"):
        m = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", f.type.upper())
        scale = int(m.group(2)) if m else 0
        if scale > 18:
            raise NotCompilable(
                f"column {f.name} is {f.type}: pyarrow's conversion of more than 18 decimals "
                f"to DOUBLE is not reproduced in SQL")
        return arrow_decimal_to_double(p, scale)
    if t in FLOAT_TYPES:
        return p   # used as is: DuckDB widens FLOAT exactly, and text fails to bind
    return f"CAST({p} AS DOUBLE)"


def arrow_decimal_to_double(p: str, s: int) -> str:
    """pyarrow's DECIMAL to float64 cast, which the Python path uses and which differs from
    DuckDB's exact one in the last bit: an unscaled integer up to 2^53 is converted and
    multiplied by 10^-s; a larger one is split into whole and fraction, each converted (a whole
    part of 2^64 or more as high * 2^64 + low), then added."""
    a = f"abs(CAST({p} AS DECIMAL(38, {s})))"

    def real(w: str) -> str:
        return (f"CASE WHEN {w} < 18446744073709551616 THEN {w}::DOUBLE ELSE "
                f"({w} >> 64)::DOUBLE * 1.8446744073709552e19 + "
                f"({w} & 18446744073709551615)::DOUBLE END")

    whole = f"trunc({a})::HUGEINT"
    if s == 0:
        body = real(whole)
    else:
        inv = f"1e-{s}"
        limit = format(Decimal(2 ** 53).scaleb(-s), "f")   # exact, compared as a DECIMAL
        body = (f"CASE WHEN {a} <= {limit} THEN "
                f"({a} * {10 ** s})::HUGEINT::DOUBLE * {inv} ELSE "
                f"({real(whole)}) + (({a} - trunc({a})) * {10 ** s})::HUGEINT::DOUBLE * {inv} END")
    return f"(sign({p})::DOUBLE * ({body}))"


def columns(prep: ColumnTransformer, features: list[Feature], params: list[str]) -> list[Column]:
    """The transformed matrix as SQL, in the ColumnTransformer's output order."""
    by_name = {f.name: (f, p) for f, p in zip(features, params, strict=True)}
    out: list[Column] = []
    for name, trans, cols in prep.transformers_:
        if trans == "drop" or (isinstance(cols, list) and not cols):
            continue
        if name == "remainder" or name not in by_name:
            raise NotCompilable(f"preprocessing step {name!r} is not one sqlml builds")
        f, p = by_name[name]
        if f.kind == "text":
            raise NotCompilable(f"TF-IDF text column {f.name}")
        if not isinstance(trans, Pipeline):
            raise NotCompilable(f"preprocessing of column {f.name} is not a pipeline")
        if f.kind in ("numeric", "boolean"):
            out += _numeric(f, trans, p)
        elif f.kind == "date":
            out += _date(f, trans, p)
        elif f.kind == "categorical":
            out += _categorical(f, trans, p, len(out))
        else:
            raise NotCompilable(f"column {f.name} of kind {f.kind}")
    width = prep.transform(_probe_frame(features)).shape[1]
    if len(out) != width:
        raise NotCompilable(f"the preprocessing makes {width} columns, the compiler {len(out)}")
    return out


def _probe_frame(features: list[Feature]) -> pd.DataFrame:
    cols = [pa.nulls(1, type=pa.null()) for _ in features]
    return preprocessing.to_frame(cols, features, "compile")


def _scaled(steps: list, width: int, name: str):
    """Per column of the scaler after the imputer: ("standard", mean, scale), ("minmax",
    scale, min) or None."""
    if not steps:
        return [None] * width
    if len(steps) > 1:
        raise NotCompilable(f"preprocessing of column {name} has unexpected steps")
    sc = steps[0]
    if isinstance(sc, StandardScaler):
        mean = sc.mean_ if sc.with_mean else np.zeros(width)
        scale = sc.scale_ if sc.with_std else np.ones(width)
        return [("standard", float(mean[j]), float(scale[j])) for j in range(width)]
    if isinstance(sc, MinMaxScaler) and not sc.clip:
        return [("minmax", float(sc.scale_[j]), float(sc.min_[j])) for j in range(width)]
    raise NotCompilable(f"scaler {type(sc).__name__} of column {name}")


def _apply(scaler, x: str) -> str:
    if scaler is None:
        return x
    kind, a, b = scaler
    if kind == "standard":   # StandardScaler.transform: X -= mean_; X /= scale_
        return f"(({x} - {num(a)}) / {num(b)})"
    return f"(({x} * {num(a)}) + {num(b)})"   # MinMaxScaler: X *= scale_; X += min_


def _apply_const(scaler, v: float) -> float:
    """The same operations on a constant, in numpy float64: the exact value SQL would get."""
    v = np.float64(v)
    if scaler is None:
        return float(v)
    kind, a, b = scaler
    if kind == "standard":
        return float((v - np.float64(a)) / np.float64(b))
    return float(v * np.float64(a) + np.float64(b))


def _imputer(trans: Pipeline, name: str, at: int) -> tuple[SimpleImputer, list[int]]:
    imp = trans.steps[at][1]
    if not isinstance(imp, SimpleImputer) or imp.strategy not in ("median", "mean"):
        raise NotCompilable(f"imputation of column {name}")
    if not (isinstance(imp.missing_values, float) and np.isnan(imp.missing_values)):
        raise NotCompilable(f"imputation of column {name}")
    if np.any(np.isnan(imp.statistics_)):
        raise NotCompilable(f"column {name} was missing in every training row")
    flagged = [] if imp.indicator_ is None else [int(i) for i in imp.indicator_.features_]
    return imp, flagged


def _impute_block(values: list[str], missing: list[str], imp: SimpleImputer, flagged: list[int],
                  scalers: list, nan_able: bool) -> list[Column]:
    """Imputed values then indicators (SimpleImputer's layout), each through its scaler.

    Where only NULL can be missing, the imputed value is ``coalesce(x, median)``: fewer
    expression nodes than a CASE, which matters where a tree repeats the input at every split.
    """
    out = []
    for j, (x, miss) in enumerate(zip(values, missing, strict=True)):
        sc = scalers[j]
        med = float(imp.statistics_[j])
        fill = _apply_const(sc, med)
        if nan_able:
            sql = f"(CASE WHEN {miss} THEN {num(fill)} ELSE {_apply(sc, x)} END)"
            imputed = None
        else:
            imputed = f"coalesce({x}, {num(med)})"
            sql = _apply(sc, imputed) if sc else imputed
        centred = ((x, sc[1], sc[2], miss, fill, imputed, med) if sc and sc[0] == "standard"
                   else None)
        out.append(Column(sql, raw=_apply(sc, x), centred=centred,
                          missing=None if sc else (x, miss, med)))
    for k, j in enumerate(flagged):
        sc = scalers[len(values) + k]
        yes, no = _apply_const(sc, 1.0), _apply_const(sc, 0.0)
        out.append(Column(f"(CASE WHEN {missing[j]} THEN {num(yes)} ELSE {num(no)} END)",
                          raw=num(no), choice=(missing[j], yes, no)))
    return out


def _numeric(f: Feature, trans: Pipeline, p: str) -> list[Column]:
    imp, flagged = _imputer(trans, f.name, 0)
    x = double_input(f, p)
    nan_able = preprocessing.base_type(f.type) in FLOAT_TYPES
    miss = f"(isnan({x}) IS NOT FALSE)" if nan_able else f"({x} IS NULL)"
    scalers = _scaled([s for _, s in trans.steps[1:]], 1 + len(flagged), f.name)
    return _impute_block([x], [miss], imp, flagged, scalers, nan_able)


DATE_SQL_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")


def _date(f: Feature, trans: Pipeline, p: str) -> list[Column]:
    t = preprocessing.base_type(f.type)
    if t not in DATE_SQL_TYPES:
        raise NotCompilable(
            f"date column {f.name} is {f.type}, whose parts depend on the session time zone")
    if len(trans.steps) < 2 or not isinstance(trans.steps[0][1], DateParts):
        raise NotCompilable(f"preprocessing of date column {f.name}")
    # DateParts computes days since 1970 in the unit pandas holds the column in: nanoseconds
    # for TIMESTAMP_NS, a coarser unit (the same quotient) otherwise.
    if t == "TIMESTAMP_NS":
        ts = f"CAST({p} AS TIMESTAMP_NS)"
        days = f"(epoch_ns({ts})::DOUBLE / 8.64e13)"
    else:
        ts = f"CAST({p} AS TIMESTAMP)"
        days = f"(epoch_us({ts})::DOUBLE / 8.64e10)"
    parts = [f"year({ts})::DOUBLE", f"month({ts})::DOUBLE", f"day({ts})::DOUBLE",
             f"(isodow({ts}) - 1)::DOUBLE", f"dayofyear({ts})::DOUBLE", f"hour({ts})::DOUBLE",
             days]
    imp, flagged = _imputer(trans, f.name, 1)
    scalers = _scaled([s for _, s in trans.steps[2:]], len(parts) + len(flagged), f.name)
    return _impute_block(parts, [f"({ts} IS NULL)"] * len(parts), imp, flagged, scalers,
                         nan_able=False)


def _categorical(f: Feature, trans: Pipeline, p: str, start: int) -> list[Column]:
    if preprocessing.base_type(f.type) not in CATEGORY_TYPES:
        raise NotCompilable(
            f"categorical column {f.name} is {f.type}, whose text form differs between "
            f"pyarrow and DuckDB")
    steps = [s for _, s in trans.steps]
    if len(steps) != 2 or not isinstance(steps[0], SimpleImputer) \
            or steps[0].strategy != "constant":
        raise NotCompilable(f"preprocessing of categorical column {f.name}")
    enc = steps[1]
    if not isinstance(enc, OneHotEncoder | OrdinalEncoder):
        raise NotCompilable(f"encoder {type(enc).__name__} of column {f.name}")
    fill = steps[0].fill_value
    value = f"coalesce(CAST({p} AS VARCHAR), {text(fill)})"
    cats = [str(c) for c in enc.categories_[0]]
    unknown = _unseen(cats)
    # What the fitted pipeline itself outputs for every category and for an unseen one, so the
    # SQL follows scikit-learn's rules (infrequent grouping, unknown handling) by construction.
    rows = trans.transform(pd.DataFrame({f.name: np.array([*cats, unknown], dtype=object)}))
    rows = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows, dtype=float)
    if isinstance(enc, OrdinalEncoder):
        arms = " ".join(f"WHEN {text(c)} THEN {num(rows[i, 0])}" for i, c in enumerate(cats))
        return [Column(f"(CASE {value} {arms} ELSE {num(rows[-1, 0])} END)")]
    width = rows.shape[1]
    index = {}
    for i, c in enumerate(cats):
        hot = np.flatnonzero(rows[i])
        if len(hot) != 1 or rows[i, hot[0]] != 1.0:
            raise NotCompilable(f"one-hot encoding of column {f.name}")
        index[c] = int(hot[0])
    hot = np.flatnonzero(rows[-1])
    unseen = int(hot[0]) if len(hot) else None
    group = OneHot(value, index, unseen, start, width)
    out = []
    for j in range(width):
        members = [c for c, k in index.items() if k == j]
        if not members and j != unseen:
            raise NotCompilable(f"one-hot encoding of column {f.name}")
        if j == unseen:
            others = [c for c, k in index.items() if k != j]
            cond = (f"{value} NOT IN ({', '.join(map(text, others))})" if others else "true")
        else:
            cond = (f"{value} = {text(members[0])}" if len(members) == 1
                    else f"{value} IN ({', '.join(map(text, members))})")
        out.append(Column(f"(CASE WHEN {cond} THEN 1.0e0 ELSE 0.0e0 END)", onehot=group))
    return out


def _unseen(cats: list[str]) -> str:
    probe = "\x00sqlml-unseen-category"
    while probe in cats:
        probe += "_"
    return probe


# -- estimators ----------------------------------------------------------------------------------
_LINEAR = (LogisticRegression, Ridge, Lasso, ElasticNet, LinearRegression)


class linear:
    @staticmethod
    def supports(est) -> bool:
        return isinstance(est, _LINEAR)

    @staticmethod
    def scores_sql(est, inputs: list) -> list[str]:
        """``inputs`` are strings or Columns; Columns let one-hot blocks collapse to one CASE
        and let a single-output model skip imputation on rows where nothing is missing."""
        coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
        cols = [c if isinstance(c, Column) else Column(c) for c in inputs]

        binary = isinstance(est, LogisticRegression) and len(est.classes_) == 2
        # A binary model's sigmoid needs -z; negating every weight gives exactly -z (IEEE
        # negation commutes with rounding) and saves DuckDB one pass over the rows.
        sign = -1.0 if binary else 1.0

        def decision(k: int, use_raw: bool) -> str:
            terms, seen, constant = [], set(), [sign * float(intercept[k])]
            for j, c in enumerate(cols):
                g = c.onehot
                if g is not None:
                    if id(g) not in seen:
                        seen.add(id(g))
                        terms.append(_onehot_term(g, sign * coef[k]))
                    continue
                w = sign * float(coef[k, j])
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
        if not isinstance(est, LogisticRegression):
            return zs
        if binary:
            p = f"(1.0e0 / (1.0e0 + exp({zs[0]})))"   # expit(z), given -z
            return [f"(1.0e0 - {p})", p]
        return softmax(zs)


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
    def scores_sql(est, inputs: list[str]) -> list[str]:
        inputs = [c.sql if isinstance(c, Column) else c for c in inputs]
        return _mlp(est, inputs, bind=_inlined_size(est, inputs) > MAX_SQL_CHARS)


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


def _mlp(est, inputs: list[str], bind: bool) -> list[str]:
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
    if not bind:
        return outs
    # One list of every output, built inside the innermost lambda.
    body = outs if isinstance(outs, Vector) else f"[{', '.join(outs)}]"
    for var, vals in reversed(wrappers):
        body = f"list_transform([[{', '.join(vals)}]], lambda {var}: {body})[1]"
    return Vector(body)


def emitter(est):
    """The module whose scores_sql compiles ``est``, or NotCompilable saying why not."""
    name = type(est).__name__
    if name == "CalibratedClassifierCV":
        raise NotCompilable("calibrated model (settings calibrate): the calibration maps "
                            "are not compiled")
    if name.startswith("KNeighbors"):
        raise NotCompilable("KNN model: a prediction searches the stored training rows")
    for candidate in (linear, mlp):
        if candidate.supports(est):
            return candidate
    try:
        from sqlml import compile_trees
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


# -- macros ----------------------------------------------------------------------------------------
@dataclass
class Compiled:
    """A model's outputs as SQL over its feature parameters: per class (classification, the
    stored classes' order), as one DOUBLE[] (``vector``), or the prediction (regression)."""
    probabilities: list[str] | None = None
    vector: str | None = None
    prediction: str | None = None
    inputs: list[str] | None = None     # the transformed matrix's columns

    @property
    def chars(self) -> int:
        return sum(map(len, self.select_list()))

    def select_list(self) -> list[str]:
        if self.prediction is not None:
            return [self.prediction]
        return [self.vector] if self.vector is not None else list(self.probabilities)


def compile_pipeline(pipeline: Pipeline, features: list[Feature], problem_type: str) -> Compiled:
    if not isinstance(pipeline, Pipeline) or [n for n, _ in pipeline.steps] != ["prep", "model"]:
        raise NotCompilable("the stored pipeline is not preprocessing then one model")
    est = pipeline.named_steps["model"]
    emit = emitter(est)
    params = [generated.quote(f.name) for f in features]
    cols = columns(pipeline.named_steps["prep"], features, params)
    if getattr(est, "n_features_in_", len(cols)) != len(cols):
        raise NotCompilable("the model's input width differs from the preprocessing's output")
    inputs = [c.sql for c in cols]
    if emit in (linear, mlp):
        scores = emit.scores_sql(est, cols)
    elif problem_type == "multiclass_classification" and hasattr(emit, "probabilities_sql"):
        # One list of every class: a softmax over boosted trees evaluates them once.
        scores = Vector(emit.probabilities_sql(est, [c.as_input() for c in cols]))
    else:
        scores = emit.scores_sql(est, [c.as_input() for c in cols])
    if problem_type == "regression":
        out = Compiled(prediction=f"({scores})[1]" if isinstance(scores, Vector) else scores[0],
                       inputs=inputs)
    elif isinstance(scores, Vector):
        out = Compiled(vector=scores, inputs=inputs)
    else:
        out = Compiled(probabilities=list(scores), inputs=inputs)
    if out.chars > MAX_MACRO_CHARS:
        raise NotCompilable(
            f"its SQL would be {out.chars / 1e6:.1f} MB, over the {MAX_MACRO_CHARS / 1e6:g} MB "
            f"limit: DuckDB parses and binds a macro's SQL again in every query that calls it, "
            f"which would take many seconds per query")
    return out


def _wrapped(s: str) -> bool:
    """Whether ``s`` is one parenthesised group, "(...)", its first parenthesis closing last."""
    if not s.startswith("("):
        return False
    depth, quoted = 0, False
    for i, ch in enumerate(s):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
            if depth == 0:
                return i == len(s) - 1
    return False


def label_literal(value, label_type: str) -> str:
    if label_type == "BOOLEAN":
        return "true" if value is True or str(value).lower() == "true" else "false"
    if label_type == "BIGINT":
        return f"CAST({int(value)} AS BIGINT)"
    return text(value)


BIND_ONCE_CHARS = 20_000   # above this, an expression used twice is bound once by a lambda


def _probability_list(fn: str, args: str, compiled: Compiled, pos: int | None) -> str:
    """The DOUBLE[] of class probabilities. A binary model's other class is usually 1 - P:
    its text then calls the probability macro instead of repeating the expression, and a
    large one is bound once (every call of a macro is parsed and bound again)."""
    if compiled.vector is not None:
        return compiled.vector
    probs = list(compiled.probabilities)
    if pos is None:
        return f"[{', '.join(probs)}]"
    call = f"{generated.quote(fn + '_probability_sql')}({args})"
    big = probs[pos] if _wrapped(probs[pos]) else None
    out = [call if k == pos else probs[k].replace(big, f"({call})") if big else probs[k]
           for k in range(len(probs))]
    if len(probs[pos]) > BIND_ONCE_CHARS and all(call in o for o in out):
        inner = [o.replace(call, "__sqlml_p") for o in out]
        return f"list_transform([{call}], lambda __sqlml_p: [{', '.join(inner)}])[1]"
    return f"[{', '.join(out)}]"


def statements(fn: str, features: list[Feature], problem_type: str, target_type: str,
               classes: list | None, positive, threshold: float | None,
               compiled: Compiled) -> list[str]:
    """CREATE MACRO statements of the ``_sql`` functions, positional and whole-row forms
    (the whole-row one calls the positional one by name)."""
    params = [generated.quote(f.name) for f in features]
    args = ", ".join(params)
    ltype = generated.label_type(problem_type, target_type)
    bodies: list[tuple[str, str]] = []
    if problem_type == "regression":
        bodies.append((fn + "_sql", compiled.prediction))
    else:
        binary = problem_type == "binary_classification"
        pos = classes.index(positive) if binary else None
        if binary:
            p = (f"({compiled.vector})[{pos + 1}]" if compiled.vector is not None
                 else compiled.probabilities[pos])
            bodies.append((fn + "_probability_sql", p))
        labels = ", ".join(text(str(c)) for c in classes)
        plist = _probability_list(fn, args, compiled, pos)
        bodies.append((fn + "_probabilities_sql", (
            f"{{'labels': [{labels}]::VARCHAR[], 'probabilities': ({plist})::DOUBLE[]}}::"
            f"{generated.PROBABILITIES_TYPE}")))
        if binary:
            call = f"{generated.quote(fn + '_probability_sql')}({args})"
            neg = classes[1 - pos]
            # -p <= -t is p >= t, except that NaN is not positive (numpy's rule), where
            # DuckDB orders NaN above every number.
            bodies.append((fn + "_sql", (
                f"CASE WHEN -({call}) <= {num(-float(threshold))} THEN "
                f"{label_literal(positive, ltype)} ELSE {label_literal(neg, ltype)} END")))
        else:
            # np.argmax: the first class with the largest probability.
            typed = f"[{', '.join(label_literal(c, ltype) for c in classes)}]"
            P = f"({generated.quote(fn + '_probabilities_sql')}({args})).probabilities"
            pick = "{t}[list_position({p}, list_max({p}))]"
            if len(plist) > BIND_ONCE_CHARS:
                body = (f"list_transform([{P}], lambda __sqlml_p: "
                        f"{pick.format(t=typed, p='__sqlml_p')})[1]")
            else:
                body = pick.format(t=typed, p=P)
            bodies.append((fn + "_sql", body))
    # Stand-ins first: the whole-row form names its own macro, and creating a macro binds its
    # body, calls included. Bound against stand-ins, the macros that call the big one cost
    # nothing to create; the big body itself is parsed and bound once, last.
    out = [f"CREATE OR REPLACE MACRO {generated.quote(name)}({args}) AS NULL"
           for name, _ in bodies]
    for name, body in reversed(bodies):
        q = generated.quote(name)
        row = ", ".join(f"{ROW}.{p}" for p in params)
        out.append(f"CREATE OR REPLACE MACRO {q}({args}) AS {body}" if len(params) == 1 else
                   f"CREATE OR REPLACE MACRO {q}({args}) AS {body},\n    "
                   f"({ROW}) AS {q}({row})")
    return out


# -- training, rollback, verification -------------------------------------------------------------
def for_version(fn: str, pipeline, features: list[Feature], problem_type: str, target_type: str,
                classes, positive, threshold) -> list[str]:
    compiled = compile_pipeline(pipeline, features, problem_type)
    return statements(fn, features, problem_type, target_type, classes, positive, threshold,
                      compiled)


def for_training(cur, fn: str, pipeline, features: list[Feature], problem_type: str,
                 target_type: str, classes, positive, threshold,
                 sample: pa.Table) -> tuple[list[str], dict]:
    """The DDL publishing a new version's ``_sql`` macros, or dropping a previous version's
    when this one does not compile; and what to store about it with the version."""
    try:
        compiled = compile_pipeline(pipeline, features, problem_type)
        verify(cur, pipeline, features, problem_type, compiled, sample)
    except NotCompilable as exc:
        return (generated.drop_statements(all_names(fn)),
                {"compiled": False, "summary": f"not compiled to SQL: {exc}"})
    ddl = statements(fn, features, problem_type, target_type, classes, positive, threshold,
                     compiled)
    made = names(fn, problem_type)
    stale = [n for n in all_names(fn) if n not in made]
    return (generated.drop_statements(stale) + ddl,
            {"compiled": True, "summary": "pure-SQL functions " + ", ".join(made)})


def verify(cur, pipeline, features: list[Feature], problem_type: str, compiled: Compiled,
           sample: pa.Table) -> None:
    """Run the SQL on training rows and a row of NULLs and compare it with the pipeline;
    refuse to publish SQL that disagrees rather than serve wrong numbers to plain clients.

    The transformed inputs must be bit-identical to ``prep.transform``. The outputs must agree
    to 1e-9 where their SQL is small enough to bind quickly; a larger one (a big ensemble) is
    trusted to its compiler, whose exactness its own tests check, since binding it would add
    seconds to every training.
    """
    n = sample.num_rows
    idx = np.unique(np.linspace(0, n - 1, min(n, VERIFY_ROWS)).astype(int)) if n else []
    cols = []
    for f in features:
        c = sample.column(f.name).take(pa.array(idx, type=pa.int64())).combine_chunks()
        if pa.types.is_dictionary(c.type):   # ENUM: its text, as the Python path decodes it
            c = c.dictionary_decode()
        cols.append(pa.concat_arrays([c, pa.nulls(1, type=c.type)]))
    table = pa.table(cols, names=[f.name for f in features])
    frame = preprocessing.to_frame(list(table.columns), features, "compile")
    prepared = pipeline.named_steps["prep"].transform(frame)
    prepared = prepared.toarray() if hasattr(prepared, "toarray") else np.asarray(prepared)
    got = _run(cur, table, compiled.inputs)
    same = (got == prepared) | (np.isnan(got) & np.isnan(prepared))
    if not same.all():
        j = int(np.flatnonzero(~same.all(axis=0))[0])
        raise NotCompilable(
            f"the compiled preprocessing differs from the pipeline's in transformed column "
            f"{j + 1} on the training rows (a compiler gap; the model still serves through "
            f"Python)")
    if compiled.chars > VERIFY_OUTPUT_CHARS:
        return
    got = _run(cur, table, compiled.select_list())
    if compiled.vector is not None:
        got = np.array([list(r) for r in got[:, 0]], dtype=np.float64)
    if problem_type == "regression":
        want = pipeline.predict(frame).astype(np.float64).reshape(-1, 1)
        scale = np.maximum(1.0, np.abs(want))
    else:
        want = pipeline.predict_proba(frame)
        scale = 1.0
    err = np.abs(got - want) / scale
    if not np.all((err <= VERIFY_TOLERANCE) | (np.isnan(got) & np.isnan(want))):
        raise NotCompilable(
            f"the compiled SQL differs from the model by {float(np.nanmax(err)):.3g} on the "
            f"training rows (a compiler gap; the model still serves through Python)")


def _run(cur, table: pa.Table, exprs: list[str]) -> np.ndarray:
    view = "__sqlml_compile_sample"
    cur.register(view, table)
    try:
        rows = cur.execute("SELECT " + ", ".join(exprs) + f" FROM {view}").fetchall()
    except Exception as exc:  # a DuckDB limit or a compiler bug: never publish broken SQL
        raise NotCompilable(f"DuckDB could not run the compiled SQL ({exc})") from None
    finally:
        cur.unregister(view)
    if rows and isinstance(rows[0][0], list):
        out = np.empty((len(rows), 1), dtype=object)
        out[:, 0] = [r[0] for r in rows]
        return out
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(exprs))


def for_rollback(cur, name: str, row: dict) -> list[str]:
    """The ``_sql`` macros of a stored version made active again: recompiled from its artifact
    if that version compiled when it was trained, none otherwise (the rollback has already
    dropped the current version's)."""
    info = (json.loads(row["parameters"]) or {}).get("compiled_sql") or {}
    if not info.get("compiled"):
        return []
    version = row["version"]
    blob = catalog.version_row(cur, name, version, with_artifact=True)["artifact"]
    pipeline = artifacts.loads(blob, name=f"model {name!r} version {version}")
    classes = json.loads(row["classes"]) if row["classes"] else None
    positive = None
    if classes is not None and row["positive_class"] is not None:
        positive = next(c for c in classes if str(c) == row["positive_class"])
    features = [Feature(**f) for f in json.loads(row["features"])]
    return for_version(row["function_name"], pipeline, features, row["problem_type"],
                       row["target_type"], classes, positive, row["threshold"])
