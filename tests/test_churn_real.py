"""Acceptance on real data: ../shared/data/churn/mlc_churn.csv (skipped where absent)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import shared_file

import sqlml

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def churn_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("churn") / "churn.duckdb"
    csv = shared_file("churn", "mlc_churn.csv")
    con = sqlml.connect(path)
    con.execute(f"CREATE TABLE customers AS SELECT * EXCLUDE (rownames) FROM read_csv('{csv}')")
    summary = con.execute(
        "SELECT ml_create_model('customer_churn', 'customers', target := 'churn', "
        "function := 'predict_churn', model_type := 'auto')").fetchall()[0][0]
    yield path, con, summary
    con.close()


def test_auto_reaches_roc_auc_090(churn_db):
    _, con, summary = churn_db
    auc = con.execute("SELECT value FROM ml_model_metrics('customer_churn') "
                      "WHERE metric = 'roc_auc'").fetchall()[0][0]
    assert auc >= 0.90, summary
    trials = con.execute("SELECT model_type, score, parameters, fold_scores "
                         "FROM ml_trials('customer_churn')").fetchall()
    assert len(trials) >= 2
    # The noise rule: the best mean, unless a quicker candidate trails it by at most one
    # standard error of the paired fold differences (scipy's sem as reference).
    from scipy import stats
    best = max(trials, key=lambda t: t[1])
    want = best[0]
    for t in trials[:trials.index(best)]:
        d = np.subtract(json.loads(best[3]), json.loads(t[3]))
        if d.mean() <= stats.sem(d):
            want = t[0]
            break
    assert summary["model_type"] == want
    assert json.loads(dict((t[0], t[2]) for t in trials)[want])["selection"].startswith("kept")


def test_sql_equals_stored_pipeline_in_this_and_a_new_process(churn_db):
    path, con, _ = churn_db
    model = sqlml.load_model(con, "customer_churn")
    df = con.sql("SELECT * EXCLUDE (churn) FROM customers").df()
    ref_p = model.pipeline.predict_proba(df)[:, list(model.classes).index(True)]
    ref_label = (ref_p >= model.threshold).tolist()
    q = "SELECT predict_churn(c), predict_churn_probability(c) FROM customers c"
    rows = con.execute(q).fetchall()
    assert [r[0] for r in rows] == ref_label
    assert np.array_equal([r[1] for r in rows], ref_p)
    con.close()  # another process may open the file only once no writer holds it
    # DuckDB draws a progress bar on stdout for a query slower than 2 s (a loaded machine).
    code = (f"import json, sqlml; con = sqlml.connect({str(path)!r}, read_only=True); "
            "con.execute('SET enable_progress_bar = false'); "
            f"print(json.dumps(con.execute({q!r}).fetchall()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    there = json.loads(out.stdout)
    assert [r[0] for r in there] == ref_label
    assert np.array_equal([r[1] for r in there], ref_p)
