"""How well ``settings := {max_runtime: s}`` is honoured while tuning.

Each run asks for far more trials than fit in the budget, so the budget is what ends tuning.
The acceptance rule (issue 5): total training seconds <= 1.1 x max_runtime + the longest trial
(the allowance). Per case and budget it prints the seconds ml_create_model took, when tuning
ended (the last training-log row), the number of trials, the longest, the allowance and
PASS/FAIL. Timings depend on what else runs: the load average is printed first.

    python benchmarks/bench_tuning.py [--rows 5000] [--budgets 3 6 12]
"""

from __future__ import annotations

import argparse
import os
import time

import sqlml
from sqlml.datasets import make_customers

CASES = {
    "gradient_boosting random": ("gradient_boosting", "random",
                                 "{learning_rate: {'min': 0.01, 'max': 0.5}, "
                                 "max_leaf_nodes: {'min': 8, 'max': 64}}"),
    "random_forest bayesian": ("random_forest", "bayesian",
                               "{min_samples_leaf: {'min': 1, 'max': 30}}"),
    "auto random": ("auto", "random", "NULL"),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--budgets", type=float, nargs="+", default=[3, 6, 12])
    args = ap.parse_args()
    con = sqlml.connect()
    customers = make_customers(args.rows)  # noqa: F841  (read by the CREATE TABLE below)
    con.execute("CREATE TABLE customers AS FROM customers")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'case':<26} {'budget':>7} {'seconds':>8} {'tuned':>6} {'trials':>6} {'longest':>8} "
          f"{'allowed':>8}  result")
    ok_all = True
    for label, (model_type, strategy, hyper) in CASES.items():
        for budget in args.budgets:
            name = f"b_{len(label)}_{int(budget * 10)}"
            t0 = time.perf_counter()
            con.execute(
                f"SELECT ml_create_model('{name}', 'customers', target := 'churned', "
                f"model_type := '{model_type}', hyperparameters := {hyper}, "
                f"settings := {{strategy: '{strategy}', max_trials: 10000, "
                f"max_runtime: {budget}}})").fetchall()
            seconds = time.perf_counter() - t0
            n, longest = con.execute(
                f"SELECT count(*), max(seconds) FROM ml_trials('{name}')").fetchall()[0]
            tuned = con.execute(f"SELECT max(elapsed_seconds) FROM ml_training_log('{name}')"
                                ).fetchall()[0][0]
            allowed = 1.1 * budget + longest
            ok = seconds <= allowed
            ok_all &= ok
            print(f"{label:<26} {budget:>7.1f} {seconds:>8.2f} {tuned:>6.2f} {n:>6} "
                  f"{longest:>8.2f} {allowed:>8.2f}  {'PASS' if ok else 'FAIL'}")
    print("PASS" if ok_all else "FAIL")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
