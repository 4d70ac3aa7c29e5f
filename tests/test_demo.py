import json
import shlex
import subprocess

import clients
from click.testing import CliRunner

import sqlml
from sqlml.cli.commands import main


def test_demo_creates_trains_scores_and_prints_sql(tmp_path):
    path = tmp_path / "demo.duckdb"
    result = CliRunner().invoke(main, ["demo", str(path), "--rows", "1500"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Created" in out and "customers (1,500 rows)" in out
    assert "roc_auc" in out and "Scoring new customers" in out
    assert "SELECT plan, count(*) AS customers, avg(predict_churn_probability(c))" in out
    # The demo writes the churn model's report beside the file and prints where.
    report = tmp_path / "demo_report.html"
    assert f"Model report (SELECT ml_report('customer_churn')): {report}" in out
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Model report: customer_churn" in page
    assert 'data-chart="roc"' in page and "sqlml report" in out and "movie_recs" in out
    con = sqlml.connect(path, read_only=True)
    auc = con.execute("SELECT value FROM ml_model_metrics('customer_churn') "
                      "WHERE metric = 'roc_auc'").fetchall()[0][0]
    assert 0.75 < auc <= 1.0  # the synthetic story is learnable
    # The printed SQL runs as printed.
    sql, command = out.split("Try it yourself:\n", 1)[1].split(
        "\nOr from the duckdb command line, with no Python at all:\n")
    for stmt in [s for s in sql.split(";") if s.strip() and not s.strip().startswith("--")]:
        body = "\n".join(line for line in stmt.splitlines() if not line.startswith("--"))
        if body.strip():
            assert con.execute(body).fetchall()
    # The printed CLI command, run by the plain duckdb CLI, answers as the session does.
    want = con.execute("SELECT plan, count(*), round(avg(predict_churn_probability(c)), 4) "
                       "AS r FROM customers c GROUP BY plan ORDER BY r DESC").fetchall()
    con.close()
    argv = shlex.split(command.strip())
    assert argv[0] == "duckdb"
    done = subprocess.run([clients.duckdb_cli(), "-json", *argv[1:]], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    got = [list(r.values()) for r in json.loads(done.stdout)]
    assert got == [list(r) for r in want]


def test_demo_error_goes_to_stderr_with_nonzero_exit(tmp_path):
    result = CliRunner().invoke(main, ["demo", str(tmp_path / "no" / "such" / "dir.duckdb")])
    assert result.exit_code == 1
    assert "sqlml demo:" in result.output
