"""The scoring benchmarks' shared set-up (bench_scoring.py, bench_compiled.py): the table of
numeric features they score, and their best-of-n timer."""

from __future__ import annotations

import time

FEATURES = 10
COLUMNS = ", ".join(f"x{i}" for i in range(FEATURES))   # the argument list of a scoring call


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def make_table(con, rows: int, seed: float) -> None:
    """Table ``bench``: ``rows`` rows of x0..x9, uniform on shifted and widened ranges, and a
    BOOLEAN target y; ``seed`` is DuckDB's setseed, so a seed gives the same rows every run."""
    cols = ", ".join(f"random() * {i + 1} - {i / 2} AS x{i}" for i in range(FEATURES))
    con.execute(f"SELECT setseed({seed})")
    con.execute(f"CREATE OR REPLACE TABLE bench AS SELECT {cols} FROM range({rows})")
    # A target that depends non-linearly on a few features, so both model types have work to do.
    con.execute("""CREATE OR REPLACE TABLE bench AS SELECT *,
        (x0 + 0.5 * x1 * x2 - x3 + 0.3 * x4 * x4 + 0.5 * (random() - 0.5) > 0.4) AS y FROM bench""")
