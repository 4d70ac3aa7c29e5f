"""Everything lives in the .duckdb file: a new process gets every model and function back."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clients import duckdb_cli
from conftest import SMALL_CUSTOMERS

import sqlml

SCORE = "SELECT predict_churn_probability(c) FROM customers c ORDER BY customer_id"


def make_file(path: Path):
    con = sqlml.connect(path)
    for stmt in SMALL_CUSTOMERS.strip().split(";\n"):
        con.execute(stmt)
    sqlml.create_model(con, "churn", "customers", target="churned", model_type="logistic")
    got = [r[0] for r in con.execute(SCORE).fetchall()]
    con.close()
    return got


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_new_process_restores_functions_and_predictions(db_path):
    here = make_file(db_path)
    code = (f"import json, sqlml; con = sqlml.connect({str(db_path)!r}); "
            f"print(json.dumps([r[0] for r in con.execute({SCORE!r}).fetchall()]))")
    there = json.loads(run_python(code))
    assert there == here


def test_reopen_read_only(db_path):
    here = make_file(db_path)
    con = sqlml.connect(db_path, read_only=True)
    assert [r[0] for r in con.execute(SCORE).fetchall()] == here
    assert con.execute("SELECT count(*) FROM ml_models()").fetchall() == [(1,)]


def test_drop_and_rollback_persist(db_path):
    make_file(db_path)
    con = sqlml.connect(db_path)
    sqlml.create_model(con, "churn", "customers", target="churned", model_type="random_forest",
                       function="score_churn")
    assert con.execute("SELECT count(score_churn(c)) FROM customers c").fetchall() == [(600,)]
    msg = con.execute("SELECT ml_rollback_model('churn', 1)").fetchall()[0][0]
    assert msg == "model 'churn' now serves version 1 (was 2)"
    v1 = [r[0] for r in con.execute(SCORE).fetchall()]
    with pytest.raises(Exception, match="score_churn"):
        con.execute("SELECT score_churn(c) FROM customers c").fetchall()
    # Version 1 is logistic, which its compiled SQL serves: Python agrees to 1e-12.
    py = [r[0] for r in con.execute("SELECT ml_predict_probability('churn', c) FROM customers c "
                                    "ORDER BY customer_id").fetchall()]
    assert py == pytest.approx(v1, rel=0, abs=1e-12)
    with pytest.raises(Exception, match=r"model 'churn' has no version 9; stored versions are "
                                        r"1, 2"):
        con.execute("SELECT ml_rollback_model('churn', 9)").fetchall()
    con.execute("SELECT ml_drop_model('churn')").fetchall()
    con.close()
    con = sqlml.connect(db_path)
    assert con.execute("SELECT count(*) FROM ml_models()").fetchall() == [(0,)]
    with pytest.raises(Exception, match="predict_churn"):
        con.execute(SCORE).fetchall()


def test_plain_duckdb_cli_reads_the_catalog(db_path):
    make_file(db_path)
    out = subprocess.run(
        [duckdb_cli(), "-readonly", "-csv", str(db_path), "-c",
         "SELECT name, version, model_type FROM ml_models();"
         "SELECT value FROM ml_show_model('churn') WHERE property = 'function';"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "churn,1,logistic" in out.stdout and "predict_churn" in out.stdout
    version = subprocess.run([duckdb_cli(), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("v1.")  # a 1.x client opened a file written by duckdb 2


def test_read_only_plain_duckdb_file_gets_metric_functions(db_path):
    import duckdb

    plain = duckdb.connect(str(db_path))
    plain.execute("CREATE TABLE s AS SELECT (range % 2 = 0) AS y, range / 10 AS p FROM range(10)")
    plain.close()
    con = sqlml.connect(db_path, read_only=True)
    assert con.execute("SELECT ml_accuracy(y, p > 0.45) FROM s").fetchall() == [(0.4,)]
