"""psql (PostgreSQL 15's client) against the Postgres wire protocol server: catalog commands,
scoring and metrics queries, CREATE MODEL, a wrong password. Skipped where psql is absent."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess

import duckdb
import pytest
from pg_served import FEATURES, served_churn_model
from sklearn.metrics import f1_score, roc_auc_score

import sqlml

PSQL = shutil.which("psql")
pytestmark = pytest.mark.skipif(PSQL is None, reason="psql is not installed (Debian package "
                                                     "postgresql-client; .ci/run installs it)")
PASSWORD = "psql-test-secret"


# psql's describe queries and SQLAlchemy's reflection bind only on DuckDB 2's pg_catalog (on 1.4
# and 1.5 DuckDB's own catalog views fail them), a documented limitation.
NEEDS_DUCKDB_2 = pytest.mark.skipif(int(duckdb.__version__.split(".")[0]) < 2,
                                    reason="describe queries need DuckDB 2's pg_catalog")


@pytest.fixture(scope="module")
def served():
    with served_churn_model(PASSWORD) as pair:
        yield pair


def psql(server, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    env.pop("PGSERVICE", None)
    return subprocess.run([PSQL, "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", "sqlml",
                           "-d", "shop", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def rows(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_dt_lists_the_tables_on_the_search_path(served):
    _, server = served
    out = psql(server, "-c", "\\dt")
    assert out.returncode == 0, out.stderr
    lines = [line.split("|") for line in out.stdout.splitlines() if "|" in line]
    assert [c.strip() for c in lines[0]] == ["Schema", "Name", "Type", "Owner"]
    assert [[c.strip() for c in line] for line in lines[1:]] == [
        ["main", "customers", "table", "sqlml"]]


@NEEDS_DUCKDB_2
def test_d_table_describes_every_column(served):
    con, server = served
    out = psql(server, "-c", "\\d customers")
    assert out.returncode == 0, out.stderr
    assert 'Table "main.customers"' in out.stdout
    described = {name: typ for name, typ, *_ in con.execute("DESCRIBE customers").fetchall()}
    listed = {}
    for line in out.stdout.splitlines()[3:]:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 2 and cells[0] in described:
            listed[cells[0]] = cells[1]
    assert list(listed) == list(described)
    assert listed["customer_id"] == "bigint" and listed["contract"] == "character varying"
    assert listed["monthly_charges"] == "double precision" and listed["churned"] == "boolean"
    # \d+ and \dn, \l go through the same catalog layer
    for command in ("\\d+ customers", "\\dn", "\\l", "\\df ml_roc_auc"):
        out = psql(server, "-c", command)
        assert out.returncode == 0 and "ERROR" not in out.stderr, (command, out.stderr)


def _scored(con):
    """The customers with the stored pipeline's probability and label: the reference."""
    frame = con.execute(f"SELECT {FEATURES} FROM customers").df()
    model = sqlml.load_model(con, "churn")
    frame["p"] = model.predict_proba(frame)[:, 1]
    frame["label"] = model.predict(frame)
    return frame


def test_scoring_with_group_by_equals_the_model(served):
    con, server = served
    got = rows(psql(server, "--csv", "-c",
                    "SELECT contract, count(*) AS n, sum(predict_churn(c)::INT) AS churners, "
                    "avg(predict_churn_probability(c)) AS p FROM customers c "
                    "GROUP BY contract ORDER BY contract"))
    frame = _scored(con)
    want = frame.groupby("contract").agg(n=("p", "size"), churners=("label", "sum"),
                                         p=("p", "mean"))
    assert [r["contract"] for r in got] == list(want.index)
    for r in got:
        expected = want.loc[r["contract"]]
        assert int(r["n"]) == expected["n"] and int(r["churners"]) == expected["churners"]
        assert float(r["p"]) == pytest.approx(expected["p"], rel=1e-12)


def test_metrics_by_group_equal_scikit_learn(served):
    con, server = served
    got = rows(psql(server, "--csv", "-c",
                    "SELECT contract, ml_f1(churned, predict_churn(c)) AS f1, "
                    "ml_roc_auc(churned, predict_churn_probability(c)) AS auc "
                    "FROM customers c GROUP BY contract ORDER BY contract"))
    frame = _scored(con)
    for r in got:
        group = frame[frame["contract"] == r["contract"]]
        assert float(r["f1"]) == pytest.approx(f1_score(group["churned"], group["label"]))
        assert float(r["auc"]) == pytest.approx(roc_auc_score(group["churned"], group["p"]))
    assert len(got) == frame["contract"].nunique()


def test_create_model_statement_then_score_and_show(served):
    con, server = served
    out = psql(server, "-v", "ON_ERROR_STOP=1", "-c",
               "CREATE MODEL churn_psql FROM (SELECT tenure_months, contract, churned "
               "FROM customers) TARGET churned FUNCTION predict_churn_psql MODEL_TYPE logistic")
    assert out.returncode == 0, out.stderr
    assert "churn_psql" in out.stdout and "logistic" in out.stdout
    shown = dict((r["property"], r["value"])
                 for r in rows(psql(server, "--csv", "-c", "SHOW MODEL churn_psql")))
    assert shown["model_type"] == "logistic" and shown["function"] == "predict_churn_psql"
    # the model is in the served database: scored in-process and over the wire alike
    wire = rows(psql(server, "--csv", "-c", "SELECT count(*) FILTER (WHERE "
                                            "predict_churn_psql(c)) AS n FROM customers c"))
    local = con.execute("SELECT count(*) FILTER (WHERE predict_churn_psql(c)) "
                        "FROM customers c").fetchall()[0][0]
    assert int(wire[0]["n"]) == local
    out = psql(server, "-c", "DROP MODEL churn_psql")
    assert out.returncode == 0, out.stderr


def test_errors_leave_the_session_usable(served):
    _, server = served
    script = ("SELECT predict_nope(c) FROM customers c;\n"
              "SELECT * FROM ml_show_model('nope');\n"
              "CREATE MODEL x FROM customers TARGT churned FUNCTION f;\n"
              "SELECT 'after the errors' AS still;\n")
    # psql -c sends one query string, parsed whole first (as Postgres does): the syntax error
    # in its third statement is reported and nothing runs
    out = psql(server, "-c", script.replace("\n", " "))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("ERROR:  CREATE MODEL: line 1, column 109: expected TARGET")
    # from standard input psql sends the statements one by one: each error is reported, and
    # the session goes on to the next
    out = subprocess.run([PSQL, "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", "sqlml",
                          "-d", "shop"], input=script, capture_output=True, text=True,
                         env={**os.environ, "PGPASSWORD": PASSWORD}, timeout=60)
    assert "Scalar Function with name predict_nope does not exist" in out.stderr
    assert "model 'nope' does not exist" in out.stderr
    assert "expected TARGET" in out.stderr and "Did you mean TARGET" in out.stderr
    assert "after the errors" in out.stdout


def test_wrong_password_is_refused_then_the_right_one_works(served):
    _, server = served
    out = psql(server, "-c", "SELECT 1", password="not it")
    assert out.returncode == 2
    assert 'password authentication failed for user "sqlml"' in out.stderr
    out = psql(server, "--csv", "-c", "SELECT 1 AS one")
    assert rows(out) == [{"one": "1"}]
