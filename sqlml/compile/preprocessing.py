"""The preprocessing of a stored pipeline compiled to SQL: one DOUBLE expression per column of the
matrix the estimator receives, each computing the same float64 value scikit-learn computes (same
operations in the same order: ``(x - mean) / scale``, the median where the value is missing, the
one-hot column a category lands in).

Inputs are converted as ``preprocessing.to_frame`` converts them (pyarrow's casts, including its
DECIMAL rounding; DuckDB's differs in the last bit), for arguments of the training types. Each
column is a :class:`Column`, which carries what an estimator emitter may use instead of the
imputed value's SQL: the value before imputation, the scaler's constants, the one-hot block.
A text column's TF-IDF block is one Column standing for its width of matrix columns, whose SQL
is the row's non-zero entries (:mod:`sqlml.compile.text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from sqlml.compile import text as compile_text
from sqlml.compile.expressions import NotCompilable, num, text
from sqlml.train import preprocessing
from sqlml.train.preprocessing import DateParts, Feature

FOLD_MEAN = 16.0                  # see Column.times


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

    raw: str
    missing: str
    fill: float

    def __new__(cls, sql: str, raw: str, missing: str, fill: float) -> Input:
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
    # A TF-IDF block: ``width`` columns whose sql is one LIST(STRUCT(i, v)) per row, the
    # non-zero entries in column order (i from 0 within the block).
    text: compile_text.TextBlock | None = None

    @property
    def width(self) -> int:
        return self.text.width if self.text is not None else 1

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
    # Text that is not a number gets the Python path's message, not a bare conversion error.
    # typeof() is folded when the query is planned, so a numeric column pays nothing for it.
    message = (f"feature {f.name!r} must be numeric ({f.type} at training), got string value "
               f"'")
    remedy = "'. Pass a number, or NULL to use the stored imputer."
    return (f"CASE WHEN typeof({p}) = 'VARCHAR' AND TRY_CAST({p} AS DOUBLE) IS NULL AND {p} IS "
            f"NOT NULL THEN error({text(message)} || {p} || {text(remedy)}) "
            f"ELSE CAST({p} AS DOUBLE) END")


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


def columns(prep: ColumnTransformer, features: list[Feature], params: list[str],
            store=None) -> list[Column]:
    """The transformed matrix as SQL, in the ColumnTransformer's output order. ``store``:
    the Params that text vocabularies go to (None: spelt out in the SQL)."""
    by_name = {f.name: (f, p) for f, p in zip(features, params, strict=True)}
    out: list[Column] = []
    for name, trans, cols in prep.transformers_:
        if trans == "drop" or (isinstance(cols, list) and not cols):
            continue
        if name == "remainder" or name not in by_name:
            raise NotCompilable(f"preprocessing step {name!r} is not one sqlml builds")
        f, p = by_name[name]
        if not isinstance(trans, Pipeline):
            raise NotCompilable(f"preprocessing of column {f.name} is not a pipeline")
        start = sum(c.width for c in out)
        if f.kind == "text":
            out += [Column(b.values, text=b)
                    for b in compile_text.blocks(f.name, trans, p, start, store)]
        elif f.kind in ("numeric", "boolean"):
            out += _numeric(f, trans, p)
        elif f.kind == "date":
            out += _date(f, trans, p)
        elif f.kind == "categorical":
            out += _categorical(f, trans, p, start)
        else:
            raise NotCompilable(f"column {f.name} of kind {f.kind}")
    width = prep.transform(_probe_frame(features)).shape[1]
    made = sum(c.width for c in out)
    if made != width:
        raise NotCompilable(f"the preprocessing makes {width} columns, the compiler {made}")
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
    if t not in (*DATE_SQL_TYPES, "TIMESTAMP WITH TIME ZONE"):
        raise NotCompilable(f"date column {f.name} is {f.type}")
    if len(trans.steps) < 2 or not isinstance(trans.steps[0][1], DateParts):
        raise NotCompilable(f"preprocessing of date column {f.name}")
    # DateParts computes days since 1970 in the unit pandas holds the column in: nanoseconds
    # for TIMESTAMP_NS, a coarser unit (the same quotient) otherwise.
    if t == "TIMESTAMP WITH TIME ZONE":
        # Its UTC time, as preprocessing.to_frame takes it: epoch_us of an instant does not
        # depend on the session's TimeZone, where a cast to TIMESTAMP would (with ICU loaded).
        ts = f"(TIMESTAMP '1970-01-01' + to_microseconds(epoch_us({p})))"
        days = f"(epoch_us({p})::DOUBLE / 8.64e10)"
    elif t == "TIMESTAMP_NS":
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
