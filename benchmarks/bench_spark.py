"""Engine 'spark' beside sqlml's in-process recommender, in one run.

1. MovieLens ml-latest-small (../shared/data/ratings/ratings.csv; skipped when absent): one
   seeded 80/20 split of the ratings (by a hash of user and movie), both engines train on the
   80% with their defaults (explicit feedback), and DuckDB scores the 20% with each model's
   pure-SQL ``recommend_<model>_rating_sql``: RMSE, MAE and the wall time of
   ``ml_create_model`` (which fits the served model and the validation fits: three ALS fits on
   Spark, three sampler runs in-process). Spark's session is started before the clock.
2. A synthetic ratings table under a memory cap: each engine trains in a subprocess whose
   address space is capped with ``resource.setrlimit(RLIMIT_AS)`` (default 4 GiB; the Spark
   run's JVM inherits the cap, and runs with -Xmx2000m and small reserved spaces to fit it).
   Prints whether each finished, its seconds, and the peak RSS of the Python process, and of
   the Spark driver JVM (local mode: driver and executor in one JVM); both runs use a database
   file, DuckDB's memory_limit at 1.5 GB (BENCH_DUCKDB_MEMORY; without insertion order),
   MALLOC_ARENA_MAX=2 and Arrow's system allocator (jemalloc's reservations count against the
   cap). It also prints each process's peak RSS per rating, for extrapolating to other sizes.
   The default is a quick 1M rows; the issue's figure is ``--rows 50000000`` (the better part
   of an hour on 2 busy cores: run it alone).

Run: ``python benchmarks/bench_spark.py [--rows 1000000] [--cap-gib 4] [--skip-movielens]``.
Needs pyspark and Java (``pip install 'sqlml[spark]'``, ``apt-get install default-jre-headless``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ratings" / "ratings.csv"
CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4"}


def spark_session(extra: dict | None = None):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("sqlml bench")
    for k, v in {**CONF, **(extra or {})}.items():
        builder = builder.config(k, v)
    s = builder.getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    return s


def settings(engine: str) -> str:
    base = "user_col: 'userId', item_col: 'movieId', rating_col: 'rating'"
    return "{" + base + (", engine: 'spark', spark_master: 'local[2]'" if engine == "spark"
                         else "") + "}"


def movielens() -> None:
    if not DATA.exists():
        print(f"== ml-latest-small: {DATA} is absent, skipped")
        return
    import sqlml

    t0 = time.perf_counter()
    spark_session()
    print(f"== ml-latest-small ({DATA.name}); Spark local[2] session started in "
          f"{time.perf_counter() - t0:.1f} s (not counted below)")
    con = sqlml.connect()
    con.execute(f"CREATE TABLE ratings AS SELECT userId, movieId, rating, "
                f"hash(userId, movieId, 42) % 5 = 0 AS test FROM read_csv('{DATA}')")
    n_train, n_test = con.execute("SELECT count(*) FILTER (WHERE NOT test), count(*) FILTER "
                                  "(WHERE test) FROM ratings").fetchall()[0]
    print(f"   {n_train:,} training ratings, {n_test:,} held out (hash of user and movie)")
    print(f"   {'engine':<34} {'RMSE':>7} {'MAE':>7} {'seconds':>8}")
    for engine, label in (("sqlml", "sqlml in-process (Bayesian MF)"),
                          ("spark", "Spark local[2] (ALS + biases)")):
        t = time.perf_counter()
        con.execute(f"SELECT ml_create_model('ml_{engine}', 'SELECT * FROM ratings WHERE NOT "
                    f"test', problem_type := 'recommendation', settings := "
                    f"{settings(engine)})").fetchall()
        secs = time.perf_counter() - t
        rmse, mae = con.execute(
            f"SELECT sqrt(avg((s - rating) ^ 2)), avg(abs(s - rating)) FROM (SELECT rating, "
            f"recommend_ml_{engine}_rating_sql(userId, movieId) AS s FROM ratings WHERE test)"
        ).fetchall()[0]
        print(f"   {label:<34} {rmse:7.4f} {mae:7.4f} {secs:8.1f}")


# -- the capped runs -------------------------------------------------------------------------------
def child(engine: str, source: str, cap: int) -> None:
    """One capped training run (in a subprocess): prints a JSON line with what happened."""
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out: dict = {"engine": engine}
    t = time.perf_counter()
    jvm = None
    try:
        import sqlml

        if engine == "spark":
            s = spark_session({
                "spark.driver.memory": "2000m",
                "spark.driver.extraJavaOptions": "-XX:ReservedCodeCacheSize=64m "
                "-XX:CompressedClassSpaceSize=128m -XX:MaxMetaspaceSize=256m -Xss512k "
                "-XX:+UseSerialGC -XX:MaxDirectMemorySize=256m"})
            jvm = s.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        # A database file, as a real deployment has: the factor and seen tables go to disk,
        # and DuckDB's own tables (the Spark run's TEMP pairs) spill past the memory limit.
        folder = os.path.dirname(source.split("''")[1])
        con = sqlml.connect(os.path.join(folder, f"bench_{engine}.duckdb"))
        con.execute(f"SET memory_limit = '{os.environ.get('BENCH_DUCKDB_MEMORY', '1536MB')}'")
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SELECT ml_create_model('big', '{source}', problem_type := "
                    f"'recommendation', settings := {settings(engine)[:-1]}, "
                    f"iterations: 5, max_runtime: 6000}})").fetchall()
        out["status"] = "finished"
    except BaseException as exc:
        text = str(exc)
        out["status"] = f"failed: {type(exc).__name__}: {text[:220]} ... {text[-160:]}"
    out["seconds"] = round(time.perf_counter() - t, 1)
    out["python_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if jvm is not None:
        out["jvm_peak_rss_mib"] = _peak_rss(int(jvm))
    print(json.dumps(out), flush=True)
    os._exit(0)


def _peak_rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


def _per_row(got: dict, rows: int) -> str:
    """Peak RSS per rating, in bytes (for a run that failed, a lower bound)."""
    parts = [f"{key.split('_')[0]} {got[key] * 2**20 / rows:.0f}"
             for key in ("python_peak_rss_mib", "jvm_peak_rss_mib")
             if isinstance(got.get(key), int | float)]
    return f" (bytes per rating: {', '.join(parts)})" if parts else ""


def capped(rows: int, cap_gib: float, engines: list[str]) -> None:
    import duckdb

    cap = int(cap_gib * 2**30)
    users, items = max(1000, rows // 100), max(500, rows // 1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ratings.parquet")
        duckdb.connect().execute(
            f"COPY (SELECT (hash(i) % {users})::INTEGER AS userId, "
            f"(hash(i * 7 + 1) % {items})::INTEGER AS movieId, (1 + (hash(i) % 5 + hash(i * 7 + 1)"
            f" % 5 + hash(i * 3) % 3) % 5)::DOUBLE AS rating FROM range({rows}) t(i)) TO "
            f"'{path}' (FORMAT parquet)")
        print(f"== {rows:,} synthetic ratings ({users:,} users, {items:,} items), address space "
              f"capped at {cap_gib:g} GiB per run (RLIMIT_AS)")
        source = f"SELECT * FROM read_parquet(''{path}'')"
        for engine in engines:
            # Fewer glibc malloc arenas: each thread's arena reserves address space the cap
            # counts, whichever engine runs.
            proc = subprocess.run([sys.executable, __file__, "--child", engine, "--source",
                                   source, "--cap", str(cap)], capture_output=True, text=True,
                                  timeout=3600, env={"MALLOC_ARENA_MAX": "2",
                                                     "ARROW_DEFAULT_MEMORY_POOL": "system",
                                                     **os.environ})
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            got = json.loads(lines[-1]) if lines else {
                "engine": engine, "status": f"died (exit {proc.returncode}): "
                                            f"{proc.stderr.strip().splitlines()[-1:]}"}
            print(f"   {engine:<6} {got['status'][:400]}; {got.get('seconds', '?')} s; peak RSS "
                  f"python {got.get('python_peak_rss_mib', '?')} MiB"
                  + (f", Spark driver JVM {got.get('jvm_peak_rss_mib')} MiB"
                     if engine == "spark" else "") + _per_row(got, rows), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cap-gib", type=float, default=4.0)
    ap.add_argument("--skip-movielens", action="store_true")
    ap.add_argument("--engines", default="sqlml,spark", help="the capped runs, e.g. spark")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--cap", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.source, a.cap)
        return
    if not a.skip_movielens:
        movielens()
    capped(a.rows, a.cap_gib, a.engines.split(","))


if __name__ == "__main__":
    main()
