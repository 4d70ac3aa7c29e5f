"""The pure-SQL metrics in the real `duckdb` command-line client, on a file sqlml created.

No Python is involved on the client side: the CLI (PyPI duckdb-cli, DuckDB 1.5) opens the file and
runs the persisted macros. Values are checked against scikit-learn.
"""

import csv
import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clients import duckdb_cli  # re-exported: test_compile_sql imports it from here
from sklearn import metrics

import sqlml


def cli(path: Path, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run([duckdb_cli(), "-readonly", "-csv", str(path), "-c", sql],
                          capture_output=True, text=True, timeout=120, check=False)


def rows(path: Path, sql: str) -> list[dict]:
    done = cli(path, sql)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


@pytest.fixture(scope="module")
def scored_file(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 400
    group = rng.integers(0, 3, n)
    churned = rng.random(n) < 0.35
    p_churn = np.round(np.clip(rng.random(n) * 0.7 + churned * 0.3, 0, 1), 2)  # ties included
    path = tmp_path_factory.mktemp("cli") / "scored.duckdb"
    con = sqlml.connect(path)
    con.register("frame", {"region": group, "churned": churned, "p_churn": p_churn})
    con.execute("""CREATE TABLE scored AS
                   SELECT region, CASE WHEN churned THEN 'Yes' ELSE 'No' END AS churned,
                          p_churn, p_churn >= 0.5 AS predicted
                   FROM frame""")
    con.execute("""CREATE TABLE tiers AS SELECT tier, predicted FROM (VALUES
        ('Platinum', 'Platinum', 30), ('Gold', 'Platinum', 20), ('Silver', 'Platinum', 10),
        ('Platinum', 'Gold', 50), ('Gold', 'Gold', 60), ('Silver', 'Gold', 10),
        ('Platinum', 'Silver', 20), ('Gold', 'Silver', 20), ('Silver', 'Silver', 80)
        ) c(tier, predicted, n), range(n)""")
    con.close()
    return path, group, churned, p_churn


def test_cli_is_a_separate_duckdb(scored_file):
    path = scored_file[0]
    version = rows(path, "SELECT version() AS v")[0]["v"]
    assert version.startswith("v1.")  # a different major version than the Python package


def test_cli_computes_binary_and_score_metrics_per_group(scored_file):
    path, group, churned, p_churn = scored_file
    got = rows(path, """
        SELECT region, ml_f1(churned, predicted) AS f1, ml_recall(churned, predicted) AS recall,
               ml_mcc(churned = 'Yes', predicted) AS mcc, ml_roc_auc(churned, p_churn) AS auc,
               ml_pr_auc(churned, p_churn) AS ap, ml_log_loss(churned, p_churn) AS log_loss,
               ml_confusion(churned, predicted).fn AS fn
        FROM scored GROUP BY region ORDER BY region""")
    assert [int(r["region"]) for r in got] == [0, 1, 2]
    for r in got:
        sel = group == int(r["region"])
        y, s = churned[sel], p_churn[sel]
        pred = s >= 0.5
        assert float(r["f1"]) == pytest.approx(metrics.f1_score(y, pred))
        assert float(r["recall"]) == pytest.approx(metrics.recall_score(y, pred))
        assert float(r["mcc"]) == pytest.approx(metrics.matthews_corrcoef(y, pred))
        assert float(r["auc"]) == pytest.approx(metrics.roc_auc_score(y, s))
        assert float(r["ap"]) == pytest.approx(metrics.average_precision_score(y, s))
        assert float(r["log_loss"]) == pytest.approx(metrics.log_loss(y, s))
        assert int(r["fn"]) == int((y & ~pred).sum())


def test_cli_chooses_the_same_threshold(scored_file):
    path, _, churned, p_churn = scored_file
    best = rows(path, """SELECT b.threshold, b.cost, b.recall FROM (
        SELECT ml_best_threshold(churned, p_churn, fn_cost := 3, fp_cost := 1,
                                 min_recall := 0.85) AS b FROM scored)""")[0]
    table = rows(path, "FROM ml_threshold_table('scored', actual := 'churned', score := 'p_churn',"
                       " fn_cost := 3, fp_cost := 1)")
    assert len(table) == len(set(p_churn.tolist())) + 1
    feasible = [r for r in table if float(r["recall"]) >= 0.85]
    assert float(best["cost"]) == min(float(r["cost"]) for r in feasible)
    assert float(best["recall"]) >= 0.85
    fpr, tpr, _ = metrics.roc_curve(churned, p_churn, drop_intermediate=False)
    assert [float(r["fpr"]) for r in table] == pytest.approx(fpr.tolist())
    assert [float(r["recall"]) for r in table] == pytest.approx(tpr.tolist())


def test_cli_table_functions(scored_file):
    path = scored_file[0]
    report = {r["label"]: r for r in rows(
        path, "FROM ml_classification_report('tiers', actual := 'tier', predicted := 'predicted')")}
    assert round(float(report["Silver"]["f1"]), 3) == 0.727
    assert float(report["accuracy"]["accuracy"]) == pytest.approx(170 / 300)
    cells = rows(path, "FROM ml_confusion_matrix_table('tiers', actual := 'tier',"
                       " predicted := 'predicted')")
    assert len(cells) == 9 and sum(int(c["n"]) for c in cells) == 300
    ranked = rows(path, "FROM ml_compare_models('scored', actual := 'churned', model := 'region',"
                        " score := 'p_churn', fn_cost := 3, min_recall := 0.8)")
    assert [int(r["rank"]) for r in ranked] == [1, 2, 3]
    costs = [float(r["cost"]) for r in ranked]
    assert costs == sorted(costs)


def test_cli_regression_ranking_and_simple_windows(scored_file):
    path = scored_file[0]
    got = rows(path, """
        SELECT ml_rmse(a, p) AS rmse, ml_r2(a, p) AS r2,
               ml_ndcg_at_k([1, 7, 3], [3, 9], k := 3, gains := [5, 1]) AS ndcg,
               ml_hit_rate(['a', 'b'], ['b'], k := 2) AS hit
        FROM (VALUES (2.0, 3.0), (4.0, 4.0), (6.0, 3.0)) t(a, p)""")[0]
    assert float(got["rmse"]) == pytest.approx((10 / 3) ** 0.5)
    assert float(got["r2"]) == pytest.approx(1 - 10 / 8)
    assert float(got["ndcg"]) == pytest.approx(2.5 / (5 + 1 / np.log2(3)))
    assert float(got["hit"]) == 1.0
    rolling = rows(path, "SELECT ml_accuracy(churned = 'Yes', predicted) OVER (ORDER BY p_churn"
                         " ROWS 9 PRECEDING) AS acc FROM scored")
    assert len(rolling) == 400


def test_cli_reports_bad_input_with_the_sqlml_message(scored_file):
    path = scored_file[0]
    done = cli(path, "SELECT ml_cost(churned, predicted, fn_cost := -3) FROM scored")
    assert done.returncode != 0
    assert ("ml_cost: fn_cost must be a non-negative number, got -3. Pass the cost of one missed"
            " positive, e.g. fn_cost := 50.") in done.stderr + done.stdout
    done = cli(path, "SELECT ml_f1(churned, predicted, pos_label := 'yes') FROM scored")
    assert "pos_label := 'yes' matches no value of actual or predicted" in done.stderr + done.stdout
