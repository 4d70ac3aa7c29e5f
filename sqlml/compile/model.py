"""Models compiled to plain SQL: persisted macros that score in any DuckDB client, no Python.

A stored pipeline is ``[("prep", ColumnTransformer), ("model", estimator)]``. The preprocessing
becomes one DOUBLE expression per column of the matrix the estimator receives, or per text
block one list of the row's non-zero entries (:mod:`sqlml.compile.preprocessing`,
:mod:`sqlml.compile.text`); an estimator emitter turns those into the model's outputs
(:mod:`sqlml.compile.estimators`, trees and boosting in :mod:`sqlml.compile.trees`). This module
makes the ``_sql`` macros of those outputs, and publishes, drops or restores them with a model's
versions.

Before a version is published its SQL is run on training rows and a row of NULLs and compared
with the pipeline (see :func:`verify`); SQL that disagrees is not published, and neither is SQL
over ``MAX_MACRO_CHARS``: the model then gets a not-compiled note saying why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy import sparse
from sklearn.pipeline import Pipeline

from sqlml.catalog import artifacts, generated
from sqlml.catalog import store as catalog
from sqlml.compile import calibration, knn
from sqlml.compile import explain as compile_explain
from sqlml.compile import params as params_module
from sqlml.compile.estimators import Vector, emitter, linear, mlp
from sqlml.compile.expressions import NotCompilable, num, text
from sqlml.compile.params import Params, staged
from sqlml.compile.preprocessing import columns
from sqlml.compile.preprocessing import double_input as double_input  # re-exported
from sqlml.train import preprocessing
from sqlml.train.preprocessing import Feature

SUFFIXES = generated.COMPILED_SUFFIXES
ROW = "row_or_feature"            # the whole-row parameter, as in sqlml/generated.py
MAX_MACRO_CHARS = 5_000_000       # a model whose SQL is larger is not compiled
VERIFY_ROWS = 256
VERIFY_TOLERANCE = 1e-9
VERIFY_OUTPUT_CHARS = 1_000_000   # larger outputs are checked through their inputs only


def names(fn: str, problem_type: str, explain: bool = False) -> list[str]:
    out = [fn + "_sql"]
    if problem_type == "binary_classification":
        out.append(fn + "_probability_sql")
    if problem_type != "regression":
        out.append(fn + "_probabilities_sql")
    if explain:
        out.append(fn + "_explain_sql")
    return out


def all_names(fn: str) -> list[str]:
    return [fn + s for s in SUFFIXES]


# -- macros ----------------------------------------------------------------------------------------
@dataclass
class Compiled:
    """A model's outputs as SQL over its feature parameters: per class (classification, the
    stored classes' order), as one DOUBLE[] (``vector``), or the prediction (regression)."""
    probabilities: list[str] | None = None
    vector: str | None = None
    prediction: str | None = None
    inputs: list[str] | None = None     # the transformed matrix's columns
    widths: list[int] | None = None     # per input: 0, or the width of a text block whose
    #                                     input is a LIST(STRUCT(i, v)) of its non-zero entries
    explain: str | None = None          # the _explain_sql body (sqlml/compile/explain.py)

    @property
    def chars(self) -> int:
        return sum(map(len, self.select_list()))

    def select_list(self) -> list[str]:
        if self.prediction is not None:
            return [self.prediction]
        if self.vector is not None:
            return [self.vector]
        assert self.probabilities is not None   # compile_pipeline sets one of the three
        return list(self.probabilities)


def compile_pipeline(pipeline: Pipeline, features: list[Feature], problem_type: str,
                     store: Params | None = None, positive=None) -> Compiled:
    """``store``: where the compilers put the model's arrays (see sqlml/compile/params.py);
    None compiles them into the SQL text, for tests of the emitters alone. ``positive``: a
    binary model's positive class (its explanation is towards it)."""
    if not isinstance(pipeline, Pipeline) or [n for n, _ in pipeline.steps] != ["prep", "model"]:
        raise NotCompilable("the stored pipeline is not preprocessing then one model")
    est = pipeline.named_steps["model"]
    emitter(est)   # an estimator that does not compile says so before its inputs do
    params = [generated.quote(f.name) for f in features]
    cols = columns(pipeline.named_steps["prep"], features, params, store=store)
    width = sum(c.width for c in cols)
    if getattr(est, "n_features_in_", width) != width:
        raise NotCompilable("the model's input width differs from the preprocessing's output")
    inputs = [c.sql for c in cols]
    scores = estimator_scores(est, cols, problem_type, store)
    widths = [c.width if c.text is not None else 0 for c in cols]
    if problem_type == "regression":
        out = Compiled(prediction=f"({scores})[1]" if isinstance(scores, Vector) else scores[0],
                       inputs=inputs, widths=widths)
    elif isinstance(scores, Vector):
        out = Compiled(vector=scores, inputs=inputs, widths=widths)
    else:
        out = Compiled(probabilities=list(scores), inputs=inputs, widths=widths)
    # _explain_sql reads one SQL input per matrix column; a text block is one list of its
    # row's entries, so a model with a text column explains itself through Python only.
    out.explain = None if any(w for w in widths) else compile_explain.explain_sql(
        pipeline, features, inputs, problem_type, positive, store)
    if out.chars > MAX_MACRO_CHARS:
        raise NotCompilable(
            f"its SQL would be {out.chars / 1e6:.1f} MB, over the {MAX_MACRO_CHARS / 1e6:g} MB "
            f"limit: DuckDB parses and binds a macro's SQL again in every query that calls it, "
            f"which would take many seconds per query")
    return out


def dense_inputs(cols: list) -> tuple[list[str], Callable[[str], str]]:
    """One DOUBLE expression per matrix column, for emitters that index inputs (trees), and
    the wrapper that binds every text block's entries once around an output: a text column
    is the value of its term in the row's entries, 0 where the row lacks the term. (All are
    bound by one lambda: a lambda's body cannot hold the subquery of another block.)"""
    out: list[str] = []
    blocks: list[str] = []
    for c in cols:
        if c.text is None:
            out.append(c.as_input())
            continue
        blocks.append(c.sql)
        k = len(blocks)
        out += [f"coalesce(__sqlml_x.v{k}[list_position(__sqlml_x.i{k}, {j})], 0.0e0)"
                for j in range(c.width)]

    def bind(expr: str) -> str:
        if not blocks:
            return expr
        # The model's stored arrays (tree nodes) are read outside the lambdas: DuckDB allows
        # no subquery inside one.
        refs = list(dict.fromkeys(params_module.REF.findall(expr)))
        for n, ref in enumerate(refs):
            expr = expr.replace(ref, f"__sqlml_b.p{n}")
        lists = ", ".join([*(f"'b{k}': {b}" for k, b in enumerate(blocks, 1)),
                           *(f"'p{n}': {ref}" for n, ref in enumerate(refs))])
        split = ", ".join(
            f"'i{k}': list_transform(__sqlml_b.b{k}, lambda __sqlml_q: __sqlml_q.i), "
            f"'v{k}': list_transform(__sqlml_b.b{k}, lambda __sqlml_q: __sqlml_q.v)"
            for k in range(1, len(blocks) + 1))
        return (f"list_transform([{{{lists}}}], lambda __sqlml_b: list_transform([{{{split}}}],"
                f" lambda __sqlml_x: {expr})[1])[1]")
    return out, bind


def estimator_scores(est, cols: list, problem_type: str, store: Params | None):
    """The estimator's outputs over the transformed columns ``cols`` (Columns): one expression
    per class or the prediction, or a Vector of them all."""
    emit = emitter(est)
    text_col = next((c.text.column for c in cols if c.text is not None), None)
    if emit is knn:
        if text_col is not None:
            raise NotCompilable(
                f"KNN model over text column {text_col}: its distances span every vocabulary "
                f"term; model_type 'logistic' or a tree model compiles text columns")
        found = knn.scores_sql(est, [c.sql for c in cols], store=store)
        return found if isinstance(found, list) else Vector(found)
    if emit is calibration:
        return Vector(calibration.probabilities_sql(est, cols, store, estimator_scores))
    if emit in (linear, mlp):
        if emit is mlp and text_col is not None:
            raise NotCompilable(
                f"MLP model over text column {text_col}: each hidden unit weighs every "
                f"vocabulary term, which SQL would spell out term by term; model_type "
                f"'logistic' or a tree model compiles text columns")
        if emit is mlp:
            return mlp.scores_sql(est, cols, store=store)
        return linear.scores_sql(est, cols)
    dense, bind = dense_inputs(cols)
    if problem_type == "multiclass_classification" and hasattr(emit, "probabilities_sql"):
        # One list of every class: a softmax over boosted trees evaluates them once.
        return Vector(bind(emit.probabilities_sql(est, dense, store=store)))
    scores = emit.scores_sql(est, dense, store=store)
    return Vector(bind(scores)) if isinstance(scores, Vector) else [bind(x) for x in scores]


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
    assert compiled.probabilities is not None   # a classifier without a vector has the list
    probs = list(compiled.probabilities)
    if pos is None:
        return f"[{', '.join(probs)}]"
    call = f"{generated.quote(fn + '_probability_sql')}({args})"
    big = probs[pos] if _wrapped(probs[pos]) else None
    out = [call if k == pos else probs[k].replace(big, f"({call})") if big else probs[k]
           for k in range(len(probs))]
    # Bound once by a lambda: the probability macro (its argument checks included) would
    # otherwise be bound once per class, on every query.
    if all(call in o for o in out):
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
    bodies: list[tuple[str, str]]
    if problem_type == "regression":
        assert compiled.prediction is not None   # compile_pipeline sets it for a regression
        bodies = [(fn + "_sql", compiled.prediction)]
    else:
        assert classes is not None
        bodies = _classifier_bodies(fn, args, problem_type,
                                    generated.label_type(problem_type, target_type), classes,
                                    positive, threshold, compiled)
    if compiled.explain is not None:
        probabilities = (f"({generated.quote(fn + '_probabilities_sql')}({args}))"
                         f".probabilities")
        bodies.append((fn + "_explain_sql",
                       compiled.explain.replace(compile_explain.PROBABILITIES, probabilities)))
    # Stand-ins first: the whole-row form names its own macro, and creating a macro binds its
    # body, calls included. Bound against stand-ins, the macros that call the big one cost
    # nothing to create; the big body itself is parsed and bound once, last.
    out = [f"CREATE OR REPLACE MACRO {generated.quote(name)}({args}) AS NULL"
           for name, _ in bodies]
    # A body that calls another of these macros gets its argument checks through that one:
    # checked twice, they would be bound twice, on every query.
    inner = [f"{generated.quote(n)}(" for n, _ in bodies]
    for name, body in reversed(bodies):
        out.append(_create(name, body, features, params,
                           guard=not any(call in body for call in inner)))
    return out


def _classifier_bodies(fn: str, args: str, problem_type: str, ltype: str, classes: list,
                       positive, threshold: float | None,
                       compiled: Compiled) -> list[tuple[str, str]]:
    """(name, body) of a classifier's macros: the probability of the positive class (binary),
    the probabilities of every class, and the label."""
    bodies: list[tuple[str, str]] = []
    binary = problem_type == "binary_classification"
    pos = classes.index(positive) if binary else None
    if pos is not None:
        if compiled.vector is not None:
            p = f"({compiled.vector})[{pos + 1}]"
        else:
            assert compiled.probabilities is not None   # no vector: the per-class list
            p = compiled.probabilities[pos]
        bodies.append((fn + "_probability_sql", p))
    labels = ", ".join(text(str(c)) for c in classes)
    plist = _probability_list(fn, args, compiled, pos)
    bodies.append((fn + "_probabilities_sql", (
        f"{{'labels': [{labels}]::VARCHAR[], 'probabilities': ({plist})::DOUBLE[]}}::"
        f"{generated.PROBABILITIES_TYPE}")))
    if pos is not None:
        call = f"{generated.quote(fn + '_probability_sql')}({args})"
        neg = classes[1 - pos]
        assert threshold is not None   # a binary model stores its decision threshold
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
    return bodies


def _create(name: str, body: str, features: list[Feature], params: list[str],
            guard: bool = True) -> str:
    """The CREATE MACRO of one ``_sql`` function: positional, and whole-row unless it has a
    single feature."""
    q = generated.quote(name)
    args = ", ".join(params)
    row = ", ".join(f"{ROW}.{p}" for p in params)
    if len(params) == 1:
        # One parameter cannot tell a whole row from the feature (macros overload on arity
        # only), and a row cast to VARCHAR would score as an unseen category: refuse it.
        # typeof() is folded when the query is planned, so a column pays nothing for this.
        refusal = (f"{name}: model function of one feature ({features[0].name} "
                   f"{features[0].type}) takes that column, not a whole row, in SQL. Call "
                   f"{name}(t.{params[0]}) (in a sqlml session the function without _sql "
                   f"also takes the row).")
        body = (f"CASE WHEN typeof({args}) LIKE 'STRUCT%' THEN error({text(refusal)}) "
                f"ELSE {body} END")
    elif guard:
        body = _type_guard(name, features, params, body)
    return (f"CREATE OR REPLACE MACRO {q}({args}) AS {body}" if len(params) == 1 else
            f"CREATE OR REPLACE MACRO {q}({args}) AS {body},\n    "
            f"({ROW}) AS {q}({row})")


# What each kind of feature takes (typeof names); other types get the Python path's message.
_NUMBERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "BOOLEAN", "VARCHAR",
            '"NULL"')   # typeof(NULL) is '"NULL"', quotes included
_DATES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS",
          "TIMESTAMP_NS", "VARCHAR", '"NULL"')
_ACCEPTS = {"numeric": ("a number", _NUMBERS), "boolean": ("a number", _NUMBERS),
            "date": ("a date or timestamp", _DATES)}


def _type_guard(name: str, features: list[Feature], params: list[str], body: str) -> str:
    """``body`` behind a check of each argument's type, with the message the Python path gives
    for a value of the wrong kind (an integer for a DATE would otherwise fail as a bare cast
    error). typeof() is folded when the query is planned: a right-typed column pays nothing."""
    fn = name.removesuffix("_sql")
    whens = []
    for f, p in zip(features, params, strict=True):
        what, types = _ACCEPTS.get(f.kind, ("text or a category", None))
        if types is None:   # text and categories take any scalar, as its text
            wrong = f"regexp_matches(typeof({p}), '^(STRUCT|MAP|UNION)|\\[\\]$')"
        else:
            allowed = ", ".join(text(t) for t in types)
            wrong = f"NOT (typeof({p}) IN ({allowed}) OR typeof({p}) LIKE 'DECIMAL%')"
        message = (f"{fn}: feature {f.name!r} must be {what} ({f.type} at training), got ")
        whens.append(f"WHEN {wrong} THEN error({text(message)} || typeof({p}) || ' value ' || "
                     f"{p}::VARCHAR || '. Pass a value of the training type, or NULL.')")
    return f"CASE {' '.join(whens)} ELSE {body} END"


# -- training, rollback, verification -------------------------------------------------------------
def for_version(model: str, version: int, fn: str, pipeline, features: list[Feature],
                problem_type: str, target_type: str, classes, positive,
                threshold) -> tuple[list[str], Params]:
    params = Params(model, version)
    compiled = compile_pipeline(pipeline, features, problem_type, store=params,
                                positive=positive)
    return (statements(fn, features, problem_type, target_type, classes, positive, threshold,
                       compiled), params)


def for_training(cur, model: str, version: int, fn: str, pipeline, features: list[Feature],
                 problem_type: str, target_type: str, classes, positive, threshold,
                 sample: pa.Table) -> tuple[list[str], dict, list[tuple]]:
    """The DDL publishing a new version's ``_sql`` macros, or dropping a previous version's
    when this one does not compile; what to store about it with the version; and its rows of
    sqlml.model_params (``Params.rows``), which the publishing transaction writes first."""
    params = Params(model, version)
    try:
        compiled = compile_pipeline(pipeline, features, problem_type, store=params,
                                    positive=positive)
        with staged(cur, params):
            verify(cur, pipeline, features, problem_type, compiled, sample)
            verify_explain(cur, pipeline, features, problem_type, positive, compiled, sample)
    except NotCompilable as exc:
        return (generated.drop_statements(all_names(fn)),
                {"compiled": False, "summary": f"not compiled to SQL: {exc}. {remedy(model)}"},
                [])
    ddl = statements(fn, features, problem_type, target_type, classes, positive, threshold,
                     compiled)
    made = names(fn, problem_type, compiled.explain is not None)
    stale = [n for n in all_names(fn) if n not in made]
    return (generated.drop_statements(stale) + ddl,
            {"compiled": True, "summary": "pure-SQL functions " + ", ".join(made),
             # Whether a sqlml session serves the model's own functions through Python. It
             # does for every model type: on a 2,000-row dashboard query Python answered
             # faster than the SQL in a session for logistic (0.035 s against 0.049 s, 20-45
             # ms of which is binding the SQL), boosting (0.044 / 0.17 s) and forests (0.07 /
             # 0.46 s) (benchmarks/bench_clients.py). A batch of a million rows is faster
             # through a linear model's <fn>_probability_sql (0.5x numpy), which stays there.
             "functions": made, "python_first": True},
            params.rows())


def info_functions(info: dict, fn: str, problem_type: str) -> list[str]:
    """The ``_sql`` macros a version's stored compile summary says it has (a version trained
    before the summary listed them has the problem type's usual ones)."""
    if not info.get("compiled"):
        return []
    return list(info.get("functions") or names(fn, problem_type))


def remedy(model: str) -> str:
    """What a model without ``_sql`` macros offers the clients that cannot run Python."""
    return (f"Its functions score in Python only: in sqlml.connect sessions, and for Postgres "
            f"and REST clients through sqlml serve; plain DuckDB clients read scores written "
            f"by SELECT ml_refresh_scores('{model}', '<table>', key := '<key column>') from "
            f"sqlml_scores.{model}")


def verify(cur, pipeline, features: list[Feature], problem_type: str, compiled: Compiled,
           sample: pa.Table) -> None:
    """Run the SQL on training rows and a row of NULLs and compare it with the pipeline;
    refuse to publish SQL that disagrees rather than serve wrong numbers to plain clients.

    The transformed inputs must be bit-identical to ``prep.transform``. The outputs must agree
    to 1e-9 where their SQL is small enough to bind quickly; a larger one (a big ensemble) is
    trusted to its compiler, whose exactness its own tests check, since binding it would add
    seconds to every training.
    """
    table, frame = _sample(sample, features)
    prepared = pipeline.named_steps["prep"].transform(frame)
    assert compiled.inputs is not None   # compile_pipeline records the transformed columns
    _same_inputs(cur, table, compiled, prepared)
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
    ties = knn.ties_in(pipeline.named_steps["model"], prepared)
    if ties is not None:
        # Where the k-th and (k+1)-th nearest tie, the SQL's documented rule and scikit-learn's
        # heap may keep different neighbours (sqlml/compile/knn.py).
        err[ties] = 0.0
    if not np.all((err <= VERIFY_TOLERANCE) | (np.isnan(got) & np.isnan(want))):
        raise NotCompilable(
            f"the compiled SQL differs from the model by {float(np.nanmax(err)):.3g} on the "
            f"training rows (a compiler gap; the model still serves through Python)")


def _sample(sample: pa.Table, features: list[Feature]) -> tuple[pa.Table, object]:
    """Up to VERIFY_ROWS training rows and a row of NULLs, as a table and as the pipeline's
    frame."""
    n = sample.num_rows
    idx: np.ndarray | list[int] = (
        np.unique(np.linspace(0, n - 1, min(n, VERIFY_ROWS)).astype(int)) if n else [])
    cols = []
    for f in features:
        c = sample.column(f.name).take(pa.array(idx, type=pa.int64())).combine_chunks()
        if pa.types.is_dictionary(c.type):   # ENUM: its text, as the Python path decodes it
            c = c.dictionary_decode()
        cols.append(pa.concat_arrays([c, pa.nulls(1, type=c.type)]))
    table = pa.table(cols, names=[f.name for f in features])
    return table, preprocessing.to_frame(list(table.columns), features, "compile")


def verify_explain(cur, pipeline, features: list[Feature], problem_type: str, positive,
                   compiled: Compiled, sample: pa.Table) -> None:
    """Drop the ``_explain_sql`` body (the other macros stay) unless it gives, on training
    rows, the contributions of sqlml/compile/explain.py's numpy reference."""
    if compiled.explain is None:
        return
    table, frame = _sample(sample, features)
    probabilities = compiled.vector if compiled.vector is not None else (
        f"[{', '.join(compiled.probabilities)}]" if compiled.probabilities else "[1.0e0]")
    body = compiled.explain.replace(compile_explain.PROBABILITIES, probabilities)
    try:
        got = _run(cur, table, [body])[:, 0]
        want = compile_explain.reference(pipeline, features, frame, problem_type, positive)
    except NotCompilable:
        compiled.explain = None
        return
    for row, top in zip(got, want, strict=True):
        if [e["feature"] for e in row] != [f for f, _ in top] or not np.allclose(
                [e["contribution"] for e in row], [c for _, c in top], rtol=1e-12, atol=1e-12):
            compiled.explain = None
            return


def _same_inputs(cur, table: pa.Table, compiled: Compiled, prepared) -> None:
    """The compiled transformed columns, bit for bit those of ``prep.transform``: a dense
    column as its values, a text block as each row's non-zero entries (a CSR row)."""
    assert compiled.inputs is not None
    widths = compiled.widths or [0] * len(compiled.inputs)
    starts = np.cumsum([0] + [max(w, 1) for w in widths])
    dense = [k for k, w in enumerate(widths) if w == 0]
    csr = prepared.tocsr() if hasattr(prepared, "tocsr") else None
    if dense:
        got = _run(cur, table, [compiled.inputs[k] for k in dense])
        want = prepared[:, starts[dense]]
        want = want.toarray() if hasattr(want, "toarray") else np.asarray(want)
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        if not same.all():
            j = int(starts[dense][int(np.flatnonzero(~same.all(axis=0))[0])])
            raise NotCompilable(
                f"the compiled preprocessing differs from the pipeline's in transformed column "
                f"{j + 1} on the training rows (a compiler gap; the model still serves through "
                f"Python)")
    for k, w in enumerate(widths):
        if w == 0:
            continue
        rows = _run_lists(cur, table, compiled.inputs[k])
        if csr is not None:
            block = csr[:, starts[k]:starts[k] + w].tocsr()
            block.sort_indices()   # the order the SQL lists entries in
        else:
            block = sparse.csr_matrix(np.asarray(prepared)[:, starts[k]:starts[k] + w])
        for r, entries in enumerate(rows):
            row = block[r]
            want_i, want_v = row.indices.tolist(), row.data.tolist()
            if [e["i"] for e in entries] != want_i or [e["v"] for e in entries] != want_v:
                raise NotCompilable(
                    f"the compiled TF-IDF of transformed columns {starts[k] + 1} to "
                    f"{starts[k] + w} differs from the pipeline's on training row {r + 1} (a "
                    f"compiler gap; the model still serves through Python)")


ROW_ORDER = "__sqlml_row"   # a correlated subquery (text) does not keep the rows' order


def _ordered(cur, table: pa.Table, exprs: list[str]) -> list[tuple]:
    view = "__sqlml_compile_sample"
    cur.register(view, table.append_column(ROW_ORDER, pa.array(range(table.num_rows))))
    failed: Exception | None = None
    rows: list[tuple] = []
    try:
        rows = cur.execute("SELECT " + ", ".join(exprs) +
                           f" FROM {view} ORDER BY {ROW_ORDER}").fetchall()
    except Exception as exc:  # a DuckDB limit or a compiler bug: never publish broken SQL
        failed = exc
    try:
        cur.unregister(view)
    except Exception:  # the failed statement aborted the staged transaction,
        pass           # whose rollback drops the view with it
    if failed is not None:
        raise NotCompilable(f"DuckDB could not run the compiled SQL ({failed})") from None
    return rows


def _run_lists(cur, table: pa.Table, expr: str) -> list[list[dict]]:
    return [r[0] for r in _ordered(cur, table, [expr])]


def _run(cur, table: pa.Table, exprs: list[str]) -> np.ndarray:
    rows = _ordered(cur, table, exprs)
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
    ddl, params = for_version(name, version, row["function_name"], pipeline, features,
                              row["problem_type"], row["target_type"], classes, positive,
                              row["threshold"])
    # A version trained before its arrays were stored as data gets them now; rewriting a
    # version's own arrays is harmless, as they are derived from its artifact.
    params.write(cur)
    return ddl
