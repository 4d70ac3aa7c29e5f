"""The catalog's schema version and the ordered migrations that bring an older file up to it.

The version is the row ``schema_version`` of ``sqlml.meta``. A file whose catalog predates it
(sqlml.meta holds only the SQL fingerprint) is version 1. ``sql/catalog.sql`` always creates the
latest schema, so a new file is simply stamped with :data:`LATEST`; an existing file runs, in
order and in the one transaction that then re-installs the SQL, every migration above its
version. A migration sees the schema of the version before it. Every schema change gets a
migration, so that the version moves: a change to an existing table (a column added, a value
rewritten) does it in ``apply``; a new table may leave ``apply`` empty, as catalog.sql's CREATE
TABLE IF NOT EXISTS runs after the migrations.

To change the schema: edit catalog.sql, append ``Migration(LATEST + 1, ...)`` below, and keep
store.TABLE_COLUMNS, the columns every INSERT names, in step (tests/test_migrations.py checks).

A file newer than this sqlml is refused, read-write or read-only: its tables may mean something
this code does not know. A read-only connection cannot migrate, so it serves an older file as it
is when every pending migration is marked ``read_only_ok`` (today's code reads the older schema
correctly), and otherwise refuses with the remedy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from sqlml import __version__
from sqlml.errors import CatalogVersionError

# Before sqlml recorded a schema version: the catalog of the flat package layout.
UNVERSIONED = 1


@dataclass(frozen=True)
class Migration:
    version: int                   # the schema version the file has once this has run
    description: str
    # SQL statements split on ";" (so no ";" inside a literal), or fn(cursor) for anything more.
    apply: str | Callable[[Any], None]
    # True when this sqlml serves a file still lacking this migration correctly (so a read-only
    # connection may): not when code reads a table or column the migration creates.
    read_only_ok: bool = False
    # fn(cursor), run once the SQL files are installed (same transaction): for a migration that
    # rewrites the models' generated functions, which call macros those files create.
    after_sql: Callable[[Any], None] | None = None


def _regenerate_functions(cur: Any) -> None:
    # Loads the models' artifacts and compilers: imported here, as only this migration needs
    # them (and they import the catalog).
    from sqlml import functions

    functions.regenerate_all(cur)


MIGRATIONS: tuple[Migration, ...] = (
    # Version 2 only records the version: the tables are those of version 1.
    Migration(2, "record the catalog schema version in sqlml.meta", "", read_only_ok=True),
    # catalog.sql creates sqlml.model_params and sqlml.recommender_items; the models' functions
    # are rewritten to serve every DuckDB client (a read-only file keeps the old ones, which
    # a sqlml session still runs).
    Migration(3, "serve every DuckDB client: compiled models' parameters as data in "
              "sqlml.model_params, generated functions that run without Python", "",
              read_only_ok=True, after_sql=_regenerate_functions),
    # The generated functions name the version they serve ('churn@2'), so a query scoring
    # while a new version is published sees one version from start to end; a read-only file
    # keeps functions that name the model only, which serve the active version as before.
    Migration(4, "generated functions name the version they serve", "", read_only_ok=True,
              after_sql=_regenerate_functions),
    # catalog.sql creates sqlml.validation_predictions, which the model report reads when it
    # exists (sqlml/reporting/gather.py): a read-only file without it gets a report without curves.
    Migration(5, "store the validation rows' predictions for the model report (table "
              "sqlml.validation_predictions)", "", read_only_ok=True),
    # catalog.sql creates sqlml.training_profiles; models trained before it have no profile,
    # and ml_drift tells their users to retrain.
    Migration(6, "store a profile of each model version's training data for drift checks",
              "", read_only_ok=True),
    # catalog.sql creates sqlml.forecast_series, forecasts, forecast_backtest and
    # forecast_diagnostics. A file without them has no forecast model, and a read-only
    # connection keeps the file's own macros, which do not read them.
    Migration(7, "store forecast models: per-series methods, forecasts, backtests and flags "
              "(tables sqlml.forecast_series, forecasts, forecast_backtest, "
              "forecast_diagnostics)", "", read_only_ok=True),
)

LATEST = MIGRATIONS[-1].version if MIGRATIONS else UNVERSIONED
# The first version whose files persist the dispatchers and ml_predict & co. as macros.
DISPATCH = 3


def file_version(con: Any) -> int | None:
    """The catalog schema version of the connection's file; None when it has no catalog yet."""
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'sqlml' "
        "AND table_name = 'meta' AND database_name = current_database()").fetchall()[0][0]
    if not has_meta:
        return None
    rows = con.execute("SELECT value FROM sqlml.meta WHERE key = 'schema_version'").fetchall()
    if not rows:
        return UNVERSIONED
    value = rows[0][0]
    if value is None or not str(value).isdigit():
        raise CatalogVersionError(
            f"the sqlml catalog in {_path(con)} has an unreadable schema_version {value!r} in "
            f"sqlml.meta (a positive integer was expected). Restore the file from a trusted "
            f"copy.")
    return int(value)


def pending(version: int) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version > version]


def check(con: Any, read_only: bool) -> int | None:
    """The file's version, after refusing a file this connection cannot serve."""
    version = file_version(con)
    if version is None or version == LATEST:
        return version
    if version > LATEST:
        raise CatalogVersionError(
            f"the sqlml catalog in {_path(con)} has schema version {version}, but this sqlml "
            f"({_sqlml_version()}) reads schema version {LATEST} and older: the file was "
            f"written by a newer sqlml. Upgrade sqlml (pip install --upgrade sqlml) to open it. "
            f"Nothing in the file was changed.")
    blocking = [m for m in pending(version) if not m.read_only_ok]
    if read_only and blocking:
        steps = "; ".join(f"{m.version}: {m.description}" for m in blocking)
        raise CatalogVersionError(
            f"the sqlml catalog in {_path(con)} has schema version {version} and this sqlml "
            f"({_sqlml_version()}) needs version {LATEST} ({steps}), which a read-only "
            f"connection cannot migrate to. Open the file once read-write (sqlml.connect(path)) "
            f"to migrate it, or read it with the sqlml that wrote it.")
    return version


def migrate(cur: Any, version: int) -> list[int]:
    """Run every migration above ``version``, inside the caller's transaction."""
    done, where = [], _path(cur)  # named before a failure aborts the transaction
    for m in pending(version):
        try:
            if callable(m.apply):
                m.apply(cur)
            else:
                for stmt in (s.strip() for s in m.apply.split(";")):
                    if stmt:
                        cur.execute(stmt)
        except duckdb.Error as exc:
            raise CatalogVersionError(
                f"migrating the sqlml catalog in {where} from schema version "
                f"{m.version - 1} to {m.version} ({m.description}) failed: {exc}. Nothing in "
                f"the file was changed; report this with the file's sqlml.meta rows.") from exc
        done.append(m.version)
    return done


def after_sql(cur: Any, version: int) -> None:
    """The ``after_sql`` steps of every migration above ``version`` (see Migration), each
    distinct step once: rewriting the functions twice would write the same text again."""
    steps = [m.after_sql for m in pending(version) if m.after_sql is not None]
    for step in dict.fromkeys(steps):
        step(cur)


def stamp(cur: Any) -> None:
    """Record that the file now has the latest schema (inside the installing transaction)."""
    cur.execute("INSERT OR REPLACE INTO sqlml.meta (key, value) VALUES ('schema_version', ?)",
                [str(LATEST)])


def _path(con: Any) -> str:
    rows = con.execute("SELECT path FROM duckdb_databases() "
                       "WHERE database_name = current_database()").fetchall()
    path = rows[0][0] if rows else None
    return repr(path) if path else "this in-memory database"


def _sqlml_version() -> str:
    return f"version {__version__}"
