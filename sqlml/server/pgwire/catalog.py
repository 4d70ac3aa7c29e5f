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

# -- ODBC (psqlODBC), JDBC (pgjdbc) and DBeaver: what their DatabaseMetaData / SQLColumns /
# navigator queries read.
# A column's type OID from its DuckDB type (duckdb_columns' data_type): Postgres' own type
# where DuckDB's is one, else the type its values are sent as (sqlml.server.pgwire.types:
# TIMESTAMP_NS as timestamp, HUGEINT as numeric, LIST/STRUCT/MAP/ENUM as text). Read from the
# type name, not DuckDB's atttypid, which is a DuckDB type id on 1.4 and + 16384 for DuckDB-only
# types on 2.x.
_COLUMN_TYPES = {"BOOLEAN": 16, "TINYINT": 21, "SMALLINT": 21, "UTINYINT": 21, "INTEGER": 23,
                 "USMALLINT": 23, "BIGINT": 20, "UINTEGER": 20, "UBIGINT": 1700,
                 "HUGEINT": 1700, "UHUGEINT": 1700, "BIGNUM": 1700, "VARINT": 1700,
                 "FLOAT": 700, "DOUBLE": 701, "VARCHAR": 1043, "BLOB": 17, "DATE": 1082,
                 "TIME": 1083, "TIME WITH TIME ZONE": 1266, "TIMESTAMP": 1114,
                 "TIMESTAMP_S": 1114, "TIMESTAMP_MS": 1114, "TIMESTAMP_NS": 1114,
                 "TIMESTAMP WITH TIME ZONE": 1184, "INTERVAL": 1186, "UUID": 2950, "JSON": 114}
_COLUMN_OID = ("CASE WHEN sqlml_d.data_type LIKE 'DECIMAL%' THEN 1700 ELSE CASE "
               "sqlml_d.data_type " + " ".join(f"WHEN '{name}' THEN {oid}" for name, oid in
                                               _COLUMN_TYPES.items()) + " ELSE 25 END END")
# Postgres' typmod of numeric(p, s) is ((p << 16) | s) + 4, from which JDBC and ODBC compute
# COLUMN_SIZE and DECIMAL_DIGITS (DuckDB's own is p * 1000 + s, 2.x only).
_COLUMN_TYPMOD = ("CASE WHEN sqlml_d.data_type LIKE 'DECIMAL%' THEN ((sqlml_d.numeric_precision "
                  "<< 16) | sqlml_d.numeric_scale) + 4 ELSE -1 END")
# Postgres types drivers look up that DuckDB's pg_type lacks: (oid, name, typlen, category,
# typtype); each base type also gets its array type (_int4...), as Postgres has.
_MORE_TYPES = [(18, "char", 1, "S", "b"), (19, "name", 64, "S", "b"), (24, "regproc", 4, "N", "b"),
               (25, "text", -1, "S", "b"), (26, "oid", 4, "N", "b"),
               (22, "int2vector", -1, "A", "b"), (30, "oidvector", -1, "A", "b"),
               (114, "json", -1, "U", "b"), (1042, "bpchar", -1, "S", "b"),
               (705, "unknown", -2, "X", "p"), (2249, "record", -1, "P", "p"),
               (2276, "any", 4, "P", "p"), (2277, "anyarray", -1, "P", "p"),
               (2278, "void", 4, "P", "p"), (2283, "anyelement", 4, "P", "p")]
_ARRAY_TYPES = {16: 1000, 17: 1001, 18: 1002, 19: 1003, 20: 1016, 21: 1005, 23: 1007, 25: 1009,
                26: 1028, 114: 199, 700: 1021, 701: 1022, 1042: 1014, 1043: 1015, 1082: 1182,
                1083: 1183, 1114: 1115, 1184: 1185, 1186: 1187, 1266: 1270, 1560: 1561,
                1700: 1231, 2950: 2951}
# typelem of non-array types. Postgres gives some (name's is char); here text's is text: the
# wire sends catalog arrays such as pg_proc.proargnames as text ("{a,b}"), and pgjdbc's getArray
# (getFunctionColumns, getProcedureColumns) reads a value as an array of its column type's typelem.
_ELEMENTS = {25: 25}
_ARRAY_OID = ("CASE oid " + " ".join(f"WHEN {elem} THEN {arr}" for elem, arr in
                                     _ARRAY_TYPES.items()) + " ELSE 0 END")
# DuckDB's pg_type names for the types it gives an OID.
_DUCKDB_TYPE_NAMES = {16: "bool", 17: "bytea", 20: "int8", 21: "int2", 23: "int4", 700: "float4",
                      701: "float8", 1043: "varchar", 1082: "date", 1083: "time",
                      1114: "timestamp", 1184: "timestamptz", 1186: "interval", 1266: "timetz",
                      1560: "bit", 1700: "numeric", 2950: "uuid"}
# Postgres keeps its types in pg_catalog; pgjdbc finds the name type (NAMEDATALEN) there.
_PG_CATALOG = ("(SELECT any_value(oid) FROM duckdb_schemas() WHERE database_name = 'system' "
               "AND schema_name = 'pg_catalog')")
_NAMESPACE = _PG_CATALOG


def _pg_types() -> str:
    """The rows of _MORE_TYPES and the array types, as pg_type rows."""
    names = {**_DUCKDB_TYPE_NAMES, **{oid: name for oid, name, *_ in _MORE_TYPES}}
    rows = [f"({oid}, '{name}', {length}, '{cat}', '{kind}', {_ELEMENTS.get(oid, 0)}, "
            f"{_ARRAY_TYPES.get(oid, 0)})" for oid, name, length, cat, kind in _MORE_TYPES]
    rows += [f"({arr}, '_{names[elem]}', -1, 'A', 'b', {elem}, 0)"
             for elem, arr in _ARRAY_TYPES.items()]
    return ("(SELECT oid::BIGINT AS oid, typname, " + _NAMESPACE + " AS typnamespace, "
            "10::BIGINT AS typowner, typlen::BIGINT AS typlen, typlen BETWEEN 1 AND 8 AS typbyval, "
            "typtype, typcategory, false AS typispreferred, true AS typisdefined, "
            "',' AS typdelim, 0::BIGINT AS typrelid, typelem::BIGINT AS typelem, "
            "typarray::BIGINT AS typarray, 0::BIGINT AS typinput, 0::BIGINT AS typoutput, "
            "'i' AS typalign, 'p' AS typstorage, "
            "false AS typnotnull, 0::BIGINT AS typbasetype, -1 AS typtypmod, 0 AS typndims, "
            "0::BIGINT AS typcollation FROM (VALUES " + ", ".join(rows)
            + ") sqlml_t(oid, typname, typlen, typcategory, typtype, typelem, typarray))")

# DuckDB's own catalog views, with the columns psql reads and DuckDB leaves out.
EXTENDED_VIEWS = {
    "pg_class": "SELECT * REPLACE (NULL::VARCHAR[] AS reloptions, 'd' AS relreplident), "
                "false AS relforcerowsecurity FROM pg_catalog.pg_class" + _NOT_HELPER_REL,
    # atttypid, atttypmod: see _COLUMN_OID and _COLUMN_TYPMOD.
    "pg_attribute": "SELECT a.* REPLACE ('p' AS attstorage, -1 AS attstattarget, "
                    + _COLUMN_OID + " AS atttypid, " + _COLUMN_TYPMOD + " AS atttypmod) "
                    "FROM pg_catalog.pg_attribute a LEFT JOIN duckdb_columns() sqlml_d ON "
                    "sqlml_d.table_oid = a.attrelid AND sqlml_d.column_index = a.attnum",
    # (DuckDB 1.4's pg_database is oid and datname alone; Superset lists datistemplate = false)
    "pg_database": "SELECT oid, datname, true AS datallowconn, false AS datistemplate, "
                   "10::BIGINT AS datdba, 6 AS encoding, 'C' AS datcollate, "
                   "'C' AS datctype, "
                   "NULL::VARCHAR AS daticulocale, 'c' AS datlocprovider, "
                   "NULL::VARCHAR[] AS datacl, -1 AS datconnlimit, 0::BIGINT AS dattablespace "
                   "FROM pg_catalog.pg_database WHERE datname NOT IN ('system', 'temp')",
    "pg_index": "SELECT *, false AS indnullsnotdistinct FROM pg_catalog.pg_index",
    # DuckDB's pg_type leaves typtypmod, typrelid, typelem, typbasetype... NULL (psqlODBC's
    # SQLColumns fails on a NULL typtypmod; JDBC's getTypeInfo keeps only typrelid = 0) and
    # lists DuckDB-only types without an OID. Here: its types that have an OID, completed, and
    # the Postgres types drivers look up (text, name, oid, the array types...), see _PG_TYPES.
    "pg_type": "SELECT * REPLACE (10::BIGINT AS typowner, coalesce(typlen, -1) AS typlen, "
               "coalesce(typlen, -1) BETWEEN 1 AND 8 AS typbyval, ',' AS typdelim, "
               "0::BIGINT AS typrelid, 0::BIGINT AS typelem, " + _ARRAY_OID + " AS typarray, "
               "0::BIGINT AS typinput, 0::BIGINT AS typoutput, 0::BIGINT AS typreceive, "
               "0::BIGINT AS typsend, "
               "false AS typnotnull, 0::BIGINT AS typbasetype, -1 AS typtypmod, 0 AS typndims, "
               "0::BIGINT AS typcollation) FROM pg_catalog.pg_type WHERE oid IS NOT NULL "
               "UNION ALL BY NAME SELECT * FROM " + _pg_types(),
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

# DuckDB type names (duckdb_functions' return and parameter types) as Postgres type OIDs, for
# pg_proc; a macro's untyped parameters and result are anyelement, as a polymorphic function's.
_FUNCTION_TYPES = {"BOOLEAN": 16, "BLOB": 17, "BIGINT": 20, "SMALLINT": 21, "TINYINT": 21,
                   "INTEGER": 23, "VARCHAR": 25, "JSON": 114, "FLOAT": 700, "DOUBLE": 701,
                   "DATE": 1082, "TIME": 1083, "TIMESTAMP": 1114, "TIMESTAMP_NS": 1114,
                   "TIMESTAMP WITH TIME ZONE": 1184, "INTERVAL": 1186, "DECIMAL": 1700,
                   "HUGEINT": 1700, "UBIGINT": 1700, "UUID": 2950}


def _type_oid(expr: str) -> str:
    return ("CASE WHEN " + expr + " LIKE '%[]' THEN 2277 ELSE CASE " + expr + " "
            + " ".join(f"WHEN '{name}' THEN {oid}" for name, oid in _FUNCTION_TYPES.items())
            + " ELSE 2283 END END")


# Rows for DuckDB's Postgres-only-named settings that drivers read from pg_settings (pgjdbc's
# getImportedKeys asks for max_index_keys there).
_PG_SETTINGS = {"max_index_keys": "32", "max_identifier_length": "63", "block_size": "8192",
                "server_version": SERVER_VERSION, "server_version_num": "150000",
                "server_encoding": "UTF8", "standard_conforming_strings": "on",
                "integer_datetimes": "on"}

DRIVER_VIEWS = {
    # One row per function or macro overload, with what JDBC's getFunctions/getFunctionColumns,
    # ODBC's SQLProcedureColumns and DBeaver read: argument names, argument and result type OIDs
    # (proargtypes as the oidvector's text, "23 25"; proargnames as the text[]'s, "{a,b}", as
    # JDBC parses it), the language (sql for macros).
    "pg_proc": "SELECT f.function_oid AS oid, f.function_name AS proname, s.oid AS pronamespace, "
               "10::BIGINT AS proowner, CASE WHEN f.function_type LIKE '%macro' THEN 14 "
               "ELSE 13 END::BIGINT AS prolang, 100.0::FLOAT AS procost, "
               "CASE WHEN f.function_type LIKE 'table%' THEN 1000.0 ELSE 0.0 END::FLOAT AS "
               "prorows, 0::BIGINT AS provariadic, NULL::VARCHAR AS prosupport, "
               "CASE f.function_type WHEN 'aggregate' THEN 'a' WHEN 'window' THEN 'w' "
               "ELSE 'f' END AS prokind, false AS prosecdef, false AS proleakproof, "
               "false AS proisstrict, f.function_type LIKE 'table%' AS proretset, "
               "CASE f.stability WHEN 'CONSISTENT' THEN 'i' WHEN 'VOLATILE' THEN 'v' "
               "ELSE 's' END AS provolatile, 'u' AS proparallel, "
               "len(f.parameters)::SMALLINT AS pronargs, 0::SMALLINT AS pronargdefaults, "
               "(" + _type_oid("f.return_type") + ")::BIGINT AS prorettype, "
               "array_to_string(list_transform(coalesce(f.parameter_types, "
               "list_transform(f.parameters, lambda p: NULL::VARCHAR)), lambda t: ("
               + _type_oid("t") + ")::VARCHAR), ' ') AS proargtypes, "
               "NULL::BIGINT[] AS proallargtypes, NULL::VARCHAR[] AS proargmodes, "
               "'{' || array_to_string(f.parameters, ',') || '}' AS proargnames, "
               "NULL::VARCHAR AS proargdefaults, "
               "NULL::BIGINT[] AS protrftypes, f.macro_definition AS prosrc, "
               "NULL::VARCHAR AS probin, f.macro_definition AS prosqlbody, "
               "NULL::VARCHAR[] AS proconfig, NULL::VARCHAR[] AS proacl, "
               "f.function_type = 'aggregate' AS proisagg FROM duckdb_functions() f "
               "LEFT JOIN duckdb_schemas() s USING (database_name, schema_name)",
    # DuckDB's lists the current database's schemas only; Postgres' has pg_catalog too, where
    # drivers look its types up (the rows _pg_types() adds to pg_type live there).
    "pg_namespace": "SELECT * FROM pg_catalog.pg_namespace UNION ALL BY NAME SELECT "
                    + _PG_CATALOG + " AS oid, 'pg_catalog' AS nspname, 10 AS nspowner",
    # DuckDB lists a comment once per overload: the joins of getFunctions doubled each row.
    "pg_description": "SELECT DISTINCT * FROM pg_catalog.pg_description",
    "pg_settings": "SELECT * FROM pg_catalog.pg_settings UNION ALL BY NAME SELECT * FROM "
                   "(VALUES " + ", ".join(f"('{k}', '{v}', 'string')"
                                          for k, v in _PG_SETTINGS.items())
                   + ") sqlml_s(name, setting, vartype) WHERE name NOT IN "
                     "(SELECT name FROM pg_catalog.pg_settings)",
    # This server speaks UTF8 only: no encoding conversions (DBeaver lists them as charsets).
    "pg_conversion": "SELECT 0::BIGINT AS oid, ''::VARCHAR AS conname, 0::BIGINT AS "
                     "connamespace, 10::BIGINT AS conowner, 6 AS conforencoding, "
                     "6 AS contoencoding, ''::VARCHAR AS conproc, false AS condefault "
                     "WHERE false",
}

# Table macros (set-returning functions): pg_get_keywords from DuckDB's own keyword list,
# Postgres' category codes (R reserved, U unreserved, T type or function name, C column name).
TABLE_MACROS = {
    "pg_get_keywords": "SELECT lower(keyword_name) AS word, CASE keyword_category WHEN "
                       "'reserved' THEN 'R' WHEN 'unreserved' THEN 'U' WHEN 'type_function' "
                       "THEN 'T' ELSE 'C' END AS catcode, keyword_category <> 'reserved' AS "
                       "barelabel, CASE keyword_category WHEN 'reserved' THEN 'reserved' WHEN "
                       "'unreserved' THEN 'unreserved' WHEN 'type_function' THEN 'reserved (can "
                       "be function or type name)' ELSE 'unreserved (cannot be function or type "
                       "name)' END AS catdesc, CASE WHEN keyword_category <> 'reserved' THEN "
                       "'can be bare label' ELSE 'requires AS' END AS baredesc "
                       "FROM duckdb_keywords()",
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
                # pg_attribute's typmod for DECIMAL(w, s) is Postgres' ((w << 16) | s) + 4
                + " WHEN type_oid = 1700 AND typmod > 4 THEN 'numeric(' || ((typmod - 4) >> 16) "
                  "|| ',' || ((typmod - 4) & 65535) || ')' WHEN type_oid = 1700 THEN 'numeric' "
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
    # pgjdbc's getPrimaryKeys/getIndexInfo: information_schema._pg_expandarray(i.indkey), the
    # elements of an array with their positions, as rows (x, n). (DuckDB's indkey is NULL.)
    "_pg_expandarray": [("sqlml_arr", "unnest(list_transform(generate_series(1, len(sqlml_arr)),"
                                      " lambda sqlml_i: {'x': sqlml_arr[sqlml_i], "
                                      "'n': sqlml_i}))")],
    # DBeaver's table statistics: DuckDB counts no scans (unknown, NULL as the sizes above).
    "pg_stat_get_numscans": [("rel", "NULL::BIGINT")],
    "pg_stat_get_tuples_returned": [("rel", "NULL::BIGINT")],
    "pg_stat_get_tuples_fetched": [("rel", "NULL::BIGINT")],
    "pg_stat_get_live_tuples": [("rel", "NULL::BIGINT")],
    "pg_stat_get_dead_tuples": [("rel", "NULL::BIGINT")],
    # DBeaver's source tab of a function: a macro's definition, every overload, as DuckDB
    # reads it back (CREATE MACRO f(a) AS ..., (b) AS ...); NULL for a built-in function.
    "pg_get_functiondef": [("sqlml_fn", "(SELECT 'CREATE OR REPLACE MACRO ' || "
                                        "any_value(sqlml_f.schema_name) || '.' || "
                                        "any_value(sqlml_f.function_name) || string_agg('(' || "
                                        "array_to_string(sqlml_f.parameters, ', ') || ') AS ' || "
                                        "CASE WHEN sqlml_f.function_type = 'table_macro' THEN "
                                        "'TABLE ' ELSE '' END || sqlml_f.macro_definition, ', ') "
                                        "|| ';' FROM duckdb_functions() sqlml_f WHERE "
                                        "sqlml_f.function_oid = sqlml_fn AND "
                                        "sqlml_f.macro_definition IS NOT NULL)")],
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
    out += [f"CREATE OR REPLACE TEMP MACRO {fn}() AS TABLE {body}"
            for fn, body in TABLE_MACROS.items()]
    out += [f"CREATE OR REPLACE TEMP VIEW {view} AS {body}"
            for view, body in {**TEMP_VIEWS, **EXTENDED_VIEWS, **DRIVER_VIEWS}.items()]
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
SUPPLIED_VIEWS = {*TEMP_VIEWS, *EXTENDED_VIEWS, *DRIVER_VIEWS, "pg_roles", "pg_user"}
SUPPLIED_VIEWS |= set(BI_VIEWS)
