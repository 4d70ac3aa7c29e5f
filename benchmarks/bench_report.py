"""The model report's size and generation time for the demo's models (`sqlml demo`'s data:
5,000 customers, the movie ratings), printed per model.

    .venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import statistics
import time

import sqlml
from sqlml import datasets


def main(repeats: int = 3) -> None:
    con = sqlml.connect()
    customers = datasets.make_customers(5000)  # noqa: F841 (read by DuckDB)
    ratings = datasets.make_ratings()  # noqa: F841
    con.execute("CREATE TABLE customers AS FROM customers")
    con.execute("CREATE TABLE ratings AS FROM ratings")
    con.execute("SELECT ml_create_model('customer_churn', 'customers', target := 'churned', "
                "function := 'predict_churn', settings := {max_runtime: 120})")
    con.execute("SELECT ml_create_model('movie_recs', 'ratings', problem_type := "
                "'recommendation', function := 'recommend_movies', settings := {user_col: "
                "'user_id', item_col: 'movie_id', rating_col: 'rating', timestamp_col: "
                "'rated_at'})")
    sqlml.report(con, "customer_churn")   # the first report loads matplotlib: not counted
    print(f"{'model':16s} {'size KB':>8s} {'seconds (median of ' + str(repeats) + ')':>24s}")
    for name in ("customer_churn", "movie_recs"):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            html = sqlml.report(con, name)
            times.append(time.perf_counter() - t0)
        print(f"{name:16s} {len(html.encode()) / 1024:8.0f} {statistics.median(times):24.2f}")


if __name__ == "__main__":
    main()
