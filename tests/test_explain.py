"""Explanations: ml_explain_model (permutation importance, coefficients) and <function>_explain."""

import numpy as np
import pytest

import sqlml
from sqlml.score import explain
from sqlml.train import penalties

SYNTH = """
CREATE OR REPLACE TABLE synth AS
SELECT i AS id,
    ((hash(i * 3) % 10000) / 5000.0 - 1) AS signal,
    ((hash(i * 5) % 10000) / 5000.0 - 1) AS noise1,
    ((hash(i * 7) % 10000) / 5000.0 - 1) AS noise2,
    ['a', 'b', 'c'][1 + (hash(i * 11) % 3)::INTEGER] AS noise_cat
FROM range(1500) t(i);
CREATE OR REPLACE TABLE synth AS
SELECT * EXCLUDE (id),
    (signal * 3 + ((hash(id * 13) % 1000) / 1000.0 - 0.5) > 0) AS y,
    signal * 5 + ((hash(id * 17) % 1000) / 1000.0 - 0.5) * 0.2 AS v
FROM synth;
"""
FEATURES = "signal, noise1, noise2, noise_cat"


@pytest.fixture
def synth(con):
    for stmt in SYNTH.strip().split(";\n"):
        if stmt.strip():
            con.execute(stmt)
    return con


def rows(con, sql):
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


@pytest.mark.parametrize("model_type", ["logistic", "gradient_boosting"])
def test_permutation_importance_ranks_the_signal_first(synth, model_type):
    sqlml.create_model(synth, "m", f"SELECT {FEATURES}, y FROM synth", target="y",
                       model_type=model_type)
    perm = rows(synth, "FROM ml_explain_model('m') WHERE kind = 'permutation' ORDER BY rank")
    assert perm[0]["feature"] == "signal"
    assert {r["feature"] for r in perm} == {"signal", "noise1", "noise2", "noise_cat"}
    top, rest = perm[0]["importance"], [r["importance"] for r in perm[1:]]
    assert top > 0.1 and all(v < top / 5 for v in rest)


def test_lasso_zeroes_the_noise_coefficients(synth):
    sqlml.create_model(synth, "l", f"SELECT {FEATURES}, v FROM synth", target="v",
                       model_type="lasso", hyperparameters={"alpha": 0.1})
    coef = rows(synth, "FROM ml_explain_model('l') WHERE kind = 'coefficient'")
    by_term = {r["term"]: r["coefficient"] for r in coef}
    signal = [v for t, v in by_term.items() if t == "signal"]
    assert signal and abs(signal[0]) > 1
    noise = [r["coefficient"] for r in coef if r["feature"] != "signal"]
    assert noise and all(v == 0.0 for v in noise)
    assert rows(synth, "FROM ml_explain_model('l') WHERE kind = 'intercept'")


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
@pytest.mark.parametrize("l1", [{"penalty": "l1"}, pytest.param({"l1_ratio": 1}, marks=(
    pytest.mark.skipif(penalties._NAMES_PENALTY, reason="scikit-learn < 1.8 reads l1_ratio only "
                       "under penalty='elasticnet'")))])
def test_l1_logistic_zeroes_noise(synth, l1):
    sqlml.create_model(synth, "l1", f"SELECT {FEATURES}, y FROM synth", target="y",
                       model_type="logistic",
                       hyperparameters={**l1, "solver": "liblinear", "C": 0.05})
    coef = rows(synth, "FROM ml_explain_model('l1') WHERE kind = 'coefficient'")
    zero = {r["feature"] for r in coef if r["coefficient"] == 0.0}
    assert {"noise1", "noise2"} <= zero
    assert any(r["feature"] == "signal" and r["coefficient"] > 0 for r in coef)


def test_linear_contributions_sum_to_the_decision_function(synth):
    sqlml.create_model(synth, "lr", f"SELECT {FEATURES}, y FROM synth", target="y",
                       model_type="logistic")
    got = synth.execute(f"SELECT predict_lr_explain({FEATURES}) FROM synth LIMIT 50").fetchall()
    df = synth.sql(f"SELECT {FEATURES} FROM synth LIMIT 50").df()
    pipe = sqlml.load_model(synth, "lr").pipeline
    prep, est = pipe.named_steps["prep"], pipe.named_steps["model"]
    Xt = np.asarray(prep.transform(df), dtype=float)
    decision = Xt @ est.coef_[0] + est.intercept_[0]   # log-odds of True, the positive class
    intercept = synth.execute("SELECT coefficient FROM ml_explain_model('lr') "
                              "WHERE kind = 'intercept'").fetchall()[0][0]
    assert intercept == pytest.approx(est.intercept_[0])
    for (contribs,), d in zip(got, decision, strict=True):
        assert len(contribs) == 4
        values = [c["contribution"] for c in contribs]
        assert values == sorted(values, key=abs, reverse=True)
        assert sum(values) + intercept == pytest.approx(d, abs=1e-9)
    # the signal column dominates most rows
    assert np.mean([c[0]["feature"] == "signal" for (c,) in got]) > 0.7


def test_tree_contributions_are_output_minus_baseline_output(synth):
    sqlml.create_model(synth, "gb", f"SELECT {FEATURES}, y FROM synth", target="y",
                       model_type="gradient_boosting")
    got = synth.execute("SELECT predict_gb_explain(s), predict_gb_probability(s) "
                        "FROM (SELECT signal, noise1, noise2, noise_cat FROM synth LIMIT 20) s"
                        ).fetchall()
    df = synth.sql(f"SELECT {FEATURES} FROM synth").df()
    pipe = sqlml.load_model(synth, "gb").pipeline
    first = df.iloc[:20].copy()
    first["signal"] = df["signal"].median()
    without_signal = pipe.predict_proba(first)[:, 1]
    for (contribs, p), p0 in zip(got, without_signal, strict=True):
        by = {c["feature"]: c["contribution"] for c in contribs}
        assert by["signal"] == pytest.approx(p - p0, abs=1e-12)


def test_regression_and_multiclass_explain(synth):
    sqlml.create_model(synth, "rf", f"SELECT {FEATURES}, v FROM synth", target="v",
                       model_type="random_forest", hyperparameters={"n_estimators": 20})
    (c,), = synth.execute(f"SELECT predict_rf_explain({FEATURES}) FROM synth LIMIT 1").fetchall()
    assert c[0]["feature"] == "signal"
    sqlml.create_model(synth, "mc", "SELECT signal, noise1, noise_cat FROM synth",
                       target="noise_cat", model_type="logistic")
    out = synth.execute("SELECT predict_mc_explain(signal, noise1) FROM synth LIMIT 3").fetchall()
    assert all(len(r[0]) == 2 for r in out)
    classes = {r[0] for r in synth.execute(
        "SELECT DISTINCT class_label FROM ml_explain_model('mc') WHERE kind = 'coefficient'"
    ).fetchall()}
    assert classes == {"a", "b", "c"}


def test_explain_macro_exists_and_is_dropped(synth):
    sqlml.create_model(synth, "d", f"SELECT {FEATURES}, y FROM synth", target="y",
                       model_type="logistic")

    def macros():
        return {r[0] for r in synth.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'predict_d%'"
        ).fetchall()}

    assert "predict_d_explain" in macros()
    assert synth.execute("SELECT count(*) FROM sqlml.feature_importance WHERE name = 'd'"
                         ).fetchall()[0][0] > 0
    synth.execute("SELECT ml_drop_model('d')").fetchall()
    assert not macros()
    for table in ("feature_importance", "explain_baselines"):
        assert synth.execute(f"SELECT count(*) FROM sqlml.{table} WHERE name = 'd'"
                             ).fetchall() == [(0,)]
    with pytest.raises(Exception, match="does not exist"):
        synth.execute("FROM ml_explain_model('d')").fetchall()


def test_wrong_arguments_name_the_explain_function(synth):
    sqlml.create_model(synth, "w", f"SELECT {FEATURES}, y FROM synth", target="y",
                       model_type="logistic")
    with pytest.raises(Exception, match="predict_w_explain"):
        synth.execute("SELECT predict_w_explain(s) FROM (SELECT signal FROM synth) s").fetchall()


def test_text_terms_are_capped():
    assert explain.TEXT_TERMS == 200 and explain.TOP_K == 5


@pytest.mark.parametrize("model_type", ["logistic", "random_forest"])
def test_block_permutation_equals_sklearn_permutation_importance(customers, model_type):
    from sklearn.inspection import permutation_importance

    sqlml.create_model(customers, "p", "customers", target="churned", model_type=model_type,
                       hyperparameters={"n_estimators": 20} if model_type != "logistic" else {})
    pipe = sqlml.load_model(customers, "p").pipeline
    df = customers.sql("FROM customers").df()
    X, y = df.drop(columns=["churned", "customer_id"]), df["churned"].to_numpy()
    ours = explain._by_blocks(pipe, X, y, "roc_auc", 7, explain.N_REPEATS)
    ref = permutation_importance(pipe, X, y, scoring="roc_auc", n_repeats=explain.N_REPEATS,
                                 random_state=7).importances
    assert ours is not None and np.allclose(ours, ref, atol=1e-12)


@pytest.mark.parametrize("seconds, one_pass, want", [
    (None, 10.0, (3, 1000)),    # no budget: the full estimate
    (100.0, 1.0, (3, 1000)),    # 4 columns x 3 repeats x 1 s fit in 100 s
    (9.0, 1.0, (2, 1000)),      # 2 repeats of 4 columns fit in 9 s, 3 do not
    (2.0, 1.0, (1, 500)),       # not even one repeat: half the rows
    (0.0, 1.0, (1, explain.MIN_ROWS)),
    (-3.0, 1.0, (1, explain.MIN_ROWS)),
])
def test_permutation_affordable_within_what_is_left_of_max_runtime(seconds, one_pass, want):
    assert explain.affordable(seconds, 4, 1000, one_pass) == want


def test_permutation_with_no_time_left_is_one_repeat_on_fewer_rows(synth):
    from sklearn.inspection import permutation_importance

    sqlml.create_model(synth, "q", f"SELECT {FEATURES}, y FROM synth", target="y",
                       model_type="random_forest", hyperparameters={"n_estimators": 10})
    pipe = sqlml.load_model(synth, "q").pipeline
    df = synth.sql(f"SELECT {FEATURES}, y FROM synth").df()
    X, y = df.drop(columns=["y"]), df["y"].to_numpy()
    rows, note = explain.permutation_rows(pipe, X, y, "roc_auc", 3, seconds=0.0)
    assert note.startswith("max_runtime left too little time for full permutation importance: "
                           f"1 repeat(s) on {explain.MIN_ROWS} validation rows instead of 3")
    Xs, ys = explain.sample_rows(X, y, explain.MIN_ROWS, 3)
    ref = permutation_importance(pipe, Xs, ys, scoring="roc_auc", n_repeats=1, random_state=3)
    got = {r[2]: r[5] for r in rows}
    assert np.allclose([got[c] for c in X.columns], ref.importances_mean, atol=1e-12)
    assert max(got, key=got.get) == "signal"
    full, none = explain.permutation_rows(pipe, X, y, "roc_auc", 3)
    assert none is None and {r[2]: r[6] for r in full}["signal"] > 0   # 3 repeats: a spread
