"""A churn model served over the Postgres wire protocol, shared by the server and psql tests."""

from __future__ import annotations

from contextlib import contextmanager

import sqlml
from sqlml.datasets import make_customers
from sqlml.server.pgwire import start_in_thread

FEATURES = "tenure_months, monthly_charges, contract, support_calls_90d, churned"


@contextmanager
def served_churn_model(password: str):
    """(con, server): 500 synthetic customers and a logistic model 'churn' (predict_churn)."""
    con = sqlml.connect()
    customers = make_customers(500)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM customers")
    sqlml.create_model(con, "churn", f"SELECT {FEATURES} FROM customers", target="churned",
                       model_type="logistic", function="predict_churn")
    server = start_in_thread(con, password=password)
    try:
        yield con, server
    finally:
        server.stop()
        con.close()
