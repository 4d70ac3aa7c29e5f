"""What the SQL side of forecasting costs around the engine, on a panel of many series.

A synthetic panel (``--series`` series x ``--months`` months, trend, yearly cycle, noise, a
share of intermittent series) is trained with ``ml_create_model(..., problem_type :=
'forecast')`` and, in the same process, with ``sqlml.forecast.engine.fit_forecast`` called
directly on the same panel. Prints:

1. the training call's seconds against the engine's alone, and their ratio (the cost of reading
   the rows, checking and filling them, and storing forecasts, backtest and metrics), both
   after a warm-up fit on 3 series that pays the first imports;
2. reading every forecast through the generated pure-SQL function (series x horizon rows) and
   one series through a WHERE, best of 5;
3. the rows stored per table.

Run: ``python benchmarks/bench_forecast_sql.py`` (``--series 1000 --months 120 --method naive``
by default; ``--method auto`` compares every candidate the engine has).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _tables import best_of

import sqlml
from sqlml.forecast.engine import fit_forecast


def panel(series: int, months: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    rows = []
    for k in range(series):
        level, trend, amp = rng.uniform(50, 500), rng.uniform(-0.2, 1.0), rng.uniform(0, 0.3)
        y = level + trend * t + amp * level * np.sin(2 * np.pi * t / 12) \
            + rng.normal(0, 0.05 * level, months)
        if k % 10 == 0:   # intermittent: mostly zero
            y = np.where(rng.random(months) < 0.7, 0.0, rng.poisson(5, months).astype(float))
        rows.append(pd.DataFrame({"item": k, "month": pd.date_range("2010-01-01", periods=months,
                                                                   freq="MS"),
                                  "units": np.maximum(np.round(y, 1), 0.0)}))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--method", default="naive")
    args = ap.parse_args()
    frame = panel(args.series, args.months)
    con = sqlml.connect()
    con.register("frame", frame)
    con.execute("CREATE TABLE demand AS SELECT item, month::DATE AS month, units FROM frame")

    # Warm-up on 3 series, so neither figure pays the first imports.
    con.execute("CREATE TABLE warm AS FROM demand WHERE item < 3")
    con.execute(f"""SELECT ml_create_model('warm', 'warm', target := 'units',
        problem_type := 'forecast', settings := {{time_col: 'month', series_cols: ['item'],
        horizon: 2, method: '{args.method}'}})""").fetchall()
    direct = frame.rename(columns={"month": "ds", "units": "y"}).assign(
        unique_id=lambda f: "item=" + f["item"].astype(str))[["unique_id", "ds", "y"]]
    direct = direct.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    t0 = time.perf_counter()
    fit_forecast(direct, horizon=args.horizon, freq="MS", season_length=12, method=args.method,
                 seed=42)
    engine_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    con.execute(f"""SELECT ml_create_model('demand', 'demand', target := 'units',
        problem_type := 'forecast', function := 'forecast_demand',
        settings := {{time_col: 'month', series_cols: ['item'], horizon: {args.horizon},
                     method: '{args.method}'}})""").fetchall()
    sql_s = time.perf_counter() - t0

    all_s = best_of(5, lambda: con.execute("SELECT count(*), sum(p50) FROM forecast_demand()")
                    .fetchall())
    one_s = best_of(5, lambda: con.execute("FROM forecast_demand() WHERE item = 7").fetchall())
    n = con.execute("SELECT count(*) FROM forecast_demand()").fetchall()[0][0]
    print(f"panel: {args.series} series x {args.months} months, horizon {args.horizon}, "
          f"method {args.method}")
    print(f"training: ml_create_model {sql_s:.2f} s, engine alone {engine_s:.2f} s, "
          f"ratio {sql_s / engine_s:.2f}x (SQL side {sql_s - engine_s:+.2f} s)")
    print(f"reading:  FROM forecast_demand() {n} rows in {all_s * 1000:.1f} ms; one series "
          f"(WHERE item = 7) in {one_s * 1000:.1f} ms (best of 5)")
    for table in ("forecast_series", "forecasts", "forecast_backtest", "forecast_diagnostics"):
        rows = con.execute(f"SELECT count(*) FROM sqlml.{table} WHERE name = 'demand'"
                           ).fetchall()[0][0]
        print(f"stored:   sqlml.{table}: {rows} rows")


if __name__ == "__main__":
    main()
