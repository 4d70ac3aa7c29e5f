import numpy as np
import pytest

import sqlml

FEATURES = "age, plan, monthly_spend, autopay, signup_date, support_calls"


@pytest.fixture
def churn(customers):
    sqlml.create_model(customers, "churn", "customers", target="churned",
                       model_type="logistic")
    return customers


def col(con, sql):
    return [r[0] for r in con.execute(sql).fetchall()]


def test_positional_whole_row_and_columns_forms_agree(churn):
    a = col(churn, f"SELECT predict_churn_probability({FEATURES}) FROM customers")
    b = col(churn, "SELECT predict_churn_probability(c) FROM customers c")
    c = col(churn, "SELECT predict_churn_probability(*COLUMNS(* EXCLUDE (customer_id, churned)))"
                   " FROM customers")
    d = col(churn, "SELECT ml_predict_probability('churn', c) FROM customers c")
    # ml_predict scores through Python, the generated function of a logistic model through its
    # compiled SQL (faster in a session too): the same numbers to 1e-12.
    assert a == b == c and len(a) == 600
    np.testing.assert_allclose(a, d, rtol=0, atol=1e-12)


def test_sql_equals_stored_pipeline_exactly(churn):
    df = churn.sql("FROM customers").df()
    model = sqlml.load_model(churn, "churn")
    ref = model.pipeline.predict_proba(df.drop(columns=["churned", "customer_id"]))[:, 1]
    # A logistic model is served by its compiled SQL in a session too: 1e-12 of the pipeline.
    got = np.array(col(churn, "SELECT predict_churn_probability(c) FROM customers c"))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    labels = col(churn, "SELECT predict_churn(c) FROM customers c")
    assert labels == [bool(p >= model.threshold) for p in ref]


def test_probabilities_lists_every_class(churn):
    row = churn.execute("SELECT predict_churn_probabilities(c), predict_churn_probability(c) "
                        "FROM customers c LIMIT 1").fetchall()[0]
    probs, p = row
    assert probs["labels"] == ["False", "True"]
    assert probs["probabilities"][1] == p and sum(probs["probabilities"]) == pytest.approx(1)


def test_generic_predict_with_pinned_version(churn):
    sqlml.create_model(churn, "churn", "customers", target="churned", model_type="random_forest")
    v1 = col(churn, "SELECT ml_predict_probability('churn@1', c) FROM customers c")
    v2 = col(churn, "SELECT ml_predict_probability('churn@2', c) FROM customers c")
    latest = col(churn, "SELECT predict_churn_probability(c) FROM customers c")
    assert latest == v2 and v1 != v2
    assert col(churn, "SELECT ml_predict('churn@1', c) FROM customers c LIMIT 1")[0] in (
        "True", "False")


def test_rows_in_a_group_by_and_parallel_threads(churn):
    churn.execute("SET threads = 2")
    churn.execute("CREATE TABLE many AS SELECT c.* FROM customers c, range(40)")
    got = churn.execute("SELECT plan, avg(predict_churn_probability(m)), count(*) FROM many m "
                        "GROUP BY plan ORDER BY plan").fetchall()
    one = churn.execute("SELECT plan, avg(predict_churn_probability(c)), count(*) * 40 "
                        "FROM customers c GROUP BY plan ORDER BY plan").fetchall()
    assert [r[0] for r in got] == [r[0] for r in one]
    for g, o in zip(got, one, strict=True):
        assert g[1] == pytest.approx(o[1], rel=1e-12) and g[2] == o[2]


def test_null_features_go_through_the_imputer(churn):
    p = col(churn, "SELECT predict_churn_probability(NULL, NULL, NULL, NULL, NULL, NULL)")[0]
    assert 0.0 < p < 1.0
    prep = sqlml.load_model(churn, "churn").pipeline.named_steps["prep"]
    age = prep.named_transformers_["age"].named_steps["impute"].statistics_[0]
    calls = prep.named_transformers_["support_calls"].named_steps["impute"].statistics_[0]
    row = "{age}, 'basic', 50.0, true, DATE '2023-01-01', {calls}"
    q = "SELECT predict_churn_probability(" + row + ")"
    # age had no NULLs in training: a NULL age is exactly the median age.
    assert col(churn, q.format(age="NULL", calls=2))[0] == col(
        churn, q.format(age=age, calls=2))[0]
    # support_calls had NULLs: the imputer's missing-value indicator tells the model.
    assert col(churn, q.format(age=40, calls="NULL"))[0] != col(
        churn, q.format(age=40, calls=calls))[0]


def test_unseen_category_is_tolerated(churn):
    unseen = col(churn, "SELECT predict_churn_probability(40, 'platinum', 50.0, true, "
                        "DATE '2023-01-01', 2)")[0]
    assert 0.0 < unseen < 1.0


def test_text_in_a_numeric_column_is_a_clear_error(churn):
    # The compiled SQL (which serves a logistic model) says what the Python path says.
    for fn in ("predict_churn", "ml_predict"):
        args = "'forty', 'basic', 50.0, true, DATE '2023-01-01', 2"
        with pytest.raises(Exception, match=r"feature 'age' must be numeric \(INTEGER at "
                                            r"training\), got string value 'forty'\. Pass a "
                                            r"number, or NULL"):
            churn.execute(f"SELECT {fn}({args})" if fn != "ml_predict" else
                          f"SELECT ml_predict('churn', {args})").fetchall()


def test_wrong_number_of_arguments_lists_expected_columns(churn):
    with pytest.raises(Exception, match=r"predict_churn\(age, plan, monthly_spend, autopay, "
                                        r"signup_date, support_calls\)"):
        churn.execute("SELECT predict_churn(1, 2) FROM customers").fetchall()
    with pytest.raises(Exception, match=r"takes 6 feature columns in training order, \(age "
                                        r"INTEGER, plan VARCHAR.*got 2 argument"):
        churn.execute("SELECT ml_predict('churn', 1, 2)").fetchall()


def test_row_missing_a_column_names_it(churn):
    # Scored through Python (ml_predict, and a model's own function in a session): sqlml's
    # message; through the compiled SQL (_sql), DuckDB's binder names the missing field.
    for fn in ("ml_predict('churn', c)", "predict_churn(c)"):
        with pytest.raises(Exception, match=r"the row passed has no column 'monthly_spend'"):
            churn.execute(f"SELECT {fn} FROM (SELECT age, plan FROM customers) c").fetchall()
    with pytest.raises(Exception, match=r'Could not find key "monthly_spend" in struct'):
        churn.execute("SELECT predict_churn_sql(c) FROM (SELECT age, plan FROM customers) c"
                      ).fetchall()
