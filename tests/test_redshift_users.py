"""What a user coming from Amazon Redshift ML writes: AWS's documented statements (schema-qualified
model names), scripts saved by other editors, the command line's messages, and bind parameters
sent by Postgres drivers to the Redshift statements."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import shared_file

import sqlml
from sqlml.cli.commands import main
from sqlml.datasets import make_customers
from sqlml.errors import SqlSyntaxError
from sqlml.redshift.parser import SCHEMA_NOTICE, parse
from sqlml.server.pgwire import start_in_thread

psycopg = pytest.importorskip("psycopg")

PASSWORD = "redshift-user-secret"
FEATURES = ("state", "account_length", "total_day_minutes", "total_eve_minutes",
            "number_customer_service_calls", "international_plan")
PEOPLE = """\
CREATE TABLE people AS
SELECT i AS person_id, (hash(i) % 100) / 100.0 AS x, (hash(i * 3) % 100) / 100.0 AS z,
       ((hash(i) % 100) / 100.0 + (hash(i * 7) % 100) / 200.0 > 0.7) AS bought
FROM range(300) t(i);
"""


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


# -- AWS's documented form: schema-qualified model names ------------------------------------------
def test_the_aws_documented_statements_with_a_schema_run_on_real_churn_data():
    path = shared_file("churn", "mlc_churn.csv")
    con = sqlml.connect()
    con.execute("CREATE SCHEMA demo_ml")
    con.execute("CREATE TABLE demo_ml.customer_activity AS SELECT * FROM read_csv(?)",
                [str(path)])
    notices: list[str] = []
    results = sqlml.execute(con, f"""
        CREATE MODEL demo_ml.customer_churn_auto_model
        FROM (WITH active AS (SELECT * FROM demo_ml.customer_activity WHERE account_length > 0)
              SELECT {', '.join(FEATURES)}, churn FROM active)
        TARGET churn FUNCTION ml_fn_customer_churn_auto
        IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftML'
        AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'AUC' PROBLEM_TYPE BINARY_CLASSIFICATION
        HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '30', MAX_DEPTH '3')
        SETTINGS (S3_BUCKET 'your-bucket', MAX_RUNTIME 1800, S3_GARBAGE_COLLECT OFF);
        SHOW MODEL demo_ml.customer_churn_auto_model;
        SELECT state, count(*) FILTER (WHERE ml_fn_customer_churn_auto({', '.join(FEATURES)}))
               AS churners
        FROM demo_ml.customer_activity GROUP BY state ORDER BY state;
        SELECT EXPLAIN_MODEL('demo_ml.customer_churn_auto_model');
    """, notice=notices.append)
    summary = dict(zip(results[0].columns, results[0].rows[0], strict=True))
    assert (summary["name"], summary["model_type"], summary["objective"]) == (
        "customer_churn_auto_model", "gradient_boosting", "auc")
    schema_notice = SCHEMA_NOTICE.format(schema="demo_ml", name="customer_churn_auto_model")
    assert notices.count(schema_notice) == 3          # CREATE, SHOW and EXPLAIN_MODEL
    assert "this is model 'customer_churn_auto_model'" in schema_notice
    shown = dict(results[1].rows)
    assert shown["model_name"] == "customer_churn_auto_model"

    # The GROUP BY counts against scikit-learn's own pipeline and the stored threshold.
    stored = sqlml.load_model(con, "customer_churn_auto_model")
    assert stored.pipeline[-1].get_params()["max_iter"] == 30
    assert stored.pipeline[-1].get_params()["max_depth"] == 3
    frame = con.execute(f"SELECT {', '.join(FEATURES)} FROM demo_ml.customer_activity").df()
    positive = list(stored.pipeline.classes_).index(True)
    p = stored.pipeline.predict_proba(frame)[:, positive]
    expected = (frame.assign(flag=p >= float(shown["threshold"]))
                .groupby("state")["flag"].sum())
    assert dict(results[2].rows) == {k: int(v) for k, v in expected.items()}
    assert {r[results[3].columns.index("feature")] for r in results[3].rows} <= set(FEATURES)

    dropped = sqlml.execute(con, "DROP MODEL IF EXISTS demo_ml.customer_churn_auto_model;",
                            notice=notices.append)
    assert dropped[0].rows and con.execute("FROM ml_models()").fetchall() == []
    con.close()


def test_a_schema_before_a_model_name_compiles_to_the_plain_name():
    create, show, drop, explain, explain_text = parse(
        'CREATE MODEL public."Churn" FROM t TARGET y FUNCTION f; SHOW MODEL main.churn; '
        "DROP MODEL IF EXISTS demo_ml.churn; EXPLAIN_MODEL(demo_ml.churn); "
        "SELECT EXPLAIN_MODEL('public.customer_churn')")
    assert create.model == "Churn" and create.sql.startswith("SELECT ml_create_model('Churn', ")
    assert create.notices == [SCHEMA_NOTICE.format(schema="public", name="Churn")]
    assert (show.sql, drop.model, explain.sql, explain_text.sql) == (
        "FROM ml_show_model('churn')", "churn", "FROM ml_explain_model('churn')",
        "FROM ml_explain_model('customer_churn')")
    assert all(len(s.notices) == 1 for s in (show, drop, explain, explain_text))
    with pytest.raises(SqlSyntaxError) as info:
        parse("DROP MODEL demo_ml.")
    assert str(info.value) == ("DROP MODEL: line 1, column 20: expected a model name after "
                               "'demo_ml.', got the end of the statement.")


# -- scripts saved by other editors ----------------------------------------------------------------
def test_a_byte_order_mark_before_create_model_does_not_hide_the_statement(tmp_path):
    (st,) = parse("\ufeffCREATE MODEL m FROM t TARGET y FUNCTION f")
    assert st.kind == "create_model" and st.text.startswith("CREATE MODEL")
    script = tmp_path / "train.sql"
    script.write_bytes("\ufeff".encode() + (PEOPLE + "CREATE MODEL buyers FROM people TARGET "
                                            "bought FUNCTION predict_buyers MODEL_TYPE logistic;"
                                            "\nSHOW MODEL ALL;").encode())
    result = invoke("run", tmp_path / "db.duckdb", script, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "│ buyers │" in result.stdout


def test_run_names_the_line_and_column_of_bytes_that_are_not_utf8(tmp_path):
    latin1 = "CREATE TABLE t AS SELECT 1 AS a;\nSELECT 'café' AS x;\n".encode("latin-1")
    script = tmp_path / "latin1.sql"
    script.write_bytes(latin1)
    db = tmp_path / "db.duckdb"
    for args, source in (((script,), script), (("-",), "<stdin>")):
        result = invoke("run", db, *args, input=latin1 if args == ("-",) else None)
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: {source}: the script must be UTF-8 text, got byte 0xe9 at line 2, column "
            f"12. Save it as UTF-8, e.g. iconv -f latin1 -t utf-8 script.sql > "
            f"script-utf8.sql\n")
    con = sqlml.connect(db, read_only=True)          # nothing ran, not even the first line
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'"
                       ).fetchall() == [(0,)]
    con.close()


def test_the_shell_reports_bytes_that_are_not_utf8_and_goes_on(tmp_path):
    result = invoke("shell", tmp_path / "db.duckdb",
                    input="SELECT 'caf\xe9' AS x;\nSELECT 7 AS seven;\n".encode("latin-1"))
    assert result.exit_code == 1
    assert "got byte 0xe9 at line 1, column 12" in result.stderr
    assert "│     7 │" in result.stdout and "Traceback" not in result.output


# -- the command line ------------------------------------------------------------------------------
def test_library_warnings_print_once_as_one_line_without_python_source():
    import warnings

    from sqlml.cli.console import Console

    con = sqlml.connect()

    def noisy(x: int) -> int:
        warnings.warn("Maximum iterations (3) reached", UserWarning, stacklevel=1)
        return x

    con.create_function("noisy", noisy, ["BIGINT"], "BIGINT")
    out, err = [], []
    assert Console(con, out=out.append, err=err.append, progress=False).run(
        "SELECT noisy(i) FROM range(3) t(i);")
    assert err == ["Warning: UserWarning: Maximum iterations (3) reached"]


def test_an_unconverged_mlp_is_a_note_not_a_warning(tmp_path):
    result = invoke("run", tmp_path / "db.duckdb", "--quiet", "-", input=PEOPLE + (
        "CREATE MODEL shoppers FROM people TARGET bought FUNCTION predict_shoppers MODEL_TYPE MLP "
        "AUTO OFF HYPERPARAMETERS DEFAULT EXCEPT (max_iter '3');"))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "mlp ran all max_iter 3 epochs without converging" in result.stdout


def test_demo_refuses_too_few_customers_before_creating_anything(tmp_path):
    for rows in ("-5", "0", "20"):
        result = invoke("demo", tmp_path / "demo.duckdb", "--rows", rows)
        assert result.exit_code == 2
        assert f"Invalid value for '--rows': {rows} is not in the range x>=100." in result.stderr
    assert not (tmp_path / "demo.duckdb").exists()


# -- the server: bind parameters sent to Redshift statements --------------------------------------
@pytest.fixture(scope="module")
def served():
    con = sqlml.connect()
    customers = make_customers(400)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM customers")
    sqlml.execute(con, "CREATE MODEL churn FROM (SELECT tenure_months, contract, "
                       "monthly_charges, churned FROM customers) TARGET churned "
                       "FUNCTION predict_churn MODEL_TYPE LINEAR_LEARNER;")
    server = start_in_thread(con, password=PASSWORD)
    yield con, server
    server.stop()
    con.close()


def test_bind_parameters_in_redshift_statements_are_refused_with_the_remedy(served):
    con, server = served
    with psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml", password=PASSWORD,
                         dbname="shop", autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as info:
            conn.execute("CREATE MODEL by_plan FROM (SELECT * FROM customers WHERE plan = %s) "
                         "TARGET churned FUNCTION predict_by_plan", ["basic"])
        assert str(info.value) == (
            "CREATE MODEL takes no bind parameters, got 1 value(s) for $1 ...: sqlml runs it as "
            "an ml_create_model(...) call that receives the training query as text. Write the "
            "values into the statement (WHERE state = 'KS'), and send it without parameters.")
        with pytest.raises(psycopg.errors.SyntaxError) as info:
            conn.execute("SHOW MODEL %s", ["churn"])
        assert str(info.value) == (
            "SHOW MODEL: line 1, column 12: expected a model name or ALL, got the bind "
            "parameter $1. Redshift ML statements take no bind parameters: write the value "
            "itself into the statement.")
        # The session goes on: a prepared query with parameters scores rows.
        rows = conn.execute("SELECT customer_id, predict_churn_probability(tenure_months, "
                            "contract, monthly_charges) FROM customers WHERE tenure_months > %s "
                            "ORDER BY customer_id", [24], prepare=True).fetchall()
    frame = con.execute("SELECT customer_id, tenure_months, contract, monthly_charges "
                        "FROM customers WHERE tenure_months > 24 ORDER BY customer_id").df()
    pipeline = sqlml.load_model(con, "churn").pipeline
    expected = pipeline.predict_proba(frame)[:, list(pipeline.classes_).index(True)]
    assert [r[0] for r in rows] == frame["customer_id"].tolist()
    np.testing.assert_allclose([r[1] for r in rows], expected, rtol=1e-9)
    assert con.execute("SELECT count(*) FROM ml_models() WHERE name = 'by_plan'"
                       ).fetchall() == [(0,)]
