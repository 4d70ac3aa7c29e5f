"""SQL text of the functions generated for each model, and of the dispatch that lets one name
serve every DuckDB client.

Each model's functions (``<fn>``, ``<fn>_probability``, ...) are persisted macros. Where the
model compiles to SQL (sqlml/compile) they are that SQL, which any DuckDB client runs: the
duckdb CLI, Node, a BI tool's driver. In a sqlml session the fastest exact implementation
serves the same name: the macro passes its features and its compiled SQL to a small dispatcher,
``__sqlml_serve_<kind>(model, features, compiled)``. The persisted dispatcher returns
``compiled``; a sqlml session shadows it with a TEMP macro of the same name that calls the
Python UDF instead and drops the compiled argument unbound (DuckDB resolves TEMP objects first
and substitutes only the macro parameters a body uses). A model that does not compile passes an
``error(...)`` naming the reason and the remedy as its compiled SQL, so a plain client gets
that message and never a missing internal function.

Macros give each model a fixed signature that DuckDB itself checks: a call with the wrong number
of arguments fails to bind with a message listing the expected feature columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

LABEL_UDF = {"VARCHAR": "__sqlml_py_label_varchar", "BIGINT": "__sqlml_py_label_bigint",
             "BOOLEAN": "__sqlml_py_label_boolean", "DOUBLE": "__sqlml_py_label_double"}
PROBABILITY_UDF = "__sqlml_py_probability"
PROBABILITIES_UDF = "__sqlml_py_probabilities"
PROBABILITIES_TYPE = "STRUCT(labels VARCHAR[], probabilities DOUBLE[])"
EXPLAIN_UDF = "__sqlml_py_explain"
EXPLAIN_TYPE = "STRUCT(feature VARCHAR, contribution DOUBLE)[]"
RECOMMEND_UDF = "__sqlml_py_recommend"
RATING_UDF = "__sqlml_py_rec_rating"
FORECAST_FUTURE_UDF = "__sqlml_py_forecast_future"
FORECAST_ROWS_TYPE = ('STRUCT(series_id VARCHAR, step INTEGER, period TIMESTAMP, '
                      '"values" DOUBLE[])[]')
RECOMMENDATIONS_TYPE = ("STRUCT(rank INTEGER, item VARCHAR, score DOUBLE, source VARCHAR, "
                        "reason VARCHAR)[]")

# kind: (the Python UDF a sqlml session serves it with, the parameters the UDF takes after the
# model name). Scoring kinds take the features as one argument: a STRUCT of them, or the one
# feature of a one-feature model.
SERVE: dict[str, tuple[str, tuple[str, ...]]] = {
    **{f"label_{t.lower()}": (udf, ("features",)) for t, udf in LABEL_UDF.items()},
    "probability": (PROBABILITY_UDF, ("features",)),
    "probabilities": (PROBABILITIES_UDF, ("features",)),
    "explain": (EXPLAIN_UDF, ("features",)),
    "recommend": (RECOMMEND_UDF, ("user_id", "k", "exclude_seen")),
    "rating": (RATING_UDF, ("user_id", "item_id")),
    "similar": ("__sqlml_py_similar_items", ("item", "k")),
}

# What a plain client is told when it reaches a model that only sqlml can score.
# DuckDB cursors do not see their connection's TEMP macros, through which a session reaches
# Python: a cursor gets them from sqlml.install(cursor).
CURSOR_HINT = (" On a cursor of a sqlml connection, call sqlml.install(cursor) first: DuckDB "
               "cursors do not see the connection's session functions.")
REMEDY = ("Score it where sqlml runs: open the file with sqlml.connect(path) in Python, run "
          "`sqlml serve` and connect through PostgreSQL, or store its scores for every client "
          "with SELECT ml_refresh_scores('{model}', '<table>') and read sqlml_scores.{model}."
          + CURSOR_HINT)


def dispatcher(kind: str) -> str:
    return f"__sqlml_serve_{kind}"


def dispatch_statements(temp: bool) -> list[str]:
    """The dispatchers and the Python-only functions: persisted ones return the compiled SQL
    or the error; a sqlml session's TEMP ones (``temp``) call the Python UDFs."""
    out = python_only_statements(temp)
    # Whether the query runs in a sqlml session, for table macros that pick a whole branch.
    out.append(f"CREATE OR REPLACE {'TEMP ' if temp else ''}MACRO {dispatcher('session')}() AS "
               f"{'true' if temp else 'false'}")
    for kind, (udf, params) in SERVE.items():
        head = ", ".join(("model_name", *params))
        body = f"{udf}({head})" if temp else "compiled"
        out.append(f"CREATE OR REPLACE {'TEMP ' if temp else ''}MACRO {dispatcher(kind)}"
                   f"({head}, compiled) AS {body}")
    return out


# Functions only sqlml's Python runs: (kind, the UDF a sqlml session forwards to, the
# parameters, the function the user called, what needs Python). SQL reaches each through the
# dispatcher __sqlml_call_<kind>, of fixed arity so that a session's TEMP one costs nothing to
# create; a plain client's persisted one raises an error saying so, never a missing function.
PYTHON_ONLY: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("create_model", "__sqlml_py_create_model", ("<spec>",), "ml_create_model",
     "training runs in Python"),
    ("refresh_scores", "__sqlml_py_refresh_scores", ("model_name", "source", '"key"'),
     "ml_refresh_scores", "it scores the rows in Python"),
    ("predict", "__sqlml_py_predict", ("model_name", "arguments"), "ml_predict",
     "it looks the model up by name at run time; call the model's own function instead"),
    ("predict_probability", "__sqlml_py_predict_probability", ("model_name", "arguments"),
     "ml_predict_probability",
     "it looks the model up by name at run time; call the model's own function instead"),
    ("drop_model", "__sqlml_py_drop_model", ("model_name",), "ml_drop_model",
     "it rewrites the catalog and the model's functions"),
    ("rollback_model", "__sqlml_py_rollback_model", ("model_name", "version"),
     "ml_rollback_model", "it rewrites the model's functions"),
    ("report", "__sqlml_py_report", ("model_name",), "ml_report",
     "it draws the report's charts in Python"),
    # ml_report(model, drift := query): the one-argument dispatcher stays for files whose
    # persisted ml_report predates the drift section.
    ("report_drift", "__sqlml_py_report_drift", ("model_name", "drift"), "ml_report",
     "it draws the report's charts in Python"),
    # <fn>_future(query): a forecast model's forecasts again with new covariate values
    # (sqlml/forecast/future.py); <fn>() reads the stored forecasts in every client.
    ("forecast_future", FORECAST_FUTURE_UDF, ("model_name", "future", "horizon"),
     "A forecast model's <fn>_future(query) function",
     "it fits the model again with the new future values"),
)
NEEDS_PYTHON = ("{called} needs sqlml's Python package, which this DuckDB client does not have "
                "({what}). The models' generated functions are plain SQL and work here. "
                "Install sqlml (pip install sqlml) and run it from Python with "
                "sqlml.connect(path), from the command line with `sqlml shell path`, or "
                "through a client of `sqlml serve`." + CURSOR_HINT)
# ml_predict(model, feature, ...) takes up to this many features positionally (a whole row,
# ml_predict('m', t), takes any number): a macro has one overload per arity.
VARIADIC_MAX = 64
POSITIONAL = "__sqlml_arg"   # field names of the STRUCT that carries positional arguments


def _call(kind: str) -> str:
    return f"__sqlml_call_{kind}"


def python_only_statements(temp: bool) -> list[str]:
    """The dispatchers of the Python-only functions: persisted error(...) stand-ins, or
    (``temp``) a sqlml session's TEMP macros forwarding to the UDFs."""
    # sqlml.spec imports this module (for IDENTIFIER), so its parameters are read here.
    from sqlml.spec import PARAM_NAMES

    out = []
    for kind, udf, params, called, what in PYTHON_ONLY:
        if params == ("<spec>",):   # ml_create_model's, in sqlml.spec's order
            params = tuple(f'"{n}"' for n in PARAM_NAMES)
        head = ", ".join(params)
        body = f"{udf}({head})" if temp else \
            f"error({literal(NEEDS_PYTHON.format(called=called, what=what))})"
        out.append(f"CREATE OR REPLACE {'TEMP ' if temp else ''}MACRO {_call(kind)}({head}) "
                   f"AS {body}")
    return out


def public_statements(temp: bool = False) -> list[str]:
    """The Python-only functions users call by name (ml_create_model and ml_refresh_scores
    live in sql/macros.sql), over their dispatchers. Persisted in the file; TEMP only for a
    read-only file that predates them."""
    t = "TEMP " if temp else ""
    out = [f"CREATE OR REPLACE {t}MACRO ml_drop_model(model_name) AS "
           f"{_call('drop_model')}(model_name)",
           f"CREATE OR REPLACE {t}MACRO ml_rollback_model(model_name, version) AS "
           f"{_call('rollback_model')}(model_name, version)"]
    for name, kind in (("ml_predict", "predict"),
                       ("ml_predict_probability", "predict_probability")):
        overloads = ["(model_name) AS " + f"{_call(kind)}(model_name, NULL)"]
        for n in range(1, VARIADIC_MAX + 1):
            args = [f"a{i}" for i in range(1, n + 1)]
            packed = ", ".join(f"'{POSITIONAL}{i}': a{i}" for i in range(1, n + 1))
            overloads.append(f"(model_name, {', '.join(args)}) AS "
                             f"{_call(kind)}(model_name, {{{packed}}})")
        out.append(f"CREATE OR REPLACE {t}MACRO {name}" + ",\n    ".join(overloads))
    return out


def label_type(problem_type: str, target_type: str) -> str:
    if problem_type == "regression":
        return "DOUBLE"
    t = target_type.upper()
    if t == "BOOLEAN":
        return "BOOLEAN"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"):
        return "BIGINT"
    return "VARCHAR"


def function_names(fn: str, problem_type: str) -> list[str]:
    names = [fn]
    if problem_type == "binary_classification":
        names.append(f"{fn}_probability")
    if problem_type != "regression":
        names.append(f"{fn}_probabilities")
    names.append(f"{fn}_explain")   # top contributions per row (sqlml/explain.py)
    return names


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _kinds(problem_type: str, target_type: str) -> list[str]:
    kinds = ["label_" + label_type(problem_type, target_type).lower()]
    if problem_type == "binary_classification":
        kinds.append("probability")
    if problem_type != "regression":
        kinds.append("probabilities")
    return [*kinds, "explain"]


def not_compiled_error(model: str, name: str, reason: str) -> str:
    """The SQL raising what a plain client is told about a function only sqlml serves."""
    message = (f"{name}: model {model!r} is scored by sqlml's Python package only ({reason}). "
               + REMEDY.format(model=model))
    return f"error({literal(message)})"


def create_statements(model: str, fn: str, features: list[str], problem_type: str,
                      target_type: str, compiled: list[str] | None = None,
                      python_first: bool = True, reason: str = "not compiled to SQL",
                      version: int | None = None) -> list[str]:
    """The model's persisted functions. ``compiled``: the names of its pure-SQL ``_sql``
    macros, created before these; ``python_first``: a sqlml session serves them through Python
    (faster for this model, by benchmarks/bench_clients.py); ``reason``: why the others did not
    compile; ``version``: the version they serve (see ``pinned``)."""
    made = set(compiled or ())
    ref = pinned(model, version)
    params = [quote(f) for f in features]
    packed = params[0] if len(params) == 1 else \
        "{" + ", ".join(f"{literal(f)}: {p}" for f, p in zip(features, params, strict=True)) + "}"
    row = "row_or_feature"
    fields = [f"{row}.{p}" for p in params]
    out = []
    for name, kind in zip(function_names(fn, problem_type), _kinds(problem_type, target_type),
                          strict=True):
        def body(args: list[str], features_arg: str, name=name, kind=kind) -> str:
            if name + "_sql" not in made:
                sql = not_compiled_error(model, name, reason)
            else:
                sql = f"{quote(name + '_sql')}({', '.join(args)})"
                if not python_first:
                    return sql
            return f"{dispatcher(kind)}({ref}, {features_arg}, {sql})"

        head = f"CREATE OR REPLACE MACRO {quote(name)}({', '.join(params)}) AS "
        if len(params) == 1:
            # Macros overload on arity only: the one parameter takes a value or a whole row,
            # which the Python UDF tells apart (and the compiled SQL refuses).
            out.append(head + body(params, packed))
        else:
            # The whole row goes to Python as it is, so a missing column gets sqlml's message.
            out.append(head + body(params, packed)
                       + f",\n    ({row}) AS {body(fields, row)}")
    return out


def pinned(model: str, version: int | None) -> str:
    """The model reference a generated function hands the Python UDF: ``'churn@2'``, the
    version the macro was written for. A query binds the macro once, from the catalog as its
    transaction sees it, while the UDF reads the catalog from its own cursor, batch by batch:
    a bare ``'churn'`` would make a query that runs while version 3 is published score its
    first batches with version 2 and its last with version 3. Pinned, each query serves one
    version from start to end (tests/test_crash.py). None: the bare name (the active version)."""
    return literal(model if version is None else f"{model}@{version}")


def drop_statements(names: list[str]) -> list[str]:
    return [f"DROP MACRO IF EXISTS {quote(n)}" for n in names]


# -- recommenders ----------------------------------------------------------------------------------
RECOMMENDER_SUFFIXES = ("", "_rating", "_all", "_sql", "_rating_sql")
# Pure-SQL macros of models compiled to SQL (sqlml/compile_sql.py), for any DuckDB client.
COMPILED_SUFFIXES = ("_sql", "_probability_sql", "_probabilities_sql", "_explain_sql")


def recommender_names(fn: str) -> list[str]:
    return [fn + s for s in RECOMMENDER_SUFFIXES]


def all_names(fn: str) -> list[str]:
    """Every name a model of any problem type may generate from ``fn``."""
    return list(dict.fromkeys([*function_names(fn, "multiclass_classification"),
                               f"{fn}_probability", *recommender_names(fn), f"{fn}_backtest",
                               f"{fn}_future",
                               *(fn + s for s in COMPILED_SUFFIXES)]))


def factor_table(model: str, version: int) -> str:
    return f"sqlml.rec_{model}_v{version}"


@dataclass(frozen=True)
class _Recommender:
    """What a recommender's SQL is written from."""
    base: str          # its factor tables' common prefix
    fn: str
    u: str             # the user and item columns, quoted
    i: str
    user_type: str
    item_type: str
    explicit: bool
    mean: str

    @property
    def cold(self) -> str:
        # A cold (unknown) user ranks items by bias (explicit) or popularity (implicit).
        return f"{self.mean} + i.bias" if self.explicit else "i.popularity"

    @property
    def known(self) -> str:
        # Explicit: mean + user bias + item bias + dot product; implicit: the dot product alone.
        return (f"{self.mean} + u.bias + i.bias + " if self.explicit else "") + \
            "array_inner_product(u.factors, i.factors)"


def _rating_sql(r: _Recommender) -> str:
    # The arguments are read in a FROM-less subquery (q), so an argument that is a column named
    # like a factor table's column (user_id) still means the caller's column.
    biases = "coalesce(u.bias, 0) + coalesce(i.bias, 0) + " if r.explicit else ""
    return (f"CREATE OR REPLACE MACRO {quote(r.fn + '_rating_sql')}(uid, iid) AS "
            f"(SELECT {r.mean} + {biases}"
            f"coalesce(array_inner_product(u.factors, i.factors), 0.0) "
            f"FROM (SELECT uid::{r.user_type} AS __u, iid::{r.item_type} AS __i) q "
            f"LEFT JOIN {r.base}_users u ON u.user_id = q.__u "
            f"LEFT JOIN {r.base}_items i ON i.item_id = q.__i)")


def _top_sql(r: _Recommender, ease: bool) -> str:
    # One user's top k. A factor model scores by the dot product (plus biases, explicit); EASE
    # by the item-item weights from the items the user liked.
    base = r.base
    if ease:
        ctes = f"c AS ({_ease_contrib(r, 'JOIN q ON l.user_id = q.__u')}), "
        known, join = "coalesce(c.score, 0.0)", " LEFT JOIN c ON c.item_id = i.item_id"
    else:
        me_bias = f"{r.mean} + (SELECT bias FROM me) + i.bias + " if r.explicit else ""
        ctes, join = "", ""
        known = f"{me_bias}array_inner_product((SELECT factors FROM me), i.factors)"
    return (
        f"CREATE OR REPLACE MACRO {quote(r.fn + '_sql')}(uid, k := 10, exclude_seen := true) AS "
        f"TABLE WITH q AS (SELECT uid::{r.user_type} AS __u), "
        f"me AS (SELECT u.* FROM {base}_users u, q WHERE u.user_id = q.__u AND NOT u.cold), "
        f"{ctes}scored AS (SELECT i.item_id, CASE WHEN EXISTS (FROM me) THEN {known} "
        f"ELSE {r.cold} END AS score, "
        f"CASE WHEN EXISTS (FROM me) THEN 'personalized' ELSE 'popular' END AS source "
        f"FROM {base}_items i{join} WHERE NOT (exclude_seen AND i.item_id IN "
        f"(SELECT s.item_id FROM {base}_seen s, q WHERE s.user_id = q.__u))) "
        f"SELECT row_number() OVER (ORDER BY score DESC, item_id) AS rank, item_id AS {r.i}, "
        f"score, source FROM scored ORDER BY score DESC, item_id LIMIT k")


def _all_sql(r: _Recommender, session: str, ease: bool) -> str:
    # Every user at once: one scoring pass and a ranking per user, not a query per user.
    base = r.base
    if ease:
        known = "coalesce(c.score, 0.0)"
        pairs = (f"{base}_users u CROSS JOIN {base}_items i LEFT JOIN ({_ease_contrib(r, '')}) c "
                 f"ON c.user_id = u.user_id AND c.item_id = i.item_id")
    else:
        known, pairs = r.known, f"{base}_users u, {base}_items i"
    return (
        f"SELECT user_id AS {r.u}, rank::INTEGER AS rank, item_id::{r.item_type} AS {r.i}, "
        f"score, source, NULL::VARCHAR AS reason FROM (SELECT u.user_id, i.item_id, "
        f"CASE WHEN u.cold THEN {r.cold} ELSE {known} END AS score, "
        f"CASE WHEN u.cold THEN 'popular' ELSE 'personalized' END AS source, "
        f"row_number() OVER (PARTITION BY u.user_id ORDER BY score DESC, i.item_id) AS rank "
        f"FROM {pairs} WHERE NOT (exclude_seen AND EXISTS "
        f"(SELECT 1 FROM {base}_seen s WHERE s.user_id = u.user_id AND s.item_id = i.item_id))"
        f") WHERE rank <= k AND NOT {session}")


def _ease_contrib(r: _Recommender, where: str) -> str:
    # An EASE user's score of an item: the sum of the item-item weights from the items they liked.
    return (f"SELECT l.user_id, n.neighbor_id AS item_id, sum(n.weight) AS score "
            f"FROM {r.base}_liked l JOIN {r.base}_neighbors n ON n.item_id = l.item_id "
            f"{where} GROUP BY l.user_id, n.neighbor_id")


def _ease_rating_sql(r: _Recommender) -> str:
    return (f"CREATE OR REPLACE MACRO {quote(r.fn + '_rating_sql')}(uid, iid) AS "
            f"(SELECT coalesce(sum(n.weight), 0.0) "
            f"FROM (SELECT uid::{r.user_type} AS __u, iid::{r.item_type} AS __i) q "
            f"LEFT JOIN {r.base}_liked l ON l.user_id = q.__u "
            f"LEFT JOIN {r.base}_neighbors n ON n.item_id = l.item_id AND n.neighbor_id = q.__i)")


def recommender_statements(model: str, fn: str, version: int, user_col: str, item_col: str,
                           user_type: str, item_type: str, global_mean: float,
                           feedback: str, algorithm: str = "als") -> list[str]:
    """A recommender's functions: the pure-SQL ones over its factor tables (``_sql``,
    ``_rating_sql``), then ``<fn>``, ``<fn>_rating`` and ``<fn>_all``, which serve from
    those SQL ones in a plain client and from Python (which adds reasons) in a sqlml session.
    ``algorithm`` 'ease': the SQL ones score by a join of the liked and neighbours tables."""
    explicit = feedback == "explicit"
    r = _Recommender(factor_table(model, version), fn, quote(user_col), quote(item_col),
                     user_type, item_type, explicit,
                     repr(float(global_mean)) if explicit else "0.0")
    i, u = r.i, r.u
    m, session = pinned(model, version), f"{dispatcher('session')}()"
    fields = f"r.rank, r.item::{item_type} AS {i}, r.score, r.source, r.reason"
    python = f"{dispatcher('recommend')}({m}, user_id, k, exclude_seen, []::{RECOMMENDATIONS_TYPE})"
    ease = algorithm == "ease"
    return [
        (_ease_rating_sql if ease else _rating_sql)(r), _top_sql(r, ease),
        f"CREATE OR REPLACE MACRO {quote(fn + '_rating')}(user_id, item_id) AS "
        f"{dispatcher('rating')}({m}, user_id, item_id, "
        f"{quote(fn + '_rating_sql')}(user_id, item_id))",
        f"CREATE OR REPLACE MACRO {quote(fn)}(user_id, k := 10, exclude_seen := true) AS TABLE "
        f"SELECT * FROM (SELECT {fields} FROM (SELECT unnest({python}) AS r) WHERE {session} "
        f"UNION ALL SELECT rank::INTEGER, {i}, score, source, NULL::VARCHAR "
        f"FROM {quote(fn + '_sql')}(user_id, k := k, exclude_seen := exclude_seen) "
        f"WHERE NOT {session}) ORDER BY rank",
        f"CREATE OR REPLACE MACRO {quote(fn + '_all')}(k := 10, exclude_seen := true) AS TABLE "
        f"SELECT * FROM (SELECT {u}, {fields} FROM (SELECT user_id AS {u}, unnest({python}) "
        f"AS r FROM {r.base}_users) WHERE {session} UNION ALL "
        f"{_all_sql(r, session, ease)}) "
        f"ORDER BY {u}, rank",
    ]


# -- forecasts -------------------------------------------------------------------------------------
FORECAST_SUFFIXES = ("", "_backtest", "_future")
# Series column types the generated functions give back as they were; any other (an ENUM, a
# nested type) comes back as VARCHAR.
_PLAIN_TYPES = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|"
                          r"UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\)|VARCHAR|BOOLEAN|"
                          r"DATE|TIMESTAMP)$", re.I)


@dataclass(frozen=True)
class ForecastShape:
    """What a forecast model's functions are written from."""
    series_cols: tuple[tuple[str, str], ...]   # (name, DuckDB type) in settings order
    time_col: str
    time_type: str                             # DATE | TIMESTAMP | TIMESTAMPTZ
    quantiles: tuple[float, ...]
    columns: tuple[str, ...]                   # each quantile's column: p10, p50, p90, p2_5
    horizon: int
    zone: str = "UTC"                          # TIMESTAMPTZ: the zone periods are stored in


def _series_columns(shape: ForecastShape, alias: str) -> list[str]:
    out = []
    for i, (col, typ) in enumerate(shape.series_cols, start=1):
        t = typ if _PLAIN_TYPES.match(typ) else "VARCHAR"
        out.append(f"{alias}.series[{i}]::{t} AS {quote(col)}")
    return out


def _time_column(shape: ForecastShape, column: str) -> str:
    expr = {"DATE": f"{column}::DATE",
            "TIMESTAMPTZ": f"timezone({literal(shape.zone)}, {column})"}.get(
        shape.time_type, column)
    return f"{expr} AS {quote(shape.time_col)}"


def forecast_statements(model: str, fn: str, version: int, shape: ForecastShape) -> list[str]:
    """A forecast model's functions, pure SQL over the stored tables, for every client:
    ``<fn>(horizon := n)`` the forecasts, ``<fn>_backtest()`` the backtest, each with the series
    columns and the time column under their own names and one column per quantile."""
    h, m = shape.horizon, literal(model)
    order = ", ".join([*(quote(c) for c, _ in shape.series_cols), quote(shape.time_col)])
    too_long = (literal(f"{fn}: horizon ") + " || horizon::VARCHAR || " + literal(
        f" is longer than the {h} periods model {model!r} stored at training (its maximum). "
        f"Pass horizon := {h} or less, or retrain with settings := {{horizon: ...}} for more: "
        f"forecasts are computed at training and stored, not recomputed."))
    too_short = literal(f"{fn}: horizon must be a positive whole number of periods (at most "
                        f"{h}), e.g. horizon := {min(6, h)}.")
    limit = (f"CASE WHEN horizon IS NULL THEN {h} WHEN horizon > {h} THEN error({too_long}) "
             f"WHEN horizon < 1 THEN error({too_short}) ELSE horizon END")
    joined = (f"JOIN sqlml.forecast_series s ON s.name = {m} AND s.version = {version} "
              f"AND s.series_id = f.series_id")
    # <fn>_future(query): the same rows computed again by sqlml's Python with new covariate
    # values; a plain client gets the dispatcher's error. <fn>() never calls Python.
    again = (f"{_call('forecast_future')}({pinned(model, version)}, future, {limit})"
             f"::{FORECAST_ROWS_TYPE}")
    recomputed = (f"(SELECT r.series_id, r.step, r.period, r.\"values\" FROM "
                  f"(SELECT unnest({again}) AS r)) f")
    values = [f'f."values"[{i}] AS {quote(c)}' for i, c in enumerate(shape.columns, start=1)]
    head = [*_series_columns(shape, "s"), _time_column(shape, "f.period")]
    pivot = [f"max(b.forecast) FILTER (WHERE b.quantile = {q!r}) AS {quote(c)}"
             for q, c in zip(shape.quantiles, shape.columns, strict=True)]
    bt_head = [*_series_columns(shape, "s"), _time_column(shape, "b.period")]
    bt_group = ", ".join(str(i) for i in range(1, len(bt_head) + 6))
    return [
        f"CREATE OR REPLACE MACRO {quote(fn)}(horizon := {h}) AS TABLE "
        f"SELECT {', '.join(head)}, f.step, {', '.join(values)} FROM sqlml.forecasts f "
        f"{joined} WHERE f.name = {m} AND f.version = {version} AND f.step <= {limit} "
        f"ORDER BY {order}",
        f"CREATE OR REPLACE MACRO {quote(fn + '_future')}(future, horizon := {h}) AS TABLE "
        f"SELECT {', '.join(head)}, f.step, {', '.join(values)} FROM {recomputed} {joined} "
        f"ORDER BY {order}",
        f"CREATE OR REPLACE MACRO {quote(fn + '_backtest')}() AS TABLE "
        f"SELECT {', '.join(bt_head)}, b.\"window\", b.step, b.actual, s.scale, s.scale_squared, "
        f"{', '.join(pivot)} FROM sqlml.forecast_backtest b "
        f"JOIN sqlml.forecast_series s ON s.name = b.name AND s.version = b.version "
        f"AND s.series_id = b.series_id WHERE b.name = {m} AND b.version = {version} "
        f"GROUP BY {bt_group} ORDER BY {order}, \"window\", step",
    ]
