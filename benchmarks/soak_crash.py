"""Crash soak: tests/test_crash.py's kills, many more times.

Trains version 2 of a churn model over a copy of a file that serves version 1 and SIGKILLs the
process, ``--kills`` times: at the pause points of sqlml.testing_hooks (loading, after fitting,
inside the publishing transaction, just after it) and at random moments up to a little past a
whole run. After each kill the file must open, and hold version 1 exactly as before (every
catalog row, every prediction), or versions 1 and 2 both whole (version 2 predicting what a
clean run predicts, version 1 predicting as before once rolled back to). Then SIGKILLs the
``sqlml serve`` command (``python -m sqlml serve``) ``--serve-kills`` times while a psycopg
client writes to it, restarting it on the same file each time: every acknowledged write must be
there, a transaction whole or absent.

    python benchmarks/soak_crash.py --kills 200 --serve-kills 20

Prints the counts, and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import crash_kit as kit  # tests/ is not a package: its folder is on the path

import sqlml

POINTS = ("load", "fit", "store", "published")


def training_kills(n: int, rng: random.Random, folder: Path) -> tuple[Counter, list[str]]:
    base, work = folder / "v1.duckdb", folder / "work.duckdb"
    worker = kit.Worker()
    kit.make_v1(base)
    con = sqlml.connect(base)
    before, v1 = kit.snapshot(con), kit.predictions(con)
    con.close()
    # The clean run's predictions: version 2 trained here over a copy.
    shutil.copy(base, folder / "clean.duckdb")
    con = sqlml.connect(folder / "clean.duckdb")
    con.execute(kit.TRAIN_V2).fetchall()
    v2 = kit.predictions(con)
    con.close()
    status, full = kit.kill_once(worker, base, work, "published")
    counts, failures = Counter(), []
    t0 = time.monotonic()
    for i in range(n):
        # Every other kill at a pause point, the others at random up to past a whole run.
        moment: str | float = POINTS[i // 2 % 4] if i % 2 == 0 else \
            round(rng.uniform(0, 1.2 * full), 3)
        status, seconds = kit.kill_once(worker, base, work, moment)
        if moment == "published":
            full = seconds   # the random moments follow how long a run takes now
        out = kit.check(work, before, v1, v2, str(moment), status)
        counts["kills" if out.killed else "finished before the kill"] += 1
        counts[f"state {out.state}"] += 1
        counts["predictions compared"] += out.compared
        if out.wrong or out.state == "?":
            counts["mismatches"] += 1
            failures.append(f"kill {i + 1} at {moment}: {'; '.join(out.wrong)}")
        else:
            counts["survivors"] += 1
        if (i + 1) % 25 == 0:
            print(f"  {i + 1} kills, {time.monotonic() - t0:.0f} s, {dict(counts)}", flush=True)
    worker.close()
    return counts, failures


def serve_kills(n: int, rng: random.Random, folder: Path) -> tuple[Counter, list[str]]:
    path = folder / "served.duckdb"
    kit.make_v1(path)
    con = sqlml.connect(path)
    v1 = kit.predictions(con)
    con.close()
    counts, failures, acked = Counter(), [], {}
    for i in range(n):
        served = kit.Served(path)   # the command itself
        got, pending = kit.write_until_killed(served, rng.randint(5, 300))
        acked.update(got)
        counts["serve kills"] += 1
        counts["acknowledged writes"] += len(got)
        wrong = kit.write_problems(path, acked, pending, v1)
        counts["predictions compared"] += len(v1)
        if pending is not None:
            # Sent but not acknowledged: committed or not, both are right; remember which.
            con = sqlml.connect(path)
            rows = con.execute("SELECT count(*) FROM writes WHERE batch = ?",
                               [pending[0]]).fetchall()[0][0]
            con.close()
            counts[f"in-flight write {'committed' if rows else 'absent'}"] += 1
            if rows:
                acked[pending[0]] = pending[1]
        if wrong:
            counts["mismatches"] += 1
            failures.append(f"serve kill {i + 1}: {'; '.join(wrong[:5])}")
        else:
            counts["survivors"] += 1
    counts["rows checked"] = sum(acked.values())
    return counts, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100, help="training processes killed")
    ap.add_argument("--serve-kills", type=int, default=10, help="sqlml serve processes killed")
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sqlml-soak-") as tmp:
        train_counts, train_failures = training_kills(args.kills, rng, Path(tmp))
        print("training kills:", ", ".join(f"{k} {v}" for k, v in sorted(train_counts.items())))
        serve_counts, serve_failures = serve_kills(args.serve_kills, rng, Path(tmp))
        print("serve kills:   ", ", ".join(f"{k} {v}" for k, v in sorted(serve_counts.items())))
    failures = train_failures + serve_failures
    for line in failures:
        print("FAIL", line)
    killed = train_counts["kills"] + serve_counts["serve kills"]
    print(f"{killed} processes killed with SIGKILL in {time.monotonic() - started:.0f} s; "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
