"""psqlODBC (the ODBC driver of Tableau, Excel and Power BI) through unixODBC and pyodbc against
`sqlml serve`: the catalog calls (SQLTables, SQLColumns, SQLPrimaryKeys, SQLStatistics,
SQLGetTypeInfo, SQLProcedures) and queries, several on one connection. Skipped without pyodbc
or the driver (Debian odbc-postgresql and unixodbc; .ci/run installs them)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from drivers_fixture import add_events
from pg_served import served_churn_model

pyodbc = pytest.importorskip("pyodbc")
DRIVER = "PostgreSQL Unicode"
pytestmark = pytest.mark.skipif(DRIVER not in pyodbc.drivers(),
                                reason="the psqlODBC driver is not installed (Debian "
                                       "odbc-postgresql; .ci/run installs it)")
PASSWORD = "odbc-test-secret"


@pytest.fixture(scope="module")
def served():
    with served_churn_model(PASSWORD) as (con, server):
        described = add_events(con)
        yield con, server, described


@pytest.fixture(scope="module")
def cursor(served):
    _, server, _ = served
    # DSN-less, as a BI tool's connection dialog builds it. BoolsAsChar=0: booleans as SQL_BIT
    # (psqlODBC's default sends them as '0'/'1' text). UseServerSidePrepare=0 until quoted
    # DEALLOCATE names land (issue 16, item 2).
    conn = pyodbc.connect(f"DRIVER={{{DRIVER}}};SERVER=127.0.0.1;PORT={server.port};"
                          f"DATABASE=shop;UID=sqlml;PWD={PASSWORD};BoolsAsChar=0;"
                          f"UseServerSidePrepare=0", autocommit=True, timeout=10)
    yield conn.cursor()
    conn.close()


def test_tables_lists_the_user_tables(cursor):
    tables = {(t.table_schem, t.table_name) for t in cursor.tables(tableType="TABLE")}
    assert {("main", "customers"), ("main", "events")} <= tables


def test_columns_carry_type_names_sizes_and_scale(cursor, served):
    _, _, described = served
    columns = {c.column_name: c for c in cursor.columns(table="events")}
    assert list(columns) == [name for name, _ in described]
    assert (columns["id"].type_name, columns["id"].data_type) == ("int4", pyodbc.SQL_INTEGER)
    amount = columns["amount"]
    assert (amount.type_name, amount.column_size, amount.decimal_digits) == ("numeric", 10, 2)
    assert columns["happened_at"].type_name == "timestamp"
    assert columns["happened_at"].data_type == pyodbc.SQL_TYPE_TIMESTAMP
    assert columns["name"].type_name == "varchar"


def test_keys_and_indexes_answer_none(cursor):
    assert cursor.primaryKeys("events").fetchall() == []
    assert cursor.statistics("events").fetchall() == []
    assert cursor.foreignKeys("events").fetchall() == []


def test_type_info_and_procedures(cursor):
    types = {t.type_name for t in cursor.getTypeInfo()}
    assert {"int4", "int8", "numeric", "varchar", "bool", "date"} <= types
    procedures = {p.procedure_name for p in cursor.procedures()}
    assert {"predict_churn", "predict_churn_probability", "ml_accuracy"} <= procedures
    arguments = {c.column_name for c in cursor.procedureColumns(procedure="predict_churn")}
    assert "row_or_feature" in arguments


def test_statements_in_a_row_and_a_prediction(cursor, served):
    con = served[0]
    expected = con.execute("SELECT predict_churn(c) FROM customers c ORDER BY customer_id "
                           "LIMIT 3").fetchall()
    for _ in range(4):  # the third used to fail while plans were freed (issue 16)
        rows = cursor.execute("SELECT predict_churn(c) FROM customers c ORDER BY customer_id "
                              "LIMIT 3").fetchall()
        assert [tuple(r) for r in rows] == expected
    count = cursor.execute("SELECT count(*) FROM customers WHERE tenure_months > ?",
                           12).fetchval()
    assert count == con.execute("SELECT count(*) FROM customers WHERE tenure_months > 12"
                                ).fetchall()[0][0]
    row = cursor.execute("SELECT amount, happened_at FROM events ORDER BY id").fetchone()
    assert str(row.amount) == "12.34" and row.happened_at.microsecond == 123456


def isql(server, script: str) -> list[list[str]]:
    """unixODBC's isql, DSN-less (-k), batch mode, comma-separated rows."""
    conn = (f"DRIVER={{{DRIVER}}};SERVER=127.0.0.1;PORT={server.port};DATABASE=shop;UID=sqlml;"
            f"PWD={PASSWORD};UseServerSidePrepare=0")
    out = subprocess.run([ISQL, "-k", conn, "-b", "-d,"], input=script, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "ERROR" not in out.stdout, out.stdout + out.stderr
    return [line.split(",") for line in out.stdout.splitlines() if line]


ISQL = shutil.which("isql")


@pytest.mark.skipif(ISQL is None, reason="isql is not installed (Debian unixodbc)")
def test_isql_describes_a_table_and_runs_statements_in_a_row(served):
    _, server, described = served
    # "help TABLE" is SQLColumns: (catalog, schema, table, column, DATA_TYPE, TYPE_NAME, SIZE,
    # BUFFER_LENGTH, DECIMAL_DIGITS, ...)
    columns = {row[3]: row for row in isql(server, "help events\n")}
    assert list(columns) == [name for name, _ in described]
    assert columns["amount"][5:7] + columns["amount"][8:9] == ["numeric", "10", "2"]
    assert columns["happened_at"][5] == "timestamp"
    rows = isql(server, "SELECT 1\nSELECT 2\nSELECT 3\nSELECT amount FROM events ORDER BY id\n")
    assert rows == [["1"], ["2"], ["3"], ["12.34"], ["99.50"]]
