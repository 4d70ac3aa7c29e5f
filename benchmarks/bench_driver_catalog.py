"""What the catalog costs a BI driver's user: a session's start (the TEMP macros and views
sqlml serve creates for each connection) and each DBeaver navigator query
(tests/fixtures/dbeaver_queries.sql), over the Postgres wire protocol on loopback.

Prints the median of --repeat runs per query, in milliseconds, and the median time from
connect to the first answer (psycopg, SCRAM included). Exits 1 if a query fails.

    python benchmarks/bench_driver_catalog.py [--repeat 5] [--customers 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg

import sqlml
from sqlml.datasets import make_customers
from sqlml.server.pgwire import start_in_thread

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from drivers_fixture import add_events  # noqa: E402
from test_dbeaver_queries import load  # noqa: E402

PASSWORD = "bench-driver-catalog"


def serve(customers: int):
    con = sqlml.connect()
    frame = make_customers(customers)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM frame")
    sqlml.create_model(con, "churn", "SELECT tenure_months, monthly_charges, contract, "
                       "support_calls_90d, churned FROM customers", target="churned",
                       model_type="logistic", function="predict_churn")
    add_events(con)
    return con, start_in_thread(con, password=PASSWORD)


def connect(port: int):
    return psycopg.connect(host="127.0.0.1", port=port, user="sqlml", password=PASSWORD,
                           dbname="shop", autocommit=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--customers", type=int, default=500)
    args = parser.parse_args()
    con, server = serve(args.customers)
    try:
        starts = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            with connect(server.port) as conn:
                conn.execute("SELECT 1").fetchall()
            starts.append(time.perf_counter() - t0)
        print(f"connect + first answer: {1000 * statistics.median(starts):7.1f} ms (median)")
        with connect(server.port) as conn:
            ids = {"schema_oid": conn.execute("SELECT oid FROM pg_catalog.pg_namespace WHERE "
                                              "nspname = 'main'").fetchone()[0],
                   "table_oid": conn.execute("SELECT oid FROM pg_catalog.pg_class WHERE "
                                             "relname = 'events'").fetchone()[0],
                   "function_oid": conn.execute("SELECT oid FROM pg_catalog.pg_proc WHERE "
                                                "proname = 'predict_churn' LIMIT 1"
                                                ).fetchone()[0]}
            total = 0.0
            for name, _, query in load():
                for key, value in ids.items():
                    query = query.replace(f":{key}", str(value))
                times, rows = [], 0
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    rows = len(conn.execute(query).fetchall())
                    times.append(time.perf_counter() - t0)
                total += statistics.median(times)
                print(f"{name:18s} {1000 * statistics.median(times):7.1f} ms  {rows:5d} rows")
            print(f"{'all DBeaver queries':18s} {1000 * total:7.1f} ms")
    finally:
        server.stop()
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
