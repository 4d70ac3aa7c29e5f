"""Model types compiled to plain SQL beyond linear models and trees (sqlml/compile/knn.py,
sqlml/compile/calibration.py): trained through sqlml.create_model, their ``_sql`` macros
against the stored pipeline's predict / predict_proba, an independent numpy reference where
scikit-learn's own choice is not reproducible (KNN ties), and the duckdb 1.5 CLI on the file."""

from __future__ import annotations

import itertools
import json
import subprocess

import numpy as np
import pytest
from conftest import shared_file
from test_metrics_cli import duckdb_cli

import sqlml
from sqlml.compile import knn

TOL = 1e-12

# 600 rows: a train part (id < 450) and rows the model has not seen. b and e are small integers
# and a category, so distances tie often (the tie rule matters); a has 23 values.
POINTS = """
CREATE OR REPLACE TABLE points AS
SELECT i AS id, ((i * 37) % 23) / 4.0 AS a, (i * 11) % 7 AS b, ['x', 'y', 'z'][1 + (i % 3)] AS c,
       (hash(i) % 4) * 1.0 AS e,
       ((i * 37) % 23) / 4.0 + (i * 11) % 7 * 0.5 + (hash(i * 3) % 100) / 40.0 > 4.5 AS y,
       ['p', 'q', 'r'][1 + ((((i * 37) % 23) + (hash(i * 5) % 9)) % 3)::INTEGER] AS y3,
       ((i * 37) % 23) * 1.5 + (i * 11) % 7 + (hash(i * 7) % 100) / 10.0 AS amount
FROM range(600) t(i)
"""
DROP = {"y": "y3, amount", "y3": "y, amount", "amount": "y, y3"}


@pytest.fixture(scope="module")
def points():
    con = sqlml.connect()
    con.execute(POINTS)
    yield con
    con.close()


def train(con, name: str, target: str, model_type: str, hyper=None, settings=None,
          source: str = "points WHERE id < 450", drop: str | None = None):
    drop = DROP[target] if drop is None else drop
    s = sqlml.create_model(con, name, f"SELECT * EXCLUDE (id{', ' if drop else ''}{drop}) "
                                      f"FROM {source}",
                           target=target, model_type=model_type, function=f"f_{name}",
                           hyperparameters=hyper, settings=settings, progress=False)
    assert "not compiled" not in (s["notes"] or ""), s["notes"]
    return sqlml.load_model(con, name)


def sql_probabilities(con, fn: str, table: str) -> np.ndarray:
    rows = con.execute(f"SELECT ({fn}_probabilities_sql(t)).probabilities FROM {table} t "
                       f"ORDER BY id").fetchall()
    return np.array([r[0] for r in rows], dtype=np.float64)


def frame(con, table: str, model):
    """The rows as the Python-served functions hand them to the pipeline (to_frame)."""
    t = con.sql(f"SELECT * FROM {table} ORDER BY id").to_arrow_table()
    return model.frame([t.column(f.name).combine_chunks() for f in model.features], "test")


# -- KNN -------------------------------------------------------------------------------------------
def knn_reference(est, Xt) -> np.ndarray:
    """The documented rule in plain numpy: the metric's terms added in column order, nearest
    by (reduced distance, training index), scikit-learn's weights; probabilities or the
    prediction."""
    F = knn._dense(est._fit_X)
    Q = knn._dense(Xt)
    metric = est.effective_metric_
    red = np.zeros((len(Q), len(F)))
    for j in range(F.shape[1]):
        v = Q[:, j:j + 1] - F[None, :, j]
        if metric in ("euclidean", "l2"):
            red = red + v * v
        elif metric == "manhattan":
            red = red + np.abs(v)
        else:
            raise AssertionError(metric)
    order = np.lexsort((np.broadcast_to(np.arange(len(F)), red.shape), red), axis=1)
    idx = order[:, :est.n_neighbors]
    r = np.take_along_axis(red, idx, 1)
    d = np.sqrt(r) if metric in ("euclidean", "l2") else r
    if est.weights == "uniform":
        w = np.ones_like(d)
    else:
        with np.errstate(divide="ignore"):
            w = 1.0 / d
        inf = np.isinf(w)
        w[inf.any(1)] = inf[inf.any(1)]
    y = np.asarray(est._y)
    if not hasattr(est, "classes_"):
        return (y[idx] * w).sum(1) / w.sum(1)
    P = np.zeros((len(Q), len(est.classes_)))
    for i in range(idx.shape[1]):
        P[np.arange(len(Q)), y[idx[:, i]]] += w[:, i]
    return P / P.sum(1, keepdims=True)


KNN_CASES = [("y", {"weights": "distance"}), ("y", {"weights": "uniform", "metric": "l2"}),
             ("y", {"weights": "distance", "metric": "manhattan"}),
             ("y3", {"weights": "uniform"}), ("y3", {"weights": "distance", "metric": "l2"})]


@pytest.mark.parametrize("target,hyper", KNN_CASES)
def test_knn_probabilities_equal_predict_proba(points, target, hyper):
    name = f"knn_{target}_{hyper['weights']}_{hyper.get('metric', 'default')}"
    m = train(points, name, target, "knn", {"n_neighbors": 7, **hyper})
    est, prep = m.pipeline.named_steps["model"], m.pipeline.named_steps["prep"]
    X = frame(points, "points", m)
    want = m.pipeline.predict_proba(X)
    got = sql_probabilities(points, f"f_{name}", "points")
    ties = knn.boundary_ties(est, prep.transform(X))
    assert 0 < ties.sum() < len(X)                       # the data exercise the tie rule
    assert np.abs(got - want)[~ties].max() <= TOL        # no tie: scikit-learn's neighbours
    assert np.abs(got - knn_reference(est, prep.transform(X))).max() <= TOL   # the rule, all rows
    labels = [r[0] for r in points.execute(f"SELECT f_{name}_sql(t) FROM points t ORDER BY id")
              .fetchall()]
    python = [r[0] for r in points.execute(f"SELECT f_{name}(t) FROM points t ORDER BY id")
              .fetchall()]
    assert [a for a, t in zip(labels, ties, strict=True) if not t] == \
        [b for b, t in zip(python, ties, strict=True) if not t]


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_regressor_equals_predict(points, weights):
    name = f"knn_amount_{weights}"
    m = train(points, name, "amount", "knn", {"n_neighbors": 5, "weights": weights})
    est, prep = m.pipeline.named_steps["model"], m.pipeline.named_steps["prep"]
    X = frame(points, "points", m)
    got = np.array([r[0] for r in points.execute(
        f"SELECT f_{name}_sql(t) FROM points t ORDER BY id").fetchall()])
    ties = knn.boundary_ties(est, prep.transform(X))
    want = m.pipeline.predict(X)
    assert (np.abs(got - want) / np.maximum(1, np.abs(want)))[~ties].max() <= TOL
    assert np.abs(got - knn_reference(est, prep.transform(X))).max() <= TOL * np.abs(want).max()


def test_knn_training_points_are_data_not_sql(points):
    m = train(points, "knn_small_text", "y", "knn", {"n_neighbors": 5})
    body = points.execute("SELECT macro_definition FROM duckdb_functions() WHERE function_name "
                          "= 'f_knn_small_text_probabilities_sql'").fetchall()[0][0]
    assert len(body) < 20_000 and "sqlml.model_params" in body
    stored = dict(points.execute("SELECT key, len(coalesce(doubles, ints)) FROM "
                                 "sqlml.model_params WHERE name = 'knn_small_text'").fetchall())
    est = m.pipeline.named_steps["model"]
    assert stored == {"knn_x": est._fit_X.shape[0] * est._fit_X.shape[1], "knn_y": 450}


@pytest.mark.slow
def test_knn_on_real_churn_equals_predict_proba():
    csv = shared_file("churn", "mlc_churn.csv")
    con = sqlml.connect()
    con.execute(f"CREATE TABLE churn AS SELECT rownames AS id, * EXCLUDE (rownames) "
                f"FROM read_csv('{csv}')")
    try:
        for hyper in ({"weights": "distance"}, {"weights": "uniform", "metric": "l2"}):
            name = f"churn_knn_{hyper['weights']}"
            m = train(con, name, "churn", "knn", {"n_neighbors": 15, **hyper},
                      source="churn WHERE id <= 4000", drop="")
            con.execute("CREATE OR REPLACE TEMP TABLE unseen AS FROM churn WHERE id > 4000")
            X = frame(con, "unseen", m)
            want = m.pipeline.predict_proba(X)
            got = sql_probabilities(con, f"f_{name}", "unseen")
            est, prep = m.pipeline.named_steps["model"], m.pipeline.named_steps["prep"]
            assert not knn.boundary_ties(est, prep.transform(X)).any()
            assert np.abs(got - want).max() <= TOL
    finally:
        con.close()


# -- the duckdb 1.5 CLI ----------------------------------------------------------------------------
def test_cli_scores_knn_calibrated_and_explains_like_the_session(tmp_path):
    """One file, opened by the duckdb 1.5 CLI: KNN (classifier and regressor), a calibrated
    model on a TIMESTAMPTZ feature and tree explanations give the session's numbers."""
    path = tmp_path / "points.duckdb"
    con = sqlml.connect(path)
    con.execute(POINTS)
    con.execute("CREATE OR REPLACE TABLE points AS SELECT *, TIMESTAMPTZ "
                "'2024-03-09 20:00:00+00' + to_minutes((id * 997) % 50000) AS seen FROM points")
    train(con, "knn_cli", "y3", "knn", {"n_neighbors": 7})
    train(con, "knn_cli_reg", "amount", "knn", {"n_neighbors": 5})
    train(con, "cal_cli", "y", "logistic", settings={"calibrate": "isotonic"})
    train(con, "rf_cli", "y3", "random_forest", {"n_estimators": 5})
    query = ("SELECT id, (f_knn_cli_probabilities_sql(t)).probabilities AS p, "
             "f_knn_cli_sql(t) AS label, f_knn_cli_reg_sql(t) AS amount, "
             "f_cal_cli_probability_sql(t) AS cal, f_rf_cli_explain_sql(t) AS why "
             "FROM points t ORDER BY id")
    here = con.execute(query).fetchall()
    con.close()
    done = subprocess.run([duckdb_cli(), "-readonly", "-json", str(path), "-c", query],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    assert [r["id"] for r in there] == [r[0] for r in here]
    assert [r["label"] for r in there] == [r[2] for r in here]
    for i, key, tol in ((1, "p", TOL), (3, "amount", TOL * 100), (4, "cal", TOL)):
        assert np.abs(np.array([r[key] for r in there]) - np.array([r[i] for r in here])
                      ).max() <= tol
    for a, b in zip(there, here, strict=True):
        assert [e["feature"] for e in a["why"]] == [e["feature"] for e in b[5]]
        assert np.allclose([e["contribution"] for e in a["why"]],
                           [e["contribution"] for e in b[5]], rtol=0, atol=TOL)


# -- calibrated models ----------------------------------------------------------------------------
CALIBRATED = [("logistic", "sigmoid", None), ("logistic", "isotonic", None),
              ("random_forest", "isotonic", {"n_estimators": 10}),
              ("gradient_boosting", "sigmoid", {"max_iter": 15}),
              ("knn", "isotonic", {"n_neighbors": 7, "metric": "l2"})]


@pytest.mark.parametrize("model_type,method,hyper", CALIBRATED)
def test_calibrated_probabilities_equal_predict_proba(points, model_type, method, hyper):
    name = f"cal_{model_type}_{method}"
    m = train(points, name, "y", model_type, hyper, settings={"calibrate": method})
    est = m.pipeline.named_steps["model"]
    assert type(est).__name__ == "CalibratedClassifierCV" and est.method == method
    # Unseen rows, and rows far outside the training range (the isotonic map clips there).
    points.execute("CREATE OR REPLACE TEMP TABLE probe AS SELECT * FROM points UNION ALL "
                   "SELECT id + 1000, a * 40 - 200, b, c, e, y, y3, amount FROM points "
                   "WHERE id % 5 = 0")
    X = frame(points, "probe", m)
    want = m.pipeline.predict_proba(X)
    got = sql_probabilities(points, f"f_{name}", "probe")
    ties = knn.ties_in(est, m.pipeline.named_steps["prep"].transform(X))
    keep = np.ones(len(X), dtype=bool) if ties is None else ~ties   # KNN folds: no k-th tie
    assert keep.mean() > 0.5
    assert np.abs(got - want)[keep].max() <= TOL
    p = np.array([r[0] for r in points.execute(
        f"SELECT f_{name}_probability_sql(t) FROM probe t ORDER BY id").fetchall()])
    assert np.abs(p - want[:, list(est.classes_).index(True)])[keep].max() <= TOL
    if method == "isotonic":
        body = points.execute("SELECT macro_definition FROM duckdb_functions() WHERE "
                              f"function_name = 'f_{name}_probability_sql'").fetchall()[0][0]
        assert "fold1_isotonic_x" in body   # the thresholds are data


def test_isotonic_map_follows_np_interp_with_clipping():
    """The isotonic SQL alone against np.interp on scores at, between and beyond thresholds."""
    import duckdb
    from sklearn.isotonic import IsotonicRegression

    from sqlml.compile import calibration
    rng = np.random.default_rng(3)
    s = np.round(rng.normal(size=300), 2)
    iso = IsotonicRegression(out_of_bounds="clip").fit(s, (s + rng.normal(size=300) > 0) * 1.0)
    xs = iso.X_thresholds_
    probe = np.concatenate([xs, (xs[:-1] + xs[1:]) / 2, [xs[0] - 5, xs[-1] + 5, -1e300, 1e300],
                            rng.normal(size=200) * 3])
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS s", [probe.tolist()])
    got = np.array([r[0] for r in con.execute(
        f"SELECT {calibration._isotonic(iso, 's', None, 'k')} FROM t").fetchall()])
    want = np.interp(np.clip(probe, iso.X_min_, iso.X_max_), xs, iso.y_thresholds_)
    assert np.array_equal(got, want)
    assert np.array_equal(want, iso.predict(probe))


# -- TIMESTAMPTZ features and MLPs ----------------------------------------------------------------
@pytest.mark.parametrize("model_type,hyper", [("logistic", None),
                                              ("mlp", {"hidden_layer_sizes": [8]}),
                                              ("gradient_boosting", {"max_iter": 10})])
def test_timestamptz_features_compile_whatever_the_session_time_zone(model_type, hyper):
    con = sqlml.connect()
    try:
        con.execute(POINTS)
        con.execute("CREATE OR REPLACE TABLE points AS SELECT *, TIMESTAMPTZ "
                    "'2024-03-09 20:00:00+00' + to_minutes((id * 997) % 50000) AS seen FROM points")
        con.execute("SET TimeZone = 'America/New_York'")   # 2024-03-10: a DST change there
        m = train(con, f"tz_{model_type}", "y", model_type, hyper)
        assert any(f.type == "TIMESTAMP WITH TIME ZONE" for f in m.features)
        want = m.pipeline.predict_proba(frame(con, "points", m))
        for zone in ("America/New_York", "Asia/Kolkata", "UTC"):
            con.execute(f"SET TimeZone = '{zone}'")
            got = sql_probabilities(con, f"f_tz_{model_type}", "points")
            assert np.abs(got - want).max() <= TOL, zone
    finally:
        con.close()


# -- per-row explanations in SQL ------------------------------------------------------------------
def sql_explain(con, fn: str, table: str) -> list[list[tuple]]:
    rows = con.execute(f"SELECT {fn}_explain_sql(t) FROM {table} t ORDER BY id").fetchall()
    return [[(e["feature"], e["contribution"]) for e in r[0]] for r in rows]


@pytest.mark.parametrize("target,model_type", [("y", "logistic"), ("y3", "logistic"),
                                               ("amount", "linear"), ("amount", "lasso")])
def test_linear_explain_sql_equals_python_explain(points, target, model_type):
    name = f"explain_{model_type}_{target}"
    train(points, name, target, model_type)
    got = sql_explain(points, f"f_{name}", "points")
    rows = points.execute(f"SELECT f_{name}_explain(t) FROM points t ORDER BY id").fetchall()
    want = [[(e["feature"], e["contribution"]) for e in r[0]] for r in rows]
    assert got == want                                    # same columns, order, numbers


def saabas_numpy(est, Xt, spans, k) -> np.ndarray:
    """Tree path contributions walked per row with scikit-learn's decision_path, mean over the
    trees: an implementation independent of the compiler's leaf tables."""
    members = list(getattr(est, "estimators_", [est]))
    column = np.zeros(est.n_features_in_, dtype=int)
    for j, (a, b) in enumerate(spans):
        column[a:b] = j
    out = np.zeros((Xt.shape[0], len(spans)))
    for m in members:
        t = m.tree_
        v = t.value[:, 0, :] if hasattr(est, "classes_") else t.value[:, 0, :1]
        path = m.decision_path(Xt)
        for r in range(Xt.shape[0]):
            nodes = path.indices[path.indptr[r]:path.indptr[r + 1]]
            for parent, child in itertools.pairwise(nodes):
                out[r, column[t.feature[parent]]] += v[child, k[r]] - v[parent, k[r]]
    return out / len(members)


@pytest.mark.parametrize("target,model_type,hyper", [
    ("y", "decision_tree", None), ("y3", "random_forest", {"n_estimators": 10}),
    ("amount", "random_forest", {"n_estimators": 10}), ("amount", "decision_tree", None)])
def test_tree_explain_sql_is_saabas(points, target, model_type, hyper):
    from sqlml.compile import explain
    name = f"explain_{model_type}_{target}"
    m = train(points, name, target, model_type, hyper)
    prep, est = m.pipeline.named_steps["prep"], m.pipeline.named_steps["model"]
    X = frame(points, "points", m)
    Xt = np.asarray(prep.transform(X), dtype=np.float32)
    spans = explain.blocks(prep, m.features)
    if target == "y3":
        k = np.argmax(m.pipeline.predict_proba(X), axis=1)
    elif target == "y":
        k = np.full(len(X), list(est.classes_).index(True))
    else:
        k = np.zeros(len(X), dtype=int)
    want = saabas_numpy(est, Xt, spans, k)
    got = sql_explain(points, f"f_{name}", "points")
    names = [f.name for f in m.features]
    assert len(names) <= explain.TOP_K                     # every column is in the top list
    for r, row in enumerate(got):
        assert [f for f, _ in row] == [names[j] for j in
                                       np.argsort(-np.abs(want[r]), kind="stable")]
        assert np.allclose([c for _, c in row], [want[r, names.index(f)] for f, _ in row],
                           rtol=0, atol=TOL)
    if model_type == "decision_tree":
        # One tree: the contributions plus the root's value are the prediction, exactly.
        root = est.tree_.value[0, 0, k[0]] if target == "y" else est.tree_.value[0, 0, 0]
        pred = m.pipeline.predict_proba(X)[:, k[0]] if target == "y" else m.pipeline.predict(X)
        assert np.allclose(want.sum(1) + root, pred, rtol=0, atol=1e-12)


def test_explain_sql_only_where_compiled(points):
    train(points, "explain_knn", "y", "knn", {"n_neighbors": 5})
    made = {r[0] for r in points.execute("SELECT function_name FROM duckdb_functions() WHERE "
                                         "function_name LIKE 'f_explain_knn%'").fetchall()}
    assert "f_explain_knn_probabilities_sql" in made and "f_explain_knn_explain_sql" not in made


def test_not_compiled_note_says_why_and_what_to_do(points):
    s = sqlml.create_model(points, "noted", "SELECT a, b, c, y FROM points", target="y",
                           model_type="knn", hyperparameters={"metric": "cosine"},
                           function="f_noted", progress=False)
    shown = points.execute("SELECT value FROM ml_show_model('noted') WHERE property = "
                           "'compiled_sql'").fetchall()[0][0]
    assert shown in s["notes"]
    assert shown.startswith("not compiled to SQL: KNN model with metric 'cosine': ")
    for part in ("hyperparameters := {metric: 'l2'}", "sqlml.connect", "sqlml serve",
                 "ml_refresh_scores('noted', '<table>', key := '<key column>')",
                 "sqlml_scores.noted"):
        assert part in shown, part


@pytest.mark.parametrize("target", ["y", "y3", "amount"])
def test_large_mlp_keeps_its_weights_as_data(points, target):
    name = f"mlp_data_{target}"
    m = train(points, name, target, "mlp", {"hidden_layer_sizes": [64, 32], "max_iter": 30})
    fn = f"f_{name}_sql" if target == "amount" else f"f_{name}_probabilities_sql"
    body = points.execute("SELECT macro_definition FROM duckdb_functions() WHERE "
                          f"function_name = '{fn}'").fetchall()[0][0]
    assert "mlp_w2" in body and len(body) < 20_000           # weights are data, not SQL
    X = frame(points, "points", m)
    if target == "amount":
        got = np.array([r[0] for r in points.execute(
            f"SELECT f_{name}_sql(t) FROM points t ORDER BY id").fetchall()])
        want = m.pipeline.predict(X)
        assert (np.abs(got - want) / np.maximum(1, np.abs(want))).max() <= TOL
    else:
        got = sql_probabilities(points, f"f_{name}", "points")
        assert np.abs(got - m.pipeline.predict_proba(X)).max() <= TOL
