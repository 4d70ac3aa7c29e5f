"""``sqlml.connect`` and ``sqlml.install``: the one seam that puts sqlml into a connection."""

from __future__ import annotations

import os

import duckdb

from sqlml import context, functions, sqlfiles

# DuckDB 2.x writes files that DuckDB 1.4 and 1.5 clients (the duckdb CLI, BI tools' drivers)
# cannot open. sqlml models are meant to be read by those clients too, so new files are written
# in the 1.4 storage format unless the caller asks for another.
STORAGE_COMPATIBILITY = "v1.4.0"


def connect(path: str | os.PathLike | None = None, *, read_only: bool = False,
            config: dict | None = None, **settings) -> duckdb.DuckDBPyConnection:
    """Open (or create) a DuckDB database with sqlml installed.

    ``path`` None or ``":memory:"`` gives an in-memory database. ``config`` and keyword
    ``settings`` are DuckDB configuration options (``threads=2``, ``memory_limit='4GB'``...).
    """
    database = ":memory:" if path is None else os.fspath(path)
    cfg = dict(config or {})
    cfg.update(settings)
    if not read_only:
        cfg.setdefault("storage_compatibility_version", STORAGE_COMPATIBILITY)
    con = duckdb.connect(database, read_only=read_only, config=cfg)
    install(con)
    return con


def install(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Install sqlml into an existing connection. Safe to call any number of times."""
    inst = context.lookup(con)
    if inst is None:
        inst = context.create()
        functions.register(con, inst)
    inst.add(con)
    if _read_only(con):
        _install_temp_macros(con)
    else:
        _install_sql(con)
    return con


def _read_only(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return bool(rows and rows[0][0])


def _install_sql(con: duckdb.DuckDBPyConnection) -> None:
    """Create the catalog and the persisted macros, unless this file already has this SQL."""
    wanted = sqlfiles.fingerprint()
    try:
        rows = con.execute("SELECT value FROM sqlml.meta WHERE key = 'sql_fingerprint'").fetchall()
    except duckdb.CatalogException:
        rows = []
    if rows and rows[0][0] == wanted:
        return
    cur = con.cursor()
    cur.execute("BEGIN")
    try:
        for name in sqlfiles.SQL_FILES:
            for stmt in sqlfiles.statements(name):
                cur.execute(stmt)
        cur.execute(
            "INSERT OR REPLACE INTO sqlml.meta VALUES ('sql_fingerprint', ?)", [wanted]
        )
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise


def _install_temp_macros(con: duckdb.DuckDBPyConnection) -> None:
    """A read-only file that sqlml never wrote to gets the macros for this connection only."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'ml_models' "
        "AND database_name = current_database()"
    ).fetchall()[0][0]
    if exists:
        return
    has_catalog = con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'sqlml' "
        "AND database_name = current_database()").fetchall()[0][0]
    # Without a catalog there are no models to list or score: only the metric functions.
    files = sqlfiles.SQL_FILES[1:] if has_catalog else ("metrics.sql",)
    for name in files:
        for stmt in sqlfiles.statements(name):
            con.execute(stmt.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO", 1))
