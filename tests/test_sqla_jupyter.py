"""SQLAlchemy engines (duckdb-engine) and jupysql cells against databases with sqlml installed."""

import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import SMALL_CUSTOMERS

import sqlml
from sqlml import context

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("duckdb_engine")

SCORES = ("SELECT customer_id, predict_churn(c) AS churn, predict_churn_probability(c) AS p "
          "FROM customers c ORDER BY customer_id")


# pandas.read_sql's error for a failing query: pandas 3 wraps the driver's in DatabaseError,
# pandas 2 lets SQLAlchemy's through.
READ_SQL_ERRORS = (pd.errors.DatabaseError, sa.exc.DBAPIError)

def load_customers(con):
    for stmt in SMALL_CUSTOMERS.strip().split(";\n"):
        if stmt.strip():
            con.execute(stmt)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A database file with 600 customers and a logistic churn model, and the in-process answer."""
    path = tmp_path_factory.mktemp("sqla") / "shop.duckdb"
    con = sqlml.connect(path)
    load_customers(con)
    con.execute("SELECT ml_create_model('churn', 'customers', target := 'churned', "
                "model_type := 'logistic', function := 'predict_churn')").fetchall()
    expected = con.execute(SCORES).df()
    # An independent reference: the stored scikit-learn pipeline itself.
    model = sqlml.load_model(con, "churn")
    frame = con.execute("FROM customers ORDER BY customer_id").df()
    columns = [pa.array(frame[f.name]) for f in model.features]
    pipeline = model.pipeline
    proba = pipeline.predict_proba(model.frame(columns, "predict_churn"))[
        :, list(pipeline.classes_).index(True)]
    np.testing.assert_allclose(expected["p"].to_numpy(), proba, rtol=1e-9, atol=1e-12)
    yield path, con, expected
    con.close()


def same_scores(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(frame.columns) == ["customer_id", "churn", "p"]
    assert frame["customer_id"].tolist() == expected["customer_id"].tolist()
    assert frame["churn"].astype(bool).tolist() == expected["churn"].astype(bool).tolist()
    np.testing.assert_allclose(frame["p"].astype(float).to_numpy(), expected["p"].to_numpy(),
                               rtol=1e-12)


def test_read_sql_equals_the_in_process_answer(shop):
    path, _, expected = shop
    engine = sqlml.create_engine(path)
    try:
        same_scores(pd.read_sql(SCORES, engine), expected)
        url_engine = sqlml.create_engine(f"duckdb:///{path}")
        same_scores(pd.read_sql(SCORES, url_engine), expected)
        url_engine.dispose()
    finally:
        engine.dispose()


def test_every_pooled_connection_is_installed_across_threads(shop):
    path, _, expected = shop
    engine = sqlml.create_engine(path, pool_size=2, max_overflow=2)
    together = threading.Barrier(4)
    seen = []

    def hold_and_score(_):
        # All four hold a connection at once, so the pool opens four (two beyond pool_size).
        with engine.connect() as conn:
            raw = sqlml.integrations.sqlalchemy.duckdb_connection(conn.connection.driver_connection)
            together.wait(timeout=30)
            frame = pd.read_sql(SCORES, conn)
            inst = context.lookup(raw)
            seen.append((id(raw), any(ref() is raw for ref in inst._connections)))
            return frame

    try:
        with ThreadPoolExecutor(4) as pool:
            frames = list(pool.map(hold_and_score, range(4)))
        assert len({i for i, _ in seen}) == 4
        assert all(installed for _, installed in seen)
        for frame in frames:
            same_scores(frame, expected)
        # Then many short checkouts from more threads than connections: all answer alike.
        with ThreadPoolExecutor(6) as pool:
            frames = list(pool.map(lambda _: pd.read_sql(SCORES, engine), range(18)))
        for frame in frames:
            same_scores(frame, expected)
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


def test_read_only_engine_installs_each_connection(tmp_path):
    # A file sqlml never wrote to, opened read-only, gets sqlml's macros per connection (they
    # cannot be stored in it), so only the connect hook gives each pooled connection ml_accuracy.
    path = tmp_path / "plain.duckdb"
    plain = duckdb.connect(str(path), config={"storage_compatibility_version": "v1.4.0"})
    plain.execute("CREATE TABLE t AS SELECT i % 3 AS actual, i % 2 AS predicted "
                  "FROM range(10) r(i)")
    plain.close()
    query = "SELECT ml_accuracy(actual, predicted) AS acc FROM t"
    expected = sum(i % 3 == i % 2 for i in range(10)) / 10

    without = sa.create_engine(f"duckdb:///{path}", connect_args={
        "read_only": True, "config": {"storage_compatibility_version": "v1.4.0"}})
    with pytest.raises(READ_SQL_ERRORS, match="ml_accuracy does not exist"):
        pd.read_sql(query, without)
    without.dispose()

    engine = sqlml.create_engine(path, read_only=True, pool_size=2, max_overflow=1)
    together = threading.Barrier(3)

    def score(_):
        with engine.connect() as conn:
            together.wait(timeout=30)
            return pd.read_sql(query, conn)["acc"].iloc[0]

    try:
        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(score, range(3))) == [expected] * 3
    finally:
        engine.dispose()


def test_install_on_engine_of_a_plain_duckdb_engine(tmp_path):
    path = tmp_path / "mine.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}", connect_args={
        "config": {"storage_compatibility_version": "v1.4.0"}})
    assert sqlml.install_on_engine(sqlml.install_on_engine(engine)) is engine
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(SMALL_CUSTOMERS)
        pd.read_sql("SELECT ml_create_model('c2', 'customers', target := 'churned', "
                    "model_type := 'logistic', function := 'predict_c2')", engine)
        got = pd.read_sql("SELECT count(*) AS n, sum(predict_c2(c)::INT) AS pos FROM customers c",
                          engine)
        # duckdb-engine opens files with settings of its own; DuckDB wants one set per file.
        engine.dispose()
        con = duckdb.connect(str(path), config={"storage_compatibility_version": "v1.4.0"})
        sqlml.install(con)
        want = con.execute("SELECT count(*), sum(predict_c2(c)::INT) FROM customers c").fetchall()
        con.close()
        assert [tuple(got.iloc[0])] == want
        assert want[0][0] == 600
    finally:
        engine.dispose()


def test_engine_on_an_open_connection_shares_its_in_memory_models(customers):
    con = customers
    con.execute("SELECT ml_create_model('mem', 'customers', target := 'churned', "
                "model_type := 'logistic', function := 'predict_churn')").fetchall()
    engine = sqlml.create_engine(con, pool_size=2)
    try:
        with ThreadPoolExecutor(4) as pool:
            frames = list(pool.map(lambda _: pd.read_sql(SCORES, engine), range(8)))
        expected = con.execute(SCORES).df()
        for frame in frames:
            same_scores(frame, expected)
    finally:
        engine.dispose()
    # A new in-memory engine is one database for all its pooled connections.
    mem = sqlml.create_engine(None, pool_size=2)
    try:
        with mem.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE x AS SELECT 1 AS a")
        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(lambda _: int(pd.read_sql("FROM x", mem)["a"][0]),
                                 range(3))) == [1, 1, 1]
    finally:
        mem.dispose()


def test_new_files_use_the_storage_format_sqlml_connect_uses(tmp_path):
    path = tmp_path / "fresh.duckdb"
    engine = sqlml.create_engine(path)
    got = pd.read_sql("SELECT current_setting('storage_compatibility_version') AS v, "
                      "count(*) AS n FROM ml_models()", engine)
    engine.dispose()
    assert got.to_dict("records") == [{"v": "v1.4.0", "n": 0}]
    cli = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(cli).exists():
        pytest.skip("the duckdb CLI (PyPI duckdb-cli) is not installed")
    done = subprocess.run([cli, "-readonly", str(path), "-c", "SELECT count(*) FROM sqlml.models"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_unknown_model_error_reaches_the_client_and_the_pool_keeps_serving(shop):
    path, _, expected = shop
    engine = sqlml.create_engine(path, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(READ_SQL_ERRORS,
                           match=r"model 'nope' does not exist .*Models in this database: churn"):
            pd.read_sql("SELECT ml_predict('nope', c) FROM customers c", engine)
        same_scores(pd.read_sql(SCORES, engine), expected)
        # On one SQLAlchemy connection, the failed statement leaves DuckDB's transaction aborted,
        # reported as SQLAlchemy's PendingRollbackError until it is rolled back.
        with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError, match="model 'nope' does not exist"):
                conn.exec_driver_sql("SELECT ml_predict('nope', c) FROM customers c")
            with pytest.raises(sa.exc.PendingRollbackError,
                               match=r"transaction was aborted by an earlier failed statement.*"
                                     r"Roll it back first.*DuckDB said: .*please ROLLBACK"):
                conn.exec_driver_sql(SCORES)
            conn.rollback()
            same_scores(pd.read_sql(SCORES, conn), expected)
    finally:
        engine.dispose()


def test_create_engine_errors(shop, tmp_path, monkeypatch):
    path, _, _ = shop
    with pytest.raises(sqlml.SqlmlError, match=r"'postgresql://u@h/db' is not a DuckDB database "
                                               r"\(backend 'postgresql'\).*duckdb:///shop.duckdb"):
        sqlml.create_engine("postgresql://u@h/db")
    with pytest.raises(sqlml.SqlmlError, match=r"connect_args \['preload_extensions'\] are not "
                                               r"supported.*install_on_engine"):
        sqlml.create_engine(path, connect_args={"preload_extensions": ["json"]})
    with pytest.raises(sqlml.SqlmlError, match=r"given an open connection \(config=\{'threads': "
                                               r"1\}.*sqlml.connect\(path"):
        sqlml.create_engine(duckdb.connect(), config={"threads": 1})
    with pytest.raises(sqlml.SqlmlError, match=r"uses the 'sqlite' dialect; sqlml installs into "
                                               r"DuckDB connections only"):
        sqlml.install_on_engine(sa.create_engine("sqlite://"))
    with pytest.raises(sqlml.SqlmlError, match="expected a sqlalchemy Engine, got str"):
        sqlml.install_on_engine("duckdb:///x.duckdb")
    # The module's reference connection holds the file open with sqlml.connect's settings.
    other = sqlml.create_engine(path, config={"threads": 1})
    with pytest.raises(sqlml.SqlmlError, match=r"is already open in this process with other "
                                               r"settings.*sqlml.create_engine\(con\)"):
        other.connect()
    other.dispose()
    monkeypatch.setitem(sys.modules, "duckdb_engine", None)
    with pytest.raises(ImportError, match=r"sqlml.create_engine needs SQLAlchemy and "
                                          r"duckdb-engine, and duckdb_engine is not installed. "
                                          r"Install them with: pip install 'sqlml\[sqlalchemy\]'"):
        sqlml.create_engine(tmp_path / "x.duckdb")


@pytest.fixture
def shell(tmp_path, monkeypatch):
    pytest.importorskip("sql.magic")  # jupysql
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    # jupysql's telemetry would try to reach the network; the history goes nowhere.
    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")
    monkeypatch.setenv("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    sh = InteractiveShell.instance(config=cfg)
    sh.run_line_magic("load_ext", "sql")
    sh.run_line_magic("config", "SqlMagic.displaylimit = 0")
    yield sh
    from sql.connection import ConnectionManager

    ConnectionManager.close_all()
    InteractiveShell.clear_instance()


def test_jupysql_cells_on_a_connection_and_an_engine(shop, shell):
    path, _, expected = shop
    con = sqlml.connect(path)
    engine = sqlml.create_engine(path)
    shell.user_ns.update(con=con, engine=engine)
    try:
        shell.run_line_magic("sql", "con")
        same_scores(shell.run_cell_magic("sql", "", SCORES).DataFrame(), expected)
        shell.run_line_magic("sql", "engine")
        same_scores(shell.run_cell_magic("sql", "", SCORES).DataFrame(), expected)
        # A line magic too, with a GROUP BY over the predictions.
        grouped = shell.run_line_magic(
            "sql", "SELECT predict_churn(c) AS churn, count(*) AS n FROM customers c "
                   "GROUP BY ALL ORDER BY churn").DataFrame()
        want = expected.groupby("churn").size()
        assert grouped["n"].tolist() == want.tolist()
        from IPython.core.error import UsageError

        with pytest.raises(UsageError, match=r"ModelNotFoundError: model reference 'nope': "
                                              r"model 'nope' does not exist"):
            shell.run_cell_magic("sql", "", "SELECT ml_predict('nope', c) FROM customers c")
        # The cell after a failing one runs as before: jupysql rolls the aborted transaction back
        # when told so by the PendingRollbackError sqlml's engine reports.
        from sql.connection.connection import JupySQLRollbackPerformed

        with pytest.warns(JupySQLRollbackPerformed):
            same_scores(shell.run_cell_magic("sql", "", SCORES).DataFrame(), expected)
        shell.run_line_magic("sql", "con")
        # On a DuckDB connection jupysql runs each cell on a new cursor, which does not see the
        # connection's session functions: the generated functions serve their compiled SQL,
        # and what needs Python says how to get it (DuckDB's own exception, passed through).
        with pytest.raises(duckdb.InvalidInputException, match=r"ml_predict needs sqlml's "
                                                               r"Python package.*sqlml\.install"):
            shell.run_cell_magic("sql", "", "SELECT ml_predict('nope', c) FROM customers c")
        same_scores(shell.run_cell_magic("sql", "", SCORES).DataFrame(), expected)
    finally:
        engine.dispose()



@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sqlalchemy_postgres_dialect_over_the_wire(shop, driver):
    """What Superset does: SQLAlchemy's PostgreSQL dialect against `sqlml serve`'s protocol."""
    pytest.importorskip(driver)
    from sqlml.server import pgwire

    _, con, expected = shop
    server = pgwire.start_in_thread(con, host="127.0.0.1", port=0, password="s3cret")
    url = f"postgresql+{driver}://sqlml:s3cret@127.0.0.1:{server.port}/shop"
    engine = sa.create_engine(url)
    try:
        same_scores(pd.read_sql(SCORES, engine), expected)
        few = pd.read_sql(sa.text("SELECT customer_id FROM customers WHERE customer_id < :n "
                                  "ORDER BY customer_id"), engine, params={"n": 3})
        assert few["customer_id"].tolist() == [0, 1, 2]
        # The table browser: tables and their columns, as DuckDB describes them.
        inspector = sa.inspect(engine)
        assert "customers" in inspector.get_table_names()
        want = [r[0] for r in con.execute("DESCRIBE customers").fetchall()]
        assert [c["name"] for c in inspector.get_columns("customers")] == want
        with pytest.raises(READ_SQL_ERRORS, match=r"model 'nope' does not exist"):
            pd.read_sql("SELECT ml_predict('nope', c) FROM customers c", engine)
        same_scores(pd.read_sql(SCORES, engine), expected)
        wrong = sa.create_engine(url.replace("s3cret", "wrong"))
        with pytest.raises(sa.exc.OperationalError,
                           match='password authentication failed for user "sqlml"'):
            wrong.connect()
        wrong.dispose()
    finally:
        engine.dispose()
        server.stop()
