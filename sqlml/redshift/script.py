"""``sqlml.execute(con, script)``: run a script mixing DuckDB SQL and Redshift ML statements."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from sqlml.catalog import store as catalog
from sqlml.redshift.parser import parse


class SqlmlNotice(UserWarning):
    """Something sqlml accepted but did differently from Redshift, e.g. an ignored IAM_ROLE."""


@dataclass
class Result:
    """One statement's outcome: its text, kind, and result columns and rows (empty if none)."""

    statement: str
    columns: list[str]
    rows: list[tuple]
    kind: str           # sql | create_model | show_model | show_models | drop_model
    #                     | explain_model | forecast
    sql: str = ""       # what ran on the connection (the statement itself for plain SQL)


def _warn(message: str) -> None:
    warnings.warn(message, SqlmlNotice, stacklevel=3)


def execute(con: duckdb.DuckDBPyConnection, script: str, *,
            notice: Callable[[str], None] | None = None) -> list[Result]:
    """Run every statement of ``script`` in order on ``con``; one Result per statement.

    The whole script is parsed first, so a syntax error in a Redshift statement
    (``sqlml.errors.SqlSyntaxError``) runs nothing. A statement that fails while running
    raises DuckDB's exception with sqlml's message; the statements before it have run and stay
    done, the ones after it do not run (a note on the exception says which).
    ``notice`` receives each notice; by default they are issued as ``SqlmlNotice`` warnings.
    """
    statements = parse(script)
    emit = notice or _warn
    if any(s.kind != "sql" for s in statements):
        from sqlml.connection import install

        install(con)
    results = []
    for n, st in enumerate(statements, start=1):
        for message in st.notices:
            emit(message)
        try:
            # The parser names the model of every DROP MODEL; None is only for other kinds.
            if (st.kind == "drop_model" and st.if_exists and st.model is not None
                    and not _exists(con, st.model)):
                emit(f"DROP MODEL IF EXISTS: {catalog.absent(st.model)}; nothing was dropped.")
                results.append(Result(st.text, ["dropped"], [], st.kind, ""))
                continue
            con.execute(st.sql)
            description = con.description
            rows = con.fetchall() if description else []
        except duckdb.Error as exc:
            left = len(statements) - n
            exc.add_note(f"sqlml.execute: statement {n} of {len(statements)} (line {st.line}) "
                         f"failed; {n - 1} before it ran, the {left} after it did not run.")
            raise
        columns = [d[0] for d in description] if description else []
        if st.kind == "create_model" and len(rows) == 1 and isinstance(rows[0][0], dict):
            columns, rows = list(rows[0][0]), [tuple(rows[0][0].values())]
        results.append(Result(st.text, columns, rows, st.kind, st.sql))
    return results


def _exists(con, name: str) -> bool:
    return con.execute("SELECT count(*) FROM sqlml.models WHERE name = ?",
                       [name]).fetchall()[0][0] > 0
