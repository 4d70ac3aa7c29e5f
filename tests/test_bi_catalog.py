"""BI tools' catalog queries against `sqlml serve`: Metabase's sync and Superset's own queries
(replayed from tests/fixtures/*.sql, which cite their sources), SQLAlchemy's PostgreSQL
reflection over psycopg 3 and psycopg2 (Superset's driver), and the session's helper views kept
out of the user's tables."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pg_served import served_churn_model

from sqlml.server.pgwire import catalog
from sqlml.server.pgwire.rewrite import rewrite

psycopg = pytest.importorskip("psycopg")

PASSWORD = "bi-test-secret"
FIXTURES = Path(__file__).parent / "fixtures"
# The session's own TEMP views, which no listing of the user's relations may show.
HELPERS = catalog.helper_views(catalog.temp_objects("sqlml", 1))


def fixture_queries(name: str) -> dict[str, str]:
    """{name: sql} of a fixture file: blocks headed `-- name: X`, comment lines dropped."""
    blocks = re.split(r"^-- name: ", (FIXTURES / name).read_text(), flags=re.M)[1:]
    out = {}
    for block in blocks:
        title, _, body = block.partition("\n")
        assert "-- source: " in body, f"{name}: query {title!r} cites no source"
        out[title.strip()] = "\n".join(line for line in body.splitlines()
                                       if not line.startswith("--")).strip()
    return out


METABASE = fixture_queries("metabase_queries.sql")
SUPERSET = fixture_queries("superset_queries.sql")


@pytest.fixture(scope="module")
def served():
    with served_churn_model(PASSWORD) as (con, server):
        con.execute("CREATE VIEW churn_view AS SELECT customer_id, plan FROM customers")
        yield con, server


def connect(server):
    return psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml", password=PASSWORD,
                           dbname="shop", autocommit=True)


def rows_of(server, sql: str, params=None) -> tuple[list[str], list[tuple]]:
    with connect(server) as conn:
        cur = conn.execute(sql, params)
        if cur.description is None:
            return [], []
        return [d.name for d in cur.description], cur.fetchall()


def user_relations(con) -> set[tuple[str, str]]:
    return set(con.execute("SELECT schema_name, table_name FROM duckdb_tables() UNION "
                           "SELECT schema_name, view_name FROM duckdb_views() "
                           "WHERE NOT internal").fetchall())


# -- Metabase ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(METABASE))
def test_metabase_sync_query_succeeds(served, name):
    _, server = served
    columns, rows = rows_of(server, METABASE[name])
    if name == "default_timezone":
        assert columns == ["timezone"] and rows[0][0]
    if name == "syncable_tables":
        found = {(r[0], r[1]): r[2] for r in rows}
        assert found[("main", "customers")] == "TABLE" and found[("main", "churn_view")] == "VIEW"
        assert found[("sqlml", "models")] == "TABLE"
        assert not {n for _, n in found} & HELPERS
        assert dict(((r[0], r[1]), r[4]) for r in rows)[("main", "customers")] == 500


def test_metabase_privileges_list_the_users_tables_selectable(served):
    con, server = served
    columns, rows = rows_of(server, METABASE["table_privileges"])
    assert columns == ["role", "schema", "table", "update", "select", "insert", "delete"]
    by_table = {(r[1], r[2]): r for r in rows}
    assert by_table[("main", "customers")][4] is True
    assert by_table[("main", "churn_view")][4] is True
    assert set(by_table) == user_relations(con)        # no helper view, no DuckDB internal one


def test_metabase_describe_fields_gives_postgres_types(served):
    con, server = served
    columns, rows = rows_of(server, METABASE["describe_fields"])
    assert columns[:3] == ["name", "database-type", "database-position"]
    described = [d[0] for d in con.execute("DESCRIBE customers").fetchall()]
    assert [r[0] for r in rows] == described
    assert [r[2] for r in rows] == list(range(len(described)))
    types = {r[0]: r[1] for r in rows}
    assert types == {**types, "customer_id": "int8", "signup_date": "timestamp",
                     "plan": "varchar", "monthly_charges": "float8", "autopay": "bool"}
    # no primary key, no comment, nullable, not auto-incremented
    assert {(r[5], r[6], r[7], r[8]) for r in rows} == {(False, None, False, False)}


def test_keyword_column_aliases_are_read_as_postgres_reads_them(served):
    _, server = served
    # Metabase's privileges query names columns select, update, insert, delete and table.
    assert rows_of(server, "select 1 as select from pg_catalog.pg_matviews") == (["select"], [])
    columns, rows = rows_of(server, "select 'a as select, b' as update, 2 as table "
                                    "from pg_catalog.pg_namespace where nspname = 'main'")
    assert (columns, rows) == (["update", "table"], [("a as select, b", 2)])
    same = rewrite("CREATE TABLE t AS select 1 AS x FROM pg_class", user="u",
                   setting=lambda name: None)
    assert same == "CREATE TABLE t AS SELECT 1 AS x FROM pg_class"
    cast = rewrite("SELECT CAST(x AS date), CAST(y AS text) FROM pg_class", user="u",
                   setting=lambda name: None)
    assert cast == 'SELECT CAST(x AS DATE) AS "x", CAST(y AS TEXT) AS "y" FROM pg_class'


# -- Superset ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SUPERSET))
def test_superset_query_succeeds(served, name):
    con, server = served
    columns, rows = rows_of(server, SUPERSET[name])
    if name == "catalog_names":
        assert rows == [(con.execute("SELECT current_database()").fetchone()[0],)]
    if name == "select_star":
        assert len(rows) == 100 and columns[0] == "customer_id"
    if name == "backend_pid":
        assert isinstance(rows[0][0], int)


# -- SQLAlchemy 2.0 and 2.1 reflection, over psycopg 3 and psycopg2 ------------------------------
INSPECTOR_CALLS = ["get_schema_names", "get_table_names", "get_view_names", "get_columns",
                   "get_pk_constraint", "get_foreign_keys", "get_indexes",
                   "get_unique_constraints", "get_check_constraints", "get_table_comment",
                   "get_table_options"]


def _inspect(inspector, call: str):
    try:
        return getattr(inspector, call)(*(() if call.endswith("_names") else ("customers",)))
    except NotImplementedError:
        # SQLAlchemy 2.0's PostgreSQL dialect reflects no table options (2.1 does)
        assert call == "get_table_options"
        return {}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sqlalchemy_reflection_over_the_wire(served, driver):
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip(driver)
    _, server = served
    engine = sa.create_engine(
        f"postgresql+{driver}://sqlml:{PASSWORD}@127.0.0.1:{server.port}/shop")
    try:
        inspector = sa.inspect(engine)
        got = {call: _inspect(inspector, call) for call in INSPECTOR_CALLS}
        metadata = sa.MetaData()
        metadata.reflect(engine, views=True)      # SQLAlchemy 2.1 asks default_table_access_method
        table = sa.Table("customers", sa.MetaData(), autoload_with=engine)
    finally:
        engine.dispose()
    assert got["get_schema_names"] == ["main", "sqlml"]
    assert got["get_table_names"] == ["customers"] and got["get_view_names"] == ["churn_view"]
    types = {c["name"]: c["type"] for c in got["get_columns"]}
    assert isinstance(types["customer_id"], sa.BigInteger)
    assert isinstance(types["signup_date"], sa.DateTime)
    assert isinstance(types["monthly_charges"], sa.Float)
    assert got["get_pk_constraint"]["constrained_columns"] == []
    assert got["get_foreign_keys"] == got["get_indexes"] == got["get_unique_constraints"] == []
    assert got["get_check_constraints"] == [] and got["get_table_comment"] == {"text": None}
    assert got["get_table_options"] == {}          # no access method, no tablespace
    assert sorted(metadata.tables) == ["churn_view", "customers"]
    assert [c.name for c in table.c] == list(types)


def test_current_setting_of_a_bound_name(served):
    _, server = served
    # SQLAlchemy over psycopg 3 binds the setting's name: current_setting($1::VARCHAR)
    _, rows = rows_of(server, "SELECT current_setting(%s::VARCHAR), current_setting(%s) "
                              "FROM pg_catalog.pg_namespace LIMIT 1",
                      ["default_table_access_method", "threads"])
    assert rows[0][0] == "duckdb" and int(rows[0][1]) >= 1


def test_format_with_identifiers_and_a_regclass_of_text(served):
    _, server = served
    _, rows = rows_of(server, "SELECT format('%I.%I', 'main', 'My T'), format('%L', 'it''s'), "
                              "CAST(CAST(format('%I.%I', 'main', 'customers') AS regclass) AS oid)"
                              " = 'customers'::regclass FROM pg_catalog.pg_namespace LIMIT 1")
    assert rows == [('main."My T"', "'it''s'", True)]


# -- the session's helper views are not the user's ---------------------------------------------
def test_helper_views_are_not_listed_among_the_users_relations(served):
    con, server = served
    assert {"pg_class", "pg_type", "pg_views", "sqlml_information_schema_columns"} <= HELPERS
    mine = user_relations(con)
    with connect(server) as conn:
        conn.execute("CREATE TEMP TABLE my_scratch AS SELECT 1 AS a")    # the user's own
        tables = conn.execute("SELECT table_schema, table_name, table_type "
                              "FROM information_schema.tables").fetchall()
        pg_tables = conn.execute("SELECT schemaname, tablename FROM pg_tables").fetchall()
        pg_views = conn.execute("SELECT schemaname, viewname FROM pg_catalog.pg_views "
                                "WHERE schemaname NOT IN ('pg_catalog', "
                                "'information_schema')").fetchall()
        listed = conn.execute("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN "
                              "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE c.relkind IN ('r', 'v') AND n.nspname !~ '^pg_' "
                              "AND n.nspname <> 'information_schema'").fetchall()
        temp = conn.execute("SELECT relname FROM pg_class WHERE relkind IN ('r', 'v') AND "
                            "relpersistence = 't' AND relnamespace IN (SELECT oid FROM "
                            "duckdb_schemas() WHERE database_name = 'temp')").fetchall()
        columns = conn.execute("SELECT DISTINCT table_name FROM information_schema.columns"
                               ).fetchall()
        jdbc = conn.execute(JDBC_GET_TABLES).fetchall()
    assert {(s, n) for s, n, _ in tables} == mine | {("main", "my_scratch")}
    assert ("main", "churn_view", "VIEW") in tables
    assert set(pg_tables) == {r for r in mine if r != ("main", "churn_view")
                              and r != ("sqlml", "recommender_items")} | {("main", "my_scratch")}
    assert set(pg_views) == {("main", "churn_view"), ("sqlml", "recommender_items")}
    assert set(listed) == mine
    assert temp == [("my_scratch",)]
    assert not {c for (c,) in columns} & HELPERS
    # what JDBC's DatabaseMetaData.getTables(null, null, "%", null) lists (DBeaver, Metabase)
    assert {(r[1], r[2]) for r in jdbc if r[3] in ("TABLE", "VIEW")} == mine
    assert {(r[1], r[2]) for r in jdbc if r[3] == "TEMPORARY TABLE"} <= {("main", "my_scratch")}
    # (pg_catalog's own views, DuckDB's, are listed there as Postgres lists its system catalog)
    assert not {r[2] for r in jdbc if r[1] not in ("pg_catalog", "information_schema")} & HELPERS


# pgjdbc 42.5's PgDatabaseMetaData.getTables query (its table-type CASE cut to the types here).
JDBC_GET_TABLES = (
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, "
    "CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema' WHEN true THEN 'SYSTEM' "
    "WHEN false THEN CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' "
    "WHEN 'v' THEN 'VIEW' ELSE NULL END ELSE NULL END AS TABLE_TYPE, d.description AS REMARKS "
    "FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_description d "
    "ON (c.oid = d.objoid AND d.objsubid = 0 and d.classoid = 'pg_class'::regclass) "
    "WHERE c.relnamespace = n.oid AND c.relname LIKE '%' "
    "ORDER BY TABLE_TYPE,TABLE_SCHEM,TABLE_NAME")


# -- Metabase's own driver: PostgreSQL JDBC ---------------------------------------------------
JDBC_JAR = Path("/usr/share/java/postgresql.jar")     # Debian's libpostgresql-jdbc-java


def test_metabase_sync_through_the_jdbc_driver(served, tmp_path):
    if shutil.which("javac") is None or shutil.which("java") is None or not JDBC_JAR.exists():
        pytest.skip("needs java, javac and the PostgreSQL JDBC driver "
                    "(apt-get install default-jdk-headless libpostgresql-jdbc-java)")
    con, server = served
    shutil.copy(FIXTURES / "MetabaseReplay.java", tmp_path)
    subprocess.run(["javac", "MetabaseReplay.java"], cwd=tmp_path, check=True, timeout=120)
    done = subprocess.run(["java", "-cp", f"{JDBC_JAR}:{tmp_path}", "MetabaseReplay",
                           str(server.port), PASSWORD, str(FIXTURES / "metabase_queries.sql")],
                          capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    # the schemas Metabase syncs: all but its excluded-schemas, information_schema and pg_catalog
    assert set(lines[0].split()[1:]) - {"information_schema", "pg_catalog"} == {"main", "sqlml"}
    listed = {tuple(name.split(".", 1)) for name in lines[1].split()[1:]}
    listed = {(schema, name) for schema, name in listed
              if schema not in ("information_schema", "pg_catalog")}
    assert listed == user_relations(con)
    results = {line.split(" ")[1]: line for line in lines[2:]}
    assert set(results) == set(METABASE)
    assert all(line.startswith("ok ") for line in results.values()), results
    width = len(con.execute("DESCRIBE customers").fetchall())
    assert results["describe_fields"] == f"ok describe_fields {width}"
