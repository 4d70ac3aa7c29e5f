"""SQL text of the functions generated for each model: macros over the private scoring UDFs.

Macros give each model a fixed signature that DuckDB itself checks: a call with the wrong number
of arguments fails to bind with a message listing the expected feature columns.
"""

from __future__ import annotations

import re

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

LABEL_UDF = {"VARCHAR": "__sqlml_py_label_varchar", "BIGINT": "__sqlml_py_label_bigint",
             "BOOLEAN": "__sqlml_py_label_boolean", "DOUBLE": "__sqlml_py_label_double"}
PROBABILITY_UDF = "__sqlml_py_probability"
PROBABILITIES_UDF = "__sqlml_py_probabilities"
PROBABILITIES_TYPE = "STRUCT(labels VARCHAR[], probabilities DOUBLE[])"
EXPLAIN_UDF = "__sqlml_py_explain"
EXPLAIN_TYPE = "STRUCT(feature VARCHAR, contribution DOUBLE)[]"


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


def _macro(name: str, model: str, udf: str, params: list[str]) -> str:
    overloads = []
    for ps in ([params] if len(params) == 1 else [["row_or_feature"], params]):
        args = ", ".join(quote(p) for p in ps)
        overloads.append(f"({args}) AS {udf}('{model}', {args})")
    return f"CREATE OR REPLACE MACRO {quote(name)}" + ",\n    ".join(overloads)


def create_statements(model: str, fn: str, features: list[str], problem_type: str,
                      target_type: str) -> list[str]:
    udfs = [LABEL_UDF[label_type(problem_type, target_type)]]
    if problem_type == "binary_classification":
        udfs.append(PROBABILITY_UDF)
    if problem_type != "regression":
        udfs.append(PROBABILITIES_UDF)
    udfs.append(EXPLAIN_UDF)
    names = function_names(fn, problem_type)
    return [_macro(n, model, u, features) for n, u in zip(names, udfs, strict=True)]


def drop_statements(names: list[str]) -> list[str]:
    return [f"DROP MACRO IF EXISTS {quote(n)}" for n in names]


# -- recommenders ----------------------------------------------------------------------------------
RECOMMENDER_SUFFIXES = ("", "_rating", "_all", "_sql", "_rating_sql")
# Pure-SQL macros of models compiled to SQL (sqlml/compile_sql.py), for any DuckDB client.
COMPILED_SUFFIXES = ("_sql", "_probability_sql", "_probabilities_sql", "_explain_sql")
RECOMMEND_UDF = "__sqlml_py_recommend"
RATING_UDF = "__sqlml_py_rec_rating"


def recommender_names(fn: str) -> list[str]:
    return [fn + s for s in RECOMMENDER_SUFFIXES]


def all_names(fn: str) -> list[str]:
    """Every name a model of any problem type may generate from ``fn``."""
    return list(dict.fromkeys([*function_names(fn, "multiclass_classification"),
                               f"{fn}_probability", *recommender_names(fn),
                               *(fn + s for s in COMPILED_SUFFIXES)]))


def factor_table(model: str, version: int) -> str:
    return f"sqlml.rec_{model}_v{version}"


def recommender_statements(model: str, fn: str, version: int, user_col: str, item_col: str,
                           user_type: str, item_type: str, global_mean: float,
                           feedback: str) -> list[str]:
    base = factor_table(model, version)
    u, i = quote(user_col), quote(item_col)
    # Explicit: mean + user bias + item bias + dot product; implicit: the dot product alone.
    # A cold (unknown) user ranks items by bias (explicit) or popularity (implicit).
    mean = repr(float(global_mean)) if feedback == "explicit" else "0.0"
    cold = f"{mean} + i.bias" if feedback == "explicit" else "i.popularity"
    return [
        f"CREATE OR REPLACE MACRO {quote(fn + '_rating')}(user_id, item_id) AS "
        f"{RATING_UDF}('{model}', user_id, item_id)",
        f"CREATE OR REPLACE MACRO {quote(fn)}(user_id, k := 10, exclude_seen := true) AS TABLE "
        f"SELECT r.rank, r.item::{item_type} AS {i}, r.score, r.source, r.reason FROM "
        f"(SELECT unnest({RECOMMEND_UDF}('{model}', user_id, k, exclude_seen)) AS r)",
        f"CREATE OR REPLACE MACRO {quote(fn + '_all')}(k := 10, exclude_seen := true) AS TABLE "
        f"SELECT {u}, r.rank, r.item::{item_type} AS {i}, r.score, r.source, r.reason FROM "
        f"(SELECT user_id AS {u}, unnest({RECOMMEND_UDF}('{model}', user_id, k, exclude_seen)) "
        f"AS r FROM {base}_users) ORDER BY {u}, r.rank",
        f"CREATE OR REPLACE MACRO {quote(fn + '_rating_sql')}(uid, iid) AS "
        + (f"{mean} + coalesce((SELECT bias FROM {base}_users WHERE user_id = uid::{user_type})"
           f", 0) + coalesce((SELECT bias FROM {base}_items WHERE item_id = iid::{item_type})"
           f", 0) + " if feedback == "explicit" else "")
        + f"coalesce((SELECT array_inner_product(u.factors, i.factors) FROM {base}_users u, "
        f"{base}_items i WHERE u.user_id = uid::{user_type} AND i.item_id = iid::{item_type})"
        f", 0.0)",
        f"CREATE OR REPLACE MACRO {quote(fn + '_sql')}(uid, k := 10, exclude_seen := true) AS "
        f"TABLE WITH me AS (SELECT * FROM {base}_users WHERE user_id = uid::{user_type} "
        f"AND NOT cold), "
        f"scored AS (SELECT i.item_id, CASE WHEN EXISTS (FROM me) THEN "
        + (f"{mean} + (SELECT bias FROM me) + i.bias + " if feedback == "explicit" else "")
        + f"array_inner_product((SELECT factors FROM me), i.factors) ELSE {cold} END AS score, "
        f"CASE WHEN EXISTS (FROM me) THEN 'personalized' ELSE 'popular' END AS source "
        f"FROM {base}_items i WHERE NOT (exclude_seen AND i.item_id IN "
        f"(SELECT item_id FROM {base}_seen WHERE user_id = uid::{user_type}))) "
        f"SELECT row_number() OVER (ORDER BY score DESC, item_id) AS rank, item_id AS {i}, "
        f"score, source FROM scored ORDER BY score DESC, item_id LIMIT k",
    ]
