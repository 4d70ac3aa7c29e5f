"""Scoring and training speed of generated functions, as ratios against baselines in one run.

Scoring: 1,000,000 rows x 10 numeric features. The query calls the generated probability
function; the baseline is numpy ``predict_proba`` on the same fitted pipeline with the array
already in memory. Training: ``ml_create_model`` with a fixed model type, against the same work
done by hand from ``con.sql(q).df()`` (split, fit, validate, refit on all rows), and against a
single fit.

    python benchmarks/bench_scoring.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa
from _tables import COLUMNS, best_of, make_table
from sklearn.base import clone
from sklearn.model_selection import train_test_split

import sqlml


def scoring(con, model_type: str, repeat: int, train_rows: int) -> tuple[float, float, float]:
    con.execute(f"CREATE OR REPLACE TABLE bench_train AS FROM bench LIMIT {train_rows}")
    sqlml.create_model(con, f"bench_{model_type}", "bench_train", target="y",
                       model_type=model_type, function=f"score_{model_type}")
    model = sqlml.load_model(con, f"bench_{model_type}")
    X = con.sql("SELECT * EXCLUDE (y) FROM bench").df()
    X = X.astype(np.float64)
    # Two floors: the stored pipeline (imputer, scaler, model) on the in-memory frame, and the
    # bare estimator on the already-preprocessed array, which is the stricter of the two.
    pipeline_floor = best_of(repeat, lambda: model.pipeline.predict_proba(X))
    Xt = model.pipeline.named_steps["prep"].transform(X)
    est = model.pipeline.named_steps["model"]
    floor = best_of(repeat, lambda: est.predict_proba(Xt))
    q = f"SELECT sum(score_{model_type}_probability({COLUMNS})) FROM bench"
    sql = best_of(repeat, lambda: con.execute(q).fetchall())
    return floor, pipeline_floor, sql


def training(con, model_type: str, repeat: int) -> tuple[float, float, float]:
    q = "SELECT * FROM bench_train"
    counter = iter(range(1000))

    def by_sqlml():
        sqlml.create_model(con, f"train_{model_type}_{next(counter)}", q, target="y",
                           model_type=model_type)

    sqlml.create_model(con, f"bench_{model_type}", "bench_train", target="y",
                       model_type=model_type, function=f"score_{model_type}")
    model = sqlml.load_model(con, f"bench_{model_type}")

    def by_hand_same_work():
        df = con.sql(q).df()
        y = df.pop("y").to_numpy()
        tr, va = train_test_split(np.arange(len(y)), test_size=0.2, random_state=42, stratify=y)
        fitted = clone(model.pipeline).fit(df.iloc[tr], y[tr])
        fitted.predict_proba(df.iloc[va])
        clone(model.pipeline).fit(df, y)

    def by_hand_one_fit():
        df = con.sql(q).df()
        y = df.pop("y").to_numpy()
        clone(model.pipeline).fit(df, y)

    return (best_of(repeat, by_sqlml), best_of(repeat, by_hand_same_work),
            best_of(repeat, by_hand_one_fit))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=("scoring", "training"), default=None)
    args = ap.parse_args()
    con = sqlml.connect(threads=2)
    make_table(con, args.rows, seed=0.0)
    print(f"scoring {args.rows:,} rows x 10 numeric features, DuckDB threads=2, best of "
          f"{args.repeat}")
    targets = {"logistic": 1.5, "gradient_boosting": 1.2}
    if args.only != "training":
        # The cost of DuckDB calling any Arrow UDF on these 10 columns: a floor for every
        # Python-served function, whatever it computes.
        def noop(*cols):
            return pa.array(np.zeros(len(cols[0])))

        con.create_function("bench_noop", noop, None, "DOUBLE", type="arrow",
                            null_handling="special")
        t = best_of(args.repeat, lambda: con.execute(
            f"SELECT sum(bench_noop({COLUMNS})) FROM bench").fetchall())
        print(f"  {'do-nothing UDF':18s} {t:.3f}s (DuckDB's own cost of calling a Python UDF)")
    for mt, target in targets.items() if args.only != "training" else ():
        floor, pipeline_floor, sql = scoring(con, mt, args.repeat, args.train_rows)
        print(f"  {mt:18s} SQL function {sql:.3f}s | numpy predict_proba on the array "
              f"{floor:.3f}s: ratio {sql / floor:.2f}x (target <= {target}x) | whole pipeline "
              f"on the frame {pipeline_floor:.3f}s: ratio {sql / pipeline_floor:.2f}x")
    if args.only == "scoring":
        return
    print(f"training on {args.train_rows:,} rows, fixed model type, best of {args.repeat}")
    con.execute(f"CREATE OR REPLACE TABLE bench_train AS FROM bench LIMIT {args.train_rows}")
    for mt in targets:
        t_sqlml, t_same, t_one = training(con, mt, args.repeat)
        print(f"  {mt:18s} ml_create_model {t_sqlml:.3f}s  by hand, same work {t_same:.3f}s "
              f"ratio {t_sqlml / t_same:.2f}x (target <= 1.1x)  | vs one fit {t_one:.3f}s "
              f"ratio {t_sqlml / t_one:.2f}x")


if __name__ == "__main__":
    main()
