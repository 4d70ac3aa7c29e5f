"""Every bad input the foundation promises a clear error for: object, rule, value, remedy."""

import duckdb
import pytest

import sqlml


def create(con, *args, **kw):
    return sqlml.create_model(con, *args, **kw)


def test_unknown_model_everywhere(customers):
    create(customers, "churn", "customers", target="churned", model_type="logistic")
    msg = r"model 'chrun' does not exist \(it was never trained, or it was dropped\)"
    with pytest.raises(Exception, match=msg + r".*Did you mean 'churn'"):
        customers.execute("SELECT ml_predict('chrun', c) FROM customers c").fetchall()
    with pytest.raises(Exception, match=msg + r".*Did you mean 'churn'"):
        customers.execute("SELECT ml_drop_model('chrun')").fetchall()
    with pytest.raises(Exception, match=r"model 'chrun' does not exist.*Models in this database: "
                                        r"churn"):
        customers.execute("FROM ml_show_model('chrun')").fetchall()
    with pytest.raises(Exception, match=r"model 'churn' has no version '7'; stored versions "
                                        r"are 1"):
        customers.execute("SELECT ml_predict('churn@7', c) FROM customers c").fetchall()


def test_model_dropped_while_another_connection_uses_it(tmp_path, customers):
    path = tmp_path / "shared.duckdb"
    a = sqlml.connect(path)
    a.execute(f"CREATE TABLE customers AS FROM read_parquet('{_export(customers, tmp_path)}')")
    create(a, "churn", "customers", target="churned", model_type="logistic")
    b = sqlml.connect(path)  # same process, same database instance
    assert b.execute("SELECT count(ml_predict('churn', c)) FROM customers c").fetchall() == [
        (600,)]
    a.execute("SELECT ml_drop_model('churn')").fetchall()
    with pytest.raises(Exception, match=r"model 'churn' does not exist \(it was never trained, "
                                        r"or it was dropped\)"):
        b.execute("SELECT ml_predict('churn', c) FROM customers c").fetchall()
    with pytest.raises(Exception, match="predict_churn"):
        b.execute("SELECT predict_churn(c) FROM customers c").fetchall()


def _export(con, tmp_path):
    p = tmp_path / "customers.parquet"
    con.execute(f"COPY customers TO '{p}'")
    return p


@pytest.mark.parametrize("kind,kw", [
    ("model name", {"name": "churn; DROP TABLE x"}),
    ("function name", {"function": "predict churn"}),
    ("function name", {"function": "p()--"}),
])
def test_names_must_be_plain_identifiers(customers, kind, kw):
    name = kw.pop("name", "churn")
    with pytest.raises(Exception, match=rf"the {kind} must be a plain identifier .* got '"):
        create(customers, name, "customers", target="churned", **kw)
    assert customers.execute("SELECT count(*) FROM customers").fetchall() == [(600,)]
    assert customers.execute("SELECT count(*) FROM sqlml.model_versions").fetchall() == [(0,)]


def test_function_name_clashing_with_builtin_or_other_model(customers):
    with pytest.raises(Exception, match=r"function name 'sum' clashes with a DuckDB built-in "
                                        r"aggregate function 'sum'"):
        create(customers, "churn", "customers", target="churned", function="sum")
    create(customers, "churn", "customers", target="churned", model_type="logistic")
    with pytest.raises(Exception, match=r"function name 'predict_churn' clashes with the "
                                        r"function of model 'churn'"):
        create(customers, "other", "customers", target="churned", function="predict_churn")
    customers.execute("CREATE MACRO my_fn(x) AS x + 1")
    with pytest.raises(Exception, match=r"clashes with an existing macro function 'my_fn'"):
        create(customers, "other", "customers", target="churned", function="my_fn")


def test_missing_target_suggests_closest(customers):
    with pytest.raises(Exception, match=r"target column 'churn' is not in the training data. "
                                        r"Did you mean 'churned'"):
        create(customers, "m", "customers", target="churn")


def test_target_all_one_class_or_all_null(customers):
    with pytest.raises(Exception, match=r"target 'churned' has a single class \(True\) in all "
                                        r"\d+ rows; a classifier needs at least two"):
        create(customers, "m", "SELECT * FROM customers WHERE churned", target="churned")
    with pytest.raises(Exception, match=r"target column 'x' is NULL in all 600 rows"):
        create(customers, "m", "SELECT *, NULL::INTEGER AS x FROM customers", target="x")


def test_empty_and_failing_queries(customers):
    with pytest.raises(Exception, match=r"returned no rows. Check its WHERE clause"):
        create(customers, "m", "SELECT * FROM customers WHERE false", target="churned")
    with pytest.raises(Exception, match=r"the training query for model 'm' failed: .*Table with "
                                        r"name nope does not exist"):
        create(customers, "m", "SELECT * FROM nope", target="churned")


def test_training_set_too_small_for_split(customers):
    with pytest.raises(Exception, match=r"too small for a 20% validation split: 5 rows"):
        create(customers, "m", "SELECT * FROM customers WHERE customer_id IN "
                               "(SELECT customer_id FROM customers ORDER BY churned LIMIT 3) OR "
                               "customer_id IN (SELECT customer_id FROM customers WHERE churned "
                               "LIMIT 2)", target="churned")


def test_unknown_option_values(customers):
    with pytest.raises(Exception, match=r"model_type 'xgboots' is unknown.*'auto' or one of"):
        create(customers, "m", "customers", target="churned", model_type="xgboots")
    with pytest.raises(Exception, match=r"hyperparameter 'max_dept' is not a parameter of "
                                        r"HistGradientBoostingClassifier.*'max_depth'"):
        create(customers, "m", "customers", target="churned", model_type="gradient_boosting",
               hyperparameters={"max_dept": 3})
    with pytest.raises(Exception, match=r"setting 'max_runtme' is unknown.*max_runtime"):
        create(customers, "m", "customers", target="churned", settings={"max_runtme": 5})
    with pytest.raises(Exception, match=r"setting max_runtime must be a positive number, got -1"):
        create(customers, "m", "customers", target="churned", settings={"max_runtime": -1})


def test_failed_training_keeps_previous_version_serving(customers, monkeypatch):
    create(customers, "churn", "customers", target="churned", model_type="logistic")
    before = customers.execute("SELECT predict_churn_probability(c) FROM customers c").fetchall()

    from sqlml.catalog import generated

    real = generated.create_statements

    def broken(*args, **kwargs):  # fails inside the publishing transaction, after the version
        return [*real(*args, **kwargs), "CREATE MACRO broken( AS nonsense"]

    monkeypatch.setattr(generated, "create_statements", broken)
    with pytest.raises(Exception, match="Parser Error"):
        create(customers, "churn", "customers", target="churned", model_type="random_forest")
    monkeypatch.undo()
    assert customers.execute(
        "SELECT max(version), count(*) FROM sqlml.model_versions WHERE name = 'churn'"
    ).fetchall() == [(1, 1)]
    assert customers.execute(
        "SELECT count(*) FROM sqlml.model_metrics WHERE version = 2").fetchall() == [(0,)]
    after = customers.execute("SELECT predict_churn_probability(c) FROM customers c").fetchall()
    assert after == before
    runs = customers.execute(
        "SELECT status, error FROM ml_training_history('churn')").fetchall()
    assert [r[0] for r in runs] == ["succeeded", "failed"] and "Parser Error" in runs[1][1]


@pytest.mark.parametrize("macro", ["ml_show_model", "ml_model_metrics", "ml_confusion_matrix",
                                   "ml_trials", "ml_threshold_metrics", "ml_calibration",
                                   "ml_explain_model", "ml_diagnose"])
def test_catalog_views_refuse_an_unknown_model_in_an_empty_catalog(macro):
    # With no model at all, a filter over empty tables never runs; the name is checked anyway.
    con = sqlml.connect()
    with pytest.raises(duckdb.InvalidInputException,
                       match=r"model 'nope' does not exist .*none yet; train one"):
        con.execute(f"FROM {macro}('nope')").fetchall()
