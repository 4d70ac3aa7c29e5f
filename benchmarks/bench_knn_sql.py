"""KNN compiled to plain SQL against the Python-served function, as ratios in one process.

A KNN classifier (k=15, distance weights, 10 numeric features) is trained through
``sqlml.create_model`` on ``--train`` rows (the training points the SQL searches) and scores
``--rows`` other rows, ``SELECT sum(<probability>(x0, ..., x9))``:

- in this Python session: the Python-served ``_probability`` (the baseline, 1.0x) and the
  compiled ``_probability_sql``;
- in the duckdb CLI (``.venv/bin/duckdb``, a separate process on the same file, no Python):
  the compiled macro, timed by the CLI's own ``.timer``;
- bind time: ``... LIMIT 0`` of the compiled macro, in the session and in the CLI.

    python benchmarks/bench_knn_sql.py [--train 3000] [--rows 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _tables import COLUMNS, best_of, make_table

import sqlml


def cli_seconds(path: Path, sql: str, repeat: int) -> float:
    cli = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    script = ".timer on\n" + f"{sql};\n" * repeat
    done = subprocess.run([cli, "-readonly", str(path)], input=script, capture_output=True,
                          text=True, timeout=600, check=True)
    times = [float(t) for t in re.findall(r"Run Time \(s\): real ([0-9.]+)", done.stdout)]
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp()) / "knn.duckdb"
    con = sqlml.connect(path)
    make_table(con, args.train + args.rows, 0.42)
    con.execute(f"CREATE TABLE train AS FROM bench LIMIT {args.train}")
    con.execute(f"CREATE TABLE score AS FROM bench OFFSET {args.train}")
    sqlml.create_model(con, "knn", "train", target="y", model_type="knn", function="knn_p",
                       hyperparameters={"n_neighbors": 15, "weights": "distance"},
                       progress=False)
    sql_q = f"SELECT sum(knn_p_probability_sql({COLUMNS})) FROM score"
    py_q = f"SELECT sum(knn_p_probability({COLUMNS})) FROM score"
    bind_q = f"SELECT knn_p_probability_sql({COLUMNS}) FROM score LIMIT 0"
    got, want = con.execute(sql_q).fetchall()[0][0], con.execute(py_q).fetchall()[0][0]
    assert abs(got - want) <= 1e-12 * args.rows, (got, want)
    python = best_of(args.repeat, lambda: con.execute(py_q).fetchall())
    sql = best_of(args.repeat, lambda: con.execute(sql_q).fetchall())
    bind = best_of(args.repeat, lambda: con.execute(bind_q).fetchall())
    body = con.execute("SELECT max(length(macro_definition)) FROM duckdb_functions() "
                       "WHERE function_name = 'knn_p_probability_sql'").fetchall()[0][0]
    con.close()
    cli = cli_seconds(path, sql_q, args.repeat)
    cli_bind = cli_seconds(path, bind_q, args.repeat)
    print(f"KNN k=15, {args.train} training points x 10 features, {args.rows} rows scored; "
          f"macro text {body:,} chars; sums agree to {abs(got - want):.1e}")
    for label, t in (("Python-served _probability (session)", python),
                     ("compiled _probability_sql (session)", sql),
                     ("compiled _probability_sql (duckdb CLI)", cli),
                     ("bind, LIMIT 0 (session)", bind), ("bind, LIMIT 0 (duckdb CLI)", cli_bind)):
        print(f"  {label:42s} {t:8.3f} s  {t / python:6.2f}x")


if __name__ == "__main__":
    main()
