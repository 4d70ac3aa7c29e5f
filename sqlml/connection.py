"""``sqlml.connect`` and ``sqlml.install``: the one seam that puts sqlml into a connection."""

from __future__ import annotations

import os
import re

import duckdb

from sqlml import context, sqlfiles
from sqlml.catalog import generated, migrations
from sqlml.errors import DatabaseLockedError

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
    try:
        con = duckdb.connect(database, read_only=read_only, config=cfg)
    except duckdb.IOException as exc:
        locked = lock_error(database, read_only, exc)
        if locked is None:
            raise
        raise locked from exc
    try:
        install(con)
    except BaseException:
        con.close()  # a refused file stays unlocked for the sqlml that can open it
        raise
    return con


# DuckDB's words (1.4 to 2.0) when another process holds the file; it adds "However, you would be
# able to open this database in read-only mode" when that process only reads.
_LOCK_HELD = re.compile(r'Could not set lock on file "(?P<path>[^"]*)": Conflicting lock is held '
                        r'in (?P<exe>.*?) \(PID (?P<pid>\d+)\)')
_HOLDER_READS = "read-only mode"


def lock_error(database: str, read_only: bool, exc: BaseException) -> DatabaseLockedError | None:
    """DuckDB's lock conflict as an error naming the file, the process that holds it and the
    remedies; None for any other error."""
    m = _LOCK_HELD.search(str(exc))
    if m is None:
        return None
    pid = int(m["pid"])
    holder = f"PID {pid} (`{_command_line(pid) or m['exe']}`)"
    if _HOLDER_READS in str(exc):
        text = (f"database file {database!r} is open read-only in another process, {holder}, "
                f"and DuckDB lets no process write a file that another one reads. Open it "
                f"read-only here too (sqlml.connect(path, read_only=True), or the command's "
                f"--read-only), or stop PID {pid} and retry.")
    else:
        wanted = "read it" if read_only else "write it"
        text = (f"database file {database!r} is open for writing in another process, {holder}, "
                f"and DuckDB lets one process at a time open a file that is being written, so "
                f"this one cannot {wanted}. Reach the data through that process (if it is "
                f"`sqlml serve`, connect to it with psql, a driver or the REST endpoint), or "
                f"stop PID {pid} and retry; to let several processes read the file at once, "
                f"open it with --read-only (read_only=True) in every one of them.")
    return DatabaseLockedError(text, path=m["path"], pid=pid)


def _command_line(pid: int) -> str:
    """The holder's command line, shortened (Linux /proc; empty elsewhere or when hidden)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().decode(errors="replace").split("\0")
    except OSError:
        return ""
    line = " ".join(w for w in words if w)
    return line if len(line) <= 100 else line[:97] + "..."


def install(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Install sqlml into an existing connection. Safe to call any number of times.

    A file with an older catalog schema is migrated (read-write); one with a newer schema is
    refused with CatalogVersionError before anything is registered or written.
    """
    read_only = _read_only(con)
    version = migrations.check(con, read_only)
    inst = context.lookup(con)
    if inst is None:
        # Here, not at import: it loads scikit-learn, which a refused open (a locked file, a
        # newer catalog) never needs, so the command line says why at once.
        from sqlml import functions

        inst = context.create()
        functions.register(con, inst)
    inst.add(con)
    if read_only:
        _install_temp_macros(con)
    else:
        _install_sql(con, version)
    serve_from_python(con, public=read_only and (version or 0) < migrations.DISPATCH)
    return con


def serve_from_python(con: duckdb.DuckDBPyConnection,
                      public: bool = False) -> duckdb.DuckDBPyConnection:
    """Make ``con`` (a connection or one of its cursors, which do not see the connection's TEMP
    macros) serve the generated functions through sqlml's Python UDFs where a model asks for it
    (sqlml/catalog/generated.py). Without this a cursor still gets right answers from the
    compiled SQL, and an error naming the remedy for a model only Python scores.

    ``public``: also the macros ml_predict, ml_drop_model, ... for this connection only, for a
    read-only file written before they were persisted (ml_predict's 130 overloads take about
    0.1 s to create, so only then)."""
    for stmt in generated.dispatch_statements(temp=True):
        con.execute(stmt)
    if public:
        for stmt in generated.public_statements(temp=True):
            con.execute(stmt)
    return con


def _read_only(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return bool(rows and rows[0][0])


def _install_sql(con: duckdb.DuckDBPyConnection, version: int | None) -> None:
    """Migrate the catalog and (re)create the tables and persisted macros, in one transaction,
    unless this file already has this SQL at the latest schema version.

    ``version``: the file's catalog schema version, None for a file without a catalog.
    """
    wanted = sqlfiles.fingerprint()
    if version == migrations.LATEST and _fingerprint(con) == wanted:
        return
    cur = con.cursor()
    cur.execute("BEGIN")
    try:
        if version is not None:
            migrations.migrate(cur, version)
        for name in sqlfiles.SQL_FILES:
            for stmt in sqlfiles.statements(name):
                cur.execute(stmt)
        if version is not None:
            migrations.after_sql(cur, version)
        migrations.stamp(cur)
        cur.execute(
            "INSERT OR REPLACE INTO sqlml.meta (key, value) VALUES ('sql_fingerprint', ?)",
            [wanted])
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise


def _fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = con.execute("SELECT value FROM sqlml.meta WHERE key = 'sql_fingerprint'").fetchall()
    return rows[0][0] if rows else None


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
