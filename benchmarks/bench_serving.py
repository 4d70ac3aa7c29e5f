"""Serving under load: the Postgres wire protocol and the REST endpoint against in-process SQL.

N clients each run Q scoring requests on the same R rows, concurrently, over loopback only:

- in-process: one thread per client, each with its own cursor of ``sqlml.connect(db)``, running
  ``SELECT predict_churn(c), predict_churn_probability(c) FROM new_customers c`` (the baseline);
- Postgres wire protocol: one psycopg 3 connection per client, same query;
- REST: one httpx client per client, ``POST /v1/models/churn/predict`` with the same R rows.

Every answer is checked against the in-process answer; a wrong answer, an error or a request not
done within --timeout counts as an error, and the script exits 1 unless there are none.

The servers run in a child process (this script with --serve-child), started with
``sqlml.server.pgwire.start_in_thread`` and ``sqlml.server.rest.app.start_in_thread``, the functions
``sqlml serve`` uses, so the memory reported is the server's alone: its peak resident set size
(VmHWM in /proc/PID/status, the kernel's high-water mark, so no peak falls between samples; Linux
only). Clients and server share the machine's cores, as they would on one host.

    python benchmarks/bench_serving.py [--clients 8] [--queries 200] [--rows 100] [--timeout 300]
                                       [--model-type gradient_boosting] [--features all|numeric]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import sqlml

MODEL = "churn"
QUERY = ("SELECT predict_churn(c) AS churn, predict_churn_probability(c) AS p "
         "FROM new_customers c ORDER BY customer_id")


@dataclass
class Run:
    name: str
    rows_per_query: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rows_per_second(self) -> float:
        return len(self.latencies) * self.rows_per_query / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else math.nan


def same_answer(labels, probs, expected) -> bool:
    want_labels = [r[0] for r in expected]
    want_probs = np.array([r[1] for r in expected], dtype=float)
    return (list(labels) == want_labels
            and np.allclose(np.asarray(probs, dtype=float), want_probs, rtol=1e-9, atol=1e-12))


def load(name: str, clients: int, queries: int, rows: int, deadline: float, connect, one):
    """``clients`` threads, each ``connect()``-ing once and calling ``one(session)`` ``queries``
    times; a thread still busy at the deadline is left behind (daemon) and its rest counted."""
    run = Run(name, rows)
    start = threading.Barrier(clients + 1)

    def client() -> None:
        try:
            session = connect()
        except Exception as exc:
            with run.lock:
                run.errors.extend([f"connect: {exc}"] * queries)
            start.wait()
            return
        start.wait()
        try:
            for _ in range(queries):
                if time.monotonic() > deadline:
                    with run.lock:
                        run.errors.append("not run: --timeout reached")
                    continue
                t0 = time.perf_counter()
                try:
                    ok = one(session)
                    error = None if ok else "wrong answer"
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - t0
                with run.lock:
                    if error:
                        run.errors.append(error)
                    else:
                        run.latencies.append(elapsed)
        finally:
            close = getattr(session, "close", None)
            if close:
                close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    run.seconds = time.perf_counter() - t0
    missing = clients * queries - len(run.latencies) - len(run.errors)
    if missing > 0:
        run.errors.extend(["not finished: --timeout reached"] * missing)
    return run


# "numeric": a model the fast path computes in numpy (see sqlml/serving.py), so the protocols'
# own costs show; "all": every column of the README's customers, free text (TF-IDF) included.
FEATURES = {
    "all": "customers",
    "numeric": "SELECT tenure_months, monthly_charges, total_charges, support_calls_90d, "
               "avg_session_minutes, late_payments_12m, last_nps, churned FROM customers",
}


def build_database(path: Path, rows: int, model_type: str, features: str) -> None:
    from sqlml.datasets import make_customers, make_new_customers

    con = sqlml.connect(path)
    # DuckDB reads these two frames by their variable names (replacement scans).
    customers = make_customers(2000)  # noqa: F841
    new_customers = make_new_customers(rows)  # noqa: F841
    con.execute("CREATE TABLE customers AS FROM customers")
    con.execute("CREATE TABLE new_customers AS FROM new_customers")
    sqlml.create_model(con, MODEL, FEATURES[features], target="churned", model_type=model_type,
                       function="predict_churn")
    con.close()


def rest_rows(con) -> list[dict]:
    # JSON has no dates: the REST endpoint takes them as ISO text, as a web client sends them.
    frame = con.execute("FROM new_customers ORDER BY customer_id").df()
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def in_process(path: Path, args, deadline: float):
    con = sqlml.connect(path)
    expected = con.execute(QUERY).fetchall()
    rows = rest_rows(con)

    def one(cur) -> bool:
        got = cur.execute(QUERY).fetchall()
        return same_answer([r[0] for r in got], [r[1] for r in got], expected)

    one(con.cursor())  # loads the model once, as the servers' warm-up requests do
    run = load("in-process SQL", args.clients, args.queries, len(expected), deadline,
               con.cursor, one)
    con.close()
    return run, expected, rows


def serve_child(path: str) -> None:
    """The server process: both servers on one connection until stdin closes."""
    from sqlml.server import pgwire
    from sqlml.server.rest import app as rest

    con = sqlml.connect(path)
    pg = pgwire.start_in_thread(con, host="127.0.0.1", port=0,
                                password=os.environ["SQLML_BENCH_PASSWORD"])
    app = rest.build_app(con, token=os.environ["SQLML_BENCH_TOKEN"])
    http = rest.start_in_thread(app, "127.0.0.1", 0)
    print(json.dumps({"pg_port": pg.port, "http_port": http.port}), flush=True)
    sys.stdin.read()
    http.stop()
    pg.stop()
    con.close()


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def start_child(path: Path, password: str, token: str, timeout: float):
    env = dict(os.environ, SQLML_BENCH_PASSWORD=password, SQLML_BENCH_TOKEN=token)
    child = subprocess.Popen([sys.executable, __file__, "--serve-child", str(path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not ready or not ready[0].strip():
        child.kill()
        raise SystemExit(f"bench_serving: the server process did not start within {timeout} s "
                         f"(exit code {child.poll()}); see its messages above.")
    return child, json.loads(ready[0])


def over_postgres(port: int, password: str, args, expected, deadline: float):
    import psycopg

    def connect():
        return psycopg.connect(host="127.0.0.1", port=port, user="sqlml", password=password,
                               dbname="bench", connect_timeout=10, autocommit=True)

    def one(pg) -> bool:
        got = pg.execute(QUERY).fetchall()
        return same_answer([r[0] for r in got], [r[1] for r in got], expected)

    with connect() as warm:
        one(warm)
    return load("Postgres wire (psycopg)", args.clients, args.queries, len(expected), deadline,
                connect, one)


def over_rest(port: int, token: str, args, expected, rows, deadline: float):
    import httpx

    body = {"rows": rows}

    def connect():
        return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

    def one(client) -> bool:
        reply = client.post(f"/v1/models/{MODEL}/predict", json=body)
        if reply.status_code != 200:
            raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:300]}")
        data = reply.json()
        return same_answer(data["predictions"], data["probabilities"], expected)

    with connect() as warm:
        if not one(warm):
            raise SystemExit("bench_serving: the REST answer differs from the in-process answer")
    return load("REST (httpx)", args.clients, args.queries, len(expected), deadline, connect, one)


def report(runs: list[Run], base: Run, args, memory: dict[str, int]) -> None:
    print(f"\n{args.clients} concurrent clients x {args.queries} requests x {base.rows_per_query} "
          f"rows, model type {args.model_type} on {args.features} features, loopback, "
          f"{os.cpu_count()} cores shared by clients and server\n")
    head = (f"{'protocol':<26}{'ok':>6}{'errors':>8}{'rows/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'rows/s ratio':>14}{'p50 ratio':>11}{'p99 ratio':>11}")
    print(head)
    print("-" * len(head))
    for run in runs:
        print(f"{run.name:<26}{len(run.latencies):>6}{len(run.errors):>8}"
              f"{run.rows_per_second:>10,.0f}{run.pct(50):>9.2f}{run.pct(99):>9.2f}"
              f"{run.rows_per_second / base.rows_per_second:>14.3f}"
              f"{run.pct(50) / base.pct(50):>11.2f}{run.pct(99) / base.pct(99):>11.2f}")
    print("\nratios: against in-process SQL in this run (rows/s: higher is better; "
          "latency: lower is better)")
    print(f"server process memory: peak RSS {memory['VmHWM'] / 1024:,.0f} MiB "
          f"(RSS once listening, before any request: {memory['idle'] / 1024:,.0f} MiB)")
    for run in runs:
        if run.errors:
            kinds = sorted(set(run.errors))
            print(f"{run.name}: {len(run.errors)} errors, e.g. {kinds[:3]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=200, help="requests per client")
    parser.add_argument("--rows", type=int, default=100, help="rows scored per request")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds for each protocol's load; requests not done count as errors")
    parser.add_argument("--model-type", default="gradient_boosting")
    parser.add_argument("--features", choices=sorted(FEATURES), default="all",
                        help="all: every customer column, free text included (scoring dominates); "
                             "numeric: numeric columns only (the protocols' costs show)")
    parser.add_argument("--serve-child", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args.serve_child)
        return 0
    if not Path("/proc/self/status").exists():
        raise SystemExit("bench_serving: reads the server's memory from /proc (Linux only)")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        build_database(path, args.rows, args.model_type, args.features)
        # The file is closed before the server opens it: DuckDB lets one process write a file.
        base, expected, rows = in_process(path, args, time.monotonic() + args.timeout)
        password, token = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
        child, ports = start_child(path, password, token, timeout=60)
        try:
            idle = memory_kib(child.pid)["VmRSS"]
            pg = over_postgres(ports["pg_port"], password, args, expected,
                               time.monotonic() + args.timeout)
            http = over_rest(ports["http_port"], token, args, expected, rows,
                             time.monotonic() + args.timeout)
            memory = memory_kib(child.pid) | {"idle": idle}
        finally:
            child.stdin.close()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            child.stdout.close()
    runs = [base, pg, http]
    report(runs, base, args, memory)
    errors = sum(len(r.errors) for r in runs)
    print(f"\n{'PASS' if errors == 0 else 'FAIL'}: {errors} errors in "
          f"{sum(len(r.latencies) for r in runs)} answered requests")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
