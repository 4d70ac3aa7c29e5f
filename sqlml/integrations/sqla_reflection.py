"""Table reflection for duckdb-engine dialects, read from DuckDB's own catalog functions.

duckdb-engine reflects through SQLAlchemy's PostgreSQL dialect, whose queries read
``pg_catalog``. DuckDB's ``pg_catalog`` is a partial emulation, and the two drift apart:

- SQLAlchemy 2.1's column query joins ``pg_collation.collnamespace``; DuckDB 2.0 has a
  ``pg_collation`` of two columns (oid, collname) and DuckDB 1.4 none, so
  ``inspect(engine).get_columns(t)`` failed with *Referenced table "pg_catalog.pg_collation" not
  found* (and on DuckDB 1.4 with SQLAlchemy 2.0.59 too: *Table with name pg_collation does not
  exist*). duckdb-engine 0.17 also calls SQLAlchemy
  2.0's private ``_get_columns_info`` signature, which 2.1 changed.
- SQLAlchemy 2.1's table options query reads ``pg_inherits``, which DuckDB has not got.
- duckdb-engine's ``get_table_names()`` without a schema lists the tables of every schema
  (sqlml's own ``sqlml.models``... among the user's), where PostgreSQL's lists the current one.
- The primary key, foreign key and unique constraint queries cast to ``REGCLASS``, a type DuckDB
  has not got, so ``Table(..., autoload_with=engine)`` and ``pandas.read_sql_table`` failed with
  every SQLAlchemy 2.x.

:func:`install` replaces those methods on one dialect instance (the engine's) by versions that
read ``duckdb_columns()`` and ``duckdb_constraints()``, which every supported DuckDB has with the
same columns, and by ``get_table_names`` of the current schema. Schema and view names, indexes
(none) and comments stay duckdb-engine's.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable
from typing import Any

# DuckDB's own type names (duckdb_columns().data_type), upper case, to SQLAlchemy type names
# in sqlalchemy.types; the other names are looked up in the dialect's ischema_names.
_DUCKDB_TYPES = {
    "BOOLEAN": "BOOLEAN", "SMALLINT": "SMALLINT", "INTEGER": "INTEGER", "BIGINT": "BIGINT",
    "FLOAT": "REAL", "DOUBLE": "DOUBLE", "VARCHAR": "VARCHAR", "BLOB": "BLOB", "DATE": "DATE",
    "TIME": "TIME", "TIMESTAMP": "TIMESTAMP", "TIMESTAMP_S": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP", "TIMESTAMP_NS": "TIMESTAMP", "UUID": "UUID",
    "INTERVAL": "Interval", "JSON": "JSON",
}
_WITH_TIME_ZONE = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "TIME WITH TIME ZONE": "TIME"}
_METHODS = ("get_table_names", "get_multi_columns", "get_multi_pk_constraint",
            "get_multi_foreign_keys", "get_multi_unique_constraints",
            "get_multi_check_constraints", "get_multi_table_options")


def install(dialect) -> None:
    """Give ``dialect`` (one engine's duckdb-engine dialect) reflection from DuckDB's catalog."""
    for name in _METHODS:
        method = globals()["_" + name.removeprefix("get_")]
        setattr(dialect, name, types.MethodType(method, dialect))


def column_type(dialect, data_type: str):
    """The SQLAlchemy type of a DuckDB type name (``DECIMAL(10,2)``, ``INTEGER[]``...)."""
    import sqlalchemy.types as sat
    from sqlalchemy import util

    text = data_type.strip()
    if text.endswith("]"):  # LIST (INTEGER[]) or ARRAY (INTEGER[3])
        item = column_type(dialect, text[:text.rindex("[")])
        return sat.NullType() if isinstance(item, sat.NullType) else sat.ARRAY(item)
    upper = text.upper()
    if upper in _WITH_TIME_ZONE:
        return getattr(sat, _WITH_TIME_ZONE[upper])(timezone=True)
    name, _, args = upper.partition("(")
    if name == "DECIMAL":
        precision, scale = (int(a) for a in args.rstrip(")").split(","))
        return sat.NUMERIC(precision, scale)
    if name == "ENUM":
        return sat.Enum(*re.findall(r"'((?:[^']|'')*)'", text[len(name):]))
    if name in _DUCKDB_TYPES:
        return getattr(sat, _DUCKDB_TYPES[name])()
    cls = dialect.ischema_names.get(name.lower())
    if cls is None:
        util.warn(f"Did not recognize DuckDB type {data_type!r}; reflected as NullType")
        return sat.NullType()
    return cls()


def _relations(dialect, connection, schema, filter_names, scope, kind) -> dict[str, tuple]:
    """{table name: (database, schema)} of the relations the arguments select."""
    from sqlalchemy import text
    from sqlalchemy.engine.reflection import ObjectKind, ObjectScope

    kind = ObjectKind.ANY if kind is None else kind
    scope = ObjectScope.ANY if scope is None else scope
    wanted = []
    if kind & ObjectKind.TABLE:
        wanted.append("SELECT database_name, schema_name, table_name AS name, temporary "
                      "FROM duckdb_tables()")
    if kind & (ObjectKind.VIEW | ObjectKind.MATERIALIZED_VIEW):
        wanted.append("SELECT database_name, schema_name, view_name AS name, temporary "
                      "FROM duckdb_views() WHERE NOT internal")
    if not wanted:
        return {}
    sql = f"SELECT * FROM ({' UNION ALL '.join(wanted)}) WHERE schema_name = :schema"
    database, schema_name = _split(dialect, schema, connection)
    params: dict[str, Any] = {"schema": schema_name}
    if database is not None:
        sql += " AND database_name = :database"
        params["database"] = database
    elif schema is None:
        # The default search path: the current database, and the temporary one.
        sql += " AND database_name IN (current_database(), 'temp')"
    if scope == ObjectScope.DEFAULT:
        sql += " AND NOT temporary"
    elif scope == ObjectScope.TEMPORARY:
        sql += " AND temporary"
    found: dict[str, tuple] = {}
    for db, sch, name, _ in connection.execute(text(sql), params):
        if filter_names is None or name in filter_names:
            found.setdefault(name, (db, sch))
    return found


def _split(dialect, schema, connection) -> tuple[str | None, str]:
    from sqlalchemy import text

    if schema is None:
        return None, connection.execute(text("SELECT current_schema()")).scalar()
    database, schema_name = dialect.identifier_preparer._separate(schema)
    return database, schema_name


def _rows(connection, select: str, relations: dict[str, tuple], condition: str = "TRUE",
          order: str = "") -> Iterable[Any]:
    """Rows of a catalog function (``select``, ``table_name`` first) for the relations."""
    from sqlalchemy import text

    if not relations:
        return []
    keys: list[str] = []
    params: dict[str, str] = {}
    for i, (name, (db, sch)) in enumerate(relations.items()):
        keys.append(f"(database_name = :d{i} AND schema_name = :s{i} AND table_name = :t{i})")
        params |= {f"d{i}": db, f"s{i}": sch, f"t{i}": name}
    sql = f"{select} WHERE {condition} AND ({' OR '.join(keys)}) ORDER BY table_name{order}"
    return connection.execute(text(sql), params)


def _table_names(self, connection, schema=None, **kw) -> list[str]:
    from sqlalchemy.engine.reflection import ObjectKind, ObjectScope

    return list(_relations(self, connection, schema, None, ObjectScope.DEFAULT, ObjectKind.TABLE))


def _multi_table_options(self, connection, schema=None, filter_names=None, scope=None,
                         kind=None, **kw):
    # DuckDB tables have no storage options, inheritance or tablespaces.
    return [((schema, name), {})
            for name in _relations(self, connection, schema, filter_names, scope, kind)]


def _multi_columns(self, connection, schema=None, filter_names=None, scope=None, kind=None,
                   **kw):
    relations = _relations(self, connection, schema, filter_names, scope, kind)
    columns: dict[tuple, list] = {(schema, name): [] for name in relations}
    rows = _rows(connection, "SELECT table_name, column_name, data_type, is_nullable, "
                 "column_default, comment FROM duckdb_columns()", relations,
                 order=", column_index")
    for table, name, data_type, nullable, default, comment in rows:
        columns[(schema, table)].append({
            "name": name, "type": column_type(self, data_type), "nullable": bool(nullable),
            "default": default, "autoincrement": False, "comment": comment or None})
    return columns.items()


def _constraints(self, connection, schema, filter_names, scope, kind, constraint: str):
    relations = _relations(self, connection, schema, filter_names, scope, kind)
    rows = _rows(connection, "SELECT table_name, constraint_name, constraint_column_names, "
                 "referenced_table, referenced_column_names, expression FROM "
                 "duckdb_constraints()", relations, f"constraint_type = '{constraint}'",
                 order=", constraint_index")
    found: dict[tuple, list] = {(schema, name): [] for name in relations}
    for table, *row in rows:
        found[(schema, table)].append(row)
    return found


def _multi_pk_constraint(self, connection, schema=None, filter_names=None, scope=None,
                         kind=None, **kw):
    found = _constraints(self, connection, schema, filter_names, scope, kind, "PRIMARY KEY")
    return [(key, {"constrained_columns": list(rows[0][1]), "name": rows[0][0]} if rows
             else {"constrained_columns": [], "name": None}) for key, rows in found.items()]


def _multi_foreign_keys(self, connection, schema=None, filter_names=None, scope=None,
                        kind=None, **kw):
    found = _constraints(self, connection, schema, filter_names, scope, kind, "FOREIGN KEY")
    return [(key, [{"name": name, "constrained_columns": list(cols), "referred_schema": schema,
                    "referred_table": ref, "referred_columns": list(ref_cols), "options": {}}
                   for name, cols, ref, ref_cols, _ in rows]) for key, rows in found.items()]


def _multi_unique_constraints(self, connection, schema=None, filter_names=None, scope=None,
                              kind=None, **kw):
    found = _constraints(self, connection, schema, filter_names, scope, kind, "UNIQUE")
    return [(key, [{"name": name, "column_names": list(cols)} for name, cols, *_ in rows])
            for key, rows in found.items()]


def _multi_check_constraints(self, connection, schema=None, filter_names=None, scope=None,
                             kind=None, **kw):
    found = _constraints(self, connection, schema, filter_names, scope, kind, "CHECK")
    return [(key, [{"name": name, "sqltext": expr} for name, *_, expr in rows])
            for key, rows in found.items()]
