"""What the locked-down statement policy costs per statement: ``Policy.check`` on typical client
statements (a scoring query, a catalog query psql sends, a SET, a refused COPY), for the admin
and for a reader, next to running the scoring query itself.

    python benchmarks/bench_policy.py

Prints microseconds per check (best of 5 rounds of 200) and the ratio to the query's own time.
"""

from __future__ import annotations

import time

import sqlml
from sqlml.datasets import make_customers
from sqlml.redshift.parser import parse
from sqlml.server import policy

STATEMENTS = {
    "scoring SELECT": "SELECT predict_churn(c) FROM customers c",
    "psql \\d catalog query": "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c "
                             "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE c.relname OPERATOR(pg_catalog.~) '^(customers)$' "
                             "ORDER BY 2, 3",
    "SET TimeZone": "SET TimeZone = 'UTC'",
    "COPY to a file (refused)": "COPY (SELECT 1) TO '/tmp/x.csv'",
}


def per_call(fn, rounds: int = 5, n: int = 200) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main() -> None:
    con = sqlml.connect()
    customers = make_customers(1000)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM customers")
    sqlml.create_model(con, "churn", "SELECT tenure_months, monthly_charges, contract, churned "
                       "FROM customers", target="churned", model_type="logistic",
                       function="predict_churn", progress=False)
    policy.lock_down(con)
    cur = con.cursor()
    sqlml.install(cur)
    rules = policy.Policy(file_access=False, users={"ann": policy.User("ann", "reader", None)})
    query = per_call(lambda: cur.execute(STATEMENTS["scoring SELECT"]).fetchall(), n=20)
    print(f"scoring query itself (1000 rows): {query * 1e6:,.0f} us")
    print(f"{'statement':28s} {'admin us':>9s} {'reader us':>10s} {'admin/query':>12s}")
    for label, sql in STATEMENTS.items():
        st = parse(sql)[0]

        def check(user: str, st=st) -> None:
            try:
                rules.check(cur, st, user)
            except Exception:   # a refusal costs the same as a pass
                pass
        admin, reader = per_call(lambda: check("sqlml")), per_call(lambda: check("ann"))
        print(f"{label:28s} {admin * 1e6:9,.0f} {reader * 1e6:10,.0f} {admin / query:12.4f}")


if __name__ == "__main__":
    main()
