"""The PostgreSQL JDBC driver (pgjdbc, what DBeaver, Metabase and DataGrip use) against
`sqlml serve`: tests/java/SqlmlMetaData.java, compiled with javac at test time, calls the
DatabaseMetaData methods those tools call by themselves and runs real queries. Skipped without
java, javac or the driver's jar (Debian libpostgresql-jdbc-java; .ci/run installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from drivers_fixture import add_events
from pg_served import served_churn_model

JAR = os.environ.get("SQLML_PGJDBC_JAR", "/usr/share/java/postgresql.jar")
JAVA, JAVAC = shutil.which("java"), shutil.which("javac")
pytestmark = pytest.mark.skipif(
    JAVA is None or JAVAC is None or not Path(JAR).exists(),
    reason="needs java, javac and the PostgreSQL JDBC jar (Debian default-jdk-headless and "
           "libpostgresql-jdbc-java; .ci/run installs them)")
PASSWORD = "jdbc-test-secret"
SOURCE = Path(__file__).parent / "java" / "SqlmlMetaData.java"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Everything the Java program printed, by section: {section: [[values...], ...]}."""
    classes = tmp_path_factory.mktemp("jdbc")
    subprocess.run([JAVAC, "-d", str(classes), str(SOURCE)], check=True, timeout=120)
    with served_churn_model(PASSWORD) as (con, server):
        described = add_events(con)
        out = subprocess.run([JAVA, "-cp", f"{JAR}:{classes}", "SqlmlMetaData",
                              str(server.port), PASSWORD, "events", "predict_churn"],
                             capture_output=True, text=True, timeout=120)
        expected = con.execute("SELECT predict_churn(c) FROM customers c ORDER BY customer_id "
                               "LIMIT 3").fetchall()
        overloads = con.execute("SELECT parameters FROM duckdb_functions() WHERE "
                                "function_name = 'predict_churn'").fetchall()
        count = con.execute("SELECT count(*) FROM customers WHERE tenure_months > 12"
                            ).fetchall()[0][0]
    assert out.returncode == 0, out.stderr
    sections: dict[str, list[list[str]]] = defaultdict(list)
    for line in out.stdout.splitlines():
        name, *values = line.split("\t")
        sections[name].append(values)
    return sections, described, (expected, count, overloads)


def errors(sections) -> dict[str, str]:
    return {values[0]: values[1] for values in sections["ERROR"]}


def test_keywords_and_name_length_answer(report):
    sections, _, _ = report
    assert "keywords" not in errors(sections)
    keywords = sections["keywords"][0][0].split(",")
    assert "qualify" in keywords and "pivot" in keywords   # DuckDB's, not SQL:2003's
    assert sections["maxnamelength"] == [["63"]]


def test_tables_list_the_user_tables(report):
    sections, _, _ = report
    names = {(schema, name, kind) for schema, name, kind in sections["tables"]}
    assert {("main", "customers", "TABLE"), ("main", "events", "TABLE")} <= names


def test_columns_carry_types_sizes_and_decimal_digits(report):
    sections, described, _ = report
    columns = {c[0]: c[1:] for c in sections["columns"]}
    assert list(columns) == [name for name, _ in described]
    # (DATA_TYPE, TYPE_NAME, COLUMN_SIZE, DECIMAL_DIGITS): java.sql.Types codes
    assert columns["id"][:2] == ["4", "int4"]
    assert columns["name"][:2] == ["12", "varchar"]
    assert dict(described)["amount"] == "DECIMAL(10,2)"
    assert columns["amount"][:4] == ["2", "numeric", "10", "2"]
    assert dict(described)["happened_at"] == "TIMESTAMP_NS"
    assert columns["happened_at"][:2] == ["93", "timestamp"]


def test_keys_and_indexes_answer_none(report):
    sections, _, _ = report
    for call in ("primarykeys", "indexinfo", "importedkeys", "exportedkeys", "bestrowid"):
        assert call not in errors(sections), errors(sections).get(call)
        assert ["COUNT", call, "0"] == ["COUNT", *next(c for c in sections["COUNT"]
                                                       if c[0] == call)]


def test_type_info_is_a_real_type_list(report):
    sections, _, _ = report
    types = {name: code for name, code, _ in sections["typeinfo"]}
    assert {"int4": "4", "int8": "-5", "text": "12", "numeric": "2", "bool": "-7",
            "timestamp": "93", "date": "91", "float8": "8"}.items() <= types.items()


def test_functions_list_the_models_functions_and_the_ml_macros(report):
    sections, _, _ = report
    assert {tuple(f) for f in sections["functions"]} == {("main", "predict_churn", "1")}
    macros = {m[0] for m in sections["macros"]}
    assert {"ml_accuracy", "ml_f1", "ml_roc_auc", "ml_predict"} <= macros


def test_queries_return_predictions_decimals_and_nanosecond_timestamps(report):
    sections, _, (expected, count, _) = report
    assert sections["predict.type"] == [["churn", "bool", "-7"]]
    assert [v[0] for v in sections["predict"]] == [str(e[0]).lower() for e in expected]
    types = {c[0]: c[1] for c in sections["events.type"]}
    assert types["amount"] == "numeric" and types["happened_at"] == "timestamp"
    assert sections["events"][0] == ["1", "signup", "12.34", "2024-01-02 03:04:05.123456"]
    # past pgjdbc's prepareThreshold (5): the server-side prepared statement answers too
    assert [p[1] for p in sections["prepared"]] == [str(count)] * 6


def test_function_columns_name_each_overloads_arguments(report):
    sections, _, (_, _, overloads) = report
    arguments = [c[1] for c in sections["functioncolumns"] if c[2] == "1"]   # functionColumnIn
    assert sorted(arguments) == sorted(a for (params,) in overloads for a in params)
    assert sum(c[1] == "returnValue" for c in sections["functioncolumns"]) == len(overloads)
    # A macro's parameters and result are untyped: anyelement, as a polymorphic function's.
    assert {c[3] for c in sections["functioncolumns"]} == {"anyelement"}
    assert [c[:2] for c in sections["procedurecolumns"]] == [
        c[:2] for c in sections["functioncolumns"]]
    # pgjdbc's getProcedures lists procedures (prokind 'p'); DuckDB has none, only functions.
    assert "procedures" not in errors(sections)
