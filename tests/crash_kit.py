"""What tests/test_crash.py and benchmarks/soak_crash.py share: a file serving version 1 of a
churn model, a process that trains version 2 over a copy of it and is killed with SIGKILL at a
chosen moment, and the checks that the file afterwards holds version 1 exactly as before, or
versions 1 and 2 both whole, never anything in between.

Starting Python and importing scikit-learn takes seconds, so the processes that get killed are
forked from one warm worker (``python tests/crash_kit.py``): each kill still ends a process of
its own, with its own DuckDB instance and its own lock on the file, in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

MODEL = "churn"
PASSWORD = "crash-test-password"
V1_SOURCE = ("SELECT tenure_months, monthly_charges, contract, support_calls_90d, churned "
             "FROM customers")
# Version 2 leaves out a feature, so its predictions differ from version 1's.
V2_SOURCE = "SELECT tenure_months, monthly_charges, contract, churned FROM customers"
TRAIN_V2 = (f"SELECT ml_create_model('{MODEL}', '{V2_SOURCE}', target := 'churned', "
            f"model_type := 'logistic', function := 'predict_churn')")
PREDICT = ("SELECT customer_id, predict_churn(c), predict_churn_probability(c), "
           "predict_churn_probability_sql(c) FROM customers c ORDER BY customer_id")
# What a kill leaves of a run of version 2 (see docs/serving.md, "Crash safety and concurrency").
PROGRESS_TABLES = ("training_log",)


def make_v1(path: Path, rows: int = 300) -> None:
    """A database file with ``rows`` synthetic customers and version 1 of model 'churn'."""
    import sqlml
    from sqlml.datasets import make_customers

    con = sqlml.connect(path)
    customers = make_customers(rows)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM customers")
    sqlml.create_model(con, MODEL, V1_SOURCE, target="churned", model_type="logistic",
                       function="predict_churn")
    con.close()


def predictions(con) -> list[tuple]:
    """Every customer's label and probability from the Python path and the compiled SQL."""
    return con.execute(PREDICT).fetchall()


def snapshot(con) -> dict[str, list]:
    """Every row of every catalog table, and the text of the model's generated functions."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sqlml' "
        "AND database_name = current_database() ORDER BY table_name").fetchall()]
    out = {t: sorted(map(repr, con.execute(f'FROM sqlml."{t}"').fetchall())) for t in tables}
    out["<functions>"] = sorted(map(repr, con.execute(
        "SELECT function_name, macro_definition FROM duckdb_functions() "
        "WHERE function_name LIKE 'predict_churn%' AND database_name = current_database()"
    ).fetchall()))
    return out


def versions_everywhere(con) -> dict[str, set[int]]:
    """The versions of 'churn' each catalog table with a version column holds rows of."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_columns() WHERE schema_name = 'sqlml' "
        "AND database_name = current_database() AND column_name = 'version'").fetchall()]
    out = {}
    for t in tables:
        out[t] = {r[0] for r in con.execute(
            f'SELECT DISTINCT version FROM sqlml."{t}" WHERE name = ?', [MODEL]).fetchall()
            if r[0] is not None}
    out["models.active_version"] = {r[0] for r in con.execute(
        "SELECT active_version FROM sqlml.models WHERE name = ?", [MODEL]).fetchall()}
    # What a user lists: the active version and the number of stored ones.
    (active, count), = con.execute(
        "SELECT version, versions FROM ml_models() WHERE name = ?", [MODEL]).fetchall()
    out["ml_models"] = {active} if count == active else {-1}
    return out


def problems(con, before: dict, v1: list, v2: list | None) -> tuple[str, list[str]]:
    """('v1' or 'v1+v2', what is wrong) for a file after a kill. 'v1': version 2 left nothing
    (the catalog is exactly ``before``, predictions exactly ``v1``). 'v1+v2': version 2 was
    committed before the kill and is whole (in every table, active, predicting ``v2`` when
    given), and version 1 is untouched."""
    seen = versions_everywhere(con)
    listed = seen["model_versions"]
    if seen["ml_models"] != {max(listed)}:
        return "?", [f"ml_models() disagrees with sqlml.model_versions: {seen}"]
    if listed == {1}:
        now = snapshot(con)
        wrong = [f"table {t} changed" for t in sorted(set(before) | set(now))
                 if t not in PROGRESS_TABLES and before.get(t) != now.get(t)]
        wrong += [f"{t} holds versions {sorted(v)}" for t, v in seen.items() if v - {1}
                  and t not in PROGRESS_TABLES]
        if predictions(con) != v1:
            wrong.append("version 1's predictions differ")
        return "v1", wrong
    if listed == {1, 2}:
        wrong = [f"{t} holds versions {sorted(v)}, not [1, 2]" for t, v in seen.items()
                 if t in ("model_versions", "model_params", "model_metrics", "trials",
                          "training_runs") and v != {1, 2}]
        wrong += [f"{t} holds versions {sorted(v)}" for t, v in seen.items() if v - {1, 2}]
        if seen["models.active_version"] != {2} or seen["ml_models"] != {2}:
            wrong.append(f"active version {seen['models.active_version']}, not 2")
        body = con.execute("SELECT macro_definition FROM duckdb_functions() WHERE "
                           "function_name = 'predict_churn'").fetchall()
        if not body or f"'{MODEL}@2'" not in body[0][0]:
            wrong.append("predict_churn does not serve version 2")
        if v2 is not None and predictions(con) != v2:
            wrong.append("version 2's predictions differ from a clean run's")
        before_v1 = {t: [r for r in rows if f"'{MODEL}', 1," in r]
                     for t, rows in before.items() if not t.startswith("<")}
        after_v1 = {t: [r for r in rows if f"'{MODEL}', 1," in r]
                    for t, rows in snapshot(con).items() if not t.startswith("<")}
        wrong += [f"version 1's rows of {t} changed" for t in before_v1
                  if t != "models" and before_v1[t] != after_v1.get(t)]
        # Version 1 still serves exactly as before once it is made active again.
        con.execute(f"SELECT ml_rollback_model('{MODEL}', 1)").fetchall()
        if predictions(con) != v1:
            wrong.append("version 1's predictions differ after a rollback to it")
        return "v1+v2", wrong
    return "?", [f"sqlml.model_versions holds versions {sorted(listed)}"]


@dataclass
class Outcome:
    moment: str
    killed: bool          # SIGKILL reached a live process (False: it finished first)
    state: str = ""       # 'v1', 'v1+v2' (see problems), or '?' when the file did not open
    wrong: list[str] = field(default_factory=list)
    compared: int = 0     # prediction rows compared


class Worker:
    """A warm worker process that forks one process per ``start``: a training of version 2, or
    ``sqlml serve`` (sqlml.server.serve.run, what the command runs). Several may run at once."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        self._exits: dict[int, int] = {}
        self._ready = False   # it imports while the caller prepares its files

    def _wait_ready(self) -> None:
        if not self._ready:
            line = self._line()
            if line != "ready":
                raise RuntimeError(f"crash worker did not start: {line!r}")
            self._ready = True

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("crash worker ended")
        return line.strip()

    def start(self, path: Path, env: dict[str, str], do: str = "train", log: str = "") -> int:
        assert self.proc.stdin is not None
        self._wait_ready()
        self.proc.stdin.write(json.dumps({"do": do, "path": str(path), "env": env,
                                          "log": log}) + "\n")
        while True:
            words = self._line().split()
            if words[0] == "pid":
                return int(words[1])
            self._exits[int(words[1])] = int(words[2])

    def wait(self, pid: int) -> int:
        """Process ``pid``'s exit status: 0, 1, or minus the signal that ended it."""
        while pid not in self._exits:
            words = self._line().split()
            self._exits[int(words[1])] = int(words[2])
        return self._exits.pop(pid)

    def close(self) -> None:
        """End the worker (it holds no file, so SIGKILL loses nothing)."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()


class Served:
    """``sqlml serve PATH --port 0 --no-http``: forked from ``worker``, or (None) the command
    itself, ``python -m sqlml serve``."""

    def __init__(self, path: Path, worker: Worker | None = None, timeout: float = 120) -> None:
        self.path, self.worker, self.proc = path, worker, None
        self.log = path.with_name(path.name + ".serve.log")
        self.log.unlink(missing_ok=True)
        if worker is not None:
            self.pid = worker.start(path, {}, do="serve", log=str(self.log))
        else:
            with open(self.log, "w") as out:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "sqlml", "serve", str(path), "--port", "0",
                     "--no-http", "--password", PASSWORD], stdout=out, stderr=subprocess.STDOUT)
            self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while "stops it" not in (text := self.log.read_text() if self.log.exists() else ""):
            if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                self.kill()
                raise RuntimeError(f"sqlml serve did not start: {text}")
            time.sleep(0.01)
        m = re.search(r"Postgres wire protocol on 127\.0\.0\.1:(\d+)", text)
        assert m, text
        self.port = int(m[1])
        self.status: int | None = None

    def kill(self) -> int:
        """SIGKILL; the exit status (minus the signal when it was running)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.status = self.worker.wait(self.pid) if self.worker else self.proc.wait(timeout=30)
        return self.status


def write_until_killed(served: Served, after: int) -> tuple[dict[int, int], tuple | None]:
    """Write to ``served`` over the Postgres protocol until it dies, SIGKILLing it once
    ``after`` writes were acknowledged: alternately an autocommit INSERT of one row and a
    transaction of five. Returns ({batch: rows} acknowledged, (batch, rows) in flight or None)."""
    import psycopg

    con = psycopg.connect(host="127.0.0.1", port=served.port, user="sqlml", password=PASSWORD,
                          dbname="served", autocommit=True)
    con.execute("CREATE TABLE IF NOT EXISTS writes (batch INTEGER, n INTEGER, payload VARCHAR)")
    first = con.execute("SELECT coalesce(max(batch), 0) + 1 FROM writes").fetchall()[0][0]
    acked: dict[int, int] = {}
    pending: tuple[int, int] | None = None

    def kill() -> None:
        while len(acked) < after:
            time.sleep(0.001)
        served.kill()

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        for batch in range(first, first + 1_000_000):
            rows = 1 if batch % 2 else 5
            pending = (batch, rows)
            with con.transaction() if rows > 1 else contextlib.nullcontext():
                for n in range(rows):
                    con.execute("INSERT INTO writes VALUES (%s, %s, %s)",
                                (batch, n, f"row {batch}.{n} " * 10))
            acked[batch] = rows
            pending = None
    except psycopg.OperationalError:
        pass   # the server is gone: what was acknowledged must be in the file
    finally:
        killer.join()
    return acked, pending


def write_problems(path: Path, acked: dict[int, int], pending: tuple | None,
                   v1: list) -> list[str]:
    """What is wrong with a file after ``write_until_killed``: an acknowledged batch missing or
    partial, the batch in flight partial, a batch never sent, or version 1 predicting otherwise."""
    import sqlml

    con = sqlml.connect(path)
    try:
        found = dict(con.execute("SELECT batch, count(*) FROM writes GROUP BY batch").fetchall())
        wrong = [] if predictions(con) == v1 else ["version 1's predictions differ"]
    finally:
        con.close()
    wrong += [f"batch {b}: {found.get(b, 0)} of {n} acknowledged rows"
              for b, n in acked.items() if found.get(b) != n]
    wrong += [f"batch {b}: {n} rows never acknowledged" for b, n in found.items()
              if b not in acked and (pending is None or (b, n) != tuple(pending))
              and b > min(acked, default=0)]
    return wrong


def wait_for(marker: Path, pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise TimeoutError(f"training process {pid} never reached {marker.name}")
        time.sleep(0.005)


def kill_once(trainer: Worker, base: Path, work: Path, moment: str | float) -> tuple[int, float]:
    """Copy ``base`` to ``work``, train version 2 over it in a new process and SIGKILL that
    process at ``moment``: a pause point of sqlml.testing_hooks, or seconds after its start.
    Returns (exit status, seconds from start to kill)."""
    for stale in (work, work.with_name(work.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.copy(base, work)
    marker = work.with_name(work.name + ".paused")
    marker.unlink(missing_ok=True)
    env = {"SQLML_TEST_PAUSE": moment, "SQLML_TEST_PAUSE_FILE": str(marker)} \
        if isinstance(moment, str) else {}
    t0 = time.monotonic()
    pid = trainer.start(work, env)
    if isinstance(moment, str):
        wait_for(marker, pid)
    else:
        time.sleep(moment)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return trainer.wait(pid), time.monotonic() - t0


def check(work: Path, before: dict, v1: list, v2: list | None, moment: str,
          status: int) -> Outcome:
    import sqlml

    out = Outcome(str(moment), killed=status == -signal.SIGKILL)
    try:
        con = sqlml.connect(work)
    except Exception as exc:   # the point of the test: say what, do not stop the count
        out.state, out.wrong = "?", [f"file does not open: {exc}"]
        return out
    try:
        out.state, out.wrong = problems(con, before, v1, v2)
        out.compared = len(v1) + len(v2 or []) * (out.state == "v1+v2")
    finally:
        con.close()
    return out


def _serve_forks() -> None:
    """The worker: warm imports, then one forked process per request line."""
    import threading

    import sqlml
    import sqlml.connection
    import sqlml.functions
    import sqlml.server.serve
    import sqlml.train.supervised  # noqa: F401  (scikit-learn, loaded once before forking)

    said = threading.Lock()

    def say(text: str) -> None:
        with said:
            print(text, flush=True)

    def reap(pid: int) -> None:
        _, status = os.waitpid(pid, 0)
        say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")

    say("ready")
    for line in sys.stdin:
        req = json.loads(line)
        with said:   # no line half written when the child starts
            pid = os.fork()
        if pid == 0:
            _child(req)
        say(f"pid {pid}")
        threading.Thread(target=reap, args=(pid,), daemon=True).start()


def _child(req: dict) -> None:
    import sqlml

    code = 1
    try:
        os.environ.update(req["env"])
        if req["do"] == "serve":
            from sqlml.server import serve

            with open(req["log"], "a", buffering=1) as log:
                serve.run(req["path"], port=0, http_port=None, password=PASSWORD,
                          echo=lambda text: print(text, file=log))
        else:
            con = sqlml.connect(req["path"])
            con.execute(TRAIN_V2).fetchall()
            con.close()
        code = 0
    finally:
        os._exit(code)


if __name__ == "__main__":
    _serve_forks()
