"""The protocol details drivers rely on, against the real clients: quoted statement names in
PREPARE/EXECUTE/DEALLOCATE/CLOSE (psqlODBC), binary parameters (asyncpg, psycopg 3), the SHOW
forms of psql, pgcli and JDBC, the COPY sub-protocol (psql, psycopg, asyncpg) and pg8000."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from pg_raw import RawClient, parse, sync

import sqlml
from sqlml.server.pgwire import start_in_thread

psycopg = pytest.importorskip("psycopg")

PASSWORD = "protocol-secret"


@pytest.fixture(scope="module")
def served():
    con = sqlml.connect()
    con.execute("CREATE TABLE items (id INTEGER, name VARCHAR, price DOUBLE, added DATE)")
    con.execute("INSERT INTO items VALUES (1, 'tea', 2.5, DATE '2024-01-02'), "
                "(2, 'tab\tand \\ slash', NULL, NULL), (3, 'comma, \"quote\"', 9.0, "
                "DATE '2024-03-04'), (4, '', 0.0, DATE '2024-05-06')")
    server = start_in_thread(con, password=PASSWORD)
    yield con, server
    server.stop()
    con.close()


@pytest.fixture(scope="module")
def open_server(served):
    """The same database without authentication, for the raw protocol client."""
    server = start_in_thread(served[0], password=None)
    yield server
    server.stop()


def connect(server, **kwargs):
    return psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml", password=PASSWORD,
                           dbname="shop", autocommit=True, **kwargs)


# -- PREPARE / EXECUTE / DEALLOCATE / CLOSE ------------------------------------------------------
def test_quoted_names_keep_their_case_and_unquoted_ones_fold(served):
    with connect(served[1]) as conn:
        conn.execute('PREPARE "Price" AS SELECT price FROM items WHERE id = $1::int')
        conn.execute("PREPARE Price (int) AS SELECT name FROM items WHERE id = $1")
        assert conn.execute('EXECUTE "Price"(1)').fetchall() == [(2.5,)]
        assert conn.execute("EXECUTE PRICE(1)").fetchall() == [("tea",)]   # folded: price
        assert conn.execute("EXECUTE price(1 + 2)").fetchall() == [('comma, "quote"',)]
        assert conn.execute('DEALLOCATE "Price"').statusmessage == "DEALLOCATE"
        with pytest.raises(psycopg.errors.InvalidSqlStatementName,
                           match='prepared statement "Price" does not exist'):
            conn.execute('EXECUTE "Price"(1)')
        assert conn.execute("EXECUTE price(1)").fetchall() == [("tea",)]
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement,
                           match='prepared statement "price" already exists'):
            conn.execute("PREPARE price AS SELECT 1")
        assert conn.execute("DEALLOCATE PREPARE ALL").statusmessage == "DEALLOCATE ALL"
        with pytest.raises(psycopg.errors.InvalidSqlStatementName, match='"price"'):
            conn.execute("DEALLOCATE price")


def test_prepare_names_an_unknown_type_and_execute_counts_arguments(served):
    with connect(served[1]) as conn:
        with pytest.raises(psycopg.errors.UndefinedObject,
                           match='PREPARE p: type "widget" does not exist'):
            conn.execute("PREPARE p (widget) AS SELECT $1")
        conn.execute("PREPARE two (int, text) AS SELECT $1 + 1, $2 || '!'")
        assert conn.execute("EXECUTE two(41, 'hi')").fetchall() == [(42, "hi!")]
        with pytest.raises(psycopg.errors.SyntaxError, match='it takes 2, EXECUTE gave 1'):
            conn.execute("EXECUTE two(1)")


def test_deallocate_frees_a_statement_parsed_by_the_protocol(open_server):
    """psqlODBC's pattern: Parse "_PLAN0x..." then DEALLOCATE "_PLAN0x..." as SQL, repeatedly."""
    client = RawClient(open_server.port)
    try:
        for _ in range(3):
            client.send(parse("SELECT 1", name="_PLAN0x7fA1"), sync())
            assert [k for k, _ in client.until_ready()] == ["1", "Z"]
            got = client.query('DEALLOCATE "_PLAN0x7fA1"')
            assert ("C", "DEALLOCATE") in got, got
        got = client.query("DEALLOCATE _PLAN0x7fA1")          # folded: _plan0x7fa1
        assert got[0][0] == "E" and got[0][1]["C"] == "26000"
        assert '"_plan0x7fa1"' in got[0][1]["M"]
    finally:
        client.close()


def test_psqlodbc_runs_statement_after_statement(served):
    """psqlODBC parses each statement as "_PLAN0x..." and frees it with DEALLOCATE "_PLAN0x...":
    before quoted names were read, the third statement failed with 42P05 (already exists)."""
    pyodbc = pytest.importorskip("pyodbc")
    if "PostgreSQL Unicode" not in pyodbc.drivers():
        pytest.skip("psqlODBC is not installed (Debian: odbc-postgresql, unixodbc)")
    conn = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;"
                          f"PORT={served[1].port};DATABASE=shop;UID=sqlml;PWD={PASSWORD};"
                          f"SSLMODE=disable", timeout=10)
    try:
        for i in range(5):
            cur = conn.cursor()
            assert cur.execute(f"SELECT count(*) + {i} FROM items WHERE id > ?", 1) \
                .fetchall()[0][0] == 3 + i
            cur.close()
    finally:
        conn.close()


def test_close_of_an_unknown_cursor_says_so(served):
    with connect(served[1]) as conn:
        with pytest.raises(psycopg.errors.InvalidCursorName, match='cursor "C1" does not exist'):
            conn.execute('CLOSE "C1"')
        assert conn.execute("CLOSE ALL").statusmessage == "CLOSE CURSOR ALL"


# -- binary parameters ---------------------------------------------------------------------------
TZ2 = dt.timezone(dt.timedelta(hours=2))
ROUND_TRIP = [
    ("int2", 7), ("int4", -5), ("int8", 2**40), ("float4", 1.5), ("float8", 0.1),
    # DuckDB's bare NUMERIC is DECIMAL(18,3): give the scale the value needs.
    ("numeric(12,4)", Decimal("12345.6789")), ("numeric(10,3)", Decimal("-0.001")),
    ("bool", True), ("text", "héllo"), ("varchar", "v"), ("bytea", b"\x00\xff\x10"),
    ("date", dt.date(2024, 2, 29)), ("time", dt.time(13, 14, 15, 123456)),
    ("timestamp", dt.datetime(2024, 1, 2, 3, 4, 5, 6)),
    ("timestamptz", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
    ("interval", dt.timedelta(days=3, seconds=7, microseconds=5)),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")), ("timetz", dt.time(1, 2, 3,
                                                                                     tzinfo=TZ2)),
]


def test_asyncpg_binary_parameters_round_trip_every_type(served):
    asyncpg = pytest.importorskip("asyncpg")

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=served[1].port, user="sqlml",
                                     password=PASSWORD, database="shop")
        try:
            got = [await conn.fetchval(f"SELECT $1::{t}", v) for t, v in ROUND_TRIP]
            got.append(await conn.fetchval("SELECT $1::json", '{"a": [1, 2]}'))
            got.append(await conn.fetchval("SELECT $1::jsonb", '{"a": 1}'))
            got.append(await conn.fetchval("SELECT $1::text[]", ["a", "b c"]))
            got.append(await conn.fetchval("SELECT CAST($1 AS bigint) * 2", 21))
            got.append(await conn.fetchval("SELECT $1::int IS NULL", None))
            rows = await conn.fetch("SELECT name FROM items WHERE id > $1::int ORDER BY id", 2)
            # asyncpg describes SHOW before running it, so its columns must be known
            assert await conn.fetchval("SHOW server_version") == "15.0"
            assert list((await conn.fetch("SHOW ALL"))[0].keys()) == ["name", "setting",
                                                                     "description"]
            return got, [r["name"] for r in rows]
        finally:
            await conn.close()

    got, names = asyncio.run(run())
    want = [v for _, v in ROUND_TRIP] + ['{"a": [1, 2]}', '{"a": 1}',
                                         '["a", "b c"]', 42, True]  # lists come back as JSON
    assert got == want
    assert names == ['comma, "quote"', ""]


def test_psycopg_binary_parameters_and_arrays(served):
    with connect(served[1]) as conn:
        cur = conn.cursor(binary=True)
        for t, v in ROUND_TRIP:
            if t == "timetz":
                continue          # psycopg dumps a time with tzinfo only as text
            assert cur.execute(f"SELECT %s::{t}", [v]).fetchone()[0] == v, t
        # %b asks for a binary parameter in a text-result cursor
        assert conn.execute("SELECT %b::int + 1, %b::text", [41, "x"]).fetchone() == (42, "x")
        assert cur.execute("SELECT list_sum(%s::int[])", [[1, 2, 3]]).fetchone()[0] == 6
        assert cur.execute("SELECT len(%s::text[])", [["a", None, "c"]]).fetchone()[0] == 3
        assert conn.execute("SELECT list_sum(%t::int8[])", [[4, 5]]).fetchone()[0] == 9


# -- SHOW ----------------------------------------------------------------------------------------
def test_show_forms_of_psql_pgcli_and_jdbc(served):
    with connect(served[1]) as conn:
        cur = conn.execute("SHOW TIME ZONE")
        assert cur.description[0].name == "TimeZone" and cur.fetchone()[0]
        show = {q: conn.execute(q).fetchone()[0] for q in (
            "SHOW search_path", "SHOW server_version", "SHOW transaction isolation level",
            "SHOW TRANSACTION ISOLATION LEVEL", "SHOW standard_conforming_strings",
            "SHOW server_encoding", "SHOW DateStyle", "SHOW max_identifier_length", "SHOW ssl")}
        assert show == {"SHOW search_path": "main", "SHOW server_version": "15.0",
                        "SHOW transaction isolation level": "read committed",
                        "SHOW TRANSACTION ISOLATION LEVEL": "read committed",
                        "SHOW standard_conforming_strings": "on", "SHOW server_encoding": "UTF8",
                        "SHOW DateStyle": "ISO, MDY", "SHOW max_identifier_length": "63",
                        "SHOW ssl": "off"}
        conn.execute("SET TIME ZONE 'America/New_York'")
        assert conn.execute("SHOW TIME ZONE").fetchone()[0] == "America/New_York"
        cur = conn.execute("SHOW ALL")
        assert [d.name for d in cur.description] == ["name", "setting", "description"]
        settings = {r[0].lower(): r[1] for r in cur.fetchall()}
        assert settings["timezone"] == "America/New_York" and settings["threads"]
        assert settings["server_version"] == "15.0"


# -- other clients -------------------------------------------------------------------------------
def test_pgcli_starts_and_runs_a_query(served, tmp_path):
    pgcli = shutil.which("pgcli") or str(Path(sys.executable).with_name("pgcli"))
    if not os.path.exists(pgcli):
        pytest.skip("pgcli is not installed (pip install pgcli)")
    env = dict(os.environ, PGPASSWORD=PASSWORD, HOME=str(tmp_path), PAGER="cat",
               XDG_CONFIG_HOME=str(tmp_path))
    usage = subprocess.run([pgcli, "--help"], capture_output=True, text=True, env=env).stdout
    if "--file" not in usage:
        # pgcli before 4.4 has no --file: run what it runs at start, through its own executor.
        from pgcli.pgexecute import PGExecute

        executor = PGExecute("shop", "sqlml", PASSWORD, "127.0.0.1", served[1].port)
        assert executor.get_timezone()
        (result,) = list(executor.run("SELECT id, name FROM items WHERE id < 3 ORDER BY id"))
        assert list(result[1]) == [(1, "tea"), (2, "tab\tand \\ slash")]
        return
    script = tmp_path / "q.sql"
    script.write_text("SHOW TIME ZONE;\nSELECT id, name FROM items WHERE id < 3 ORDER BY id;\n")
    done = subprocess.run([pgcli, "-h", "127.0.0.1", "-p", str(served[1].port), "-U", "sqlml",
                           "-d", "shop", "--less-chatty", "-f", str(script)],
                          capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "TimeZone" in done.stdout and "| 1  | tea" in done.stdout
    assert "SELECT 2" in done.stdout and "error" not in done.stdout.lower()


def test_pg8000_connects_and_queries(served):
    pg8000 = pytest.importorskip("pg8000.native")
    conn = pg8000.Connection("sqlml", host="127.0.0.1", port=served[1].port, password=PASSWORD,
                             database="shop")
    try:
        assert conn.run("SELECT name, price FROM items WHERE id = :id", id=1) == [["tea", 2.5]]
        assert conn.run("SELECT :d::date + 1", d=dt.date(2024, 1, 31)) == [[dt.date(2024, 2, 1)]]
        assert conn.run("SHOW TIME ZONE")[0][0]
        assert conn.run("SELECT count(*) FROM items") == [[4]]
        sink = io.BytesIO()
        conn.run("COPY (SELECT * FROM items ORDER BY id) TO STDOUT", stream=sink)
        assert sink.getvalue().decode() == ITEMS_TEXT
        conn.run("CREATE OR REPLACE TABLE from_pg8000 (id INTEGER, name VARCHAR)")
        conn.run("COPY from_pg8000 FROM STDIN (FORMAT csv)", stream=io.BytesIO(b"1,a\n2,\n"))
        assert conn.run("SELECT * FROM from_pg8000 ORDER BY id") == [[1, "a"], [2, None]]
    finally:
        conn.close()


# -- COPY ----------------------------------------------------------------------------------------
ITEMS_TEXT = ("1\ttea\t2.5\t2024-01-02\n2\ttab\\tand \\\\ slash\t\\N\t\\N\n"
              "3\tcomma, \"quote\"\t9.0\t2024-03-04\n4\t\t0.0\t2024-05-06\n")
ITEMS_CSV = ('id,name,price,added\n1,tea,2.5,2024-01-02\n2,tab\tand \\ slash,,\n'
             '3,"comma, ""quote""",9.0,2024-03-04\n4,"",0.0,2024-05-06\n')


def test_copy_to_stdout_reaches_the_client_not_the_servers_stdout(served, capfd):
    with connect(served[1]) as conn:
        cur = conn.cursor()
        got = {}
        for q in ("COPY (SELECT * FROM items ORDER BY id) TO STDOUT",
                  "COPY (SELECT * FROM items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
                  "COPY items TO STDOUT CSV HEADER", "COPY items (id, name) TO STDOUT "
                  "(FORMAT csv, DELIMITER ';', NULL 'NA')"):
            with cur.copy(q) as copy:
                got[q] = b"".join(bytes(chunk) for chunk in copy).decode()
            assert cur.rowcount == 4
    texts = list(got.values())
    assert texts[0] == ITEMS_TEXT and texts[1] == ITEMS_CSV and texts[2] == ITEMS_CSV
    # only a value equal to NULL ('NA') or holding ; " or a newline is quoted
    assert texts[3] == '1;tea\n2;tab\tand \\ slash\n3;"comma, ""quote"""\n4;\n'
    assert "tea" not in capfd.readouterr().out
    with connect(served[1]) as conn, conn.cursor().copy(  # the query runs as a client's would
            "COPY (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname "
            "OPERATOR(pg_catalog.~) '^(items)$') TO STDOUT") as copy:
        assert b"".join(bytes(chunk) for chunk in copy) == b"items\n"


def test_copy_from_stdin_loads_text_and_csv_and_a_bad_row_loads_nothing(served):
    con, server = served
    con.execute("CREATE OR REPLACE TABLE loaded AS FROM items LIMIT 0")
    with connect(server) as conn:
        cur = conn.cursor()
        with cur.copy("COPY loaded FROM STDIN") as copy:
            copy.write(ITEMS_TEXT.encode())
        assert cur.rowcount == 4
        with cur.copy("COPY loaded (id, name) FROM STDIN (FORMAT csv, HEADER true)") as copy:
            copy.write(b'id,name\n7,"a,""b"""\n8,\n9,""\n')
        with cur.copy("COPY loaded FROM STDIN") as copy:
            copy.write_row((10, "row\nwith newline", 1.0, None))
        with pytest.raises(psycopg.errors.BadCopyFileFormat,
                           match=r"line 2: extra data after last expected column.*nothing was"):
            with cur.copy("COPY loaded (id, name) FROM STDIN (FORMAT csv)") as copy:
                copy.write(b"11,ok\n12,too,many\n")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with cur.copy("COPY loaded (id) FROM STDIN") as copy:
                copy.write(b"13\nnot a number\n")
        assert conn.execute("SELECT 1").fetchone() == (1,)       # the session goes on
    items = con.execute("SELECT * FROM items ORDER BY id").fetchall()
    assert con.execute("SELECT * FROM loaded ORDER BY id").fetchall() == [
        *items, (7, 'a,"b"', None, None), (8, None, None, None), (9, "", None, None),
        (10, "row\nwith newline", 1.0, None)]


def test_copy_binary_is_refused_with_the_remedy(served):
    with connect(served[1]) as conn, pytest.raises(
            psycopg.errors.FeatureNotSupported, match=r"FORMAT binary.*use FORMAT text or "
                                                      r"FORMAT csv"):
        with conn.cursor().copy("COPY items TO STDOUT (FORMAT binary)") as copy:
            list(copy)


def test_psql_copy_and_backslash_copy(served, tmp_path):
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (Debian: postgresql-client)")
    con, server = served
    con.execute("CREATE OR REPLACE TABLE from_psql AS FROM items LIMIT 0")
    source = tmp_path / "items.csv"
    source.write_text(ITEMS_CSV)
    out = tmp_path / "out.txt"
    script = (f"COPY (SELECT * FROM items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)\n"
              f"\\copy from_psql FROM '{source}' WITH (FORMAT csv, HEADER)\n"
              f"\\copy (SELECT * FROM from_psql ORDER BY id) TO '{out}'\n")
    done = subprocess.run([psql, "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                           str(server.port), "-U", "sqlml", "-d", "shop"], input=script,
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PGPASSWORD=PASSWORD))
    assert done.returncode == 0, done.stderr
    assert ITEMS_CSV in done.stdout and done.stdout.count("COPY 4") == 2
    assert out.read_text() == ITEMS_TEXT


def test_asyncpg_copy_from_query_and_copy_to_table(served, tmp_path):
    asyncpg = pytest.importorskip("asyncpg")
    con, server = served
    con.execute("CREATE OR REPLACE TABLE from_asyncpg (id INTEGER, name VARCHAR)")
    source = tmp_path / "rows.csv"
    source.write_text("1,one\n2,\n3,three\n")

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=server.port, user="sqlml",
                                     password=PASSWORD, database="shop")
        try:
            sink = tmp_path / "query.csv"
            status = await conn.copy_from_query("SELECT id, name FROM items ORDER BY id",
                                                output=str(sink), format="csv", header=True)
            loaded = await conn.copy_to_table("from_asyncpg", source=str(source), format="csv")
            return status, sink.read_text(), loaded
        finally:
            await conn.close()

    status, text, loaded = asyncio.run(run())
    assert status == "COPY 4" and loaded == "COPY 3"
    assert text == 'id,name\n1,tea\n2,tab\tand \\ slash\n3,"comma, ""quote"""\n4,""\n'
    assert con.execute("FROM from_asyncpg ORDER BY id").fetchall() == [
        (1, "one"), (2, None), (3, "three")]


def test_asyncpg_copy_records_to_table_sends_binary_rows(served):
    asyncpg = pytest.importorskip("asyncpg")
    con, server = served
    con.execute("CREATE OR REPLACE TABLE records (i BIGINT, f DOUBLE, ok BOOLEAN, d DATE, "
                "ts TIMESTAMP, n DECIMAL(10, 2), b BLOB, u UUID, s VARCHAR)")
    rows = [(1, 0.5, True, dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5),
             Decimal("12.34"), b"\x00\xff", uuid.UUID(int=7), "tab\tnew\nline"),
            (2, None, None, None, None, None, None, None, None)]

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=server.port, user="sqlml",
                                     password=PASSWORD, database="shop")
        try:
            return await conn.copy_records_to_table("records", records=rows)
        finally:
            await conn.close()

    assert asyncio.run(run()) == "COPY 2"
    assert con.execute("FROM records ORDER BY i").fetchall() == rows
    with connect(server) as conn, conn.cursor().copy("COPY records (i, b) FROM STDIN") as copy:
        copy.write(b"3\t\\\\x00ab\n")                    # text format: bytea as \x hex
    assert con.execute("SELECT b FROM records WHERE i = 3").fetchone() == (b"\x00\xab",)


def test_copy_errors_name_the_option_and_the_remedy(served):
    with connect(served[1]) as conn:
        cur = conn.cursor()
        for sql, error, text in [
            ("COPY items TO STDOUT (FORMAT parquet)", psycopg.errors.InvalidParameterValue,
             'COPY format "parquet" not recognized; use text or csv'),
            ("COPY items TO STDOUT (DELIMITER '::')", psycopg.errors.InvalidParameterValue,
             "COPY delimiter must be a single one-byte character, got '::'"),
            ("COPY items TO STDOUT (COMPRESSION gzip)", psycopg.errors.SyntaxError,
             'COPY option "compression" not recognized; sqlml serve takes FORMAT, HEADER'),
            ("COPY items TO STDOUT (ENCODING 'LATIN1')", psycopg.errors.InvalidParameterValue,
             "COPY encoding 'LATIN1' is not supported; this server speaks UTF8 only"),
            ("COPY (SELECT 1) FROM STDIN", psycopg.errors.SyntaxError,
             "COPY (query) FROM STDIN is not possible: load into a table"),
        ]:
            with pytest.raises(error) as info, cur.copy(sql):
                pass
            assert text in str(info.value), (sql, str(info.value))
        with pytest.raises(psycopg.errors.SyntaxError, match=re.escape(
                "syntax error in PREPARE: write PREPARE name [(type, ...)] AS statement")):
            conn.execute("PREPARE p SELECT 1")
        served[0].execute("CREATE OR REPLACE TABLE failed_copy (id INTEGER)")
        with pytest.raises(RuntimeError, match="the client gives up"):
            with cur.copy("COPY failed_copy FROM STDIN") as copy:
                copy.write(b"1\n")
                raise RuntimeError("the client gives up")          # psycopg sends CopyFail
        assert conn.execute("SELECT count(*) FROM failed_copy").fetchone() == (0,)
    client = RawClient(served[1].port, password=PASSWORD)        # the CopyFail answer itself
    try:
        client.send(b"Q" + struct.pack("!i", 4 + 28) + b"COPY failed_copy FROM STDIN\x00")
        assert client.read()[0] == "G"
        reason = b"stopped by the user\x00"
        client.send(b"f" + struct.pack("!i", 4 + len(reason)) + reason)
        got = client.until_ready()
        assert got[0][0] == "E" and got[0][1]["C"] == "57014"
        assert got[0][1]["M"] == ("COPY from stdin failed: stopped by the user; nothing was "
                                  "loaded")
    finally:
        client.close()


def test_copy_through_the_locked_down_server_and_a_reader(tmp_path):
    """As `sqlml serve` runs by default: files and configuration locked, the statement policy on.
    COPY through the client works; a reader may COPY out but not load rows."""
    from sqlml.server import policy

    con = sqlml.connect()
    con.execute("CREATE TABLE t (id INTEGER, name VARCHAR)")
    policy.lock_down(con)
    from sqlml.server.pgwire.auth import make_verifier

    viewer = policy.User("viewer", policy.READER, make_verifier("see"))
    rules = policy.Policy(file_access=False, users={"viewer": viewer})
    server = start_in_thread(con, password=PASSWORD, policy=rules)
    try:
        with connect(server) as conn, conn.cursor().copy("COPY t FROM STDIN (FORMAT csv)") as c:
            c.write(b"1,a\n2,b\n")
        with psycopg.connect(host="127.0.0.1", port=server.port, user="viewer", password="see",
                             autocommit=True) as conn:
            with conn.cursor().copy("COPY (SELECT * FROM t ORDER BY id) TO STDOUT") as copy:
                assert b"".join(bytes(chunk) for chunk in copy) == b"1\ta\n2\tb\n"
            with pytest.raises(psycopg.errors.InsufficientPrivilege), \
                    conn.cursor().copy("COPY t FROM STDIN") as copy:
                copy.write(b"3\tc\n")
            with pytest.raises(psycopg.errors.InsufficientPrivilege), \
                    conn.cursor().copy(f"COPY t TO '{tmp_path / 'x.csv'}'"):
                pass
    finally:
        server.stop()
        con.close()
    assert not (tmp_path / "x.csv").exists()
