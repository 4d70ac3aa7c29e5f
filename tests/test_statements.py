"""Redshift ML statements: splitting, the grammar compiled to SQL calls, and scripts that run."""

from __future__ import annotations

import itertools
import json

import duckdb
import numpy as np
import pytest

import sqlml
from sqlml.datasets import make_customers
from sqlml.errors import SqlSyntaxError
from sqlml.redshift.parser import is_complete, parse, split
from sqlml.redshift.script import SqlmlNotice

BASE = "CREATE MODEL m FROM customers TARGET churned FUNCTION predict_m"
CALL = "SELECT ml_create_model('m', 'customers', target := 'churned', function := 'predict_m'"


def compiled(text: str) -> str:
    (st,) = parse(text)
    return st.sql


def call_arguments(sql: str) -> tuple[list, dict]:
    """Positional and named arguments of the one function call ``sql`` selects, read by DuckDB's
    own parser (json_serialize_sql), which checks our quoting independently."""
    tree = json.loads(duckdb.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    assert not tree.get("error"), tree
    call = tree["statements"][0]["node"]["select_list"][0]
    args = call.get("arguments")
    if args is None:        # older DuckDB: children carry the name as alias
        args = [{"name": c.get("alias", ""), "expression": c} for c in call["children"]]
    positional, named = [], {}
    for a in args:
        value = constant(a["expression"])
        if a["name"]:
            named[a["name"]] = value
        else:
            positional.append(value)
    return positional, named


def constant(expr: dict):
    """The value of a constant in json_serialize_sql's tree."""
    if "literal" in expr:   # DuckDB 1.5 and later: the literal's text and kind
        lit = expr["literal"]
        return lit["text"] if lit["kind"] == "STRING" else json.loads(lit["text"])
    if expr["class"] == "CAST":     # DuckDB 1.4 writes TRUE as CAST('t' AS BOOLEAN)
        assert expr["cast_type"]["id"] == "BOOLEAN", expr
        return constant(expr["child"]) == "t"
    value = expr["value"]   # DuckDB 1.4: the typed value
    if value["is_null"]:
        return None
    info = value["type"]["type_info"] or {}
    return value["value"] / 10 ** info["scale"] if "scale" in info else value["value"]


def options(text: str) -> dict:
    """The named arguments of the compiled ml_create_model call, JSON ones decoded."""
    sql = compiled(text)
    assert sql.startswith("SELECT ml_create_model(") and sql.endswith(") AS model")
    named = call_arguments(sql)[1]
    return {k: (json.loads(v) if k in ("hyperparameters", "settings", "preprocessors") else v)
            for k, v in named.items()}


def syntax_error(text: str) -> SqlSyntaxError:
    with pytest.raises(SqlSyntaxError) as info:
        parse(text)
    return info.value


# -- splitting ---------------------------------------------------------------------------------
def test_split_ignores_semicolons_in_strings_comments_dollar_quotes_and_parentheses():
    script = """SELECT 'a;b', "c;d" FROM t; -- one; two
    /* three; */ SELECT $$x;y$$, $tag$ ; $tag$;
    CREATE MODEL m FROM (SELECT 1 AS a; ) TARGET a FUNCTION f;
    SELECT 'it''s; fine'
    """
    assert split(script) == [
        """SELECT 'a;b', "c;d" FROM t""",
        "SELECT $$x;y$$, $tag$ ; $tag$",
        "CREATE MODEL m FROM (SELECT 1 AS a; ) TARGET a FUNCTION f",
        "SELECT 'it''s; fine'",
    ]
    assert split("  -- only a comment\n ; ;") == []


@pytest.mark.parametrize(("text", "complete"), [
    ("SELECT 1;", True),
    ("SELECT 1", False),
    ("SELECT 1; -- done", True),
    ("SELECT 1 -- ;", False),
    ("SELECT ';", False),
    ("SELECT 'a'';'", False),
    ("SELECT 'a'';';", True),
    ("SELECT $$ ; ", False),
    ("SELECT 1 /* ; */", False),
    ("SELECT 1 /* ;", False),
    ("CREATE MODEL m FROM (SELECT 1;", False),
    ("CREATE MODEL m FROM (SELECT 1);", True),
    ("SELECT 1;\nSELECT 2", False),
    ("", False),
])
def test_is_complete(text, complete):
    assert is_complete(text) is complete


def test_statements_inside_strings_and_comments_pass_through_as_sql():
    sts = parse("SELECT 'CREATE MODEL x'; -- DROP MODEL y\n/* SHOW MODEL z; */ SELECT 2")
    assert [(s.kind, s.sql) for s in sts] == [("sql", "SELECT 'CREATE MODEL x'"),
                                              ("sql", "SELECT 2")]


def test_unterminated_string_is_a_syntax_error_at_its_start():
    e = syntax_error("SELECT 1;\nSELECT 2, 'abc")
    assert (e.line, e.column) == (2, 11)
    assert str(e) == ("SQL: line 2, column 11: expected a closing quote ', got the end of the "
                      "script. The quoted text that starts here never ends: close it.")


# -- CREATE MODEL: each clause compiles to the SQL-call form -----------------------------------
def test_minimal_create_model_compiles_to_the_sql_call():
    assert compiled(BASE) == CALL + ") AS model"
    assert compiled(BASE.lower()) == CALL + ") AS model"    # keywords are case-insensitive


def test_from_query_keeps_the_query_text_and_quotes_it():
    sql = compiled("CREATE MODEL m FROM (SELECT * FROM customers WHERE plan <> 'x;y' -- c\n"
                   "  AND (tenure_months > 1)) TARGET churned FUNCTION predict_m")
    assert sql.startswith("SELECT ml_create_model('m', 'SELECT * FROM customers WHERE plan <> "
                          "''x;y'' -- c\n  AND (tenure_months > 1)', target := 'churned'")


def test_names_fold_to_lower_case_unless_quoted():
    # Table names go to DuckDB as written: it resolves them case-insensitively itself.
    assert compiled('CREATE MODEL Churn FROM Shop.Customers TARGET Churned FUNCTION Predict_C') \
        == ("SELECT ml_create_model('churn', 'Shop.Customers', target := 'churned', "
            "function := 'predict_c') AS model")
    assert compiled('CREATE MODEL "Churn" FROM "My Table" TARGET "Churned" FUNCTION "F"') == (
        "SELECT ml_create_model('Churn', 'SELECT * FROM \"My Table\"', target := 'Churned', "
        "function := 'F') AS model")


@pytest.mark.parametrize("role", ["default", "'arn:aws:iam::123456789012:role/ml'"])
def test_iam_role_is_accepted_with_a_notice(role):
    (st,) = parse(f"{BASE} IAM_ROLE {role}")
    assert st.sql == CALL + ") AS model"
    assert st.notices == ["IAM_ROLE is accepted for Redshift compatibility and ignored: sqlml "
                          "trains inside this DuckDB process, with no AWS account or S3 bucket."]


@pytest.mark.parametrize(("word", "sqlml_type"), [
    ("XGBOOST", "gradient_boosting"), ("MLP", "mlp"), ("LINEAR_LEARNER", "linear"),
    ("logistic", "logistic"), ("random_forest", "random_forest"), ("knn", "knn"),
    ("Gradient_Boosting", "gradient_boosting"), ("auto", "auto"),
    ("'xgboost'", "gradient_boosting"),
])
def test_model_type_mapping(word, sqlml_type):
    assert options(f"{BASE} MODEL_TYPE {word}")["model_type"] == sqlml_type


def test_model_type_kmeans_is_not_supported():
    e = syntax_error(f"{BASE} MODEL_TYPE KMEANS")
    assert str(e).startswith(
        "CREATE MODEL: line 1, column 76: expected a supported model type, got 'KMEANS'. "
        "MODEL_TYPE KMEANS: k-means clustering is not available")


@pytest.mark.parametrize(("word", "problem"), [
    ("REGRESSION", "regression"), ("BINARY_CLASSIFICATION", "binary_classification"),
    ("multiclass_classification", "multiclass_classification"),
])
def test_problem_type_mapping(word, problem):
    assert options(f"{BASE} PROBLEM_TYPE {word}")["problem_type"] == problem


def test_problem_type_recommendation_takes_the_target_as_rating_column():
    opts = options("CREATE MODEL r FROM ratings TARGET rating FUNCTION rec PROBLEM_TYPE "
                   "RECOMMENDATION SETTINGS (user_col 'user_id', item_col 'movie_id')")
    assert opts["problem_type"] == "recommendation"
    assert opts["settings"] == {"user_col": "user_id", "item_col": "movie_id",
                                "rating_col": "rating"}


@pytest.mark.parametrize(("text", "objective"), [
    ("'MSE'", "rmse"), ("'Accuracy'", "accuracy"), ("'F1'", "f1"), ("'F1Macro'", "f1_macro"),
    ("'F1_Macro'", "f1_macro"), ("'AUC'", "auc"), ("'reg:squarederror'", "rmse"),
    ("'binary:logistic'", "log_loss"), ("'multi:softmax'", "log_loss"), ("'mae'", "mae"),
    ("'recall'", "recall"), ("r2", "r2"),
])
def test_objective_mapping(text, objective):
    assert options(f"{BASE} OBJECTIVE {text}")["objective"] == objective


def test_unknown_objective_suggests():
    e = syntax_error(f"{BASE} OBJECTIVE 'acuracy'")
    assert e.expected.startswith("an objective such as 'AUC'")
    assert str(e).endswith("got 'acuracy'. Did you mean accuracy?")


def test_preprocessors_redshift_json_maps_per_column():
    spec = json.dumps([
        {"ColumnSet": ["plan", "contract"], "Transformers": ["OneHotEncoder"]},
        {"ColumnSet": ["region"], "Transformers": ["OrdinalEncoder"]},
        {"ColumnSet": ["tenure_months"], "Transformers": ["Imputer", "StandardScaler"]},
        {"ColumnSet": ["monthly_charges"], "Transformers": ["ImputerWithIndicator", "MinMax"]},
        {"ColumnSet": ["total_charges"], "Transformers": ["NumericPassthrough"]},
        {"ColumnSet": ["signup_date"], "Transformers": ["DateTimeVectorizer"]},
        {"ColumnSet": ["last_nps"], "Transformers": ["Normalizer"]},
    ])
    assert options(f"{BASE} PREPROCESSORS '{spec}'")["preprocessors"] == {
        "plan": "one_hot", "contract": "one_hot", "region": "ordinal",
        "tenure_months": "standard", "monthly_charges": "minmax", "total_charges": "numeric",
        "signup_date": "date", "last_nps": "standard"}


def test_preprocessors_sqlml_object_and_none():
    assert options(f"""{BASE} PREPROCESSORS '{{"region": "ordinal", "support_notes": "drop"}}'"""
                   )["preprocessors"] == {"region": "ordinal", "support_notes": "drop"}
    (st,) = parse(f"{BASE} PREPROCESSORS 'none'")
    assert st.sql == CALL + ") AS model"
    assert st.notices[0].startswith("PREPROCESSORS 'none': sqlml still imputes")


@pytest.mark.parametrize(("spec", "message"), [
    ("not json", "expected a JSON list such as"),
    ('[{"ColumnSet": ["a"], "Transformers": ["OneHotEncodr"]}]',
     "got 'OneHotEncodr'. Did you mean OneHotEncoder?"),
    ('[{"ColumnSet": ["a"], "Transformers": ["OneHotEncoder", "OrdinalEncoder"]}]',
     "expected one encoder or one scaler per ColumnSet, got OneHotEncoder and OrdinalEncoder."),
    ('[{"ColumnSet": ["a"], "Transformers": ["PCA"]}]', "PCA is not available in sqlml."),
    ('{"a": "onehot"}', "got 'onehot'. Did you mean one_hot?"),
    ('[{"Columns": ["a"]}]', 'expected entries of the form {"ColumnSet": [...], '),
])
def test_preprocessors_errors(spec, message):
    e = syntax_error(f"{BASE}\nPREPROCESSORS '{spec}'")
    assert (e.line, e.column) == (2, 15)
    assert message in str(e)


def test_hyperparameters_default_adds_nothing():
    assert compiled(f"{BASE} MODEL_TYPE logistic HYPERPARAMETERS DEFAULT") == (
        CALL + ", model_type := 'logistic') AS model")


def test_hyperparameters_except_maps_xgboost_names():
    opts = options(f"{BASE} MODEL_TYPE XGBOOST HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '50', "
                   "ETA '0.05', MAX_DEPTH 4, LAMBDA '1.5', MAX_LEAVES '15', MAX_BIN 63, "
                   "COLSAMPLE_BYNODE '0.8', EARLY_STOPPING_ROUNDS '5', min_samples_leaf 7)")
    assert opts["hyperparameters"] == {
        "max_iter": 50, "learning_rate": 0.05, "max_depth": 4, "l2_regularization": 1.5,
        "max_leaf_nodes": 15, "max_bins": 63, "max_features": 0.8, "early_stopping": True,
        "n_iter_no_change": 5, "min_samples_leaf": 7}


def test_hyperparameters_except_sklearn_names_are_case_insensitive_unless_quoted():
    opts = options(f"{BASE} MODEL_TYPE logistic HYPERPARAMETERS DEFAULT EXCEPT (c '0.5', "
                   "class_weight 'balanced', \"max_iter\" 300)")
    assert opts["hyperparameters"] == {"C": 0.5, "class_weight": "balanced", "max_iter": 300}
    e = syntax_error(f"{BASE} MODEL_TYPE logistic HYPERPARAMETERS DEFAULT EXCEPT (\"c\" 1)")
    assert "Did you mean C?" in str(e)


def test_hyperparameters_num_class_is_ignored_with_a_notice():
    (st,) = parse(f"{BASE} MODEL_TYPE XGBOOST HYPERPARAMETERS DEFAULT EXCEPT (NUM_CLASS '3')")
    assert "hyperparameters" not in st.sql
    assert st.notices == ["HYPERPARAMETERS NUM_CLASS is ignored: sqlml counts the classes of "
                          "the target itself."]


@pytest.mark.parametrize(("clause", "message"), [
    ("MODEL_TYPE XGBOOST HYPERPARAMETERS DEFAULT EXCEPT (SUBSAMPLE '0.5')",
     "XGBoost's SUBSAMPLE has no counterpart in scikit-learn's HistGradientBoosting"),
    ("MODEL_TYPE XGBOOST HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND 'many')",
     "expected an integer for NUM_ROUND, got 'many'"),
    ("MODEL_TYPE XGBOOST HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUNDS '5')",
     "Did you mean NUM_ROUND"),
    ("HYPERPARAMETERS DEFAULT EXCEPT (C '1')",
     "expected MODEL_TYPE before naming hyperparameters, got hyperparameter C with no "
     "MODEL_TYPE"),
    ("MODEL_TYPE logistic HYPERPARAMETERS DEFAULT EXCEPT (C 1, c 2)",
     "expected each hyperparameter at most once, got a second c"),
    ("MODEL_TYPE logistic HYPERPARAMETERS EXCEPT (C 1)",
     "expected DEFAULT after HYPERPARAMETERS, got 'EXCEPT'"),
])
def test_hyperparameters_errors(clause, message):
    assert message in str(syntax_error(f"{BASE} {clause}"))


def test_settings_redshift_and_sqlml_names():
    (st,) = parse(f"{BASE} SETTINGS (S3_BUCKET 'bucket', KMS_KEY_ID 'k', S3_GARBAGE_COLLECT OFF, "
                  "MAX_RUNTIME 30, MAX_CELLS 5000, max_trials 4, strategy random, "
                  "test_size .25, random_state 7, median_stopping false, fn_cost 3, "
                  "fp_cost 1.5, min_recall 0.8)")
    opts = options(st.text)
    assert opts["settings"] == {"max_runtime": 30, "max_cells": 5000, "max_trials": 4,
                                "strategy": "random", "test_size": 0.25, "random_state": 7,
                                "median_stopping": False}
    # fn_cost, fp_cost and min_recall are ml_create_model arguments, not settings
    assert (opts["fn_cost"], opts["fp_cost"], opts["min_recall"]) == (3, 1.5, 0.8)
    assert [n.split(" is accepted")[0] for n in st.notices] == [
        "SETTINGS S3_BUCKET", "SETTINGS KMS_KEY_ID", "SETTINGS S3_GARBAGE_COLLECT"]


@pytest.mark.parametrize(("clause", "message"), [
    ("SETTINGS (MAX_RUNTIME 'abc')",
     "line 1, column 87: expected a number of seconds for MAX_RUNTIME, got 'abc'. Write e.g. "
     "MAX_RUNTIME 300."),
    ("SETTINGS (MAX_CELLS 2.5)", "expected an integer for MAX_CELLS, got '2.5'."),
    ("SETTINGS (S3_GARBAGE_COLLECT 'yes')", "expected ON/OFF or TRUE/FALSE for "
     "S3_GARBAGE_COLLECT, got 'yes'"),
    ("SETTINGS (MAX_RUNTIM 5)", "got 'MAX_RUNTIM'. Did you mean max_runtime"),
    ("SETTINGS (MAX_RUNTIME 5, max_runtime 6)",
     "expected each setting at most once, got a second max_runtime"),
    ("SETTINGS (MAX_RUNTIME 5", "expected ',' or ')' in SETTINGS (...), got the end of the "
     "statement"),
    ("SETTINGS MAX_RUNTIME 5", "expected '(' after SETTINGS, got 'MAX_RUNTIME'"),
])
def test_settings_errors(clause, message):
    assert message in str(syntax_error(f"{BASE} {clause}"))


def test_auto_on_and_off():
    assert options(f"{BASE} AUTO ON") == {"target": "churned", "function": "predict_m"}
    assert options(f"{BASE} AUTO OFF MODEL_TYPE XGBOOST")["model_type"] == "gradient_boosting"
    e = syntax_error(f"{BASE}\n  AUTO OFF")
    assert str(e) == ("CREATE MODEL: line 2, column 3: expected MODEL_TYPE with AUTO OFF, got "
                      "AUTO OFF without MODEL_TYPE. AUTO OFF trains one model type with the "
                      "hyperparameters given: add e.g. MODEL_TYPE XGBOOST, or use AUTO ON.")
    assert "expected ON or OFF after AUTO, got 'MAYBE'" in str(syntax_error(f"{BASE} AUTO MAYBE"))


def test_clauses_in_any_order_compile_alike():
    clauses = ["TARGET churned", "FUNCTION predict_m", "MODEL_TYPE logistic",
               "OBJECTIVE 'F1'", "SETTINGS (MAX_RUNTIME 10)", "IAM_ROLE default"]
    want = None
    for order in itertools.permutations(clauses):
        sql = compiled("CREATE MODEL m FROM customers " + " ".join(order))
        want = want or sql
        assert sql == want
    assert want == (CALL + ", model_type := 'logistic', objective := 'f1', settings := "
                    "'{\"max_runtime\": 10}') AS model")


def test_unknown_clause_suggests_the_closest():
    e = syntax_error("CREATE MODEL m\nFROM customers\nTARGT churned FUNCTION f")
    assert str(e) == ("CREATE MODEL: line 3, column 1: expected TARGET <column>, got 'TARGT'. "
                      "Did you mean TARGET?")
    assert (e.line, e.column, e.expected) == (3, 1, "TARGET <column>")
    e = syntax_error(f"{BASE} MODEL_TYP xgboost")
    assert str(e).endswith("got 'MODEL_TYP'. Did you mean MODEL_TYPE?")
    assert e.expected.startswith("a clause (IAM_ROLE, AUTO, MODEL_TYPE")


def test_duplicate_clause():
    e = syntax_error(f"{BASE}\nMODEL_TYPE logistic\nMODEL_TYPE mlp")
    assert str(e) == ("CREATE MODEL: line 3, column 1: expected each clause at most once "
                      "(MODEL_TYPE is already given at line 2, column 1), got a second "
                      "MODEL_TYPE.")


@pytest.mark.parametrize(("text", "message"), [
    ("CREATE MODEL", "line 1, column 13: expected a model name after CREATE MODEL, got the end "
                     "of the statement."),
    ("CREATE MODEL m customers", "expected FROM <table> or FROM (<query>), got 'customers'."),
    ("CREATE MODEL m FROM (SELECT 1 TARGET a", "expected ')' closing the training query"),
    ("CREATE MODEL m FROM () TARGET a", "expected a query inside FROM ( ... ), got ')'"),
    ("CREATE MODEL m FROM 'job' TARGET a", "FROM 'job_name' (a SageMaker job) is not supported"),
    ("CREATE MODEL m FROM t TARGET a", "expected FUNCTION <name>, got the end of the statement."),
    ("CREATE MODEL m FROM t FUNCTION f", "expected TARGET <column>, got the end of the"),
    ("CREATE MODEL m FROM t TARGET a FUNCTION f(int)", "Argument types after FUNCTION belong"),
    ("CREATE MODEL m FROM t TARGET 'a' FUNCTION f", "expected a column name after TARGET, "
                                                     "got 'a'."),
])
def test_syntax_errors_name_line_column_and_what_was_expected(text, message):
    assert message in str(syntax_error(text))


# -- SHOW, DROP, EXPLAIN_MODEL ------------------------------------------------------------------
@pytest.mark.parametrize(("text", "kind", "sql"), [
    ("SHOW MODEL churn", "show_model", "FROM ml_show_model('churn')"),
    ('show model "Churn"', "show_model", "FROM ml_show_model('Churn')"),
    ("SHOW MODEL ALL", "show_models", "FROM ml_models()"),
    ("DROP MODEL churn", "drop_model", "SELECT ml_drop_model('churn') AS dropped"),
    ("DROP MODEL IF EXISTS churn", "drop_model", "SELECT ml_drop_model('churn') AS dropped"),
    ("EXPLAIN_MODEL(churn)", "explain_model", "FROM ml_explain_model('churn')"),
    ("SELECT EXPLAIN_MODEL('churn')", "explain_model", "FROM ml_explain_model('churn')"),
    ("SELECT explain_model('churn') FROM t", "sql", "SELECT explain_model('churn') FROM t"),
    ("SHOW TABLES", "sql", "SHOW TABLES"),
])
def test_show_drop_explain_compile(text, kind, sql):
    (st,) = parse(text)
    assert (st.kind, st.sql) == (kind, sql)
    assert st.if_exists == ("IF EXISTS" in text)


@pytest.mark.parametrize(("text", "message"), [
    ("SHOW MODEL", "SHOW MODEL: line 1, column 11: expected a model name or ALL, got the end"),
    ("SHOW MODEL a b", "expected the end of the statement (a ';'), got 'b'."),
    ("DROP MODEL IF churn", "expected EXISTS after IF, got 'churn'."),
    ("DROP MODEL 'churn'", "expected IF EXISTS or a model name, got 'churn'."),
    ("EXPLAIN_MODEL churn", "expected '(' after EXPLAIN_MODEL, got 'churn'."),
    ("EXPLAIN_MODEL(churn", "expected ')' after the model name, got the end of the statement."),
])
def test_show_drop_explain_errors(text, message):
    assert message in str(syntax_error(text))


# -- running scripts ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def con():
    c = sqlml.connect()
    c.register("customers_frame", make_customers(300, seed=3))
    c.execute("CREATE TABLE customers AS FROM customers_frame")
    yield c
    c.close()


def test_script_mixing_sql_and_redshift_statements_runs_end_to_end(con):
    notices = []
    results = sqlml.execute(con, """
        CREATE TABLE recent AS SELECT * FROM customers WHERE tenure_months > 2;
        CREATE MODEL script_churn
            FROM (SELECT * EXCLUDE (customer_id) FROM recent)
            TARGET churned FUNCTION predict_script
            IAM_ROLE default MODEL_TYPE logistic
            SETTINGS (S3_BUCKET 'unused', MAX_RUNTIME 30);
        SELECT count(*) FILTER (WHERE predict_script(r)) AS flagged, count(*) AS n FROM recent r;
        SHOW MODEL script_churn;
        SHOW MODEL ALL;
        EXPLAIN_MODEL(script_churn);
        DROP MODEL script_churn;
    """, notice=notices.append)
    assert [r.kind for r in results] == ["sql", "create_model", "sql", "show_model",
                                         "show_models", "explain_model", "drop_model"]
    summary = dict(zip(results[1].columns, results[1].rows[0], strict=True))
    n_recent = con.execute("SELECT count(*) FROM recent").fetchall()[0][0]
    assert (summary["name"], summary["version"], summary["model_type"], summary["function"]) \
        == ("script_churn", 1, "logistic", "predict_script")
    assert summary["training_rows"] == n_recent

    flagged, n = results[2].rows[0]
    assert n == n_recent
    assert results[2].columns == ["flagged", "n"]
    # The shown model is the one trained: its properties match the summary.
    shown = dict(results[3].rows)
    assert shown["model_type"] == "logistic" and shown["training_rows"] == str(n_recent)
    assert json.loads(shown["parameters"])["settings"]["max_runtime"] == 30
    assert [r[0] for r in results[4].rows] == ["script_churn"]
    assert {r[0] for r in results[5].rows} >= {"permutation", "coefficient"}
    assert results[6].rows == [("dropped model 'script_churn': 1 version(s) and its functions",)]
    assert con.execute("FROM ml_models() WHERE name = 'script_churn'").fetchall() == []
    assert [n.split(" is accepted")[0] for n in notices] == ["IAM_ROLE", "SETTINGS S3_BUCKET"]
    assert 0 <= flagged <= n


def test_predictions_through_the_statement_equal_the_stored_pipeline(con):
    sqlml.execute(con, "CREATE MODEL stmt_lr FROM customers TARGET churned "
                       "FUNCTION predict_stmt_lr MODEL_TYPE logistic "
                       "SETTINGS (MAX_RUNTIME 30, test_size 0.3, random_state 7)")
    model = sqlml.load_model(con, "stmt_lr")
    frame = con.sql("FROM customers ORDER BY customer_id").df()
    want = model.predict_proba(frame)[:, list(model.pipeline.classes_).index(True)]
    got = np.array(con.execute("SELECT predict_stmt_lr_probability(c) FROM customers c "
                               "ORDER BY customer_id").fetchall())[:, 0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    shown = dict(sqlml.execute(con, "SHOW MODEL stmt_lr")[0].rows)
    params = json.loads(shown["parameters"])
    assert (params["settings"]["test_size"], params["settings"]["random_state"]) == (0.3, 7)
    assert shown["validation_rows"] == str(int(np.ceil(300 * 0.3)))


def test_stored_hyperparameters_preprocessors_and_objective(con):
    (res,) = sqlml.execute(con, """
        CREATE MODEL stmt_gb FROM customers TARGET churned FUNCTION predict_stmt_gb
        AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'F1' PROBLEM_TYPE BINARY_CLASSIFICATION
        PREPROCESSORS '[{"ColumnSet": ["region"], "Transformers": ["OrdinalEncoder"]},
                        {"ColumnSet": ["plan"], "Transformers": ["OneHotEncoder"]}]'
        HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '20', ETA '0.2', MAX_DEPTH '3')
        SETTINGS (MAX_RUNTIME 30)
    """)
    summary = dict(zip(res.columns, res.rows[0], strict=True))
    assert (summary["model_type"], summary["objective"]) == ("gradient_boosting", "f1")
    shown = dict(sqlml.execute(con, "SHOW MODEL stmt_gb")[0].rows)
    params = json.loads(shown["parameters"])
    est = params["estimator"]
    assert (est["estimator"], est["max_iter"], est["learning_rate"], est["max_depth"]) == (
        "HistGradientBoostingClassifier", 20, 0.2, 3)
    assert params["preprocessors"] == {"region": "ordinal", "plan": "one_hot"}
    assert "region VARCHAR" in shown["function_parameters"]


def test_max_cells_samples_rows_with_a_seed(con):
    # 16 columns: 1600 cells leave 100 rows, the same 100 for the same random_state.
    def train(name, seed):
        return con.execute(
            f"SELECT ml_create_model('{name}', 'customers', target := 'churned', "
            f"model_type := 'logistic', settings := {{max_cells: 1600, random_state: {seed}, "
            f"max_runtime: 30}})").fetchall()[0][0]

    a = train("cells_a", 1)
    train("cells_b", 1)
    train("cells_c", 2)
    assert a["training_rows"] == 100
    assert a["notes"].startswith("trained on a random sample of 100 of 300 rows: 300 rows x 16 "
                                 "columns = 4800 cells exceed settings max_cells 1600")

    def fingerprint(name):
        return con.execute("SELECT data_fingerprint FROM sqlml.model_versions WHERE name = ?",
                           [name]).fetchall()[0][0]

    assert fingerprint("cells_a") == fingerprint("cells_b") != fingerprint("cells_c")
    # The statement form reaches the same setting; under the limit nothing is sampled.
    (res,) = sqlml.execute(con, "CREATE MODEL cells_d FROM customers TARGET churned "
                                "FUNCTION predict_cells_d MODEL_TYPE logistic "
                                "SETTINGS (MAX_CELLS 4800, MAX_RUNTIME 30)")
    summary = dict(zip(res.columns, res.rows[0], strict=True))
    assert summary["training_rows"] == 300
    assert "random sample" not in (summary["notes"] or "")


@pytest.mark.parametrize(("settings", "message"), [
    ("{max_cells: 'abc'}", "setting max_cells (rows x columns to train on at most) must be a "
                           "positive integer, got 'abc'. Use e.g. settings := {max_cells: "
                           "1000000}."),
    ("{max_cells: 100}", "settings max_cells 100 leaves 6 row(s) of the 16 columns to train on; "
                         "at least 10 are needed."),
])
def test_max_cells_errors(con, settings, message):
    with pytest.raises(duckdb.Error) as info:
        con.execute(f"SELECT ml_create_model('cells_bad', 'customers', target := 'churned', "
                    f"settings := {settings})").fetchall()
    assert message in str(info.value)


@pytest.mark.parametrize("fn", ["sum", "lower"])
def test_function_name_clashing_with_a_builtin(con, fn):
    with pytest.raises(duckdb.Error) as info:
        sqlml.execute(con, f"CREATE MODEL clash FROM customers TARGET churned FUNCTION {fn}")
    kind = "aggregate" if fn == "sum" else "scalar"
    assert (f"function name '{fn}' clashes with a DuckDB built-in {kind} function '{fn}'. "
            f"Choose another name, e.g. function := 'predict_clash'.") in str(info.value)


def test_drop_of_a_missing_model_without_if_exists_stops_the_script(con):
    with pytest.raises(duckdb.Error) as info:
        sqlml.execute(con, "SELECT 1; DROP MODEL no_such_model; CREATE TABLE after_drop (a INT)")
    assert ("ml_drop_model: model 'no_such_model' does not exist (it was never trained, or it "
            "was dropped).") in str(info.value)
    assert info.value.__notes__ == ["sqlml.execute: statement 2 of 3 (line 1) failed; 1 before "
                                    "it ran, the 1 after it did not run."]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'after_drop'"
                       ).fetchall() == [(0,)]


def test_drop_if_exists_of_a_missing_model_is_a_notice(con):
    with pytest.warns(SqlmlNotice, match="DROP MODEL IF EXISTS: model 'no_such_model' does not "
                                         "exist; nothing was dropped."):
        (res,) = sqlml.execute(con, "DROP MODEL IF EXISTS no_such_model")
    assert (res.kind, res.columns, res.rows) == ("drop_model", ["dropped"], [])


def test_training_errors_propagate_with_sqlmls_message(con):
    with pytest.raises(duckdb.Error, match=r"target column 'churnd' is not in the training data\. "
                                           r"Did you mean 'churned'"):
        sqlml.execute(con, "CREATE MODEL bad FROM customers TARGET churnd FUNCTION predict_bad")
    with pytest.raises(duckdb.Error, match="model 'nothing_here' does not exist"):
        sqlml.execute(con, "SHOW MODEL nothing_here")


def test_explain_model_forms_equal_the_sql_call(con):
    sqlml.execute(con, "CREATE MODEL stmt_explain FROM customers TARGET churned "
                       "FUNCTION predict_stmt_explain MODEL_TYPE logistic "
                       "SETTINGS (MAX_RUNTIME 30)")
    want = con.execute("FROM ml_explain_model('stmt_explain')").fetchall()
    a, b = sqlml.execute(con, "EXPLAIN_MODEL(stmt_explain); SELECT EXPLAIN_MODEL('stmt_explain')")
    assert a.rows == b.rows == want and len(want) > 0


def test_syntax_error_runs_nothing(con):
    with pytest.raises(SqlSyntaxError):
        sqlml.execute(con, "CREATE TABLE never_made (a INT); DROP MODEL IF EXSTS x")
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'never_made'"
                       ).fetchall() == [(0,)]
