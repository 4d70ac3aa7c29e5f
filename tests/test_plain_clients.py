"""What a DuckDB client without sqlml is told when it calls what only sqlml's Python runs:
training, ml_predict, the catalog changes, and a model that does not compile. Never a missing
internal function. (Every generated function's answers in the duckdb CLI and Node.js are in
tests/test_contract.py.)"""

from __future__ import annotations

import clients
import pytest

import sqlml
from sqlml.datasets import make_customers


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "shop.duckdb"
    con = sqlml.connect(path)
    con.register("frame", make_customers(400, seed=3))
    con.execute("CREATE TABLE customers AS FROM frame")
    sqlml.create_model(con, "churn", "SELECT * EXCLUDE (customer_id) FROM customers",
                       target="churned", model_type="logistic", progress=False)
    # An MLP over a text column is the one model that does not compile (its notes say why).
    sqlml.create_model(con, "noted", "SELECT plan, support_notes, churned FROM customers",
                       target="churned", model_type="mlp", function="predict_noted",
                       progress=False)
    con.close()
    return path


@pytest.mark.parametrize(("sql", "called"), [
    ("SELECT ml_create_model('again', 'customers', target := 'churned')", "ml_create_model"),
    ("SELECT ml_predict('churn', c) FROM customers c", "ml_predict"),
    ("SELECT ml_predict_probability('churn', c.plan, c.tenure_months) FROM customers c",
     "ml_predict_probability"),
    ("SELECT ml_drop_model('churn')", "ml_drop_model"),
    ("SELECT ml_rollback_model('churn', 1)", "ml_rollback_model"),
    ("SELECT ml_refresh_scores('churn', 'customers')", "ml_refresh_scores"),
])
def test_python_only_functions_say_what_needs_sqlml(shop, sql, called):
    got = clients.cli_json(shop, sql)
    assert isinstance(got, str), got
    assert "does not exist" not in got
    assert f"{called} needs sqlml's Python package, which this DuckDB client does not have" \
        in got
    assert "pip install sqlml" in got and "sqlml.connect(path)" in got
    assert "sqlml serve" in got and "sqlml.install(cursor)" in got


def test_a_model_that_does_not_compile_names_itself_the_reason_and_the_remedy(shop):
    got = clients.cli_json(shop, "SELECT predict_noted_probability(c) FROM customers c")
    assert isinstance(got, str), got
    assert "does not exist" not in got
    assert ("predict_noted_probability: model 'noted' is scored by sqlml's Python package only "
            "(not compiled to SQL: MLP model over text column support_notes") in got
    assert "SELECT ml_refresh_scores('noted', '<table>')" in got
    assert "sqlml_scores.noted" in got and "sqlml serve" in got


def test_the_compiled_model_and_the_catalog_answer(shop):
    with sqlml.connect(shop, read_only=True) as con:
        want = con.execute("SELECT count(*) FILTER (WHERE predict_churn(c)), "
                           "avg(predict_churn_probability(c)) FROM customers c").fetchall()[0]
    got = clients.cli_json(shop, "SELECT count(*) FILTER (WHERE predict_churn(c)) AS n, "
                                 "avg(predict_churn_probability(c)) AS p FROM customers c")
    assert isinstance(got, list) and clients.same(list(got[0].values()), list(want))
    models = clients.cli_json(shop, "SELECT name FROM ml_models() ORDER BY name")
    assert models == [{"name": "churn"}, {"name": "noted"}]
