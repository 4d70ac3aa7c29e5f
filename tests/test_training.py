import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

import sqlml


def train(con, name="churn", source="customers", **kw):
    kw.setdefault("target", "churned")
    return sqlml.create_model(con, name, source, **kw)


def test_sql_call_returns_one_row_summary(customers):
    con = customers
    row = con.execute(
        "SELECT ml_create_model('churn', 'SELECT * FROM customers', target := 'churned', "
        "function := 'predict_churn', model_type := 'logistic')").fetchall()
    assert len(row) == 1
    s = row[0][0]
    assert s["name"] == "churn" and s["version"] == 1
    assert s["problem_type"] == "binary_classification"
    assert s["model_type"] == "logistic" and s["function"] == "predict_churn"
    assert s["training_rows"] == 600 and 0.5 < s["validation_score"] <= 1.0
    assert "customer_id" in s["notes"] and "identifier" in s["notes"]


def test_catalog_records_everything_about_a_version(customers):
    train(customers, model_type="logistic")
    row = customers.execute("""
        SELECT state, problem_type, model_type, target, target_type, features, function_name,
               threshold, metrics, parameters, training_rows, training_query, data_fingerprint,
               library_versions, created_at, training_seconds, octet_length(artifact)
        FROM sqlml.model_versions WHERE name = 'churn'""").fetchall()[0]
    (state, problem, mtype, target, ttype, features, fn, threshold, metrics, params, rows,
     query, fp, libs, _created, seconds, size) = row
    assert (state, problem, mtype, target, ttype) == (
        "READY", "binary_classification", "logistic", "churned", "BOOLEAN")
    feats = {f["name"]: (f["type"], f["kind"]) for f in json.loads(features)}
    assert feats == {"age": ("INTEGER", "numeric"), "plan": ("VARCHAR", "categorical"),
                     "monthly_spend": ("DOUBLE", "numeric"), "autopay": ("BOOLEAN", "boolean"),
                     "signup_date": ("DATE", "date"), "support_calls": ("INTEGER", "numeric")}
    assert fn == "predict_churn" and threshold == 0.5
    assert {"roc_auc", "pr_auc", "f1", "log_loss", "false_negative_rate", "tp"} <= set(
        json.loads(metrics))
    assert json.loads(params)["estimator"]["estimator"] == "LogisticRegression"
    assert rows == 600 and query == "SELECT * FROM customers" and fp.startswith("600:")
    assert "scikit-learn" in json.loads(libs) and seconds > 0 and size > 100


def test_retraining_creates_next_version(customers):
    assert train(customers, model_type="logistic")["version"] == 1
    assert train(customers, model_type="random_forest")["version"] == 2
    rows = customers.execute("FROM ml_models()").fetchall()
    assert len(rows) == 1
    info = dict(zip([d[0] for d in customers.description], rows[0], strict=True))
    assert info["version"] == 2 and info["versions"] == 2
    assert info["model_type"] == "random_forest"


@pytest.mark.parametrize("model_type", ["logistic", "random_forest", "gradient_boosting", "knn",
                                        "mlp"])
def test_every_classifier_type_trains_and_serves(customers, model_type):
    s = train(customers, model_type=model_type)
    assert s["model_type"] == model_type
    df = customers.sql("FROM customers").df()
    labels = np.array([r[0] for r in customers.execute(
        "SELECT predict_churn(c) FROM customers c").fetchall()])
    # Trained on these rows, every model type must beat the majority class.
    assert accuracy_score(df["churned"], labels) > max(df["churned"].mean(),
                                                       1 - df["churned"].mean())


@pytest.mark.parametrize("model_type", ["linear", "lasso", "elastic_net", "random_forest",
                                        "gradient_boosting", "knn", "mlp"])
def test_every_regressor_type_trains_and_serves(customers, model_type):
    s = train(customers, "spend", target="monthly_spend", model_type=model_type,
              function="predict_spend")
    assert s["problem_type"] == "regression"
    pred = customers.execute("SELECT predict_spend(c) FROM customers c").fetchall()
    assert len(pred) == 600 and all(isinstance(r[0], float) for r in pred)
    metrics = dict(customers.execute(
        "SELECT metric, value FROM ml_model_metrics('spend')").fetchall())
    assert {"rmse", "mae", "r2", "mape"} <= set(metrics)


def test_problem_type_is_inferred_from_the_target(customers):
    con = customers
    con.execute("CREATE TABLE tiers AS SELECT * EXCLUDE (churned), "
                "CASE WHEN monthly_spend < 40 THEN 'low' WHEN monthly_spend < 70 THEN 'mid' "
                "ELSE 'high' END AS tier FROM customers")
    s = train(con, "tier", "tiers", target="tier", model_type="logistic")
    assert s["problem_type"] == "multiclass_classification"
    assert s["objective"] == "accuracy"
    per_class = con.execute("SELECT DISTINCT class_label FROM ml_model_metrics('tier') "
                            "WHERE class_label IS NOT NULL ORDER BY 1").fetchall()
    assert [r[0] for r in per_class] == ["high", "low", "mid"]
    metrics = {r[0] for r in con.execute("SELECT metric FROM ml_model_metrics('tier')").fetchall()}
    assert {"f1_macro", "f1_micro", "f1_weighted", "precision", "recall"} <= metrics


def test_integer_class_labels_train_and_score_like_sklearn(con):
    """scikit-learn's wine data (shipped in the package): three classes labelled 0, 1, 2."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    wine = load_wine(as_frame=True).frame.rename(  # noqa: F841  (read by CREATE TABLE below)
        columns=lambda c: c.replace("/", "_"))
    con.execute("CREATE TABLE wine AS FROM wine")
    s = train(con, "wine_m", "wine", target="target", model_type="logistic")
    assert s["problem_type"] == "multiclass_classification"
    model = sqlml.load_model(con, "wine_m")
    df = con.sql("FROM wine").df()
    X, y = df.drop(columns=["target"]), df["target"].to_numpy()
    _, va = train_test_split(np.arange(len(y)), test_size=36, random_state=42, stratify=y)
    from sklearn.base import clone
    fitted = clone(model.pipeline).fit(X.drop(index=va), np.delete(y, va))
    metrics = dict(con.execute("SELECT metric, value FROM ml_model_metrics('wine_m') "
                               "WHERE class_label IS NULL").fetchall())
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y[va], fitted.predict(X.iloc[va])))
    got = [r[0] for r in con.execute("SELECT predict_wine_m(w) FROM wine w").fetchall()]
    assert got == model.pipeline.predict(X).tolist()
    labels = {r[0] for r in con.execute("SELECT DISTINCT class_label FROM "
                                        "ml_model_metrics('wine_m')").fetchall()}
    assert labels == {None, "0", "1", "2"}


def test_stored_metrics_match_sklearn_on_the_validation_rows(customers):
    from sklearn.model_selection import train_test_split

    train(customers, model_type="logistic")
    df = customers.sql("FROM customers").df()
    y = df["churned"].to_numpy()
    tr, va = train_test_split(np.arange(len(y)), test_size=120, random_state=42, stratify=y)
    from sklearn.base import clone

    model = sqlml.load_model(customers, "churn")
    X = df.drop(columns=["churned", "customer_id"])
    fitted = clone(model.pipeline).fit(X.iloc[tr], y[tr])
    p = fitted.predict_proba(X.iloc[va])[:, 1]
    stored = dict(customers.execute(
        "SELECT metric, value FROM ml_model_metrics('churn')").fetchall())
    assert stored["roc_auc"] == pytest.approx(roc_auc_score(y[va], p), abs=1e-12)
    cm = customers.execute("SELECT sum(n) FROM ml_confusion_matrix('churn')").fetchall()[0][0]
    assert cm == 120


def test_auto_compares_candidates_and_records_each(customers):
    s = train(customers, model_type="auto", settings={"max_runtime": 120})
    trials = customers.execute(
        "SELECT model_type, score, seconds, status, parameters, fold_scores "
        "FROM ml_trials('churn')").fetchall()
    assert [t[0] for t in trials] == ["logistic", "gradient_boosting", "random_forest"]
    done = [t for t in trials if t[3] == "completed"]
    assert all(t[1] is not None and t[2] > 0 for t in done)
    # The noise rule (docs/training.md): the best mean, unless a quicker candidate trails it by
    # at most one standard error of the paired fold differences (scipy's sem as reference).
    from scipy import stats
    folds = {t[0]: json.loads(t[5]) for t in done}
    best = max(done, key=lambda t: t[1])[0]
    want = best
    for m in [t[0] for t in done][:[t[0] for t in done].index(best)]:
        d = np.subtract(folds[best], folds[m])
        if d.mean() <= stats.sem(d):
            want = m
            break
    assert s["model_type"] == want
    rules = {t[0]: json.loads(t[4])["selection"] for t in done}
    assert [m for m, r in rules.items() if r.startswith("kept")] == [want]
    stages = json.loads(customers.execute(
        "SELECT parameters FROM sqlml.model_versions WHERE name = 'churn'").fetchall()[0][0]
                        )["stage_seconds"]
    assert set(stages) == {"select", "validate_refit", "explain", "profile", "store", "compile"}
    assert all(v >= 0 for v in stages.values()) and stages["select"] <= s["seconds"]


def test_preprocessors_override_and_text_features(con):
    con.execute("""CREATE TABLE msgs AS SELECT i AS id,
        CASE WHEN i % 3 = 0 THEN 'WIN a <b>FREE</b> prize now, claim cash ' || i
             ELSE 'see you at lunch tomorrow, bring the notes ' || i END AS body,
        i % 3 = 0 AS spam, (i % 5)::INTEGER AS code FROM range(300) t(i)""")
    s = train(con, "spam", "SELECT body, code, spam FROM msgs", target="spam",
              model_type="logistic", preprocessors={"code": "one_hot"})
    feats = {f["name"]: f for f in json.loads(con.execute(
        "SELECT features FROM sqlml.model_versions WHERE name='spam'").fetchall()[0][0])}
    assert feats["body"]["kind"] == "text" and feats["body"]["preprocessor"] == "tfidf"
    assert feats["code"]["kind"] == "categorical"
    assert s["validation_score"] > 0.95
    got = con.execute("SELECT predict_spam('<i>FREE</i> cash prize, claim now', 1)").fetchall()
    assert got == [(True,)]


def test_null_target_rows_are_left_out_with_a_note(customers):
    customers.execute("UPDATE customers SET churned = NULL WHERE customer_id < 50")
    s = train(customers, model_type="logistic")
    assert s["training_rows"] == 550
    assert "50 rows with a NULL target were left out" in s["notes"]
