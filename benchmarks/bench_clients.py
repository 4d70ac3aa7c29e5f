"""What a plain DuckDB client pays to call a model compiled to SQL (issue 13).

For a logistic model, a 100-iteration histogram gradient boosting model and a 200-tree random
forest trained on ../shared/data/churn (synthetic rows if it is absent):

- the bind time of each ``_sql`` function, ``SELECT f(t) FROM t LIMIT 0`` in a sqlml session,
  best of 5 (target: under 50 ms whatever the model's size);
- a 2,000-row dashboard query, ``SELECT area_code, avg(<fn>_probability_sql(d)) FROM dash d
  GROUP BY area_code``, in the duckdb CLI 1.5.6 (``.timer on``, best of 5 in one CLI process),
  against the same query calling the Python-served ``<fn>_probability`` in a sqlml session
  (target: at most 1.5x);
- the bind time of the CASE SQL the trees compiler still writes for small models, by node count
  (where sqlml.compile.trees.CASE_MAX_NODES comes from).

Then the 1M rows x 10 features, threads=2 ratios of bench_compiled.py: ``_probability_sql``
against the bare estimator's predict_proba on the preprocessed array, for the logistic and the
boosting model (``--skip-million`` leaves them out).

    python benchmarks/bench_clients.py [--repeat 5] [--skip-million] [--skip-clients]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
from _tables import best_of

import sqlml
from sqlml.catalog import generated
from sqlml.compile.trees import _node_count

CHURN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "churn" / "mlc_churn.csv"
MODELS = (("lr", "logistic", None),
          ("gb", "gradient_boosting", {"max_iter": 100, "early_stopping": False}),
          ("rf", "random_forest", {"n_estimators": 200}))
DASHBOARD_OF = "SELECT area_code, avg({call}) FROM dash d GROUP BY area_code ORDER BY 1"
DASHBOARD = DASHBOARD_OF.replace("{call}", "{fn}(d)")


def build(path: Path) -> str:
    """The file: table churn, table dash (its first 2,000 rows' features) and the models."""
    con = sqlml.connect(path)
    if CHURN.exists():
        source = f"churn rows from {CHURN.name}"
        con.execute(f"CREATE TABLE churn AS SELECT * EXCLUDE (rownames) FROM read_csv('{CHURN}')")
    else:
        source = "synthetic rows (../shared/data/churn is absent)"
        con.execute("""CREATE TABLE churn AS SELECT
            ['area_code_408', 'area_code_415', 'area_code_510'][1 + i % 3] AS area_code,
            random() * 300 AS total_day_minutes, random() * 300 AS total_eve_minutes,
            (random() * 10)::INTEGER AS number_customer_service_calls,
            random() < 0.1 AS international_plan FROM range(5000) t(i)""")
        con.execute("CREATE OR REPLACE TABLE churn AS SELECT *, (total_day_minutes / 60 + "
                    "number_customer_service_calls + random() * 3 > 8) AS churn FROM churn")
    con.execute("CREATE TABLE dash AS SELECT * EXCLUDE (churn) FROM churn LIMIT 2000")
    for name, model_type, hyper in MODELS:
        summary = sqlml.create_model(con, name, "churn", target="churn", model_type=model_type,
                                     function=name, hyperparameters=hyper, progress=False)
        if "not compiled" in (summary["notes"] or ""):
            print(f"  {name}: {summary['notes']}")
    con.close()
    return source


def cli_times(path: Path, queries: list[str], repeat: int) -> list[float]:
    """Best ``.timer`` real time of each query, run ``repeat`` times in one CLI process."""
    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or "duckdb"
    script = ".timer on\n" + "".join(f"{q};\n" * repeat for q in queries)
    done = subprocess.run([cli, "-readonly", str(path)], input=script, capture_output=True,
                          text=True, timeout=3600, check=True)
    times = [float(t) for t in re.findall(r"Run Time \(s\): real ([0-9.]+)", done.stdout)]
    assert len(times) == repeat * len(queries), done.stdout[-2000:] + done.stderr
    return [min(times[i * repeat:(i + 1) * repeat]) for i in range(len(queries))]


def case_bind_times(repeat: int) -> list[tuple[int, float, int]]:
    """(nodes, bind seconds, SQL characters) of the CASE form of boosting models of growing
    size on 10 bare DOUBLE columns (inputs that are long expressions bind slower)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from sqlml.compile import trees
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 10))
    y = X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=len(X)) > 0
    args = ", ".join(f"x{j}" for j in range(10))
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT " + ", ".join(
        f"random() AS x{j}" for j in range(10)) + " FROM range(10)")
    limits = trees.CASE_MAX_NODES, trees.CASE_MAX_CHARS
    trees.CASE_MAX_NODES = trees.CASE_MAX_CHARS = 10 ** 9
    out = []
    try:
        for iterations in (5, 10, 20, 40, 100):
            est = HistGradientBoostingClassifier(max_iter=iterations, early_stopping=False,
                                                 random_state=0).fit(X, y)
            sql = trees.scores_sql(est, args.split(", "))[1]
            con.execute(f"CREATE OR REPLACE MACRO f({args}) AS {sql}")
            q = f"SELECT f({args}) FROM t LIMIT 0"
            out.append((trees._node_count(est),
                        best_of(repeat, lambda q=q: con.execute(q).fetchall()), len(sql)))
    finally:
        trees.CASE_MAX_NODES, trees.CASE_MAX_CHARS = limits
    return out


def clients(repeat: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sqlml_bench_clients_"))
    path = folder / "churn.duckdb"
    try:
        source = build(path)
        con = sqlml.connect(path)
        nodes = {}
        for name, _, _ in MODELS[1:]:
            nodes[name] = _node_count(sqlml.load_model(con, name).pipeline.named_steps["model"])
        print(f"models trained on {source}; boosting {nodes['gb']:,} nodes, forest "
              f"{nodes['rf']:,} nodes; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores")
        print("bind time, SELECT f(d) FROM dash d LIMIT 0 (best of 5); macro text size:")
        for name, _, _ in MODELS:
            cells = []
            for suffix in ("_sql", "_probability_sql", "_probabilities_sql"):
                fn = name + suffix
                q = f"SELECT {fn}(d) FROM dash d LIMIT 0"
                body = con.execute("SELECT max(len(macro_definition)) FROM duckdb_functions() "
                                   "WHERE function_name = ?", [fn]).fetchall()[0][0]
                cells.append(f"{fn} {best_of(5, lambda q=q: con.execute(q).fetchall()) * 1e3:.1f}"
                             f" ms ({body / 1e3:.1f} KB)")
            print("  " + " | ".join(cells))
        python, session_sql, serves = {}, {}, {}
        for name, _, _ in MODELS:
            # The Python path by its UDF: a model's own function may be served by its SQL.
            q = DASHBOARD_OF.format(call=f"{generated.PROBABILITY_UDF}('{name}', d)")
            con.execute(q).fetchall()   # the model is loaded and cached by the first call
            python[name] = best_of(repeat, lambda q=q: con.execute(q).fetchall())
            q = DASHBOARD.format(fn=f"{name}_probability_sql")
            session_sql[name] = best_of(repeat, lambda q=q: con.execute(q).fetchall())
            serves[name] = "Python" if con.execute(
                "SELECT parameters->>'$.compiled_sql.python_first' FROM sqlml.model_versions "
                "WHERE name = ?", [name]).fetchall()[0][0] == "true" else "SQL"
        con.close()
        sql = cli_times(path, [DASHBOARD.format(fn=f"{n}_probability_sql") for n, _, _ in MODELS],
                        repeat)
        print(f"2,000-row GROUP BY dashboard query (best of {repeat}): duckdb CLI "
              f"{duckdb_cli_version()} calling <fn>_probability_sql vs a sqlml session calling "
              f"the Python-served <fn>_probability (target <= 1.5x):")
        for (name, _, _), s in zip(MODELS, sql, strict=True):
            print(f"  {name}: CLI {s:.3f}s | Python-served {python[name]:.3f}s | ratio "
                  f"{s / python[name]:.2f}x")
        print("In a sqlml session, <fn>_probability is served by the faster of its SQL and "
              "Python (sqlml.compile.model.python_first):")
        for name, _, _ in MODELS:
            faster = "SQL" if session_sql[name] < python[name] else "Python"
            print(f"  {name}: session SQL {session_sql[name]:.3f}s | Python {python[name]:.3f}s"
                  f" | faster: {faster} | served by: {serves[name]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def duckdb_cli_version() -> str:
    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or "duckdb"
    return subprocess.run([cli, "-version"], capture_output=True, text=True,
                          check=False).stdout.split()[0]


def million(repeat: int) -> None:
    from _tables import make_table
    from bench_compiled import measure
    con = sqlml.connect(threads=2)
    make_table(con, 1_000_000, seed=0.1)
    print(f"1,000,000 rows x 10 numeric features, threads=2, best of {repeat}: "
          f"sum(_probability_sql(...)) vs bare predict_proba on the preprocessed array")
    for model_type, hyper in (("logistic", {}),
                              ("gradient_boosting", {"max_iter": 100, "early_stopping": False})):
        r = measure(con, model_type, hyper, repeat, 100_000)
        if r is not None:
            print(f"  {model_type}: _probability_sql {r['sql']:.3f}s | numpy {r['floor']:.3f}s "
                  f"| ratio {r['sql'] / r['floor']:.2f}x (target <= 1.0x) | Python-served "
                  f"{r['python'] / r['floor']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-million", action="store_true")
    ap.add_argument("--skip-clients", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if not args.skip_clients:
        clients(args.repeat)
    print("CASE SQL of boosting models (what models up to CASE_MAX_NODES get): nodes, bind "
          "(LIMIT 0, best of 5), SQL size")
    for n, s, chars in case_bind_times(5):
        print(f"  {n:5d} nodes: {s * 1e3:6.1f} ms, {chars / 1e3:.0f} KB")
    if not args.skip_million:
        million(min(args.repeat, 3))
    print(f"({time.perf_counter() - t0:.0f} s; load average after {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
