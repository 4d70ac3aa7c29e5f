"""SQLAlchemy engines whose every pooled connection has sqlml installed (through duckdb-engine).

``pandas.read_sql``, jupysql and most notebooks talk to databases through a SQLAlchemy engine,
which opens DBAPI connections on its own, whenever its pool needs one. A connect event listener
installs sqlml into each of them as it is opened, so a query run through any pooled connection can
call ``predict_churn(c)`` and the metric macros.

SQLAlchemy and duckdb-engine are an optional extra (``pip install 'sqlml[sqlalchemy]'``): sqlml's
core does not need them, and this module imports them only when called.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import duckdb

from sqlml.connection import STORAGE_COMPATIBILITY, install, serve_from_python
from sqlml.errors import MissingDependencyError, SqlmlError
from sqlml.integrations import sqla_reflection

PIP_COMMAND = "pip install 'sqlml[sqlalchemy]'"


def create_engine(database: str | os.PathLike | duckdb.DuckDBPyConnection | None = None, *,
                  read_only: bool = False, config: dict | None = None, **engine_kwargs: Any):
    """A SQLAlchemy engine on a DuckDB database, with sqlml installed on every pooled connection.

    ``database`` is a file path, a ``duckdb:///path.duckdb`` URL (its query string holds DuckDB
    settings), None or ``":memory:"`` for a new in-memory database, or an open DuckDB connection
    (its in-memory tables and models are then what the engine sees). Each pooled connection is
    opened the way ``sqlml.connect`` opens one: new files are written in the storage format that
    DuckDB 1.4 and 1.5 clients read. ``config`` holds DuckDB settings; other keyword arguments go
    to ``sqlalchemy.create_engine`` (``pool_size=4``, ``echo=True``...).
    """
    sa, wrapper = _require("sqlml.create_engine")
    engine_kwargs = dict(engine_kwargs)
    cfg = dict(config or {})
    read_only = _merge_connect_args(engine_kwargs.pop("connect_args", None), cfg, read_only)
    url, creator = _connections(database, cfg, read_only, sa, wrapper)
    # duckdb-engine picks a single-connection-per-thread pool for in-memory URLs; cursors of one
    # database can be pooled like file connections.
    engine_kwargs.setdefault("poolclass", sa.pool.QueuePool)
    engine = sa.create_engine(url, creator=creator, **engine_kwargs)
    return install_on_engine(engine)


def _connections(database, cfg: dict, read_only: bool, sa, wrapper
                 ) -> tuple[str, Callable[[], Any]]:
    """The engine's URL, and what its pool calls for each new DBAPI connection."""
    if isinstance(database, duckdb.DuckDBPyConnection):
        if cfg or read_only:
            raise SqlmlError(
                "sqlml.create_engine: config and read_only apply when the engine opens the "
                f"database, but it was given an open connection (config={cfg!r}, "
                f"read_only={read_only}). Open the connection with those settings instead: "
                "sqlml.connect(path, read_only=..., config=...).")
        install(database)
        return "duckdb:///:memory:", _cursors_of(database, wrapper)
    path, url_settings = _database_path(database, sa)
    for key, value in url_settings.items():
        cfg.setdefault(key, value)
    if path == ":memory:":
        # Every duckdb.connect(":memory:") is a new, empty database: the pool hands out
        # cursors of one in-memory database instead, so all of them see the same models.
        con = duckdb.connect(":memory:", config=cfg)
        install(con)
        return "duckdb:///:memory:", _cursors_of(con, wrapper)
    if not read_only:
        # The same settings sqlml.connect uses, so both can be open on one file in one
        # process (DuckDB refuses a second open of a file with different settings).
        cfg.setdefault("storage_compatibility_version", STORAGE_COMPATIBILITY)
    return "duckdb:///" + path, _file_connections(path, read_only, cfg, wrapper)


def _cursors_of(con: duckdb.DuckDBPyConnection, wrapper) -> Callable[[], Any]:
    def creator():
        # A cursor does not see the connection's TEMP dispatchers, through which a session
        # reaches Python (sqlml/catalog/generated.py): it gets its own.
        return wrapper(serve_from_python(con.cursor()))
    return creator


def _file_connections(path: str, read_only: bool, cfg: dict, wrapper) -> Callable[[], Any]:
    def creator():
        try:
            return wrapper(duckdb.connect(path, read_only=read_only, config=cfg))
        except duckdb.ConnectionException as exc:
            if "different configuration" not in str(exc):
                raise
            raise SqlmlError(
                f"sqlml.create_engine: {path!r} is already open in this process with other "
                f"settings, and DuckDB opens one file with one set of settings only (this "
                f"engine asked for {cfg!r}, read_only={read_only}). Pass the open connection "
                f"instead: sqlml.create_engine(con).") from exc
    return creator


def install_on_engine(engine):
    """Install sqlml on every connection an existing DuckDB engine opens from now on.

    Attach it before the engine's first use: connections already in its pool are not revisited.
    A plain ``sqlalchemy.create_engine("duckdb:///new.duckdb")`` writes new files in DuckDB 2's
    storage format; pass ``connect_args={"config": {"storage_compatibility_version": "v1.4.0"}}``
    (or use ``sqlml.create_engine``) to keep them readable by DuckDB 1.4 and 1.5 clients.
    The engine's reflection (``sqlalchemy.inspect(engine).get_columns(...)``, ``autoload_with``,
    ``pandas.read_sql_table``) reads DuckDB's own catalog from then on
    (sqlml/integrations/sqla_reflection.py).
    """
    sa, _ = _require("sqlml.install_on_engine")
    if not isinstance(engine, sa.engine.Engine):
        raise SqlmlError(
            f"sqlml.install_on_engine: expected a sqlalchemy Engine, got "
            f"{type(engine).__name__}. Create one with sqlml.create_engine('shop.duckdb').")
    if engine.dialect.name != "duckdb":
        raise SqlmlError(
            f"sqlml.install_on_engine: engine {engine.url.render_as_string()!r} uses the "
            f"{engine.dialect.name!r} dialect; sqlml installs into DuckDB connections only. "
            f"Use a duckdb-engine URL such as 'duckdb:///shop.duckdb', or sqlml.create_engine.")
    # duckdb-engine reflects through pg_catalog queries DuckDB cannot answer (the module's
    # docstring says which): the engine's dialect reads DuckDB's own catalog functions instead.
    sqla_reflection.install(engine.dialect)
    if not sa.event.contains(engine, "connect", _install_on_connect):
        sa.event.listen(engine, "connect", _install_on_connect)
    if not sa.event.contains(engine, "handle_error", _aborted_transaction):
        sa.event.listen(engine, "handle_error", _aborted_transaction)
    return engine


def _install_on_connect(dbapi_connection, connection_record) -> None:
    install(duckdb_connection(dbapi_connection))


def _aborted_transaction(context) -> None:
    """Report DuckDB's aborted transaction as SQLAlchemy's PendingRollbackError.

    SQLAlchemy opens a transaction before each statement, and after a failed statement (an unknown
    model, say) DuckDB refuses everything on that connection until it is rolled back. SQLAlchemy
    and jupysql recognise that state from the PendingRollbackError class: jupysql then rolls back
    and runs the cell again, where a DuckDB TransactionException left every later cell failing.
    """
    error = context.original_exception
    if not (isinstance(error, duckdb.TransactionException)
            and "transaction is aborted" in str(error)):
        return
    from sqlalchemy.exc import PendingRollbackError

    raise PendingRollbackError(
        "sqlml: this connection's transaction was aborted by an earlier failed statement, and "
        "DuckDB runs nothing more in it. Roll it back first (connection.rollback(), or use "
        "'with engine.begin()' blocks, which roll back on errors). DuckDB said: " + str(error)
    ) from error


def duckdb_connection(dbapi_connection) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection inside duckdb-engine's DBAPI connection wrapper."""
    if isinstance(dbapi_connection, duckdb.DuckDBPyConnection):
        return dbapi_connection
    # ConnectionWrapper keeps the connection in a private (name-mangled) attribute and has no
    # public accessor; its __getattr__ forwards everything else to the DuckDB connection.
    inner = getattr(dbapi_connection, "_ConnectionWrapper__c", None)
    if isinstance(inner, duckdb.DuckDBPyConnection):
        return inner
    raise SqlmlError(
        f"sqlml: cannot find the DuckDB connection inside {type(dbapi_connection).__name__} "
        f"(duckdb-engine changed how it wraps connections). Use a duckdb-engine version sqlml "
        f"supports ({PIP_COMMAND}), or install sqlml yourself with sqlml.install(con).")


def _require(caller: str):
    try:
        import sqlalchemy
        import sqlalchemy.pool
        from duckdb_engine import ConnectionWrapper
    except ImportError as exc:
        missing = exc.name or "a dependency"
        raise MissingDependencyError(
            f"{caller} needs SQLAlchemy and duckdb-engine, and {missing} is not installed. "
            f"Install them with: {PIP_COMMAND}") from exc
    return sqlalchemy, ConnectionWrapper


def _database_path(database, sa) -> tuple[str, dict]:
    if database is None:
        return ":memory:", {}
    text = os.fspath(database)
    if "://" not in text:
        return text, {}
    url = sa.engine.make_url(text)
    if url.get_backend_name() != "duckdb":
        raise SqlmlError(
            f"sqlml.create_engine: {text!r} is not a DuckDB database (backend "
            f"{url.get_backend_name()!r}). Pass a file path, a URL such as "
            f"'duckdb:///shop.duckdb', None for an in-memory database, or a DuckDB connection.")
    return url.database or ":memory:", dict(url.query)


def _merge_connect_args(connect_args: dict | None, cfg: dict, read_only: bool) -> bool:
    if not connect_args:
        return read_only
    unknown = sorted(set(connect_args) - {"config", "read_only"})
    if unknown:
        raise SqlmlError(
            f"sqlml.create_engine: connect_args {unknown!r} are not supported; it opens each "
            f"connection itself and takes only 'config' and 'read_only' there. Pass DuckDB "
            f"settings as config={{...}}, or build the engine with sqlalchemy.create_engine and "
            f"call sqlml.install_on_engine(engine).")
    for key, value in (connect_args.get("config") or {}).items():
        cfg.setdefault(key, value)
    return bool(connect_args.get("read_only", read_only))
