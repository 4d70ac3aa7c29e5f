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

``--mixed`` is a timed run of mixed traffic instead, against ``sqlml serve`` itself started as a
subprocess on free loopback ports, on a new file of 3,000 synthetic customers and a logistic
churn model: 4 psycopg connections cycle through scoring (``SELECT predict_churn(c) FROM
customers c WHERE ...``), GROUP BY aggregates of predictions and the catalog calls BI tools make
(information_schema.columns, pg_class, ml_show_model); 2 httpx clients send REST predict calls
with JSON rows and GET the model; one training of version 2 starts halfway and must be active
when it ends. Each answer is checked (row and group counts, labels, probabilities in [0, 1]).
It prints requests, requests per second, p50, p99 and errors per kind and overall, the server's
peak RSS, and the wire overhead before the load: the SQL kinds from one client on the idle
server against the same requests on a sqlml connection in this process, alternately. It exits 1
on any error.

    python benchmarks/bench_serving.py --mixed [--duration 60] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import shutil
import signal
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


# ---------------------------------------------------------------------------------------------
# --mixed: a timed run of mixed traffic against `sqlml serve` itself, as a subprocess.

MIXED_CUSTOMERS = 3000
MIXED_FEATURES = "tenure_months, monthly_charges, contract, support_calls_90d, churned"
MIXED_TRAIN = (f"SELECT ml_create_model('churn', 'SELECT {MIXED_FEATURES} FROM customers', "
               "target := 'churned', model_type := 'logistic', function := 'predict_churn')")
PG_CLIENTS, HTTP_CLIENTS = 4, 2
REST_ROWS = 20
# What the scoring clients send, with the check each answer must pass ({} is filled from the
# customers table once built): (kind, SQL, check of the fetched rows).
SCORE = ("SELECT customer_id, predict_churn(c) AS churn, predict_churn_probability(c) AS p "
         "FROM customers c WHERE customer_id % 50 = {k}")
GROUP = ("SELECT contract, count(*) AS n, avg(predict_churn_probability(c)) AS p, "
         "sum(CASE WHEN predict_churn(c) THEN 1 ELSE 0 END) AS churners "
         "FROM customers c WHERE tenure_months >= {k} GROUP BY contract ORDER BY contract")
# The catalog calls BI tools make on their own (Metabase's sync, DBeaver's navigator, pgjdbc).
CATALOG = [
    "SELECT table_schema, table_name, column_name, data_type, ordinal_position "
    "FROM information_schema.columns WHERE table_name = 'customers' ORDER BY ordinal_position",
    "SELECT c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'v') AND n.nspname = 'main' "
    "ORDER BY c.relname",
    "SELECT property, value FROM ml_show_model('churn')",
]


@dataclass
class Kind:
    """The requests of one kind in the mixed run."""
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else math.nan


class Tally:
    """Latencies and errors of every kind, shared by the client threads."""

    def __init__(self, names: list[str]) -> None:
        self.kinds = {n: Kind(n) for n in names}
        self.lock = threading.Lock()

    def timed(self, name: str, call) -> None:
        t0 = time.perf_counter()
        try:
            error = call()
        except Exception as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        elapsed = time.perf_counter() - t0
        with self.lock:
            if error:
                self.kinds[name].errors.append(error)
            else:
                self.kinds[name].latencies.append(elapsed)


def mixed_database(path: Path) -> dict:
    """The served file: customers and a logistic churn model; what the checks expect."""
    from sqlml.datasets import make_customers

    con = sqlml.connect(path)
    customers = make_customers(MIXED_CUSTOMERS)  # noqa: F841  (DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM customers")
    con.execute(MIXED_TRAIN).fetchall()
    expected = {
        "score": dict(con.execute("SELECT customer_id % 50, count(*) FROM customers "
                                  "GROUP BY ALL").fetchall()),
        "group": dict(con.execute("SELECT t.tenure_months, count(DISTINCT contract) FROM "
                                  "(SELECT DISTINCT tenure_months FROM customers) t JOIN "
                                  "customers c ON c.tenure_months >= t.tenure_months "
                                  "GROUP BY ALL").fetchall()),
        "tenures": [r[0] for r in con.execute("SELECT DISTINCT tenure_months FROM customers "
                                              "ORDER BY 1").fetchall()],
        "rows": json.loads(con.execute(f"SELECT {MIXED_FEATURES.replace(', churned', '')} "
                                       f"FROM customers LIMIT {REST_ROWS}").df()
                           .to_json(orient="records")),
        "columns": con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = "
                               "'customers'").fetchall()[0][0],
    }
    con.close()
    return expected


def sql_requests(expected: dict):
    """(kind, SQL, check) triples, cycled through by each Postgres client: a check returns an
    error text or None. Scoring is most of the traffic, as on a dashboard."""
    def score(k):
        def check(rows):
            if len(rows) != expected["score"].get(k, 0):
                return f"score: {len(rows)} rows, expected {expected['score'].get(k)}"
            if not all(isinstance(r[1], bool) and 0.0 <= r[2] <= 1.0 for r in rows):
                return "score: a label that is not a boolean or a probability outside [0, 1]"
            return None
        return "sql score", SCORE.format(k=k), check

    def group(k):
        def check(rows):
            want = expected["group"][k]
            if len(rows) != want or not all(0.0 <= r[2] <= 1.0 for r in rows):
                return f"group by: {len(rows)} groups (expected {want}) or p outside [0, 1]"
            return None
        return "sql group by", GROUP.format(k=k), check

    def catalog(sql):
        def check(rows):
            return None if rows else f"catalog: no rows for {sql[:60]}"
        return "sql catalog", sql, check

    tenures = expected["tenures"]
    out = []
    for i in range(60):
        out += [score(i % 50), group(tenures[i % len(tenures)]), score((i * 7) % 50),
                catalog(CATALOG[i % len(CATALOG)])]
    return out


def wire_overhead(copy: Path, port: int, password: str, requests, repeats: int
                  ) -> dict[str, tuple[float, float, int]]:
    """{kind: (p50 in-process, p50 over the wire, requests)}, one client, the server otherwise
    idle. Each request runs on a sqlml connection to a copy of the served file (DuckDB lets one
    process have a file open for writing) and then over the wire, alternately, so that both see
    the same load on a shared machine."""
    times: dict[str, tuple[list[float], list[float]]] = {}
    con = sqlml.connect(copy)
    try:
        with pg_connect(port, password) as pg:
            for kind, sql, check in requests[: 4 * repeats]:
                for side, run in enumerate((con.execute, pg.execute)):
                    t0 = time.perf_counter()
                    rows = run(sql).fetchall()
                    times.setdefault(kind, ([], []))[side].append(time.perf_counter() - t0)
                    if check(rows):
                        raise SystemExit(f"bench_serving: {('in-process', 'wire')[side]} "
                                         f"answer failed its check: {check(rows)}")
    finally:
        con.close()
    return {k: (float(np.median(a)), float(np.median(b)), len(a)) for k, (a, b) in times.items()}


def start_serve(path: Path, password: str, token: str):
    """`sqlml serve` on free loopback ports: (process, Postgres port, HTTP port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlml.cli.commands", "serve", str(path), "--port", "0",
         "--http-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, SQLML_PASSWORD=password, SQLML_TOKEN=token))
    lines: list[str] = []
    ports: dict[str, int] = {}

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            for key, pattern in (("pg", r"Postgres wire protocol on 127\.0\.0\.1:(\d+)"),
                                 ("http", r"REST endpoint on http://127\.0\.0\.1:(\d+)")):
                m = re.search(pattern, line)
                if m:
                    ports[key] = int(m.group(1))
            if "Ctrl-C or SIGTERM stops it" in line:
                ready.set()
        ready.set()

    ready = threading.Event()
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(90) or len(ports) != 2:
        proc.kill()
        raise SystemExit("bench_serving: `sqlml serve` did not start within 90 s; it said:\n"
                         + "\n".join(lines))
    return proc, ports["pg"], ports["http"]


def pg_connect(port: int, password: str):
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=port, user="sqlml", password=password,
                           dbname="bench", connect_timeout=10, autocommit=True)


def pg_client(port: int, password: str, requests, offset: int, tally: Tally,
              deadline: float) -> None:
    try:
        pg = pg_connect(port, password)
    except Exception as exc:
        tally.kinds["sql score"].errors.append(f"connect: {exc}")
        return
    with pg:
        i = offset
        while time.monotonic() < deadline:
            kind, sql, check = requests[i % len(requests)]
            tally.timed(kind, lambda sql=sql, check=check: check(pg.execute(sql).fetchall()))
            i += 1


def http_client(port: int, token: str, rows: list[dict], tally: Tally, deadline: float) -> None:
    import httpx

    def predict():
        reply = client.post("/v1/models/churn/predict", json={"rows": rows})
        if reply.status_code != 200:
            return f"HTTP {reply.status_code}: {reply.text[:200]}"
        data = reply.json()
        ok = (len(data["predictions"]) == len(rows)
              and all(0.0 <= p <= 1.0 for p in data["probabilities"]))
        return None if ok else "rest predict: wrong row count or probability outside [0, 1]"

    def show():
        reply = client.get("/v1/models/churn")
        return None if reply.status_code == 200 else f"HTTP {reply.status_code}: {reply.text}"

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        i = 0
        while time.monotonic() < deadline:
            if i % 5 == 4:
                tally.timed("rest model", show)
            else:
                tally.timed("rest predict", predict)
            i += 1


def trainer(port: int, password: str, tally: Tally, start_at: float) -> None:
    """Exactly one training, of version 2, halfway through; it must be active afterwards."""
    time.sleep(max(0.0, start_at - time.monotonic()))

    def train():
        with pg_connect(port, password) as pg:
            pg.execute(MIXED_TRAIN).fetchall()
            version = pg.execute("SELECT version FROM ml_models() WHERE name = 'churn'"
                                 ).fetchall()
        return None if version == [(2,)] else f"train: active version {version}, expected 2"

    tally.timed("train", train)


def mixed_run(args) -> int:
    """Mixed traffic for --duration seconds; the figures per kind; exit code 1 on any error."""
    kinds = ["sql score", "sql group by", "sql catalog", "rest predict", "rest model", "train"]
    tally = Tally(kinds)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        expected = mixed_database(path)
        requests = sql_requests(expected)
        copy = Path(folder) / "copy.duckdb"
        shutil.copyfile(path, copy)
        password, token = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
        proc, pg_port, http_port = start_serve(path, password, token)
        try:
            overhead = wire_overhead(copy, pg_port, password, requests, args.repeats)
            idle = memory_kib(proc.pid)["VmRSS"]
            t0 = time.monotonic()
            deadline = t0 + args.duration
            threads = [threading.Thread(target=pg_client, daemon=True, args=(
                pg_port, password, requests, 37 * i, tally, deadline))
                for i in range(PG_CLIENTS)]
            threads += [threading.Thread(target=http_client, daemon=True, args=(
                http_port, token, expected["rows"], tally, deadline))
                for _ in range(HTTP_CLIENTS)]
            threads.append(threading.Thread(target=trainer, daemon=True, args=(
                pg_port, password, tally, t0 + args.duration / 2)))
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.duration + 600)
            seconds = time.monotonic() - t0
            memory = memory_kib(proc.pid) | {"idle": idle}
            alive = proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if not alive:
        tally.kinds["sql score"].errors.append("the server process died during the run")
    return mixed_report(tally, seconds, memory, overhead, args)


def mixed_report(tally: Tally, seconds: float, memory: dict, overhead: dict, args) -> int:
    print(f"\nmixed run: {seconds:.1f} s ({args.duration:g} s asked), {PG_CLIENTS} psycopg "
          f"connections + {HTTP_CLIENTS} httpx clients + 1 training, `sqlml serve` on loopback, "
          f"{MIXED_CUSTOMERS:,} customers, logistic model, {os.cpu_count()} cores shared by "
          f"clients and server\n")
    head = f"{'kind':<16}{'requests':>10}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
    print(head)
    print("-" * len(head))
    every = Kind("overall")
    for kind in tally.kinds.values():
        every.latencies += kind.latencies
        every.errors += kind.errors
    for kind in [*tally.kinds.values(), every]:
        n = len(kind.latencies) + len(kind.errors)
        print(f"{kind.name:<16}{n:>10}{n / seconds:>9.1f}{kind.pct(50):>10.1f}"
              f"{kind.pct(99):>10.1f}{len(kind.errors):>8}")
    print(f"\nserver process: peak RSS {memory['VmHWM'] / 1024:,.0f} MiB (VmHWM; "
          f"{memory['idle'] / 1024:,.0f} MiB once listening, before the run)")
    print("\nwire overhead before the run: one client, the same requests on a sqlml connection "
          "in this process (to a copy of the file) and over the wire, alternately, p50:")
    for kind, (base, wire, n) in overhead.items():
        print(f"  {kind:<14} {n:>3} requests   in-process {base * 1000:8.2f} ms   Postgres "
              f"wire {wire * 1000:8.2f} ms   ratio {wire / base:6.2f}x")
    for kind in tally.kinds.values():
        if kind.errors:
            print(f"{kind.name}: {len(kind.errors)} errors, e.g. {sorted(set(kind.errors))[:3]}")
    ok = not every.errors and len(tally.kinds["train"].latencies) == 1
    print(f"\n{'PASS' if ok else 'FAIL'}: {len(every.errors)} errors in "
          f"{len(every.latencies) + len(every.errors)} requests")
    return 0 if ok else 1


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
    parser.add_argument("--mixed", action="store_true",
                        help="a timed run of mixed traffic against `sqlml serve` (a subprocess): "
                             "scoring, GROUP BY, catalog calls and REST, one training halfway")
    parser.add_argument("--duration", type=float, default=60,
                        help="--mixed: seconds of load (default 60)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="--mixed: requests per kind for the one-client wire overhead ratio")
    parser.add_argument("--serve-child", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args.serve_child)
        return 0
    if not Path("/proc/self/status").exists():
        raise SystemExit("bench_serving: reads the server's memory from /proc (Linux only)")
    if args.mixed:
        return mixed_run(args)

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
