"""DBeaver's own navigator queries (tests/fixtures/dbeaver_queries.sql, from DBeaver's sources)
replayed through psycopg against `sqlml serve`: each must run and answer sensible rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from drivers_fixture import add_events
from pg_served import served_churn_model

psycopg = pytest.importorskip("psycopg")
PASSWORD = "dbeaver-test-secret"
FIXTURE = Path(__file__).parent / "fixtures" / "dbeaver_queries.sql"


def load() -> list[tuple[str, str, str]]:
    """(name, expect, query) for each entry of the fixture file."""
    entries = []
    for block in FIXTURE.read_text().split("\n;\n"):
        fields = dict(re.findall(r"^-- (name|source|expect): (.*)$", block, re.M))
        query = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
        if "name" in fields:
            assert "source" in fields, fields["name"]
            entries.append((fields["name"], fields["expect"], query.strip()))
    return entries


QUERIES = load()


@pytest.fixture(scope="module")
def served():
    with served_churn_model(PASSWORD) as (con, server):
        add_events(con)
        conn = psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml",
                               password=PASSWORD, dbname="shop", autocommit=True)
        ids = {
            "schema_oid": conn.execute("SELECT oid FROM pg_catalog.pg_namespace "
                                       "WHERE nspname = 'main'").fetchone()[0],
            "table_oid": conn.execute("SELECT oid FROM pg_catalog.pg_class "
                                      "WHERE relname = 'events'").fetchone()[0],
            "function_oid": conn.execute("SELECT oid FROM pg_catalog.pg_proc "
                                         "WHERE proname = 'predict_churn' LIMIT 1").fetchone()[0],
        }
        yield conn, ids
        conn.close()


def test_the_fixture_holds_the_navigator_queries():
    names = [name for name, _, _ in QUERIES]
    assert len(names) == len(set(names)) >= 15
    assert {"charsets", "keywords", "table_statistics", "function_source"} <= set(names)


@pytest.mark.parametrize(("name", "expect", "query"), QUERIES, ids=[q[0] for q in QUERIES])
def test_dbeaver_query_answers(served, name, expect, query):
    conn, ids = served
    text = re.sub(r":(schema_oid|table_oid|function_oid)\b", lambda m: str(ids[m.group(1)]),
                  query)
    cur = conn.execute(text)
    rows = cur.fetchall()
    kind, value = re.match(r"(rows>=|rows=|columns=)(.*)", expect).groups()
    if kind == "rows=":
        assert len(rows) == int(value), rows
    elif kind == "rows>=":
        assert len(rows) >= int(value), rows
    else:
        assert [d.name for d in cur.description] == value.split(",")


def test_answers_name_the_users_objects(served):
    conn, ids = served
    tables = conn.execute("SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = "
                          f"{ids['schema_oid']} AND c.relkind = 'r' ORDER BY 1").fetchall()
    assert ("customers",) in tables and ("events",) in tables
    source = conn.execute(f"SELECT pg_catalog.pg_get_functiondef({ids['function_oid']})"
                          ).fetchone()[0]
    assert source.startswith("CREATE OR REPLACE MACRO main.predict_churn(")
    keywords = dict(conn.execute("SELECT word, catcode FROM pg_catalog.pg_get_keywords()"
                                 ).fetchall())
    assert keywords["select"] == "R" and keywords["qualify"] == "R"


@pytest.fixture(scope="module")
def session():
    """A session's cursor with its catalog objects, without a server."""
    import sqlml
    from sqlml.server.pgwire.compat import Compat

    con = sqlml.connect()
    cur = con.cursor()
    compat = Compat(cur, user="alice", pid=1, read_only=False)
    compat.install()
    yield cur, compat
    con.close()


@pytest.mark.parametrize(("postgres", "expected"), [
    # pgjdbc's getSQLKeywords: an array literal, with a quoted "null" that is a string
    ("SELECT count(*) FROM pg_catalog.pg_get_keywords() WHERE word = ANY "
     "('{select,\"null\",qualify}'::text[])", 3),
    ("SELECT '{1,2,NULL}'::int[] = [1, 2, NULL]", True),
    ("SELECT CAST('{}' AS text[]) = []", True),
    # getFunctions(null, "main", "ml\\_%"): Postgres' LIKE escapes with a backslash
    ("SELECT 'mlx' LIKE 'ml\\_%'", False),
    ("SELECT 'ml_f1' LIKE 'ml\\_%'", True),
    # getPrimaryKeys: information_schema._pg_expandarray, a set of (x, n)
    ("SELECT list(r.k.x || ':' || r.k.n ORDER BY r.k.n) FROM (SELECT "
     "information_schema._pg_expandarray([7, 8]) AS k) r", ["7:1", "8:2"]),
    # getImportedKeys' MaxIndexKeys: pg_settings (pgjdbc 42.5) or current_setting
    ("SELECT setting FROM pg_catalog.pg_settings WHERE name = 'max_index_keys'", "32"),
    ("SELECT current_setting('max_index_keys')", "32"),
    ("SELECT t.typlen FROM pg_catalog.pg_type t, pg_catalog.pg_namespace n WHERE "
     "t.typnamespace = n.oid AND t.typname = 'name' AND n.nspname = 'pg_catalog'", 64),
])
def test_postgres_forms_the_drivers_send_are_answered(session, postgres, expected):
    cur, compat = session
    duck = compat.rewrite(postgres)
    assert cur.execute(duck).fetchall() == [(expected,)], duck


def test_show_max_index_keys_answers(served):
    conn, _ = served
    assert conn.execute("SHOW max_index_keys").fetchall() == [("32",)]
