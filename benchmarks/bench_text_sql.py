"""Speed of models with a text column compiled to plain SQL, as ratios against the Python-served
function in the same process.

Three models, each written to a DuckDB file (storage v1.4.0, as sqlml writes them):

- ``churn``: the demo's churn data (``make_customers``, its ``support_notes`` text column),
  a logistic model over words and character n-grams (about 6,000 vocabulary terms);
- ``spam``: SMS messages (../shared/data/text, skipped when absent), logistic, about 20,000
  terms;
- ``vocab10k``: a synthetic 10,000-word vocabulary, 30 words a document, logistic.

For each: the bind time (``EXPLAIN`` of a query calling the macro) and the time to score
``--rows`` rows with ``sum(<fn>_probability_sql(t))`` in the duckdb CLI (``.timer on``, the CLI
process's start-up not counted) and in the session, against ``sum(<fn>_probability(t))``
served by Python in the session (the baseline, 1.0x). Best of ``--repeat`` runs.

Then the term lookup alternatives, on the spam model's character n-grams: the hash join the
compiler emits (its n-gram counts per row), a MAP built once per query from the stored arrays,
and ``list_position`` on the stored term list, per 1,000 rows (the last two on 200 rows only:
they scan the vocabulary per n-gram).

    python benchmarks/bench_text_sql.py [--rows 2000] [--repeat 3] [--big 100000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _tables import best_of

import sqlml
from sqlml.datasets import make_customers

SMS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "text" / "SMSSpamCollection"
CLI = Path(sys.executable).with_name("duckdb")


def tables(con, rows: int) -> list[tuple[str, str, str, str]]:
    """(model, table, target, argument) per model: the tables hold at least ``rows`` rows, and
    the argument is the whole row, or the column of a one-feature model."""
    out = []
    customers = make_customers(max(rows, 3000), seed=7)   # noqa: F841 (read by DuckDB)
    con.execute("CREATE TABLE churn AS SELECT * EXCLUDE (customer_id) FROM customers")
    out.append(("churn", "churn", "churned", "t"))
    # Positionally: DuckDB decorrelates the text subquery on the column it reads, which for a
    # whole-row call is the whole row (no duplicate texts to share, wider keys).
    cols = [r[0] for r in con.execute("DESCRIBE churn").fetchall() if r[0] != "churned"]
    out.append(("churn", "churn", "churned", ", ".join(f"t.{c}" for c in cols)))
    if SMS.exists():
        lines = SMS.read_text(encoding="utf-8").splitlines()
        sms = pd.DataFrame([ln.split("\t", 1) for ln in lines], columns=["label", "body"])  # noqa: F841
        con.execute("CREATE TABLE spam AS SELECT label = 'spam' AS spam, body FROM sms")
        out.append(("spam", "spam", "spam", "t.body"))
    rng = np.random.default_rng(0)
    vocab = np.array([f"term{i}" for i in range(10_000)])
    docs = pd.DataFrame({"doc": [" ".join(rng.choice(vocab, 30)) for _ in range(max(rows, 3000))],  # noqa: F841
                         "y": rng.random(max(rows, 3000)) < 0.5})
    con.execute("CREATE TABLE vocab10k AS FROM docs")
    out.append(("vocab10k", "vocab10k", "y", "t.doc"))
    return out


def cli_seconds(path: str, sql: str, repeat: int) -> float:
    """Best 'Run Time (s): real' of ``sql`` run ``repeat`` times in one CLI process."""
    script = ".timer on\n" + "\n".join([sql + ";"] * repeat)
    done = subprocess.run([str(CLI), "-readonly", path], input=script, capture_output=True,
                          text=True, timeout=600, check=True)
    times = [float(t) for t in re.findall(r"Run Time \(s\): real ([0-9.]+)", done.stdout)]
    assert len(times) == repeat, done.stdout + done.stderr
    return min(times)


def measure(path: str, model: str, table: str, arg: str, rows: int, repeat: int) -> dict:
    con = sqlml.connect(path)
    sample = f"(FROM {table} LIMIT {rows}) t"
    sql_q = f"SELECT sum(fn_{model}_probability_sql({arg})) FROM {sample}"
    py_q = f"SELECT sum(fn_{model}_probability({arg})) FROM {sample}"
    got, want = con.execute(sql_q).fetchone()[0], con.execute(py_q).fetchone()[0]
    assert abs(got - want) <= 1e-12 * rows, (got, want)
    size = con.execute("SELECT max(length(macro_definition)) FROM duckdb_functions() "
                       f"WHERE function_name = 'fn_{model}_probability_sql'").fetchone()[0]
    out = {"macro_chars": size,
           "bind_session": best_of(repeat, lambda: con.execute("EXPLAIN " + sql_q).fetchall()),
           "sql_session": best_of(repeat, lambda: con.execute(sql_q).fetchall()),
           "python": best_of(repeat, lambda: con.execute(py_q).fetchall())}
    con.close()
    if CLI.exists():
        out["bind_cli"] = cli_seconds(path, "EXPLAIN " + sql_q, repeat)
        out["sql_cli"] = cli_seconds(path, sql_q, repeat)
    return out


def lookups(con, rows: int, big: int) -> None:
    """Per 1,000 rows: the compiler's hash join against a MAP and list_position, on the spam
    model's character n-gram block (the largest vocabulary)."""
    from sqlml.compile import text as compile_text
    from sqlml.compile.params import Params
    from sqlml.train import preprocessing
    if not SMS.exists():
        return
    docs = con.execute("SELECT body FROM spam").df()["body"].to_numpy(dtype=object)
    f = [preprocessing.Feature("body", "VARCHAR", "text", "tfidf")]
    prep = preprocessing.build_transformer(f, dense=False).fit(pd.DataFrame({"body": docs}))
    store = Params("lookup", 1)
    block = compile_text.blocks("body", prep.transformers_[0][1], "body", 0, store)[1]
    store.write(con)
    # Distinct texts (DuckDB scores each distinct text once): the row number as a last word.
    con.execute(f"CREATE TEMP TABLE d AS SELECT body || ' ' || i AS body FROM (SELECT body, "
                f"row_number() OVER () AS i FROM spam, range({big // len(docs) + 1})) "
                f"LIMIT {big}")
    con.execute(f"CREATE TEMP TABLE terms AS SELECT {block.terms} AS t, MAP({block.terms}, "
                f"range({block.width})) AS m")
    # Each counts the row's n-grams found in the vocabulary, from the text column, as the
    # compiled macro does (a correlated subquery over a stored LIST column is far slower).
    join = f"SELECT sum(len({block.entries({})})) FROM (FROM d LIMIT __n__)"
    by_map = (f"SELECT sum(len(list_filter(list_transform({block.grams}, lambda x: m[x]), "
              "lambda y: y IS NOT NULL))) FROM (FROM d LIMIT __n__), terms")
    by_position = (f"SELECT sum(len(list_filter(list_transform({block.grams}, lambda x: "
                   "list_position(t, x)), lambda y: y IS NOT NULL))) FROM (FROM d LIMIT __n__), "
                   "terms")
    print(f"\nterm lookup, {block.width:,} character n-gram terms, seconds per 1,000 rows:")
    for label, q, ns in (("hash join (compiled)", join, (rows, big)), ("MAP", by_map, (200,)),
                         ("list_position", by_position, (200,))):
        for n in ns:
            t0 = time.perf_counter()
            con.execute(q.replace("__n__", str(n))).fetchall()
            print(f"  {label:22s} {n:>7,} rows: {(time.perf_counter() - t0) / n * 1000:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "text.duckdb")
        con = sqlml.connect(path)
        made = tables(con, args.rows)
        for model, table, target in dict.fromkeys(m[:3] for m in made):
            t0 = time.perf_counter()
            s = sqlml.create_model(con, model, f"SELECT * FROM {table}", target=target,
                                   model_type="logistic", function=f"fn_{model}",
                                   progress=False)
            assert "not compiled" not in (s["notes"] or ""), s["notes"]
            print(f"{model}: trained and compiled in {time.perf_counter() - t0:.1f}s")
        lookups(con, args.rows, args.big)
        con.close()
        print(f"\n{args.rows:,} rows, best of {args.repeat}; ratios against the Python-served "
              f"<fn>_probability in the session:")
        for model, table, _, arg in made:
            m = measure(path, model, table, arg, args.rows, args.repeat)
            base = m["python"]
            form = "whole row" if arg == "t" else "positional" if "," in arg else "one column"
            print(f"  {model} ({form}): macro {m['macro_chars']:,} chars; Python-served "
                  f"{base:.3f}s (1.0x)")
            print(f"    session _probability_sql {m['sql_session']:.3f}s "
                  f"({m['sql_session'] / base:.2f}x), bind {m['bind_session'] * 1000:.1f} ms")
            if "sql_cli" in m:
                print(f"    CLI     _probability_sql {m['sql_cli']:.3f}s "
                      f"({m['sql_cli'] / base:.2f}x), bind {m['bind_cli'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
