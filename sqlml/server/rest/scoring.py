"""What the REST endpoint does per request: JSON rows in, the SQL functions' answers out.

Rows become an Arrow table registered on the request's own cursor, cast to the types the model
was trained on, and are scored by the very UDFs behind the generated SQL functions, pinned to one
version. So a REST answer equals ``SELECT predict_churn(c) FROM t c`` for the same rows, and a
retrain that lands mid-request cannot mix two versions in one response.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sqlml.catalog import generated
from sqlml.catalog import store as catalog
from sqlml.errors import RequestError
from sqlml.train.preprocessing import base_type

ROW = "__sqlml_row"   # request order, carried through the query; ignored by the UDFs


def model_version(cur, name: str, version: int | None, route: str) -> dict:
    """The catalog row of the version a request asks for (the active one by default)."""
    model = catalog.require_model(cur, name, route)
    if version is None:
        version = model["active_version"]
    else:
        version = catalog.require_version(
            cur, name, version, route, f"Send \"version\" with one of them, or leave it out for "
                                       f"the active version ({model['active_version']}).")
    return catalog.version_row(cur, name, version)


def check_row_limit(n: int, max_rows: int, route: str, what: str = "rows") -> None:
    if n > max_rows:
        raise RequestError(
            413, "TooManyRows",
            f"{route}: the request has {n} {what}; this server accepts at most {max_rows} per "
            f"request (max_rows). Split it into requests of at most {max_rows} {what}, or "
            f"score large tables in SQL (SELECT ... FROM table) instead.")


# -- predict ----------------------------------------------------------------------------------
def request_columns(rows: list[dict] | None, columns: dict[str, list] | None,
                    features: list[dict], route: str) -> tuple[int, dict[str, list]]:
    """(row count, {feature name: values}) for the features the request has; extras dropped.

    Keys match feature names case-insensitively, as a whole-row argument does in SQL. A feature
    that is absent from the request is left out here, so the UDF reports it with sqlml's message.
    """
    if (rows is None) == (columns is None):
        raise RequestError(
            422, "InvalidRequest",
            f"{route}: send exactly one of \"rows\" (a list of objects, one per row) or "
            f"\"columns\" (an object of equal-length arrays); got "
            f"{'both' if rows is not None else 'neither'}.")
    if rows is not None:
        chosen = _chosen_keys(set().union(*rows) if rows else set(), features, route)
        return len(rows), {f: [r.get(k) for r in rows] for f, k in chosen.items()}
    assert columns is not None  # exactly one of the two is sent (checked above)
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise RequestError(
            422, "InvalidRequest",
            f"{route}: every array in \"columns\" must have the same length, got "
            f"{json.dumps(lengths)}. Send one value per row in each column (null for none).")
    chosen = _chosen_keys(set(columns), features, route)
    return next(iter(lengths.values()), 0), {f: columns[k] for f, k in chosen.items()}


def _chosen_keys(keys: set[str], features: list[dict], route: str) -> dict[str, str]:
    """{feature name: the request's key for it}, keys matched case-insensitively."""
    wanted = {f["name"].lower(): f["name"] for f in features}
    chosen: dict[str, str] = {}
    for key in sorted(keys):
        feature = wanted.get(key.lower())
        if feature is None:
            continue
        if feature in chosen:
            raise RequestError(
                422, "InvalidRequest",
                f"{route}: keys {chosen[feature]!r} and {key!r} both name feature {feature!r} "
                f"(names match case-insensitively). Send it once.")
        chosen[feature] = key
    return chosen


def arrow_column(values: list) -> pa.Array:
    """JSON values as an Arrow array; mixed or nested values travel as text and are cast later."""
    try:
        arr = pa.array(values)
        if not pa.types.is_nested(arr.type):
            return arr
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values],
                    type=pa.string())


def trained_type(feature_type: str) -> str:
    # An ENUM's values are categories to the model; an unseen one is tolerated (all-zero
    # one-hot), as it is for VARCHAR input in SQL, rather than refused by the ENUM cast.
    return "VARCHAR" if base_type(feature_type) == "ENUM" else feature_type


def cast_to_trained(cur, data: dict[str, list], n: int, types: dict[str, str],
                    route: str) -> pa.Table:
    """The request's columns cast to the training types, with the request order in ``ROW``."""
    raw = pa.table({ROW: pa.array(range(n), type=pa.int64()),
                    **{name: arrow_column(values) for name, values in data.items()}})
    view = f"__sqlml_rest_{uuid.uuid4().hex}"
    cur.register(view, raw)
    try:
        select = ", ".join([ROW] + [
            f"TRY_CAST({generated.quote(c)} AS {trained_type(types[c])}) AS {generated.quote(c)}"
            for c in data])
        cast = cur.sql(f"SELECT {select} FROM {view}").to_arrow_table()
    finally:
        cur.unregister(view)
    for name in data:
        before, after = raw.column(name), cast.column(name)
        if after.null_count != before.null_count:
            bad = pc.and_(pc.is_null(after), pc.is_valid(before))
            i = pc.index(bad, True).as_py()
            raise RequestError(
                422, "PredictionInputError",
                f"{route}: column {name!r} has type {types[name]} (its type at training), but "
                f"row {i} has {data[name][i]!r}, which does not convert to it. Send a value of "
                f"that type, or null to have the stored imputer fill it.")
    return cast


def predict(cur, name: str, version: int | None, rows, columns, max_rows: int,
            route: str) -> dict[str, Any]:
    row = model_version(cur, name, version, route)
    problem, fn, v = row["problem_type"], row["function_name"], row["version"]
    if problem == "recommendation":
        raise RequestError(
            400, "NotAPredictor",
            f"{route}: model {name!r} is a recommender, which ranks items for a user rather "
            f"than scoring rows. Use POST /v1/models/{name}/recommend with {{\"user\": id}}.")
    features = json.loads(row["features"])
    n, data = request_columns(rows, columns, features, route)
    check_row_limit(n, max_rows, route)
    out: dict[str, Any] = {"model": name, "version": v, "function": fn, "problem_type": problem,
                           "predictions": []}
    binary = problem == "binary_classification"
    if problem != "regression":
        out["probabilities"] = []
    if binary:
        out["threshold"] = row["threshold"]
    if n == 0:
        return out
    table = cast_to_trained(cur, data, n, {f["name"]: f["type"] for f in features}, route)
    # The UDFs the generated macros expand to, with the version pinned: predict_churn(c) is
    # exactly __sqlml_py_label_boolean('customer_churn', c).
    calls = [f"{generated.LABEL_UDF[generated.label_type(problem, row['target_type'])]}($ref, t)"]
    if binary:
        calls.append(f"{generated.PROBABILITY_UDF}($ref, t)")
    elif problem != "regression":
        calls.append(f"{generated.PROBABILITIES_UDF}($ref, t)")
    view = f"__sqlml_rest_{uuid.uuid4().hex}"
    cur.register(view, table)
    try:
        result = cur.execute(
            f"SELECT {', '.join(calls)} FROM {view} t ORDER BY t.{ROW}",
            {"ref": f"{name}@{v}"}).fetchall()
    finally:
        cur.unregister(view)
    out["predictions"] = [r[0] for r in result]
    if binary:
        out["probabilities"] = [r[1] for r in result]
    elif problem != "regression":
        out["probabilities"] = [dict(zip(r[1]["labels"], r[1]["probabilities"], strict=True))
                                for r in result]
    return out


# -- recommend --------------------------------------------------------------------------------
def recommend(cur, name: str, version: int | None, user, users, k: int, exclude_seen: bool,
              max_rows: int, route: str) -> dict[str, Any]:
    row = model_version(cur, name, version, route)
    if row["problem_type"] != "recommendation":
        raise RequestError(
            400, "NotARecommender",
            f"{route}: model {name!r} is {row['problem_type']}, not a recommender. Score it "
            f"with POST /v1/models/{name}/predict, or train one with problem_type := "
            f"'recommendation'.")
    if (user is None) == (users is None):
        raise RequestError(
            422, "InvalidRequest",
            f"{route}: send exactly one of \"user\" (one user id) or \"users\" (a list of "
            f"ids); got {'both' if users is not None else 'neither'}.")
    ids = [user] if users is None else users
    check_row_limit(len(ids), max_rows, route, "users")
    out = {"model": name, "version": row["version"], "function": row["function_name"],
           "results": []}
    if not ids:
        return out
    settings = json.loads(row["parameters"])["settings"]
    types = {f["name"]: f["type"] for f in json.loads(row["features"])}
    user_col, item_type = settings["user_col"], types[settings["item_col"]]
    cast = cast_to_trained(cur, {user_col: ids}, len(ids), types, route)
    view = f"__sqlml_rest_{uuid.uuid4().hex}"
    cur.register(view, cast)
    try:
        # What the generated <fn>(user, k := , exclude_seen := ) table macro runs, pinned to
        # this version, for every user of the request in one vectorised call.
        result = cur.execute(
            f"SELECT i, r.rank, r.item::{item_type}, r.score, r.source, r.reason FROM "
            f"(SELECT {ROW} AS i, unnest({generated.RECOMMEND_UDF}($ref, "
            f"{generated.quote(user_col)}, $k, $exclude)) AS r FROM {view}) ORDER BY i, r.rank",
            {"ref": f"{name}@{row['version']}", "k": k, "exclude": exclude_seen}).fetchall()
    finally:
        cur.unregister(view)
    by_row: dict[int, list] = {i: [] for i in range(len(ids))}
    for r in result:
        by_row[r[0]].append(r[1:])
    out["results"] = [{"user": ids[i], "items": [
        {"rank": rank, "item": item, "score": score, "source": source, "reason": reason}
        for rank, item, score, source, reason in by_row[i]]} for i in range(len(ids))]
    return out


# -- report ----------------------------------------------------------------------------------
def check_reader_query(cur, query: str, route: str) -> None:
    """Refuse (403) a drift query that the reader role of ``sqlml serve`` could not run over
    Postgres: one SELECT, with no write, no training and no server-state function
    (sqlml/server/policy.py's rules), whoever holds the REST token."""
    import duckdb

    from sqlml.redshift.parser import Statement
    from sqlml.server import policy
    from sqlml.server.pgwire.errors import PgError

    user = "rest-drift-query"
    rules = policy.Policy(file_access=False, read_only=True,
                          users={user: policy.User(user, policy.READER, None)})
    try:
        if len(cur.extract_statements(query)) != 1:
            raise RequestError(
                403, "PermissionDenied",
                f"{route}: the drift query must be one SELECT statement, got "
                f"{query[:80]!r}. Send one query, e.g. drift=SELECT * FROM customers_this_month.")
        rules.check(cur, Statement(query, "sql", query, 1), user)
    except duckdb.ParserException:
        return      # ml_drift reports the syntax error itself, with the query
    except PgError as exc:
        raise RequestError(403, "PermissionDenied", f"{route}: the drift query is refused: "
                                                    f"{exc.text}") from None
