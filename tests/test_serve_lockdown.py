"""`sqlml serve` is locked down by default: no server files, network, extensions, ATTACH or
server-wide settings for sessions; --read-only writes nothing, --allow-file-access included;
--allow-file-access gives file access back; a reader role scores but never trains, drops, rolls
back or writes. Each refusal is followed by a query on the same connection.

One module-scoped server per mode, started by ``serve.run`` in a thread (the code path of the
command), or by ``start_in_thread`` with a Policy; one test starts the command itself.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time

import duckdb
import pytest
from test_serve_cli import Served

import sqlml
from sqlml.datasets import make_customers
from sqlml.redshift.parser import parse
from sqlml.server import pgwire, policy, serve

psycopg = pytest.importorskip("psycopg")

PASSWORD, READER_PASSWORD, TOKEN = "admin-pw", "reader-pw", "rest-token"
FEATURES = "tenure_months, monthly_charges, contract, churned"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A database file with customers, a logistic model 'churn' (predict_churn), and a user's
    macro over ml_drop_model (a reader must not reach it through the macro either)."""
    path = tmp_path_factory.mktemp("shop") / "shop.duckdb"
    con = sqlml.connect(path)
    customers = make_customers(300)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM customers")
    sqlml.create_model(con, "churn", f"SELECT {FEATURES} FROM customers", target="churned",
                       model_type="logistic", function="predict_churn")
    con.execute("CREATE MACRO my_drop(m) AS ml_drop_model(m)")
    con.close()
    return path


def _copy(shop, tmp_path_factory, name: str):
    folder = tmp_path_factory.mktemp(name)
    shutil.copy(shop, folder / "shop.duckdb")
    return folder


class Running:
    """serve.run in a thread; ``port`` and ``http_port`` from what it prints."""

    def __init__(self, database, **options):
        self.lines: list[str] = []
        self.stop = threading.Event()
        options = dict(port=0, password=PASSWORD, echo=self.lines.append, stop=self.stop,
                       **options)
        self.thread = threading.Thread(target=serve.run, args=(str(database),), daemon=True,
                                       kwargs=options)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not any("Ctrl-C" in line for line in self.lines):
            assert self.thread.is_alive() and time.monotonic() < deadline, self.lines
            time.sleep(0.05)
        text = "\n".join(self.lines)
        self.port = int(re.search(r"Postgres wire protocol on 127\.0\.0\.1:(\d+)", text)[1])
        rest = re.search(r"REST endpoint on http://127\.0\.0\.1:(\d+)", text)
        self.http_port = int(rest[1]) if rest else None

    def connect(self, user: str = "sqlml", password: str = PASSWORD):
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                               dbname="shop", autocommit=True, connect_timeout=10)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture(scope="module")
def default(shop, tmp_path_factory):
    folder = _copy(shop, tmp_path_factory, "default")
    running = Running(folder / "shop.duckdb", http_port=0, token=TOKEN,
                      users=[f"ann:reader:{READER_PASSWORD}"])
    running.folder = folder
    yield running
    running.close()


@pytest.fixture(scope="module")
def read_only(shop, tmp_path_factory):
    folder = _copy(shop, tmp_path_factory, "read_only")
    running = Running(folder / "shop.duckdb", http_port=None, read_only=True)
    running.folder = folder
    yield running
    running.close()


@pytest.fixture(scope="module")
def file_access(shop, tmp_path_factory):
    folder = _copy(shop, tmp_path_factory, "file_access")
    running = Running(folder / "shop.duckdb", http_port=None, allow_file_access=True)
    running.folder = folder
    yield running
    running.close()


def refused(conn, sql: str, sqlstate: str, *fragments: str) -> str:
    """Run ``sql``, expect the refusal; then a query on the same connection still answers."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    message = str(info.value)
    assert info.value.sqlstate == sqlstate, message
    for fragment in fragments:
        assert fragment in message, message
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (300,)
    return message


# -- files, ATTACH, in the default mode and with --read-only -----------------------------------
@pytest.mark.parametrize("mode", ["default", "read_only"])
def test_file_read_file_write_and_attach_are_refused(mode, request):
    server = request.getfixturevalue(mode)
    target = server.folder / "out.csv"
    with server.connect() as conn:
        message = refused(conn, "SELECT * FROM read_text('/etc/hostname')", "42501",
                          "served sessions cannot reach the server's files or network",
                          '"/etc/hostname"', "--allow-file-access")
        assert "pg_read_server_files" in message
        refused(conn, f"SELECT * FROM read_csv('{server.folder}/x.csv')", "42501",
                "--allow-file-access")
        if mode == "default":
            refused(conn, f"COPY (SELECT 1) TO '{target}'", "42501",
                    # The statement is quoted up to 70 characters, so the folder's length
                    # (pytest's, longer under xdist) decides how much of the path shows.
                    "sqlml serve: COPY (SELECT 1) TO '",
                    "is refused: COPY TO a server file: served sessions cannot reach",
                    "COPY (query) TO STDOUT",
                    "--allow-file-access")
        else:
            refused(conn, f"COPY (SELECT 1) TO '{target}'", "25006",
                    "sqlml serve --read-only: writes are refused: COPY (SELECT 1) TO",
                    "writes a file on the server, and a read-only server writes nothing")
        refused(conn, f"COPY customers FROM '{server.folder}/in.csv'", "25006" if
                mode == "read_only" else "42501", "COPY customers FROM")
        refused(conn, f"ATTACH '{server.folder}/other.duckdb' AS other", "42501",
                "ATTACH opens another database file", "--allow-file-access")
        refused(conn, "ATTACH ':memory:' AS scratch", "42501", "is refused: ATTACH")
        refused(conn, f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{target}'",
                "42501" if mode == "default" else "25006", "COPY (SELECT 1) TO '")
    assert not target.exists()
    assert not (server.folder / "other.duckdb").exists()


@pytest.mark.parametrize("mode", ["default", "read_only"])
def test_extensions_and_server_settings_are_refused(mode, request):
    server = request.getfixturevalue(mode)
    with server.connect() as conn:
        refused(conn, "INSTALL httpfs", "42501", "INSTALL httpfs is refused",
                "Install and load extensions where the server starts")
        refused(conn, "LOAD json", "42501", "LOAD json is refused")
        refused(conn, "SET threads = 1", "42501", "SET threads = 1 is refused: DuckDB setting "
                "'threads' is the server's, not the session's",
                "sessions may set calendar, schema, search_path, timezone")
        refused(conn, "SET enable_external_access = true", "42501", "enable_external_access")
        refused(conn, "PRAGMA enable_profiling", "42501", "PRAGMA enable_profiling is refused")
        refused(conn, "CALL enable_logging()", "42501", "enable_logging() changes the server's")
        refused(conn, "SELECT * FROM enable_logging()", "42501", "enable_logging()")
        refused(conn, "SET GLOBAL TimeZone = 'UTC'", "42501", "SET GLOBAL would change it")
        refused(conn, f"EXPORT DATABASE '{server.folder}/export'",
                "42501" if mode == "default" else "25006", "EXPORT DATABASE")
        assert conn.execute("PRAGMA version").fetchone()[0].startswith("v")


def test_session_settings_the_wire_layer_needs_still_work(default):
    """lock_configuration exempts TimeZone (DuckDB's allowed_configs where it exists; sqlml's
    own SET rule on DuckDB 1.4), so drivers' SET TimeZone goes on working."""
    with default.connect() as conn:
        conn.execute("SET TimeZone = 'America/New_York'")
        assert conn.info.parameter_status("TimeZone") == "America/New_York"
        assert conn.execute("SHOW TimeZone").fetchone() == ("America/New_York",)
        conn.execute("SET TIME ZONE 'UTC'")
        assert conn.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        conn.execute("SET search_path = 'main'")
        conn.execute("SET application_name = 'lockdown test'")
        conn.execute("SET VARIABLE x = 41")
        assert conn.execute("SELECT getvariable('x') + 1").fetchone() == (42,)


def test_admin_trains_and_scores_on_a_locked_server(default):
    with default.connect() as conn:
        conn.execute(f"SELECT ml_create_model('churn2', 'SELECT {FEATURES} FROM customers', "
                     f"target := 'churned', model_type := 'logistic', "
                     f"function := 'predict_churn2')")
        n = conn.execute("SELECT count(*) FROM customers c WHERE predict_churn2(c) IS NOT NULL")
        assert n.fetchone() == (300,)
        # DuckDB's own lock holds inside sqlml's functions too: a training query reads no file.
        refused(conn, "SELECT ml_create_model('m9', 'SELECT * FROM read_text(''/etc/hostname'')',"
                      " target := 'size')", "42501", '"/etc/hostname"', "--allow-file-access")
        conn.execute("CREATE TABLE scratch AS SELECT 1 AS x")
        conn.execute("INSERT INTO scratch VALUES (2)")
        assert conn.execute("SELECT sum(x) FROM scratch").fetchone() == (3,)


def test_the_rest_endpoint_scores_on_a_locked_server(default):
    httpx = pytest.importorskip("httpx")
    url = f"http://127.0.0.1:{default.http_port}/v1/models/churn/predict"
    row = {"tenure_months": 3, "monthly_charges": 80.0, "contract": "month-to-month"}
    answer = httpx.post(url, json={"rows": [row]}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 1


# -- --allow-file-access -----------------------------------------------------------------------
def test_allow_file_access_reads_and_writes_files(file_access, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("x\n5\n")
    target = file_access.folder / "out.csv"
    with file_access.connect() as conn:
        assert conn.execute(f"SELECT content FROM read_text('{source}')").fetchone() == ("x\n5\n",)
        conn.execute(f"COPY (SELECT 7 AS y) TO '{target}' (HEADER)")
        assert target.read_text().split() == ["y", "7"]
        conn.execute(f"ATTACH '{file_access.folder}/other.duckdb' AS other")
        conn.execute("SET threads = 2")
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (300,)


def test_read_only_with_file_access_writes_nothing(shop, tmp_path):
    """--read-only --allow-file-access: files may be read, none written (start_in_thread with a
    Policy, as an embedding program would)."""
    con = sqlml.connect(shop, read_only=True)
    server = pgwire.start_in_thread(con, password=None, read_only=True,
                                    policy=policy.Policy(file_access=True, read_only=True))
    target = tmp_path / "out.csv"
    try:
        with psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml", dbname="shop",
                             autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM read_text('/etc/hostname')").fetchone() \
                == (1,)
            refused(conn, f"COPY (SELECT 1) TO '{target}'", "25006",
                    "a read-only server writes nothing (--allow-file-access included)")
            refused(conn, f"ATTACH '{tmp_path}/new.duckdb' AS n", "25006", "add (READ_ONLY)")
            refused(conn, "INSTALL httpfs", "25006", "extension folder")
            refused(conn, "SET threads = 1", "25006", "for the whole server")
            refused(conn, "CREATE TABLE t AS SELECT 1", "25006", "read-only")
    finally:
        server.stop()
        con.close()
    assert not target.exists() and not (tmp_path / "new.duckdb").exists()


# -- the reader role ---------------------------------------------------------------------------
def test_reader_scores_reads_the_catalog_and_selects(default):
    with default.connect("ann", READER_PASSWORD) as conn:
        assert conn.execute("SELECT count(*) FROM customers c WHERE predict_churn(c) IS NOT "
                            "NULL").fetchone() == (300,)
        assert conn.execute("SELECT count(*) FROM customers c WHERE ml_predict('churn', c) IS "
                            "NOT NULL").fetchone() == (300,)
        assert "churn" in {r[0] for r in conn.execute("SELECT name FROM ml_models()")}
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = "
                            "'customers'").fetchone() == (1,)
        assert conn.execute("SHOW MODEL churn").fetchall()
        conn.execute("CREATE TEMP TABLE mine AS SELECT 1 AS x")


READER_REFUSALS = [
    ("SELECT ml_create_model('m2', 'customers', target := 'churned')",
     "ml_create_model(...) writes (it trains, drops or rolls back a model"),
    ("CREATE MODEL m3 FROM customers TARGET churned FUNCTION predict_m3",
     "CREATE MODEL trains a model"),
    ("SELECT ml_drop_model('churn')", "ml_drop_model(...) writes"),
    ("DROP MODEL churn", "DROP MODEL drops a model"),
    ("SELECT ml_rollback_model('churn', 1)", "ml_rollback_model(...) writes"),
    ("SELECT my_drop('churn')", "my_drop(...) writes"),
    ("SELECT * FROM query('SELECT ml_drop_model(''churn'')')", "ml_drop_model(...) writes"),
    ("SELECT * FROM query('SELECT ml_' || 'drop_model(''churn'')')",
     "query(...) runs SQL that is built while the statement runs"),
    ("CREATE TEMP MACRO run_it(s) AS TABLE FROM query(s)",
     "query(...) runs SQL that is built while the statement runs"),
    ("INSERT INTO customers SELECT * FROM customers LIMIT 1", "INSERT writes to the database"),
    ("DELETE FROM customers", "DELETE writes to the database"),
    ("WITH gone AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM gone", "is refused: "),
    ("SELECT nextval('ids')", "nextval(...) writes"),
    ("CREATE TABLE copy AS FROM customers", "CREATE writes the database"),
    ("COPY customers FROM STDIN", "it writes a table"),
    ("SET threads = 1", "the server's, not the session's"),
]


@pytest.mark.parametrize(("sql", "reason"), READER_REFUSALS)
def test_reader_cannot_train_drop_roll_back_or_write(default, sql, reason):
    with default.connect("ann", READER_PASSWORD) as conn:
        message = refused(conn, sql, "42501",
                          'sqlml serve: permission denied for user "ann" (role reader): ', reason,
                          "connect as a user with role admin for that")
        assert "The reader role may score" in message
    with default.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ml_models() WHERE name = 'churn'").fetchone() \
            == (1,)


def test_reader_needs_its_own_password(default):
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for '
                                                       'user "ann"'):
        default.connect("ann", PASSWORD)


# -- the statement policy on its own (no server) -----------------------------------------------
@pytest.mark.parametrize(("sql", "allowed"), [
    ("COPY (SELECT 1) TO STDOUT (FORMAT csv)", True),
    ("COPY customers FROM STDIN", True),
    ("SELECT 'COPY x TO ''/tmp/y''' AS text -- ATTACH 'z'", True),
    ("COPY (SELECT 'a TO STDOUT') TO '/tmp/y.csv'", False),
    ("IMPORT DATABASE '/tmp/nowhere'", False),
    ("PREPARE p AS COPY (SELECT 1) TO '/tmp/y.csv'", False),
    ("DETACH shop", False),
    ("FORCE INSTALL httpfs", False),
])
def test_policy_classifies_by_duckdbs_parser(sql, allowed):
    con = duckdb.connect()
    con.execute("CREATE TABLE customers (x INTEGER)")
    st = parse(sql)[0]
    rules = policy.Policy(file_access=False)
    if allowed:
        rules.check(con, st, "sqlml")
    else:
        with pytest.raises(Exception) as info:
            rules.check(con, st, "sqlml")
        assert info.value.code == "42501" and "--allow-file-access" in info.value.text


def test_lock_down_holds_for_every_cursor_and_may_be_repeated():
    con = duckdb.connect()
    locked = policy.lock_down(con)
    assert policy.lock_down(con) == locked
    cur = con.cursor()
    with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
        cur.execute("SELECT * FROM read_text('/etc/hostname')")
    with pytest.raises(duckdb.Error):
        cur.execute("SET enable_external_access = true")
    if locked:   # DuckDB with allowed_configs (2.0): locked, TimeZone exempt
        cur.execute("SET TimeZone = 'Asia/Tokyo'")
        with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
            cur.execute("SET threads = 1")
    con.close()


# -- the command ---------------------------------------------------------------------------------
def test_the_command_takes_read_only_allow_file_access_and_a_generated_reader(shop, tmp_path):
    shutil.copy(shop, tmp_path / "shop.duckdb")
    db = tmp_path / "shop.duckdb"
    served = Served(str(db), "--port", "0", "--no-http", "--password", PASSWORD, "--read-only",
                    "--allow-file-access", "--user", "viewer:reader")
    try:
        port = served.started()
        text = "\n".join(served.lines)
        assert "--allow-file-access: sessions may read and write this machine's files" in text
        generated = re.search(r"Postgres user viewer \(reader\) password \(generated, shown "
                              r"once, stored hashed in \S+\): (\S+)", text)[1]
        with psycopg.connect(host="127.0.0.1", port=port, user="viewer", password=generated,
                             dbname="shop", autocommit=True) as conn:
            refused(conn, "SELECT ml_drop_model('churn')", "42501", "role reader")
        with psycopg.connect(host="127.0.0.1", port=port, user="sqlml", password=PASSWORD,
                             dbname="shop", autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM read_text('/etc/hostname')").fetchone() \
                == (1,)
            refused(conn, f"COPY (SELECT 1) TO '{tmp_path}/out.csv'", "25006",
                    "a read-only server writes nothing")
    finally:
        assert served.stop() == 0
    assert not (tmp_path / "out.csv").exists()
    stored = json.loads((tmp_path / "shop.duckdb.sqlml-serve.json").read_text())
    assert stored["users"]["viewer"]["pg_scram_verifier"].startswith("SCRAM-SHA-256$")
    assert generated not in json.dumps(stored)


def test_the_command_documents_the_risk_and_checks_user_values(tmp_path):
    from click.testing import CliRunner

    from sqlml.cli.commands import main

    help_text = " ".join(CliRunner().invoke(main, ["serve", "--help"]).output.split())
    assert "--allow-file-access Trusted setups only" in help_text
    assert "--user NAME:ROLE[:PASSWORD]" in help_text
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "x.duckdb"), "--user",
                                       "bob:boss:pw"])
    assert result.exit_code == 1
    assert "--user bob:boss...: expected NAME:ROLE[:PASSWORD] with ROLE one of admin, reader" \
        in result.output
