"""How long AUTO takes on small data, and where the time goes (issue 14, part 5).

Runs the demo's call, ``ml_create_model('customer_churn', 'customers', target := 'churned',
settings := {max_runtime: 120})`` on ``make_customers(rows)`` (5,000 rows x 15 columns, one of
them free text), beside a baseline in the same process: one HistGradientBoosting fit, with
scikit-learn's defaults, on the same rows through the same preprocessing. It prints AUTO's
seconds, their ratio to the baseline's (the machine's load cancels out of the ratio), the
validation AUC, each candidate's seconds from ml_trials and each stage's seconds from the
version's parameters (stage_seconds). ``--csv`` runs on another table instead (e.g.
../shared/data/churn/mlc_churn.csv, ``--target churn``).

Ablation flags switch a rule off in this process: ``--no-held-out`` (boosting without early
stopping below 10,000 rows, as before), ``--no-noise-rule`` (the best mean wins even within the
fold-to-fold noise).

    python benchmarks/bench_auto.py [--rows 5000] [--repeat 1] [--csv PATH --target COL]
"""

from __future__ import annotations

# First: sqlml sets OMP_WAIT_POLICY=PASSIVE before scikit-learn loads OpenMP; imported after,
# the baseline's threads spin on a loaded machine and its fit takes several times longer.
import sqlml

# isort: split
import argparse
import dataclasses
import json
import os
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from sqlml.datasets import make_customers
from sqlml.train import estimators, preprocessing, supervised


def baseline_seconds(con, target: str) -> float:
    """One HistGradientBoosting fit with scikit-learn's defaults, on sqlml's dense features."""
    rel = con.sql("FROM customers")
    types = {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True)}
    table = rel.to_arrow_table()
    types.pop(target)
    y = table.column(target).to_pandas().astype(str).to_numpy()
    frame = pd.DataFrame({c: table.column(c).to_pandas() for c in types
                          if preprocessing.supported(types[c])})
    features, _ = preprocessing.infer_features(frame, types, {}, False)
    X = preprocessing.to_frame([table.column(f.name) for f in features], features, "bench")
    pipe = Pipeline([("prep", preprocessing.build_transformer(features, dense=True)),
                     ("model", HistGradientBoostingClassifier(random_state=0))])
    t0 = time.perf_counter()
    pipe.fit(X, y)
    return time.perf_counter() - t0


def auto_run(con, target: str, name: str) -> dict:
    t0 = time.perf_counter()
    summary = con.execute(
        f"SELECT ml_create_model('{name}', 'customers', target := '{target}', "
        f"settings := {{max_runtime: 120}})").fetchall()[0][0]
    seconds = time.perf_counter() - t0
    trials = con.execute(f"SELECT model_type, score, seconds, status, parameters "
                         f"FROM ml_trials('{name}') ORDER BY trial").fetchall()
    params = json.loads(con.execute(
        "SELECT parameters FROM sqlml.model_versions WHERE name = ? ORDER BY version DESC "
        "LIMIT 1", [name]).fetchall()[0][0])
    auc = con.execute(f"SELECT value FROM ml_model_metrics('{name}') WHERE metric = 'roc_auc' "
                      f"AND class_label IS NULL").fetchall()[0][0]
    return {"seconds": seconds, "summary": summary, "trials": trials, "auc": auc,
            "stages": params.get("stage_seconds", {})}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--csv", help="train on this CSV instead of the demo's customers")
    ap.add_argument("--target", default="churned")
    ap.add_argument("--no-held-out", action="store_true")
    ap.add_argument("--no-noise-rule", action="store_true")
    ap.add_argument("--boosting", type=json.loads, default=None,
                    help='held-out boosting defaults to try, e.g. \'{"learning_rate": 0.05}\'')
    args = ap.parse_args()
    if args.boosting:
        gb = estimators.MODEL_TYPES["gradient_boosting"]
        estimators.MODEL_TYPES["gradient_boosting"] = dataclasses.replace(
            gb, held_out=(*gb.held_out, *args.boosting.items()))
    if args.no_held_out:
        estimators.HELD_OUT_ROWS = 10**12
    if args.no_noise_rule:
        supervised.NOISE_RULE = False
    con = sqlml.connect()
    customers = (pd.read_csv(args.csv) if args.csv
                 else make_customers(args.rows))
    con.execute("CREATE TABLE customers AS FROM customers")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{len(customers)} rows x {customers.shape[1]} columns")
    base = [baseline_seconds(con, args.target) for _ in range(args.repeat)]
    runs = [auto_run(con, args.target, f"auto_{i}") for i in range(args.repeat)]
    b, a = float(np.median(base)), float(np.median([r["seconds"] for r in runs]))
    last = runs[-1]
    print(f"baseline HistGradientBoosting fit  {b:7.2f} s")
    print(f"AUTO ml_create_model               {a:7.2f} s  ({a / b:.1f}x the baseline)  "
          f"chose {last['summary']['model_type']}, validation AUC {last['auc']:.4f}")
    print("candidates (ml_trials):")
    for mt, score, sec, status, params in last["trials"]:
        rule = json.loads(params).get("selection", "")
        print(f"  {mt:18s} {'-' if score is None else f'{score:.4f}'} {sec:6.2f} s  "
              f"{status}  {rule}")
    print("stages (stage_seconds): " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                 last["stages"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
