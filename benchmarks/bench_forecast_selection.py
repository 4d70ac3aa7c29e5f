"""Per-series against global selection for forecast AUTO, on held-out data.

AUTO chooses one method for the whole panel by its backtest's scaled pinball loss ("global").
The alternative is a choice per series from the same backtest scores, shrunk toward each
method's panel mean: series i takes the method c with the lowest
(n_i * s_ic + K * S_c) / (n_i + K), with s_ic its backtest score for c, n_i its backtest rows,
S_c the panel mean of c and K pseudo-rows (K = 0: the raw per-series choice; K -> infinity:
the global choice). This script fits every candidate on the synthetic panel of
bench_forecast.py (trend, season, one series in five intermittent), the last 12 months held
out, and prints the held-out scaled pinball loss and P10-P90 coverage of each rule.

Run: ``python benchmarks/bench_forecast_selection.py`` (--series 1000 --length 120 for the
issue's panel; several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from bench_forecast import QUANTILES, evaluate, synthetic_panel

from sqlml.forecast.engine import fit_forecast

METHODS = ("seasonal_naive", "theta", "ets", "gbm")
SHRINK = (0, 12, 48, 10 ** 9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--length", type=int, default=120)
    args = ap.parse_args()
    h = 12
    df = synthetic_panel(args.series, args.length + h)
    cut = df["ds"].max() - pd.DateOffset(months=h)
    train, test = df[df["ds"] <= cut], df[df["ds"] > cut]
    fits = {}
    for m in METHODS:
        start = time.process_time()
        fits[m] = fit_forecast(train, horizon=h, quantiles=QUANTILES, method=m)
        print(f"   fitted {m:15s} {time.process_time() - start:6.1f} CPU s")
    ids = sorted(train["unique_id"].unique())
    score = np.column_stack([fits[m].series_metrics.set_index("unique_id")
                             .reindex(ids)["scaled_pinball"].to_numpy() for m in METHODS])
    rows = np.array([fits[METHODS[0]].backtest.groupby("unique_id").size().reindex(ids)])[0]
    panel_mean = score.mean(axis=0)
    print(f"== {args.series} series x {args.length} months, last {h} held out; backtest "
          f"scores: " + ", ".join(f"{m} {s:.3f}" for m, s in zip(METHODS, panel_mean,
                                                                strict=True)))
    print(f"   {'rule':34s} {'held-out scaled pinball':>24s} {'P10-P90 coverage':>17s}")
    for k in SHRINK:
        shrunk = (rows[:, None] * score + k * panel_mean[None, :]) / (rows[:, None] + k)
        pick = dict(zip(ids, np.array(METHODS)[np.argmin(shrunk, axis=1)], strict=True))
        parts = [fits[m].forecasts[fits[m].forecasts["unique_id"].map(pick) == m]
                 for m in METHODS]
        q = evaluate(test, pd.concat(parts), train)
        name = ("global (one method for the panel)" if k >= 10 ** 9 else
                f"per series, K = {k} pseudo-rows")
        counts = pd.Series(pick).value_counts().to_dict()
        print(f"   {name:34s} {q['scaled_pinball']:24.4f} {q['coverage']:17.1%}   {counts}")


if __name__ == "__main__":
    main()
