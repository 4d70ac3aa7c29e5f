"""settings := {engine: 'spark'}: train on Apache Spark MLlib, serve from DuckDB.

The reference is Spark itself: the tests fit MLlib's own estimators on the same rows with the
same parameters and compare its ``recommendForUserSubset`` / ``transform`` with what DuckDB
serves from the stored model. One SparkSession (local[2]) serves the module; the tests skip
without pyspark or a Java runtime, and the skip reason says how to install them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

import sqlml
from sqlml import errors, progress, spec
from sqlml.engines.spark import handoff, session

INSTALL = "pip install 'sqlml[spark]' and a Java runtime (apt-get install default-jre-headless)"
CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
        "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "1g",
        "spark.sql.adaptive.enabled": "false"}


def _spark_or_skip():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip(f"pyspark is not installed: {INSTALL}")
    if not session.java_found():
        pytest.skip(f"no Java runtime on PATH or in JAVA_HOME: {INSTALL}")


@pytest.fixture(scope="module")
def spark():
    _spark_or_skip()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("sqlml tests")
    for k, v in CONF.items():
        builder = builder.config(k, v)
    s = builder.getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


RATINGS = """
CREATE OR REPLACE TABLE ratings AS
SELECT u AS user_id, i AS item_id,
       round(3 + ((u % 5) - 2) * ((i % 5) - 2) * 0.45 + ((u * i) % 3 - 1) * 0.3, 1)::DOUBLE
           AS rating
FROM range(60) a(u), range(40) b(i) WHERE (u * 31 + i * 17) % 3 = 0
"""


def _settings(**extra) -> str:
    base = {"user_col": "'user_id'", "item_col": "'item_id'", "rating_col": "'rating'",
            "engine": "'spark'", "spark_master": "'local[2]'", "factors": 4, "iterations": 5}
    base.update({k: (f"'{v}'" if isinstance(v, str) else v) for k, v in extra.items()})
    return "{" + ", ".join(f"{k}: {v}" for k, v in base.items()) + "}"


def _create(con, name: str, **extra):
    return con.execute(
        f"SELECT s.* FROM (SELECT ml_create_model('{name}', 'ratings', "
        f"problem_type := 'recommendation', settings := {_settings(**extra)}) AS s)").fetchone()


@pytest.fixture(scope="module")
def con(spark):
    c = sqlml.connect()
    c.execute(RATINGS)
    yield c
    c.close()


def _als(spark, frame, implicit: bool):
    from pyspark.ml.recommendation import ALS

    return ALS(rank=4, maxIter=5, regParam=0.1, alpha=10.0, implicitPrefs=implicit, seed=42,
               userCol="u", itemCol="i", ratingCol="r", numUserBlocks=2, numItemBlocks=2,
               coldStartStrategy="drop").fit(frame)


def _same_ranking(ours: list[tuple[int, float]], theirs: list[tuple[int, float]], tol: float):
    """Equal top-k lists, ties aside: the scores agree to ``tol`` position by position, and
    where the items differ, the score there is tied (to ``tol``) with a neighbour's."""
    a_items, a_scores = zip(*ours, strict=True)
    b_items, b_scores = zip(*theirs, strict=True)
    assert np.allclose(a_scores, b_scores, rtol=tol, atol=tol), (ours, theirs)
    s = np.asarray(b_scores)
    for pos, (x, y) in enumerate(zip(a_items, b_items, strict=True)):
        if x != y:
            near = [abs(s[pos] - s[j]) for j in (pos - 1, pos + 1) if 0 <= j < len(s)]
            assert pos == len(s) - 1 or min(near) < tol, (pos, ours, theirs)


def test_implicit_als_recommends_what_spark_recommends(spark, con):
    """The stored factors rank items as Spark's own ALS model does (recommendForUserSubset)."""
    summary = _create(con, "imp", feedback="implicit", alpha=10, regularization=0.1)
    assert summary[1] == 1 and "Spark" in summary[-1]
    rows = con.execute("SELECT user_id, item_id, rating FROM ratings").fetchall()
    frame = spark.createDataFrame([(u, i, float(r)) for u, i, r in rows], "u INT, i INT, r FLOAT")
    model = _als(spark, frame, implicit=True)
    users = spark.createDataFrame([(u,) for u in (0, 7, 33, 59)], "u INT")
    theirs = {r["u"]: [(x["i"], x["rating"]) for x in r["recommendations"]]
              for r in model.recommendForUserSubset(users, 10).collect()}
    for u, top in theirs.items():
        for fn in ("recommend_imp", "recommend_imp_sql"):
            ours = con.execute(f"SELECT item_id, score FROM {fn}({u}, k := 10, "
                               f"exclude_seen := false) ORDER BY rank").fetchall()
            _same_ranking(ours, top, 1e-4)
    # The ranking metrics of sqlml's own recommender, stored as usual.
    got = dict(con.execute("SELECT metric, value FROM sqlml.model_metrics WHERE name = 'imp'"
                           ).fetchall())
    assert {"ndcg_at_k", "recall_at_k", "k"} <= set(got) and 0 <= got["ndcg_at_k"] <= 1


def _baseline(rows):
    """mu + b_u + b_i as docs/spark.md states it: b_i = sum(r - mu) / (n_i + 5), then
    b_u = sum(r - mu - b_i) / (n_u + 5)."""
    u, i, r = (np.asarray(c) for c in zip(*rows, strict=True))
    mu = r.mean()
    bi = np.bincount(i, r - mu) / (np.bincount(i) + 5)
    bu = np.bincount(u, r - mu - bi[i]) / (np.bincount(u) + 5)
    return mu, bu, bi


def test_explicit_als_serves_spark_scores_plus_the_biases(spark, con):
    _create(con, "exp")
    rows = con.execute("SELECT user_id, item_id, rating FROM ratings").fetchall()
    mu, bu, bi = _baseline(rows)
    frame = spark.createDataFrame([(u, i, float(r - mu - bu[u] - bi[i])) for u, i, r in rows],
                                  "u INT, i INT, r FLOAT")
    model = _als(spark, frame, implicit=False)
    grid = spark.createDataFrame([(u, i) for u in (3, 41) for i in range(40)], "u INT, i INT")
    scored = {(r["u"], r["i"]): mu + bu[r["u"]] + bi[r["i"]] + r["prediction"]
              for r in model.transform(grid).collect()}
    for u in (3, 41):
        theirs = sorted(((i, s) for (uu, i), s in scored.items() if uu == u),
                        key=lambda t: (-t[1], t[0]))[:10]
        ours = con.execute(f"SELECT item_id, score FROM recommend_exp_sql({u}, k := 10, "
                           f"exclude_seen := false) ORDER BY rank").fetchall()
        _same_ranking(ours, theirs, 1e-4)
        got = con.execute(f"SELECT recommend_exp_rating({u}, 5), recommend_exp_rating_sql({u}, 5)"
                          ).fetchone()
        assert got[0] == pytest.approx(got[1], abs=1e-12)
        assert got[1] == pytest.approx(scored[(u, 5)], abs=1e-4)
    params = con.execute("SELECT parameters::JSON FROM sqlml.model_versions WHERE name = 'exp'"
                         ).fetchone()[0]
    params = json.loads(params)
    assert params["engine"]["engine"] == "spark"
    assert params["engine"]["spark_version"] == spark.version
    assert params["engine"]["spark_master"].startswith("local")
    check = params["spark_check"]
    assert check["pairs"] > 100 and check["max_abs_diff_duckdb"] <= 1e-9
    _seen_served_from_the_table(con)
    metrics = dict(con.execute("SELECT metric, value FROM sqlml.model_metrics WHERE name = "
                               "'exp'").fetchall())
    assert 0 < metrics["rmse"] < 1.5


def _seen_served_from_the_table(con):
    """The artifact of a model trained on Spark holds no seen pairs (they can outgrow the
    process): the Python path reads a user's from the _seen table, so it leaves out what the
    user rated, as the pure-SQL function does, and its reasons name items the user rated."""
    from sqlml.recommend.train import loads

    blob = con.execute("SELECT artifact FROM sqlml.model_versions WHERE name = 'exp'").fetchone()
    stored = loads(blob[0], "exp")
    assert stored.seen_in_table and len(stored.seen_items) == 0
    for u in (3, 41):
        rated = {r[0] for r in con.execute("SELECT item_id FROM ratings WHERE user_id = ?",
                                           [u]).fetchall()}
        py = con.execute(f"SELECT item_id, reason FROM recommend_exp({u}, k := 40)").fetchall()
        sql = con.execute(f"SELECT item_id FROM recommend_exp_sql({u}, k := 40)").fetchall()
        assert {r[0] for r in py} == {r[0] for r in sql} == set(range(40)) - rated
        assert {r[1].removeprefix("because you rated ") for r in py} <= {str(i) for i in rated}


def test_an_interrupt_cancels_the_spark_jobs(spark, con, tmp_path):
    """A KeyboardInterrupt arriving while Spark runs a job (here from a SIGALRM handler, the
    signal sent on the first progress event that shows a running stage) cancels the run's job
    group, is recorded in ml_training_history, and the previous version still serves."""
    import signal
    import threading
    import time

    _create(con, "stop_me", feedback="implicit")
    before = con.execute("SELECT * FROM recommend_stop_me(3, k := 5)").fetchall()
    main, sent = threading.main_thread().ident, []

    def on_event(e):
        if e.phase == "fit" and "stage tasks" in (e.status or "") and not sent:
            sent.append(e.status)
            signal.pthread_kill(main, signal.SIGALRM)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    # One DuckDB thread: the UDF runs on the calling (main) thread, where Python delivers
    # signals; with more, DuckDB may run it on a worker (docs/spark.md, Cancel).
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    try:
        with progress.listen(con, on_event, model="stop_me"), \
                pytest.raises(BaseException, match="interrupted") as info:
            _create(con, "stop_me", feedback="implicit", iterations=50,
                    spark_workdir=str(tmp_path))
    finally:
        signal.signal(signal.SIGALRM, old)
        con.execute(f"SET threads = {threads}")
    assert sent and "cancelled" in str(info.value)
    tracker = spark.sparkContext.statusTracker()
    for _ in range(40):                       # cancelling takes effect within moments
        if not tracker.getActiveJobsIds():
            break
        time.sleep(0.25)
    assert tracker.getActiveJobsIds() == []
    history = con.execute("SELECT status, error FROM ml_training_history('stop_me') "
                          "ORDER BY started_at").fetchall()
    assert [h[0] for h in history] == ["succeeded", "failed"]
    assert "KeyboardInterrupt" in history[1][1] and "cancelled" in history[1][1]
    assert con.execute("SELECT active_version FROM sqlml.models WHERE name = 'stop_me'"
                       ).fetchone()[0] == 1
    assert con.execute("SELECT * FROM recommend_stop_me(3, k := 5)").fetchall() == before
    assert os.listdir(tmp_path) == []


def test_a_spark_failure_leaves_the_previous_version_serving(spark, con, monkeypatch, tmp_path):
    """A Parquet file Spark cannot read fails the fit inside a Spark job: the error is Spark's,
    it is in ml_training_history, version 1 still serves, and the hand-off directory is gone."""
    events = []
    with progress.listen(con, events.append, model="fail_me"):
        _create(con, "fail_me", feedback="implicit", spark_workdir=str(tmp_path))
    # Spark's status tracker feeds the progress events while its jobs run.
    spark_events = [e for e in events if e.phase == "fit" and "Spark jobs done" in (e.status
                                                                                     or "")]
    assert spark_events and events[-1].phase == "done"
    before = con.execute("SELECT * FROM recommend_fail_me(3, k := 5)").fetchall()
    assert os.listdir(tmp_path) == []          # cleaned after success
    original = handoff.Handoff.write

    def broken(self, cur, query, name):
        uri = original(self, cur, query, name)
        for f in os.listdir(self.file(name)[0]):
            with open(os.path.join(self.file(name)[0], f), "wb") as out:
                out.write(b"not parquet at all")
        return uri

    monkeypatch.setattr(handoff.Handoff, "write", broken)
    with pytest.raises(Exception, match=r"SparkJobError.*Spark said"):
        _create(con, "fail_me", feedback="implicit", spark_workdir=str(tmp_path))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []          # cleaned after failure
    assert con.execute("SELECT * FROM recommend_fail_me(3, k := 5)").fetchall() == before
    history = con.execute("SELECT status, error FROM ml_training_history('fail_me') "
                          "ORDER BY started_at").fetchall()
    assert [h[0] for h in history] == ["succeeded", "failed"]
    assert "Spark said" in history[1][1] and "parquet" in history[1][1].lower()
    assert con.execute("SELECT active_version FROM sqlml.models WHERE name = 'fail_me'"
                       ).fetchone()[0] == 1


def test_max_runtime_cancels_the_spark_jobs(spark, con):
    with pytest.raises(Exception, match="max_runtime"):
        _create(con, "slow", feedback="implicit", iterations=200, max_runtime=1.5)
    assert con.execute("SELECT count(*) FROM sqlml.models WHERE name = 'slow'").fetchone()[0] == 0


def test_missing_pyspark_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(errors.SparkUnavailableError, match=r"pip install 'sqlml\[spark\]'"):
        session.get_session({"spark_master": "local[2]", "spark_conf": None}, "m")


def test_missing_java_names_a_jre(monkeypatch):
    pytest.importorskip("pyspark", reason=f"pyspark is not installed: {INSTALL}")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(errors.SparkUnavailableError, match="default-jre-headless"):
        session.get_session({"spark_master": "local[2]", "spark_conf": None}, "m")


def test_the_handoff_directory_is_removed_on_error(tmp_path):
    with pytest.raises(RuntimeError), handoff.workdir(str(tmp_path), "m") as hand:
        assert os.path.isdir(hand.path)
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_unknown_engine_and_bad_conf_are_refused():
    with pytest.raises(errors.TrainingError, match="setting engine 'sprak' is unknown"):
        spec.check(spec.SETTING["engine"], "sprak")
    with pytest.raises(errors.TrainingError, match="spark_conf of model 'm' must map"):
        session.conf_of(["not", "a", "map"], "m")


# -- classification and regression ------------------------------------------------------------
CUSTOMERS = """
CREATE OR REPLACE TABLE cust AS
SELECT i AS id, (i % 37)::DOUBLE AS tenure,
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 7 % 23) END AS calls,
       ['basic', 'plus', 'pro'][1 + i % 3] AS plan, (i % 5 = 0) AS autopay,
       ((i % 37) + (i * 7 % 23) * 0.5 + (i % 3) * 4 + (hash(i) % 10) > 25) AS churned,
       ['low', 'mid', 'high'][1 + ((i % 37) // 13)::INTEGER] AS tier,
       (i % 37) * 0.3 + (i * 7 % 23) * 0.1 + (hash(i) % 100) / 100.0 AS spend
FROM range(1500) t(i)
"""
FEATURES = "tenure, calls, plan, autopay"
# The hand-off columns (f0, f1, ...) as engine 'spark' writes them, for Spark's own transform.
SPARK_ROWS = ("SELECT id, tenure::DOUBLE AS f0, calls::DOUBLE AS f1, plan::VARCHAR AS f2, "
              "autopay::DOUBLE AS f3 FROM cust ORDER BY id")


@pytest.fixture
def fitted_by_spark(monkeypatch):
    """The Spark PipelineModels sqlml fits, kept for the test to call Spark's transform."""
    from sqlml.engines.spark import supervised as on_spark

    kept: list = []
    original = on_spark._Converted

    class Keep(original):
        def __init__(self, spark_model, pipeline):
            super().__init__(spark_model, pipeline)
            kept.append(spark_model)

    monkeypatch.setattr(on_spark, "_Converted", Keep)
    return kept


@pytest.fixture(scope="module")
def ccon(spark, tmp_path_factory):
    c = sqlml.connect()
    c.execute(CUSTOMERS)
    path = str(tmp_path_factory.mktemp("rows") / "rows.parquet")
    c.execute(f"COPY ({SPARK_ROWS}) TO '{path}' (FORMAT parquet)")
    yield c, path
    c.close()


def _train(con, name, target, model_type, hyper="NULL", settings=""):
    return con.execute(
        f"SELECT s.* FROM (SELECT ml_create_model('{name}', 'SELECT {FEATURES}, {target} FROM "
        f"cust', target := '{target}', model_type := '{model_type}', hyperparameters := {hyper},"
        f" settings := {{engine: 'spark', spark_master: 'local[2]'{settings}}}) AS s)"
    ).fetchone()


def _spark_out(spark, kept, path):
    rows = kept[-1].transform(spark.read.parquet(path)).orderBy("id").collect()
    return rows


@pytest.mark.parametrize(("model_type", "hyper"), [
    ("logistic", "NULL"), ("gradient_boosting", "{max_iter: 5, max_depth: 3}")])
def test_binary_classifier_serves_spark_probabilities(spark, ccon, fitted_by_spark, model_type,
                                                      hyper):
    """Logistic regression over imputed, scaled, one-hot features; GBT's weighted trees as
    sqlml's gradient boosting (forests: the next test)."""
    ccon, rows = ccon
    name = f"churn_{model_type}"
    _train(ccon, name, "churned", model_type, hyper)
    theirs = _spark_out(spark, fitted_by_spark, rows)
    p_spark = np.array([r["probability"][1] for r in theirs])
    got = ccon.execute(f"SELECT predict_{name}_probability(c), predict_{name}_probability_sql(c)"
                       f", predict_{name}_sql(c) FROM cust c ORDER BY id").fetchall()
    p_py, p_sql, label_sql = (np.array(col) for col in zip(*got, strict=True))
    assert np.max(np.abs(p_py - p_spark)) <= 1e-9
    assert np.max(np.abs(p_sql - p_spark)) <= 1e-9
    assert (label_sql == (p_spark >= 0.5)).all()
    stored = ccon.execute(f"SELECT parameters::JSON->>'$.spark_check.max_diff', "
                          f"parameters::JSON->>'$.engine.spark_version', training_rows FROM "
                          f"sqlml.model_versions WHERE name = '{name}'").fetchone()
    assert float(stored[0]) <= 1e-9 and stored[1] == spark.version and stored[2] == 1500


def test_multiclass_forest_labels_equal_sparks(spark, ccon, fitted_by_spark):
    """Tuned by TrainValidationSplit from sqlml's ranges; the served forest is Spark's."""
    ccon, rows = ccon
    _train(ccon, "tiers", "tier", "random_forest",
           "{n_estimators: 6, max_depth: {values: [3, 4]}}", ", strategy: 'grid'")
    trials = ccon.execute("SELECT parameters, score FROM ml_trials('tiers') ORDER BY trial"
                          ).fetchall()
    assert [json.loads(t[0])["max_depth"] for t in trials] == [3, 4]
    assert all(0 < t[1] <= 1 for t in trials)      # accuracy on the held-out share
    theirs = _spark_out(spark, fitted_by_spark, rows)
    classes = sorted(["low", "mid", "high"])
    labels = [classes[int(r["prediction"])] for r in theirs]
    probs = np.array([r["probability"].toArray() for r in theirs])
    got = ccon.execute("SELECT predict_tiers_sql(c), predict_tiers_probabilities_sql(c) "
                       "FROM cust c ORDER BY id").fetchall()
    assert [g[0] for g in got] == labels
    ours = np.array([[dict(zip(g[1]["labels"], g[1]["probabilities"], strict=True))[k]
                      for k in classes] for g in got])
    assert np.max(np.abs(ours - probs)) <= 1e-9


@pytest.mark.parametrize("model_type", ["linear", "decision_tree"])
def test_regression_serves_spark_predictions(spark, ccon, fitted_by_spark, model_type):
    ccon, rows = ccon
    name = f"spend_{model_type}"
    _train(ccon, name, "spend", model_type)
    theirs = np.array([r["prediction"] for r in _spark_out(spark, fitted_by_spark,
                                                          rows)])
    got = np.array(ccon.execute(f"SELECT predict_{name}_sql(c) FROM cust c ORDER BY id"
                                ).fetchall())[:, 0]
    assert np.max(np.abs(got - theirs) / np.maximum(1, np.abs(theirs))) <= 1e-9


def test_a_model_type_spark_does_not_fit_is_refused(ccon):
    ccon, _ = ccon
    with pytest.raises(Exception, match="model_type 'knn' is not available with settings "
                                        "engine 'spark'"):
        _train(ccon, "nope", "churned", "knn")


# -- the Redshift grammar -----------------------------------------------------------------------
def test_engine_spark_in_create_model_becomes_the_setting():
    from sqlml.redshift.parser import parse

    (st,) = parse("CREATE MODEL recs FROM ratings TARGET rating FUNCTION recommend_recs "
                  "PROBLEM_TYPE RECOMMENDATION ENGINE SPARK "
                  "SETTINGS (USER_COL 'user_id', ITEM_COL 'item_id', SPARK_MASTER 'local[2]', "
                  "SPARK_CONF '{\"spark.sql.shuffle.partitions\": \"2\"}')")
    assert '"engine": "spark"' in st.sql and '"spark_master": "local[2]"' in st.sql
    assert session.conf_of('{"spark.sql.shuffle.partitions": "2"}', "recs") == {
        "spark.sql.shuffle.partitions": "2"}


def test_an_unknown_engine_is_a_syntax_error_at_its_word():
    from sqlml.redshift.parser import parse

    with pytest.raises(errors.SqlSyntaxError, match=r"column 50: expected SQLML or SPARK after "
                                                    r"ENGINE, got 'SPRAK'. Did you mean SPARK\?"):
        parse("CREATE MODEL m FROM t TARGET y FUNCTION f ENGINE SPRAK")
    with pytest.raises(errors.SqlSyntaxError, match="the engine once"):
        parse("CREATE MODEL m FROM t TARGET y FUNCTION f ENGINE SPARK SETTINGS (ENGINE 'spark')")
