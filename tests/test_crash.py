"""Crash safety and concurrency, proven (docs/serving.md, "Crash safety and concurrency").

- A process training version 2 over a file that serves version 1, killed with SIGKILL at eleven
  moments (pause points while loading, after fitting, inside the publishing transaction and
  just after it, and at staged delays between): the file opens, version 1 predicts exactly as
  before, and version 2 is absent from every catalog table or present and whole in all of them.
- ``sqlml serve`` killed with SIGKILL while a Postgres client writes: every acknowledged write
  is in the file, a transaction is there whole or not at all.
- A second process opening a file one holds: an error naming the holder's PID and the remedies,
  from Python and from the command line.
- Four threads scoring under GROUP BY while a fifth trains: each query sees one version, as the
  generated functions name the version they serve (a file from an earlier sqlml is migrated to
  such functions).

benchmarks/soak_crash.py runs the same kills many more times.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from crash_kit import (
    MODEL,
    PASSWORD,
    TRAIN_V2,
    V1_SOURCE,
    V2_SOURCE,
    Served,
    Worker,
    check,
    kill_once,
    make_v1,
    predictions,
    snapshot,
    write_problems,
    write_until_killed,
)

import sqlml
from sqlml.errors import DatabaseLockedError, describe

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the crash worker forks (POSIX)")

@pytest.fixture(scope="module")
def v1_file(tmp_path_factory):
    """(path, catalog snapshot, predictions) of a file serving version 1."""
    path = tmp_path_factory.mktemp("crash") / "v1.duckdb"
    make_v1(path)
    con = sqlml.connect(path)
    try:
        yield path, snapshot(con), predictions(con)
    finally:
        con.close()


def _copy(base: Path, dest: Path) -> Path:
    shutil.copy(base, dest)
    return dest


# -- 1. kill -9 of a training process ---------------------------------------------------------
def test_a_killed_training_leaves_version_1_serving_and_nothing_half_visible(worker, v1_file,
                                                                             tmp_path):
    base, before, v1 = v1_file
    outcomes = []
    work = tmp_path / "work.duckdb"
    # Killed while loading: nothing of version 2 anywhere; the next run is version 2.
    status, _ = kill_once(worker, base, work, "load")
    outcomes.append(check(work, before, v1, None, "load", status))
    v2 = _retrain(work)
    # Killed just after publishing committed: version 2 is whole. Killed inside that
    # transaction, and after fitting: nothing of version 2. The shortest of these runs stages
    # the delays below, from early in loading to the end of storing.
    runs = []
    for point in ("published", "store", "fit"):
        status, seconds = kill_once(worker, base, work, point)
        outcomes.append(check(work, before, v1, v2, point, status))
        runs.append(seconds)
    full = min(runs[:2])
    fractions = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9]
    for _ in range(20):
        if sum(o.killed for o in outcomes) == 11:
            break
        moment = round(full * fractions[len(outcomes) % len(fractions)], 3)
        status, _ = kill_once(worker, base, work, moment)
        outcomes.append(check(work, before, v1, v2, str(moment), status))
        if not outcomes[-1].killed:
            full *= 0.8   # runs got quicker (a loaded machine varies): stage them earlier
    wrong = [(o.moment, o.wrong) for o in outcomes if o.wrong or o.state == "?"]
    print(f"training kills {sum(o.killed for o in outcomes)}, survivors "
          f"{len(outcomes) - len(wrong)}, predictions compared "
          f"{sum(o.compared for o in outcomes)}, mismatches {len(wrong)}; states "
          f"{[o.state for o in outcomes]}")   # shown by pytest -s
    assert not wrong, wrong
    assert sum(o.killed for o in outcomes) == 11, outcomes
    states = {o.moment: o.state for o in outcomes}
    assert [states["load"], states["fit"], states["store"], states["published"]] == [
        "v1", "v1", "v1", "v1+v2"]
    assert sum(o.compared for o in outcomes) >= 11 * len(v1)


def _retrain(work: Path) -> list[tuple]:
    """Train version 2 in this process over a file whose earlier attempt was killed: it is
    numbered 2, and the history holds version 1's run and this one, nothing of the killed one."""
    con = sqlml.connect(work)
    try:
        summary = con.execute(TRAIN_V2).fetchall()
        assert summary[0][0]["version"] == 2
        history = con.execute(
            f"SELECT version, status FROM ml_training_history('{MODEL}')").fetchall()
        assert history == [(1, "succeeded"), (2, "succeeded")]
        return predictions(con)
    finally:
        con.close()


# -- 2 and 3. a file held by `sqlml serve` ----------------------------------------------------
@pytest.fixture(scope="module")
def worker():
    """Forks the processes that get killed (tests/crash_kit.py); it imports while v1_file is
    made."""
    w = Worker()
    yield w
    w.close()


@pytest.fixture(scope="module")
def served(v1_file, worker, tmp_path_factory):
    """`sqlml serve` on a copy of the version 1 file, in a process forked from the worker."""
    server = Served(_copy(v1_file[0], tmp_path_factory.mktemp("served") / "served.duckdb"),
                    worker)
    yield server
    if server.status is None:
        server.kill()


def test_a_second_writer_is_told_who_holds_the_file_and_what_to_do(served):
    for read_only, wanted in ((False, "cannot write it"), (True, "cannot read it")):
        with pytest.raises(DatabaseLockedError) as err:
            sqlml.connect(served.path, read_only=read_only)
        text = str(err.value)
        assert f"database file {str(served.path)!r} is open for writing in another process, " \
               f"PID {served.pid} (`" in text
        assert "sqlml serve" in text and wanted in text
        assert f"stop PID {served.pid} and retry" in text and "--read-only" in text
        assert err.value.pid == served.pid
        assert "Could not set lock" in str(err.value.__cause__)   # DuckDB's own, chained
        assert (describe(err.value).cls_name, describe(err.value).sqlstate) == (
            "DatabaseLockedError", "55006")


def test_the_command_line_says_the_same(served):
    out = subprocess.run(
        [sys.executable, "-m", "sqlml", "serve", str(served.path), "--port", "0", "--no-http",
         "--password", PASSWORD], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith(f"sqlml serve: cannot open {str(served.path)!r}: database file ")
    assert f"PID {served.pid}" in out.stderr and "--read-only" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_reader_blocks_writers_with_its_own_remedy(tmp_path):
    path = tmp_path / "read.duckdb"
    sqlml.connect(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], "
         "read_only=True); print('ready', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseLockedError, match=rf"is open read-only in another process, "
                                                      rf"PID {holder.pid} \("):
            sqlml.connect(path)
        with pytest.raises(DatabaseLockedError, match=r"Open it read-only here too"):
            sqlml.connect(path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_killing_serve_during_writes_keeps_every_acknowledged_one(served, v1_file):
    pytest.importorskip("psycopg")
    acked, pending = write_until_killed(served, 60)
    assert served.status == -signal.SIGKILL and len(acked) >= 60
    assert write_problems(served.path, acked, pending, v1_file[2]) == []


# -- 4. scoring while a new version is published -----------------------------------------------
GROUPED = ("SELECT contract, count(*) AS n, sum(predict_churn(s)::INTEGER) AS churners, "
           "sum(round(predict_churn_probability(s) * 1e6)::BIGINT) AS micro "
           "FROM scored s GROUP BY contract ORDER BY contract")


def test_each_query_scores_with_one_version_while_a_new_one_is_published():
    con = sqlml.connect()
    from sqlml.datasets import make_customers

    customers = make_customers(300)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE customers AS FROM customers")
    # 15 copies of every customer: 4,500 rows, three batches of the scoring UDF per query.
    con.execute("CREATE TABLE scored AS SELECT c.* FROM customers c, range(15)")
    sqlml.create_model(con, MODEL, V1_SOURCE, target="churned", model_type="logistic",
                       function="predict_churn")
    # "python": cursors with sqlml.install(cursor), as sqlml serve's sessions, score through
    # the Python UDFs; "sql": bare cursors, which do not see the connection's TEMP dispatchers,
    # run the same functions as their compiled SQL.
    v1 = {k: _answer(con, k) for k in ("python", "sql")}
    results: list[tuple[str, float, float, list]] = []
    done, failures = threading.Event(), []
    threads = [threading.Thread(target=_score, args=(con, kind, done, results, failures))
               for kind in ("python", "python", "sql", "sql")]
    for t in threads:
        t.start()
    time.sleep(0.3)
    cur = con.cursor()
    sqlml.install(cur)
    started = time.monotonic()
    sqlml.create_model(cur, MODEL, V2_SOURCE, target="churned", model_type="logistic",
                       function="predict_churn")
    published = time.monotonic()
    done.set()
    for t in threads:
        t.join()
    v2 = {k: _answer(con, k) for k in ("python", "sql")}
    con.close()
    assert not failures, failures
    assert v1 != v2
    seen = [("v1" if rows == v1[kind] else "v2" if rows == v2[kind] else "neither")
            for kind, _, _, rows in results]
    assert "neither" not in seen, [r for r, s in zip(results, seen, strict=True)
                                   if s == "neither"][:2]
    assert {"v1", "v2"} <= set(seen)
    # Some queries ran while version 2 was being trained and published.
    assert any(t0 < published and t1 > started for _, t0, t1, _ in results)


def _cursor(con, kind: str):
    cur = con.cursor()
    return sqlml.install(cur) if kind == "python" else cur


def _answer(con, kind: str) -> list:
    cur = _cursor(con, kind)
    try:
        return cur.execute(GROUPED).fetchall()
    finally:
        cur.close()


def _score(con, kind: str, done: threading.Event, results: list, failures: list) -> None:
    cur, query = _cursor(con, kind), GROUPED
    try:
        last = False
        for _ in range(1000):   # until one query has started after version 2 was published
            last = done.is_set()
            t0 = time.monotonic()
            rows = cur.execute(query).fetchall()
            results.append((kind, t0, time.monotonic(), rows))
            if last:
                break
            time.sleep(0.02)   # leave the training thread some of a loaded machine
    except Exception as exc:   # reported by the test, not lost in a thread
        failures.append(repr(exc))
    finally:
        cur.close()


def test_a_file_from_an_earlier_sqlml_gets_functions_that_name_their_version(tmp_path):
    import json

    import sklearn

    path = _copy(Path(__file__).parent / "data" / "v1_catalog.duckdb", tmp_path / "old.duckdb")
    con = sqlml.connect(path)
    try:
        # The migration rewrites a model's functions from its artifact, which loads only in the
        # scikit-learn that fitted it (tests/test_migrations.py, other_scikit_learn).
        wrote = {json.loads(r[0])["scikit-learn"].split(".")[:2] == sklearn.__version__.split(
            ".")[:2] for r in con.execute("SELECT library_versions FROM sqlml.model_versions "
                                          "WHERE problem_type <> 'recommendation'").fetchall()}
        if wrote != {True}:
            pytest.skip(f"the file's artifacts do not load in scikit-learn {sklearn.__version__}")
        models = con.execute("SELECT name, active_version, function_name FROM sqlml.models "
                             "ORDER BY name").fetchall()
        for name, version, fn in models:
            bodies = [r[0] for r in con.execute(
                "SELECT macro_definition FROM duckdb_functions() WHERE function_name = ?",
                [fn]).fetchall()]
            assert bodies and all(f"'{name}@{version}'" in b for b in bodies), (name, bodies)
    finally:
        con.close()
    assert len(models) == 4
