"""The Postgres wire protocol server against real clients: psycopg 3, SQLAlchemy's PostgreSQL
dialect, and a raw protocol client (tests/pg_raw.py) for what drivers hide."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest
from pg_raw import RawClient, bind, describe, execute, parse, sync
from pg_served import FEATURES, served_churn_model
from sklearn.metrics import f1_score, roc_auc_score

import sqlml
from sqlml.server.pgwire import start_in_thread

psycopg = pytest.importorskip("psycopg")

PASSWORD = "pg-test-secret"
QUERIES = json.loads((Path(__file__).parent / "data" / "psql15_catalog_queries.json")
                     .read_text())["commands"]


# psql's describe queries and SQLAlchemy's reflection bind only on DuckDB 2's pg_catalog (on 1.4
# and 1.5 DuckDB's own catalog views fail them), a documented limitation.
NEEDS_DUCKDB_2 = pytest.mark.skipif(int(duckdb.__version__.split(".")[0]) < 2,
                                    reason="describe queries need DuckDB 2's pg_catalog")


@pytest.fixture(scope="module")
def served():
    with served_churn_model(PASSWORD) as pair:
        yield pair


@pytest.fixture(scope="module")
def open_server(served):
    """The same database without authentication, for the raw protocol client."""
    con, _ = served
    server = start_in_thread(con, password=None)
    yield server
    server.stop()


def connect(server, **kwargs):
    return psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml", password=PASSWORD,
                           dbname="shop", **kwargs)


# -- psycopg: parameters, prepared statements, types ---------------------------------------------
def test_server_side_parameters_match_the_stored_model(served):
    con, server = served
    model = sqlml.load_model(con, "churn")
    frame = con.execute(f"SELECT customer_id, {FEATURES} FROM customers "
                        f"WHERE tenure_months > 24 ORDER BY customer_id").df()
    expected = model.predict_proba(frame)[:, 1]
    with connect(server, autocommit=True) as conn:
        cur = conn.execute("SELECT customer_id, predict_churn_probability(c) FROM customers c "
                           "WHERE tenure_months > %s ORDER BY customer_id", [24])
        rows = cur.fetchall()
        assert cur.pgresult is not None and cur.description[1].type_code == 701  # float8
    assert [r[0] for r in rows] == frame["customer_id"].tolist()
    np.testing.assert_allclose([r[1] for r in rows], expected, rtol=1e-9)


def test_prepared_statement_reused_with_new_parameters(served):
    con, server = served
    sql = ("SELECT contract, count(*), sum(predict_churn(c)::INT) FROM customers c "
           "WHERE monthly_charges > {} GROUP BY contract ORDER BY contract")
    with connect(server, autocommit=True) as conn:
        for threshold in (20.0, 60.5, 95.0):
            got = conn.execute(sql.format("%s"), [threshold], prepare=True).fetchall()
            want = con.execute(sql.format("?"), [threshold]).fetchall()
            assert got == want
        # psycopg prepared it on the server under a name of its own and reused it
        assert conn.execute("SELECT 1", prepare=True).fetchall() == [(1,)]


def test_types_come_back_as_python_types_in_text_and_binary(served):
    _, server = served
    sql = ("SELECT 1::SMALLINT, 2::INTEGER, 3::BIGINT, 1.5::DOUBLE, 2.25::FLOAT, "
           "12.345::DECIMAL(10,3), true, 'text é', DATE '2024-02-29', "
           "TIMESTAMP '2024-02-29 10:11:12.5', INTERVAL '1 day 2 hours', "
           "'\\x00\\xFF'::BLOB, [1, 2], {'a': 1, 'b': 'x'}, NULL::INTEGER, "
           "'7d444840-9dc0-11d1-b245-5ffdce74fad2'::UUID, '{\"k\": [1]}'::JSON")
    import datetime as dt
    import uuid

    expected = (1, 2, 3, 1.5, 2.25, Decimal("12.345"), True, "text é", dt.date(2024, 2, 29),
                dt.datetime(2024, 2, 29, 10, 11, 12, 500000), dt.timedelta(days=1, hours=2),
                b"\x00\xff", "[1, 2]", '{"a": 1, "b": "x"}', None,
                uuid.UUID("7d444840-9dc0-11d1-b245-5ffdce74fad2"), {"k": [1]})
    with connect(server, autocommit=True) as conn:
        for binary in (False, True):
            row = conn.cursor(binary=binary).execute(sql).fetchall()[0]
            assert row == expected, f"binary={binary}"
        # parameters of every common type, bound on the server
        params = [7, 2.5, Decimal("1.25"), True, "x", dt.date(2020, 1, 2), None, b"\x01"]
        got = conn.execute("SELECT %s, %s, %s, %s, %s, %s, %s, %s", params).fetchall()[0]
        assert list(got) == params


def test_transactions_commit_rollback_and_failed_state(served):
    _, server = served
    with connect(server) as conn:          # psycopg's default: statements in a transaction
        conn.execute("CREATE TABLE IF NOT EXISTS tx_probe (a INTEGER)")
        conn.execute("INSERT INTO tx_probe VALUES (%s), (%s)", [1, 2])
        conn.commit()
        conn.execute("INSERT INTO tx_probe VALUES (3)")
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT no_such_column FROM tx_probe")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction, match="ROLLBACK"):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT sum(a) FROM tx_probe").fetchall() == [(3,)]
        conn.rollback()
        cur = conn.cursor()
        cur.executemany("INSERT INTO tx_probe VALUES (%s)", [(10,), (20,)])
        conn.commit()
    with connect(server, autocommit=True) as other:
        assert other.execute("SELECT sum(a) FROM tx_probe").fetchall() == [(33,)]
        other.execute("DROP TABLE tx_probe")


def test_redshift_statement_notices_reach_the_client(served):
    con, server = served
    notices = []
    with connect(server, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        rows = conn.execute(
            "CREATE MODEL churn_pg FROM (SELECT tenure_months, contract, churned FROM customers) "
            "TARGET churned FUNCTION predict_churn_pg IAM_ROLE 'arn:aws:iam::1:role/x' "
            "MODEL_TYPE logistic").fetchall()
        cols = [d.name for d in conn.execute("SHOW MODEL churn_pg").description]
    assert rows[0][0] == "churn_pg"
    assert any("IAM_ROLE" in n for n in notices), notices
    assert cols == ["property", "value"]
    assert con.execute("SELECT count(*) FROM ml_models() WHERE name = 'churn_pg'"
                       ).fetchall() == [(1,)]
    con.execute("SELECT ml_drop_model('churn_pg')").fetchall()


def test_settings_version_and_unknown_set(served):
    _, server = served
    notices = []
    with connect(server, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert conn.info.parameter_status("server_version") == "15.0"
        assert conn.info.parameter_status("integer_datetimes") == "on"
        version = conn.execute("SELECT version()").fetchall()[0][0]
        assert version.startswith("PostgreSQL 15.0 (sqlml ")
        conn.execute("SET application_name = 'metabase'")
        assert conn.execute("SHOW application_name").fetchall() == [("metabase",)]
        assert conn.execute("SELECT current_setting('application_name')").fetchall() == [
            ("metabase",)]
        conn.execute("SET no_such_setting_anywhere = 1")
        assert conn.execute("SHOW TRANSACTION ISOLATION LEVEL").fetchall() == [
            ("read committed",)]
        assert conn.execute("SELECT current_setting('server_version_num')").fetchall() == [
            ("150000",)]
        # DuckDB's own settings still go to DuckDB
        conn.execute("SET threads = 1")
        assert conn.execute("SELECT current_setting('threads')").fetchall() == [(1,)]
    assert any("no_such_setting_anywhere" in n and "ignores it" in n for n in notices)


# -- security -------------------------------------------------------------------------------
def test_wrong_password_is_refused_and_the_server_goes_on(served):
    _, server = served
    with pytest.raises(psycopg.OperationalError,
                       match='password authentication failed for user "sqlml"'):
        psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml", password="wrong",
                        dbname="shop")
    raw = RawClient(server.port, password="also wrong")
    kind, fields = raw.startup[-1]
    assert kind == "E" and fields["C"] == "28P01" and fields["S"] == "FATAL"
    assert "SQLML_PASSWORD" in fields["H"]
    with connect(server, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchall() == [(500,)]


def test_scram_exchange_with_an_independent_client(served):
    _, server = served
    raw = RawClient(server.port, password=PASSWORD)   # asserts the server's signature too
    kinds = [k for k, _ in raw.startup]
    assert kinds[-1] == "Z" and "E" not in kinds
    params = dict(v.split("\x00")[:2] for k, v in raw.startup if k == "S")
    assert params["client_encoding"] == "UTF8" and params["standard_conforming_strings"] == "on"
    raw.close()


def test_read_only_mode_refuses_writes_and_keeps_serving(tmp_path):
    path = tmp_path / "ro.duckdb"
    con = sqlml.connect(path)
    con.execute("CREATE TABLE t AS SELECT range % 7 AS x, range % 2 = 0 AS y FROM range(40)")
    sqlml.create_model(con, "tiny", "t", target="y", model_type="logistic",
                       function="predict_tiny")
    con.close()
    con = sqlml.connect(path, read_only=True)
    server = start_in_thread(con, password=PASSWORD, read_only=True)
    try:
        with connect(server, autocommit=True) as conn:
            for write in ("INSERT INTO t VALUES (1, true)", "CREATE TABLE u (a INTEGER)",
                          "CREATE MODEL m2 FROM t TARGET y FUNCTION predict_m2"):
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction,
                                   match=r"^sqlml serve --read-only: writes are refused: .*"
                                         r"read-only"):
                    conn.execute(write)
            assert conn.execute("SELECT count(*), sum(predict_tiny(t)::INT) FROM t"
                                ).fetchall()[0][0] == 40
            assert conn.info.parameter_status("default_transaction_read_only") == "on"
    finally:
        server.stop()
        con.close()


# -- isolation ------------------------------------------------------------------------------
def test_a_failing_client_does_not_disturb_another(served):
    con, server = served
    want = con.execute("SELECT contract, avg(predict_churn_probability(c)) FROM customers c "
                       "GROUP BY contract ORDER BY contract").fetchall()
    results, failures = [], []

    def steady():
        try:
            with connect(server, autocommit=True) as conn:
                for _ in range(25):
                    results.append(conn.execute(
                        "SELECT contract, avg(predict_churn_probability(c)) FROM customers c "
                        "GROUP BY contract ORDER BY contract").fetchall())
        except Exception as exc:  # collected and asserted on below
            failures.append(exc)

    thread = threading.Thread(target=steady)
    thread.start()
    with connect(server, autocommit=True) as bad:
        for _ in range(5):
            with pytest.raises(psycopg.errors.UndefinedFunction, match="predict_nope"):
                bad.execute("SELECT predict_nope(c) FROM customers c")
            with pytest.raises(psycopg.Error, match="model 'nope' does not exist") as info:
                bad.execute("SELECT * FROM ml_show_model(%s)", ["nope"])
            assert info.value.sqlstate == "42704"
            with pytest.raises(psycopg.Error, match="target") as info:
                bad.execute("SELECT ml_create_model('bad', 'customers', target := 'nope')")
            # the failing session itself goes on
            assert bad.execute("SELECT 41 + %s", [1]).fetchall() == [(42,)]
    thread.join(60)
    assert not failures
    assert len(results) == 25 and all(r == want for r in results)


# -- catalog queries: psql 15's, captured with psql -E, and SQLAlchemy's --------------------------
def _run_captured(conn, command: str, oid: int) -> list[list[tuple]]:
    return [conn.execute(q.replace("{oid}", str(oid))).fetchall() for q in QUERIES[command]]


@NEEDS_DUCKDB_2
def test_psql_describe_queries_answer_from_the_catalog(served):
    con, server = served
    with connect(server, autocommit=True) as conn:
        (tables,) = _run_captured(conn, "\\dt", 0)
        assert tables == [("main", "customers", "table", "sqlml")]
        found, flags, columns, *rest = _run_captured(conn, "\\d customers", 0)
        ((oid, schema, name),) = found
        assert (schema, name) == ("main", "customers")
        found, flags, columns, *rest = _run_captured(conn, "\\d customers", oid)
        assert flags[0][1] == "r"
        described = con.execute("DESCRIBE customers").fetchall()
        assert [c[0] for c in columns] == [d[0] for d in described]
        types = dict((c[0], c[1]) for c in columns)
        assert types["customer_id"] == "bigint" and types["plan"] == "character varying"
        assert types["monthly_charges"] == "double precision" and types["autopay"] == "boolean"
        assert all(r == [] for r in rest)   # no policies, statistics, publications, parents
        (schemas,) = _run_captured(conn, "\\dn", 0)
        assert {s[0] for s in schemas} >= {"main", "sqlml"}
        (databases,) = _run_captured(conn, "\\l", 0)
        assert [d[0] for d in databases] == ["memory"]
        (functions,) = _run_captured(conn, "\\df ml_f1", 0)
        assert functions and functions[0][1] == "ml_f1"


# What PostgreSQL JDBC (Metabase, DBeaver) sends for DatabaseMetaData.getTables/getColumns.
JDBC_TABLES = (
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, "
    "CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema' WHEN true THEN 'SYSTEM' "
    "WHEN false THEN CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' "
    "WHEN 'v' THEN 'VIEW' ELSE NULL END ELSE NULL END AS TABLE_TYPE, d.description AS REMARKS "
    "FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_description d "
    "ON (c.oid = d.objoid AND d.objsubid = 0 and d.classoid = 'pg_class'::regclass) "
    "WHERE c.relnamespace = n.oid AND c.relname LIKE 'customers' "
    "ORDER BY TABLE_TYPE,TABLE_SCHEM,TABLE_NAME")
JDBC_COLUMNS = (
    "SELECT * FROM (SELECT n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull OR "
    "(t.typtype = 'd' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,t.typtypmod,"
    "row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, "
    "nullif(a.attidentity, '') as attidentity,nullif(a.attgenerated, '') as attgenerated,"
    "pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,"
    "t.typtype FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON "
    "(c.relnamespace = n.oid) JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid) "
    "JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) LEFT JOIN pg_catalog.pg_attrdef def ON "
    "(a.attrelid=def.adrelid AND a.attnum = def.adnum) LEFT JOIN pg_catalog.pg_description dsc "
    "ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) LEFT JOIN pg_catalog.pg_class dc ON "
    "(dc.oid=dsc.classoid AND dc.relname='pg_class') LEFT JOIN pg_catalog.pg_namespace dn ON "
    "(dc.relnamespace=dn.oid AND dn.nspname='pg_catalog') WHERE c.relkind in "
    "('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped AND c.relname LIKE "
    "'customers') c WHERE true ORDER BY nspname,c.relname,attnum")


def test_jdbc_metadata_queries_list_tables_and_every_column(served):
    con, server = served
    with connect(server, autocommit=True) as conn:
        tables = conn.execute(JDBC_TABLES).fetchall()
        columns = conn.execute(JDBC_COLUMNS).fetchall()
        user = conn.execute("SELECT current_user, session_user").fetchall()
    assert [t[1:4] for t in tables] == [("main", "customers", "TABLE")]
    # every column, the TIMESTAMP_NS one included (DuckDB's pg_type lacks its type)
    assert [c[2] for c in columns] == [d[0] for d in con.execute("DESCRIBE customers"
                                                                 ).fetchall()]
    assert user == [("sqlml", "sqlml")]


@NEEDS_DUCKDB_2
def test_sqlalchemy_postgres_dialect_reflects_and_reads(served):
    sa = pytest.importorskip("sqlalchemy")
    pd = pytest.importorskip("pandas")
    con, server = served
    engine = sa.create_engine(
        f"postgresql+psycopg://sqlml:{PASSWORD}@127.0.0.1:{server.port}/shop")
    try:
        inspector = sa.inspect(engine)
        assert inspector.get_table_names() == ["customers"]
        columns = {c["name"]: c["type"] for c in inspector.get_columns("customers")}
        assert isinstance(columns["tenure_months"], sa.BigInteger)
        assert isinstance(columns["signup_date"], sa.DateTime)
        frame = pd.read_sql(sa.text("SELECT customer_id, churned, predict_churn(c) AS label, "
                                    "predict_churn_probability(c) AS p FROM customers c "
                                    "WHERE tenure_months > :t ORDER BY customer_id"),
                            engine, params={"t": 6})
    finally:
        engine.dispose()
    model = sqlml.load_model(con, "churn")
    source = con.execute(f"SELECT {FEATURES} FROM customers WHERE tenure_months > 6 "
                         f"ORDER BY customer_id").df()
    np.testing.assert_allclose(frame["p"], model.predict_proba(source)[:, 1], rtol=1e-9)
    # the metrics, over the wire, equal scikit-learn's on the same rows
    with connect(server, autocommit=True) as conn:
        f1, auc = conn.execute("SELECT ml_f1(churned, predict_churn(c)), "
                               "ml_roc_auc(churned, predict_churn_probability(c)) "
                               "FROM customers c WHERE tenure_months > %s", [6]).fetchall()[0]
    assert f1 == pytest.approx(f1_score(frame["churned"], frame["label"]))
    assert auc == pytest.approx(roc_auc_score(frame["churned"], frame["p"]))


# -- the protocol itself, through the raw client -----------------------------------------------
def test_simple_query_runs_several_statements_and_reports_tags(open_server):
    raw = RawClient(open_server.port, ssl_request=True)
    assert raw.ssl_answer == b"N"
    msgs = raw.query("CREATE TEMP TABLE s (a INTEGER); INSERT INTO s VALUES (1), (2), (3); "
                     "SELECT a FROM s ORDER BY a; UPDATE s SET a = a + 1 WHERE a > 1; "
                     "DELETE FROM s WHERE a = 4; BEGIN; SELECT 1; COMMIT")
    tags = [body for kind, body in msgs if kind == "C"]
    assert tags == ["CREATE TABLE", "INSERT 0 3", "SELECT 3", "UPDATE 2", "DELETE 1", "BEGIN",
                    "SELECT 1", "COMMIT"]
    rows = [body for kind, body in msgs if kind == "D"]
    assert rows[:3] == [[b"1"], [b"2"], [b"3"]]
    assert msgs[-1] == ("Z", "I")
    assert raw.query("")[0][0] == "I"                       # EmptyQueryResponse
    # an error stops the rest of the string; the status byte follows BEGIN and the error
    msgs = raw.query("BEGIN; SELECT 1; SELECT * FROM no_such_table; SELECT 2")
    errors = [body for kind, body in msgs if kind == "E"]
    assert [e["C"] for e in errors] == ["42P01"] and "no_such_table" in errors[0]["M"]
    assert [body for kind, body in msgs if kind == "C"] == ["BEGIN", "SELECT 1"]
    assert msgs[-1] == ("Z", "E")
    msgs = raw.query("COMMIT")                              # commit of a failed one rolls back
    assert [body for kind, body in msgs if kind == "C"] == ["ROLLBACK"]
    assert msgs[-1] == ("Z", "I")
    raw.close()


def test_extended_protocol_skips_to_sync_after_an_error(open_server):
    raw = RawClient(open_server.port)
    # The statement is checked when it runs (Postgres checks at Parse); either way what
    # follows the error up to Sync is skipped, and Sync answers ReadyForQuery.
    raw.send(parse("SELEKT 1"), bind([]), execute(), parse("SELECT 1"), bind([]), execute(),
             sync())
    msgs = raw.until_ready()
    assert [k for k, _ in msgs] == ["1", "2", "E", "Z"]
    assert msgs[2][1]["C"] == "42601" and "SELEKT" in msgs[2][1]["M"]
    raw.send(parse("SELECT $1::INTEGER * 2 AS doubled", "st1", (23,)), describe("S", "st1"),
             sync())
    msgs = raw.until_ready()
    assert [k for k, _ in msgs] == ["1", "t", "T", "Z"]
    assert msgs[1][1] == [23] and msgs[2][1] == [("doubled", 23, 0)]
    for value in ("4", "21"):
        raw.send(bind([value], "st1"), execute(), sync())
        msgs = raw.until_ready()
        assert [k for k, _ in msgs] == ["2", "D", "C", "Z"]
        assert msgs[1][1] == [str(int(value) * 2).encode()]
    raw.close()


def test_execute_with_a_row_limit_suspends_the_portal(open_server):
    raw = RawClient(open_server.port)
    raw.send(parse("SELECT range AS i FROM range(5)"), bind([], portal="p"),
             describe("P", "p"), execute("p", 2), execute("p", 2), execute("p", 2), sync())
    msgs = raw.until_ready()
    kinds = [k for k, _ in msgs]
    assert kinds == ["1", "2", "T", "D", "D", "s", "D", "D", "s", "D", "C", "Z"]
    assert [v[0] for k, v in msgs if k == "D"] == [b"0", b"1", b"2", b"3", b"4"]
    # binary results where asked: int8 as 8 bytes
    raw.send(parse("SELECT 258::BIGINT AS n"), bind([], result_formats=(1,)), describe("P"),
             execute(), sync())
    msgs = raw.until_ready()
    assert msgs[2] == ("T", [("n", 20, 1)])
    assert msgs[3] == ("D", [(258).to_bytes(8, "big")])
    raw.close()


def test_unsupported_messages_and_multiple_commands_in_parse(open_server):
    raw = RawClient(open_server.port)
    raw.send(parse("SELECT 1; SELECT 2"), sync())
    msgs = raw.until_ready()
    assert msgs[0][0] == "E" and "multiple commands" in msgs[0][1]["M"]
    msgs = raw.query("SELECT 'still here'")
    assert [v for k, v in msgs if k == "D"] == [[b"still here"]]
    raw.close()


def test_cancel_request_stops_a_long_query_only(served):
    _, server = served
    with connect(server, autocommit=True) as conn, connect(server, autocommit=True) as other:
        cancel = getattr(conn, "cancel_safe", conn.cancel)
        timer = threading.Timer(0.5, cancel)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled, match="canceling statement"):
            conn.execute("SELECT sum(random()) FROM range(5000000000)")
        timer.join()
        assert conn.execute("SELECT 1").fetchall() == [(1,)]
        assert other.execute("SELECT count(*) FROM customers").fetchall() == [(500,)]


def test_an_unknown_message_type_ends_the_connection(open_server):
    raw = RawClient(open_server.port)
    raw.send(b"F" + (4).to_bytes(4, "big"))          # FunctionCall: not supported
    kind, body = raw.read()
    assert kind == "E"
    assert b"08P01" in body and b"invalid frontend message type 'F'" in body
    with pytest.raises(ConnectionError):
        raw.read()


def test_a_silent_client_is_disconnected(open_server, monkeypatch):
    import socket

    from sqlml.server.pgwire import session

    monkeypatch.setattr(session, "STARTUP_TIMEOUT", 0.3)
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=10) as sock:
        assert sock.recv(1) == b""           # closed by the server, not by our timeout
    raw = RawClient(open_server.port)             # and the server goes on
    assert [v for k, v in raw.query("SELECT 1") if k == "D"] == [[b"1"]]
    raw.close()


def test_numeric_and_interval_edge_values_in_both_formats(served):
    import datetime as dt

    _, server = served
    decimals = ["0", "-1.5", "0.0001", "12345678901234567890.0123456789", "-0.0100000000",
                "10000", "99999999999999999999999999.999999999999"]
    sql = ("SELECT x::DECIMAL(38, 12) FROM (VALUES " + ", ".join(f"('{d}')" for d in decimals)
           + ") v(x)")
    with connect(server, autocommit=True) as conn:
        for binary in (False, True):
            got = [r[0] for r in conn.cursor(binary=binary).execute(sql).fetchall()]
            assert got == [Decimal(d) for d in decimals], f"binary={binary}"
            assert all(g.as_tuple().exponent == -12 for g in got)
        intervals = conn.execute("SELECT INTERVAL '-1 day 3 hours', INTERVAL '36 hours 0.25 "
                                 "seconds', INTERVAL '0 seconds'").fetchall()[0]
        assert intervals == (dt.timedelta(days=-1, hours=3),
                             dt.timedelta(hours=36, microseconds=250000), dt.timedelta(0))
        nan, inf, small = conn.execute("SELECT 'NaN'::DOUBLE, 'inf'::DOUBLE, -0.1::DOUBLE"
                                       ).fetchall()[0]
        assert nan != nan and inf == float("inf") and small == -0.1


def test_set_timezone_is_reported_and_used_for_timestamptz(served):
    import datetime as dt

    _, server = served
    with connect(server, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'America/New_York'")
        assert conn.info.parameter_status("TimeZone") == "America/New_York"
        (value,) = conn.execute("SELECT TIMESTAMPTZ '2024-07-01 12:00:00+00'").fetchall()[0]
        assert value == dt.datetime(2024, 7, 1, 12, tzinfo=dt.UTC)
        assert value.utcoffset() == dt.timedelta(hours=-4)
        conn.execute("SET TIME ZONE 'UTC'")
        assert conn.info.parameter_status("TimeZone") == "UTC"


@pytest.mark.parametrize(("postgres", "expected"), [
    ("SELECT 'abc' OPERATOR(pg_catalog.~) '^a' COLLATE pg_catalog.default", True),
    ("SELECT 'abc' OPERATOR(pg_catalog.!~) '^a'", False),
    ("SELECT 'ABC' ~* 'b'", True),
    ("SELECT 2 OPERATOR(pg_catalog.>=) 3", False),
    ("SELECT 'rw_probe'::regclass = (SELECT oid FROM pg_class WHERE relname = 'rw_probe')", True),
    ("SELECT 'rw_probe'::pg_catalog.regclass::oid > 0", True),
    ("SELECT c.oid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_class c "
     "WHERE c.relname = 'rw_probe'", "rw_probe"),
    ("SELECT 23::regtype::text", "integer"),
    ("SELECT pg_catalog.format_type(1043, -1)", "character varying"),
    ("SELECT pg_catalog.pg_get_userbyid(10)", "alice"),
    ("SELECT current_user", "alice"),
    ("SELECT current_setting('server_version_num')", "150000"),
    ("SELECT pg_catalog.array_to_string(ARRAY['a', 'b'], ', ')", "a, b"),
    ("SELECT json_build_object('k', 1)::VARCHAR", '{"k":1}'),
])
def test_postgres_syntax_rewritten_for_duckdb(postgres, expected, rewriting):
    cur, compat = rewriting
    duck = compat.rewrite(postgres)
    assert cur.execute(duck).fetchall() == [(expected,)], duck


@pytest.fixture(scope="module")
def rewriting():
    from sqlml.server.pgwire.compat import Compat

    con = sqlml.connect()
    cur = con.cursor()
    cur.execute("CREATE TABLE rw_probe (a INTEGER)")
    compat = Compat(cur, user="alice", pid=1, read_only=False)
    compat.install()
    yield cur, compat
    con.close()
