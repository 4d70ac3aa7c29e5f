"""The TEMP macros and views each session gets: Postgres catalog functions and views that
DuckDB's ``pg_catalog`` lacks or leaves columns out of, enough for psql's backslash commands,
psycopg, SQLAlchemy and JDBC. Empty views say "there are none of these" (no triggers, no
policies, no publications)."""

from __future__ import annotations

import duckdb

SERVER_VERSION = "15.0"

TEMP_VIEWS = {
    "pg_inherits": "SELECT 0::BIGINT AS inhrelid, 0::BIGINT AS inhparent, 0 AS inhseqno, "
                   "false AS inhdetachpending WHERE false",
    "pg_policy": "SELECT 0::BIGINT AS oid, ''::VARCHAR AS polname, 0::BIGINT AS polrelid, "
                 "''::VARCHAR AS polcmd, true AS polpermissive, []::BIGINT[] AS polroles, "
                 "NULL::VARCHAR AS polqual, NULL::VARCHAR AS polwithcheck WHERE false",
    "pg_trigger": "SELECT 0::BIGINT AS oid, 0::BIGINT AS tgrelid, 0::BIGINT AS tgparentid, "
                  "''::VARCHAR AS tgname, 0::BIGINT AS tgfoid, 0 AS tgtype, "
                  "''::VARCHAR AS tgenabled, false AS tgisinternal, 0::BIGINT AS tgconstraint "
                  "WHERE false",
    "pg_rewrite": "SELECT 0::BIGINT AS oid, ''::VARCHAR AS rulename, 0::BIGINT AS ev_class, "
                  "''::VARCHAR AS ev_type, ''::VARCHAR AS ev_enabled, false AS is_instead "
                  "WHERE false",
    "pg_statistic_ext": "SELECT 0::BIGINT AS oid, 0::BIGINT AS stxrelid, ''::VARCHAR AS stxname, "
                        "0::BIGINT AS stxnamespace, 0 AS stxstattarget, []::VARCHAR[] AS stxkind "
                        "WHERE false",
    "pg_publication": "SELECT 0::BIGINT AS oid, ''::VARCHAR AS pubname, false AS puballtables, "
                      "false AS pubinsert, false AS pubupdate, false AS pubdelete, "
                      "false AS pubtruncate, false AS pubviaroot WHERE false",
    "pg_publication_rel": "SELECT 0::BIGINT AS oid, 0::BIGINT AS prpubid, 0::BIGINT AS prrelid, "
                          "NULL::VARCHAR AS prqual, NULL::VARCHAR AS prattrs WHERE false",
    "pg_publication_namespace": "SELECT 0::BIGINT AS oid, 0::BIGINT AS pnpubid, "
                                "0::BIGINT AS pnnspid WHERE false",
    "pg_partitioned_table": "SELECT 0::BIGINT AS partrelid, ''::VARCHAR AS partstrat "
                            "WHERE false",
    "pg_foreign_table": "SELECT 0::BIGINT AS ftrelid, 0::BIGINT AS ftserver WHERE false",
    "pg_extension": "SELECT 0::BIGINT AS oid, ''::VARCHAR AS extname, 0::BIGINT AS extowner, "
                    "0::BIGINT AS extnamespace, ''::VARCHAR AS extversion WHERE false",
    "pg_event_trigger": "SELECT 0::BIGINT AS oid, ''::VARCHAR AS evtname WHERE false",
    "pg_shdescription": "SELECT 0::BIGINT AS objoid, 0::BIGINT AS classoid, "
                        "''::VARCHAR AS description WHERE false",
    "pg_opclass": "SELECT 0::BIGINT AS oid, 0::BIGINT AS opcmethod, ''::VARCHAR AS opcname, "
                  "0::BIGINT AS opcnamespace, true AS opcdefault WHERE false",
    "pg_operator": "SELECT 0::BIGINT AS oid, ''::VARCHAR AS oprname, 0::BIGINT AS oprnamespace, "
                   "''::VARCHAR AS oprkind, 0::BIGINT AS oprleft, 0::BIGINT AS oprright, "
                   "0::BIGINT AS oprresult WHERE false",
    "pg_language": "SELECT 13::BIGINT AS oid, 'internal' AS lanname UNION ALL "
                   "SELECT 14::BIGINT, 'sql'",
    "pg_matviews": "SELECT ''::VARCHAR AS schemaname, ''::VARCHAR AS matviewname, "
                   "''::VARCHAR AS matviewowner, NULL::VARCHAR AS definition WHERE false",
    # Row counts are DuckDB's estimates, which BI tools use to size tables.
    "pg_stat_user_tables": "SELECT table_oid::BIGINT AS relid, schema_name AS schemaname, "
                           "table_name AS relname, estimated_size::BIGINT AS n_live_tup "
                           "FROM duckdb_tables() WHERE NOT temporary",
    "pg_auth_members": "SELECT 0::BIGINT AS roleid, 0::BIGINT AS member, 0::BIGINT AS grantor, "
                       "false AS admin_option WHERE false",
}


# This session's helper views (the TEMP views here) are no tables of the user's: the views that
# list relations leave them out (sqlml_is_helper is a TEMP macro naming them, temp_objects).
_NOT_HELPER_REL = (" WHERE NOT (sqlml_is_helper(relname) AND relnamespace IN "
                   "(SELECT oid FROM duckdb_schemas() WHERE database_name = 'temp'))")
_NOT_HELPER_TABLE = " WHERE NOT (table_catalog = 'temp' AND sqlml_is_helper(table_name))"

# DuckDB's own catalog views, with the columns psql reads and DuckDB leaves out.
EXTENDED_VIEWS = {
    "pg_class": "SELECT * REPLACE (NULL::VARCHAR[] AS reloptions, 'd' AS relreplident), "
                "false AS relforcerowsecurity FROM pg_catalog.pg_class" + _NOT_HELPER_REL,
    "pg_attribute": "SELECT * REPLACE ('p' AS attstorage, -1 AS attstattarget) "
                    "FROM pg_catalog.pg_attribute",
    # (DuckDB 1.4's pg_database is oid and datname alone; Superset lists datistemplate = false)
    "pg_database": "SELECT oid, datname, true AS datallowconn, false AS datistemplate, "
                   "10::BIGINT AS datdba, 6 AS encoding, 'C' AS datcollate, "
                   "'C' AS datctype, "
                   "NULL::VARCHAR AS daticulocale, 'c' AS datlocprovider, "
                   "NULL::VARCHAR[] AS datacl, -1 AS datconnlimit, 0::BIGINT AS dattablespace "
                   "FROM pg_catalog.pg_database WHERE datname NOT IN ('system', 'temp')",
    "pg_index": "SELECT *, false AS indnullsnotdistinct FROM pg_catalog.pg_index",
    # Columns of DuckDB-only types (TIMESTAMP_NS, HUGEINT, STRUCT...) name type OIDs DuckDB's
    # pg_type leaves out, so joins from pg_attribute to pg_type (JDBC's getColumns) lost them.
    "pg_type": "SELECT * FROM pg_catalog.pg_type UNION ALL BY NAME "
               "SELECT DISTINCT atttypid AS oid, "
               "pg_catalog.format_type(atttypid, NULL) AS typname, "
               "'b' AS typtype, -1 AS typlen, 0::BIGINT AS typrelid, 0::BIGINT AS typelem, "
               "0::BIGINT AS typarray, 0::BIGINT AS typbasetype, -1 AS typtypmod, "
               "0 AS typndims, 0::BIGINT AS typcollation, false AS typnotnull "
               "FROM pg_catalog.pg_attribute sqlml_a WHERE NOT EXISTS (SELECT 1 FROM "
               "pg_catalog.pg_type sqlml_t WHERE sqlml_t.oid = sqlml_a.atttypid)",
    # DuckDB's own pg_collation (1.5 on; 1.4 has none) is these first two columns, no rows.
    "pg_collation": "SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS collname, "
                    "11::BIGINT AS collnamespace, 10::BIGINT AS collowner, "
                    "'c' AS collprovider, true AS collisdeterministic, -1 AS collencoding, "
                    "'C' AS collcollate, 'C' AS collctype WHERE false",
    # DuckDB lists only its index method (ART) and gives tables relam 0, which would show it as
    # their access method; 0 is the DuckDB storage here.
    "pg_am": "SELECT 0::BIGINT AS oid, 'duckdb' AS amname, NULL::VARCHAR AS amhandler, "
             "'t' AS amtype",
}


# Postgres' udt_name (pg_type's internal name) of DuckDB's information_schema.columns data_type;
# Metabase reads it as the column's type. Names follow the type each value is sent as
# (sqlml.server.pgwire.types): nested and DuckDB-only types arrive as text.
_UDT_NAMES = {"BOOLEAN": "bool", "TINYINT": "int2", "UTINYINT": "int2", "SMALLINT": "int2",
              "USMALLINT": "int4", "INTEGER": "int4", "UINTEGER": "int8", "BIGINT": "int8",
              "UBIGINT": "numeric", "HUGEINT": "numeric", "UHUGEINT": "numeric",
              "BIGNUM": "numeric", "VARINT": "numeric", "FLOAT": "float4", "DOUBLE": "float8",
              "VARCHAR": "varchar", "BLOB": "bytea", "DATE": "date", "TIME": "time",
              "TIME WITH TIME ZONE": "timetz", "TIMESTAMP": "timestamp",
              "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp",
              "TIMESTAMP_NS": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
              "INTERVAL": "interval", "UUID": "uuid", "JSON": "json"}
_UDT_NAME = ("CASE WHEN data_type LIKE 'DECIMAL%' THEN 'numeric' ELSE coalesce(CASE data_type "
             + " ".join(f"WHEN '{duck}' THEN '{pg}'" for duck, pg in _UDT_NAMES.items())
             + " END, 'text') END")
# information_schema views the rewrite points a Postgres query at (information_schema.X is this
# session's view sqlml_information_schema_X): DuckDB's own, less the session's helper views, with
# the udt_* and identity columns Postgres fills (DuckDB leaves them NULL).
INFORMATION_SCHEMA_VIEWS = {
    "tables": "SELECT * FROM information_schema.tables" + _NOT_HELPER_TABLE,
    "views": "SELECT * FROM information_schema.views" + _NOT_HELPER_TABLE,
    "columns": "SELECT * REPLACE (coalesce(udt_catalog, table_catalog) AS udt_catalog, "
               "coalesce(udt_schema, 'pg_catalog') AS udt_schema, "
               f"coalesce(udt_name, {_UDT_NAME}) AS udt_name, "
               "coalesce(is_identity, 'NO') AS is_identity) "
               "FROM information_schema.columns" + _NOT_HELPER_TABLE,
}
# pg_views lists neither the helper views nor DuckDB's own (duckdb_tables, sqlite_master...),
# which sit in its system catalog's main schema and are no views of the user's either.
BI_VIEWS = {
    # Postgres' pg_default has oid 1663, and relations in it say reltablespace 0; DuckDB's has
    # oid 0, so every table joined to it (SQLAlchemy 2.1 reflected postgresql_tablespace).
    "pg_tablespace": "SELECT 1663::BIGINT AS oid, 'pg_default' AS spcname, 10::BIGINT AS spcowner, "
                     "NULL::VARCHAR[] AS spcacl, NULL::VARCHAR[] AS spcoptions",
    "pg_views": "SELECT * FROM pg_catalog.pg_views WHERE NOT (schemaname = 'main' AND "
                "(sqlml_is_helper(viewname) OR viewname IN (SELECT view_name FROM duckdb_views() "
                "WHERE internal AND database_name = 'system' AND schema_name = 'main')))",
}

# Postgres' names for the types DuckDB's pg_type lists under its own (int8, float8, varchar...).
_PG_TYPE_NAMES = {16: "boolean", 17: "bytea", 20: "bigint", 21: "smallint", 23: "integer",
                  25: "text", 114: "json", 700: "real", 701: "double precision",
                  1043: "character varying", 1082: "date", 1083: "time without time zone",
                  1114: "timestamp without time zone", 1184: "timestamp with time zone",
                  1186: "interval", 2950: "uuid"}
# DuckDB types Postgres lacks, named as the type their values are sent as
# (sqlml.server.pgwire.types).
_DUCKDB_ONLY_TYPES = {"timestamp_ns": "timestamp without time zone",
                      "timestamp_ms": "timestamp without time zone",
                      "timestamp_s": "timestamp without time zone", "utinyint": "smallint",
                      "usmallint": "integer", "uinteger": "bigint", "ubigint": "numeric",
                      "hugeint": "numeric", "uhugeint": "numeric", "list": "text",
                      "struct": "text", "map": "text", "union": "text", "enum": "text",
                      "bit": "text", "array": "text"}
_FORMAT_TYPE = ("CASE " + " ".join(f"WHEN type_oid = {oid} THEN '{name}'"
                                   for oid, name in _PG_TYPE_NAMES.items())
                # DuckDB's typmod for DECIMAL(w, s) is w * 1000 + s
                + " WHEN type_oid = 1700 AND typmod > 0 THEN 'numeric(' || (typmod // 1000) || "
                  "',' || (typmod % 1000) || ')' WHEN type_oid = 1700 THEN 'numeric' "
                  "ELSE (SELECT coalesce(CASE sqlml_f " + " ".join(
                      f"WHEN '{duck}' THEN '{pg}'" for duck, pg in _DUCKDB_ONLY_TYPES.items())
                  + " END, sqlml_f) FROM (SELECT pg_catalog.format_type(type_oid, typmod) "
                    "AS sqlml_f)) END")


def _roles(user: str) -> str:
    name = user.replace("'", "''")
    return (f"SELECT 10::BIGINT AS oid, '{name}' AS rolname, true AS rolsuper, true AS rolinherit, "
            f"false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin, "
            f"false AS rolreplication, -1 AS rolconnlimit, NULL::VARCHAR AS rolpassword, "
            f"NULL::TIMESTAMP AS rolvaliduntil, false AS rolbypassrls, "
            f"NULL::VARCHAR[] AS rolconfig")


_NULL = "NULL::VARCHAR"
# name: [(parameters, body), ...] of the macros every session gets alike; several entries are
# overloads (DuckDB macros take no optional positional arguments, and psql passes Postgres'
# optional ones positionally).
_MACROS = {
    "pg_encoding_to_char": [("encoding", "'UTF8'")],
    "pg_char_to_encoding": [("encoding", "6")],
    "txid_current": [("", "1")],
    "pg_is_in_recovery": [("", "false")],
    # Postgres shows only the relations on the search path; DuckDB says true for all.
    # (Aliases unlikely to clash: a macro's body is expanded into the calling query.)
    "pg_table_is_visible": [("rel", "(SELECT coalesce(bool_or(sqlml_n.nspname = "
                                    "current_schema()), false) FROM pg_catalog.pg_class "
                                    "sqlml_c JOIN pg_catalog.pg_namespace sqlml_n ON "
                                    "sqlml_n.oid = sqlml_c.relnamespace "
                                    "WHERE sqlml_c.oid = rel)")],
    "format_type": [("type_oid, typmod", _FORMAT_TYPE)],
    "pg_get_expr": [("node, rel", "node"), ("node, rel, pretty", "node")],
    "pg_get_indexdef": [("index_oid", _NULL), ("index_oid, col, pretty", _NULL)],
    "pg_get_constraintdef": [("con_oid", _NULL), ("con_oid, pretty", _NULL)],
    "pg_get_triggerdef": [("trigger_oid", _NULL), ("trigger_oid, pretty", _NULL)],
    "pg_get_ruledef": [("rule_oid", _NULL), ("rule_oid, pretty", _NULL)],
    "pg_get_viewdef": [("oid_", "(SELECT sql FROM duckdb_views() WHERE view_oid = "
                                    "oid_)"),
                       ("oid_, pretty", "(SELECT sql FROM duckdb_views() WHERE "
                                            "view_oid = oid_)")],
    "pg_get_partkeydef": [("table_oid", _NULL)],
    "pg_get_partition_constraintdef": [("table_oid", _NULL)],
    "pg_get_statisticsobjdef_columns": [("stat_oid", _NULL)],
    "pg_get_function_identity_arguments": [("function_oid", "''")],
    "pg_get_function_arguments": [("function_oid", "''")],
    "pg_get_function_result": [("function_oid", _NULL)],
    # Sizes are unknown here (DuckDB stores columns compressed in row groups): NULL, not 0.
    "pg_relation_size": [("rel", "NULL::BIGINT"), ("rel, fork", "NULL::BIGINT")],
    "pg_total_relation_size": [("rel", "NULL::BIGINT")],
    "pg_table_size": [("rel", "NULL::BIGINT")],
    "pg_indexes_size": [("rel", "NULL::BIGINT")],
    "pg_database_size": [("db", "NULL::BIGINT")],
    "pg_tablespace_location": [("ts", "''")],
    "pg_relation_is_publishable": [("rel", "false")],
    "pg_get_serial_sequence": [("rel, col", _NULL)],
    "to_regtype": [("sqlml_name", "(SELECT any_value(sqlml_t.oid) FROM pg_catalog.pg_type "
                                 "sqlml_t WHERE sqlml_t.typname = sqlml_name)")],
    "to_regclass": [("sqlml_name", "(SELECT any_value(sqlml_c.oid) FROM pg_catalog.pg_class "
                                 "sqlml_c WHERE sqlml_c.relname = sqlml_name)")],
    "array_upper": [("arr, dim", "len(arr)")],
    "array_lower": [("arr, dim", "CASE WHEN len(arr) > 0 THEN 1 END")],
    "quote_ident": [("ident", "'\"' || replace(ident, '\"', '\"\"') || '\"'")],
}


def temp_objects(user: str, pid: int) -> list[str]:
    import sqlml

    name = user.replace("'", "''")
    version = (f"PostgreSQL {SERVER_VERSION} (sqlml {sqlml.__version__} on DuckDB "
               f"{duckdb.__version__}), compiled by sqlml serve, 64-bit")
    # The macros that answer for this session: its user, its process id.
    macros = {
        "version": [("", f"'{version}'")],
        "pg_get_userbyid": [("role_oid", f"'{name}'")],
        "pg_backend_pid": [("", str(pid))],
        "session_user": [("", f"'{name}'")],
        **_MACROS,
    }
    out = [f"CREATE OR REPLACE TEMP MACRO {fn}" + ", ".join(f"({params}) AS {body}"
                                                           for params, body in overloads)
           for fn, overloads in macros.items()]
    first_view = len(out)
    out += [f"CREATE OR REPLACE TEMP VIEW {view} AS {body}"
            for view, body in {**TEMP_VIEWS, **EXTENDED_VIEWS}.items()]
    out += [f"CREATE OR REPLACE TEMP VIEW {view} AS {body}" for view, body in BI_VIEWS.items()]
    out += [f"CREATE OR REPLACE TEMP VIEW sqlml_information_schema_{view} AS {body}"
            for view, body in INFORMATION_SCHEMA_VIEWS.items()]
    out.append(f"CREATE OR REPLACE TEMP VIEW pg_roles AS {_roles(user)}")
    out.append("CREATE OR REPLACE TEMP VIEW pg_user AS SELECT rolname AS usename, oid AS usesysid,"
               " rolsuper AS usesuper FROM pg_roles")
    # Before the views that use it: sqlml_is_helper(name) says a name is one of these views.
    helpers = ", ".join(f"'{view}'" for view in sorted(helper_views(out)))
    out.insert(first_view, "CREATE OR REPLACE TEMP MACRO sqlml_is_helper(rel_name) AS "
                           f"rel_name IN ({helpers})")
    return out


def helper_views(statements: list[str]) -> set[str]:
    """The names of the TEMP views these statements create."""
    prefix = "CREATE OR REPLACE TEMP VIEW "
    return {sql[len(prefix):].split(" ", 1)[0] for sql in statements if sql.startswith(prefix)}


# Catalog views this module supplies: pg_catalog.X is rewritten to the session's TEMP view X.
SUPPLIED_VIEWS = {*TEMP_VIEWS, *EXTENDED_VIEWS, "pg_roles", "pg_user"}
SUPPLIED_VIEWS |= set(BI_VIEWS)
