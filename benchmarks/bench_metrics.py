"""Speed of the pure-SQL metrics against scikit-learn on the same data, in one run.

The acceptance bar (issue 3): ml_roc_auc on 1M rows within 2x sklearn.metrics.roc_auc_score on
numpy arrays. Both sides are timed in the same process, interleaved, and the best of several
repeats is kept, so that a busy machine slows both rather than one.

    python benchmarks/bench_metrics.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn import metrics

import sqlml


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def min_cost_numpy(y, score, fn_cost, fp_cost) -> float:
    """The reference for ml_best_threshold: the cheapest point of scikit-learn's ROC curve."""
    fpr, tpr, _ = metrics.roc_curve(y, score, drop_intermediate=False)
    positives, negatives = y.sum(), (~y).sum()
    return float(np.min(fn_cost * (1 - tpr) * positives + fp_cost * fpr * negatives))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    y = rng.random(args.rows) < 0.3
    # Rounded scores: many ties, the case a naive rank-sum gets wrong.
    s_ties = np.round(rng.random(args.rows) * 0.6 + y * 0.3, 3)
    s_cont = rng.random(args.rows) * 0.6 + y * 0.3
    pred = s_cont >= 0.5

    settings = {} if args.threads is None else {"threads": args.threads}
    con = sqlml.connect(**settings)
    frame = pd.DataFrame({"y": y, "s_ties": s_ties, "s_cont": s_cont, "pred": pred})
    con.register("frame", frame)
    con.execute("CREATE TABLE scored AS SELECT * FROM frame")
    con.unregister("frame")

    def sql(q):
        return lambda: con.sql(q).fetchall()[0][0]

    cases = [
        ("roc_auc, 1M distinct scores", sql("SELECT ml_roc_auc(y, s_cont) FROM scored"),
         lambda: metrics.roc_auc_score(y, s_cont)),
        ("roc_auc, ~1k distinct scores (ties)", sql("SELECT ml_roc_auc(y, s_ties) FROM scored"),
         lambda: metrics.roc_auc_score(y, s_ties)),
        ("pr_auc (average precision)", sql("SELECT ml_pr_auc(y, s_cont) FROM scored"),
         lambda: metrics.average_precision_score(y, s_cont)),
        ("log_loss", sql("SELECT ml_log_loss(y, s_cont) FROM scored"),
         lambda: metrics.log_loss(y, s_cont)),
        ("f1", sql("SELECT ml_f1(y, pred) FROM scored"), lambda: metrics.f1_score(y, pred)),
        ("best threshold: min cost (fn 3, fp 1)", sql(
            "SELECT ml_best_threshold(y, s_cont, fn_cost := 3, fp_cost := 1).cost FROM scored"),
         lambda: min_cost_numpy(y, s_cont, fn_cost=3, fp_cost=1)),
    ]
    threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
    print(f"rows: {args.rows:,}   repeats: {args.repeat} (best kept)   duckdb threads: {threads}")
    print(f"{'metric':40s} {'sqlml s':>9s} {'sklearn s':>10s} {'ratio':>7s}  values")
    for name, ours, theirs in cases:
        t_ours, v_ours = best_of(ours, args.repeat)
        t_theirs, v_theirs = best_of(theirs, args.repeat)
        print(f"{name:40s} {t_ours:9.3f} {t_theirs:10.3f} {t_ours / t_theirs:6.2f}x  "
              f"{v_ours:.10g} / {v_theirs:.10g}")
    print("acceptance: ml_roc_auc ratio <= 2.00x (roc_auc rows above)")


if __name__ == "__main__":
    main()
