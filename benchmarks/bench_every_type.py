"""Every binary model type compiled to plain SQL, against numpy in the same process.

For each model type sqlml trains (and a calibrated logistic model), trained on 5,000 rows of 10
numeric features: ``SELECT sum(<fn>_probability_sql(x0, ..., x9)) FROM bench`` over ``--rows``
rows (DuckDB threads=2), against the bare estimator's ``predict_proba`` on the preprocessed
in-memory float64 array (the floor), with the Python-served ``<fn>_probability`` beside it.
Best of ``--repeat`` interleaved rounds (bench_compiled.measure, which first checks that the
SQL's sum equals numpy's).

The default is 1,000,000 rows; ``--rows 100000`` keeps KNN (a join of every row with the
training points) and the large tree models to a few minutes on 2 cores.

    python benchmarks/bench_every_type.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

from _tables import make_table
from bench_compiled import measure

import sqlml

TRAIN_ROWS = 5_000
# Model types with the settings of a first model: the registry's defaults, smaller forests.
TYPES = (("logistic", {}, None), ("decision_tree", {}, None),
         ("random_forest", {"n_estimators": 50}, None),
         ("gradient_boosting", {"max_iter": 100, "early_stopping": False}, None),
         ("knn", {"n_neighbors": 15}, None), ("mlp", {}, None),
         ("logistic", {}, "isotonic"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    started = time.perf_counter()
    con = sqlml.connect(threads=2)
    make_table(con, args.rows, seed=0.3)
    print(f"{args.rows:,} rows x 10 numeric features, threads=2, trained on {TRAIN_ROWS:,} rows, "
          f"best of {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    for model_type, hyper, calibrate in TYPES:
        label = model_type + (f" ({calibrate} calibration)" if calibrate else "")
        r = measure(con, model_type, hyper, args.repeat, TRAIN_ROWS,
                    settings={"calibrate": calibrate} if calibrate else None)
        if r is not None:
            print(f"  {label}: _probability_sql {r['sql']:.3f}s | numpy {r['floor']:.3f}s | "
                  f"ratio {r['sql'] / r['floor']:.2f}x | Python-served "
                  f"{r['python'] / r['floor']:.2f}x")
    con.close()
    print(f"({time.perf_counter() - started:.0f} s; load average after "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
