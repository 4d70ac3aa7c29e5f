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
    names = function_names(fn, problem_type)
    return [_macro(n, model, u, features) for n, u in zip(names, udfs, strict=True)]


def drop_statements(names: list[str]) -> list[str]:
    return [f"DROP MACRO IF EXISTS {quote(n)}" for n in names]
