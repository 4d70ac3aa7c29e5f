"""Forecasting benchmark: quality on Airline passengers, speed and memory on a synthetic panel.

Prints, in one run:
1. statsforecast's first-call cost in a fresh interpreter: import, first and second fit.
2. Airline passengers (../shared/data/timeseries/Airline.csv), the last 24 months held out, h=24:
   scaled pinball loss, P10-P90 coverage and MASE for sqlml AUTO, sqlml's calibrated seasonal
   naive, and seasonal naive as statsforecast computes it (its 80% interval as P10-P90).
3. A synthetic panel (trend, yearly season, intermittent series, noise) of --series series x
   --length months, the last 12 held out: for each of --models, the fit+forecast time of
   sqlml's engine against statsforecast called directly on the same data in the same process,
   (a) its forecast with an 80% interval, one fit per series, and (b) the same work as the
   engine (a one-window cross_validation, then a forecast), the ratios, the held-out coverage
   and scaled pinball of each, and the peak traced memory (tracemalloc, Python and numpy
   allocations, not statsforecast's C++ ones) in a second pass over --memory-series series.
   With --auto, AUTO on the same panel (max_runtime --budget seconds).
4. AUTO's speed on --speed-series series x 60 months (100 by default), wall and CPU seconds,
   against sqlml's seasonal naive and statsforecast's AutoETS cross_validation (one window)
   on the same panel, as a ratio of CPU seconds (fair on a shared machine).

Run: ``python benchmarks/bench_forecast.py`` (1,000 series: several minutes on 2 cores;
``--series 200`` for a quick look).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from sqlml.forecast import select
from sqlml.forecast.engine import fit_forecast
from sqlml.forecast.metrics import pinball, scales

AIRLINE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "timeseries" / \
    "Airline.csv"
QUANTILES = (0.1, 0.5, 0.9)
SF_MODELS = {"ets": "AutoETS", "theta": "AutoTheta", "arima": "AutoARIMA"}

FIRST_CALL = """
import time
t0 = time.perf_counter()
from statsforecast.models import AutoETS
t1 = time.perf_counter()
import numpy as np
y = 100 + 10 * np.sin(np.arange(120) * np.pi / 6) + np.arange(120) * 0.5
AutoETS(season_length=12).forecast(y=y, h=12)
t2 = time.perf_counter()
AutoETS(season_length=12).forecast(y=y + 1, h=12)
t3 = time.perf_counter()
import sys
print(f"{t1 - t0:.2f} {t2 - t1:.3f} {t3 - t2:.3f} {'numba' in sys.modules}")
"""


def first_call() -> None:
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True,
                         check=True).stdout.split()
    print("== statsforecast in a fresh interpreter")
    print(f"   import {out[0]} s, first AutoETS fit {out[1]} s, second {out[2]} s, "
          f"numba loaded: {out[3]}\n")


def evaluate(actual: pd.DataFrame, forecast: pd.DataFrame, train: pd.DataFrame,
             season: int = 12) -> dict[str, float]:
    """Per-series scaled pinball, coverage and MASE over the held-out rows, averaged."""
    joined = actual.merge(forecast, on=["unique_id", "ds"], how="left")
    scale = {uid: scales(g["y"].to_numpy(), season)[0] for uid, g in train.groupby("unique_id")}
    joined["scale"] = joined["unique_id"].map(scale)
    a = joined["y"].to_numpy()
    loss = np.mean([pinball(a, joined[c].to_numpy(), q)
                    for c, q in zip(("p10", "p50", "p90"), QUANTILES, strict=True)], axis=0)
    joined["sp"] = loss / joined["scale"]
    joined["ase"] = np.abs(a - joined["p50"].to_numpy()) / joined["scale"]
    joined["inside"] = (joined["p10"] <= a) & (a <= joined["p90"])
    per = joined.groupby("unique_id")[["sp", "inside", "ase"]].mean()
    return {"scaled_pinball": per["sp"].mean(), "coverage": per["inside"].mean(),
            "mase": per["ase"].mean()}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20


def sf_direct(df: pd.DataFrame, model: str, h: int) -> pd.DataFrame:
    """statsforecast as its users call it: one fit per series, its 80% interval as P10-P90."""
    from statsforecast import StatsForecast, models

    sf = StatsForecast(models=[getattr(models, SF_MODELS[model])(season_length=12)],
                       freq="MS", n_jobs=1)
    out = sf.forecast(df=df, h=h, level=[80])
    name = SF_MODELS[model]
    return out.rename(columns={name: "p50", f"{name}-lo-80": "p10", f"{name}-hi-80": "p90"})


def sf_same_work(df: pd.DataFrame, model: str, h: int) -> pd.DataFrame:
    """statsforecast doing what the engine does: a one-window backtest, then the forecast."""
    from statsforecast import StatsForecast, models

    sf = StatsForecast(models=[getattr(models, SF_MODELS[model])(season_length=12)],
                       freq="MS", n_jobs=1)
    sf.cross_validation(df=df, h=h, n_windows=1)
    return sf.forecast(df=df, h=h)


def airline() -> None:
    if not AIRLINE.exists():
        print(f"== Airline: {AIRLINE} is absent, skipped\n")
        return
    from statsforecast.models import SeasonalNaive

    raw = pd.read_csv(AIRLINE)
    panel = pd.DataFrame({"unique_id": "airline", "ds": pd.to_datetime(raw["Date"]),
                          "y": raw["Passengers"].astype(float)})
    train, test = panel.iloc[:-24], panel.iloc[-24:]
    print("== Airline passengers: last 24 months held out, h=24, P10/P50/P90")
    print(f"   {'method':44s} {'scaled pinball':>14s} {'P10-P90 cov':>11s} {'MASE':>6s} "
          f"{'seconds':>8s}")
    rows = []
    fit, secs = timed(lambda: fit_forecast(train, horizon=24, quantiles=QUANTILES,
                                           season_length=12))
    rows.append((f"sqlml AUTO (chose {fit.methods['method'].iloc[0]})", fit.forecasts, secs))
    snaive, secs = timed(lambda: fit_forecast(train, horizon=24, quantiles=QUANTILES,
                                              season_length=12, method="seasonal_naive"))
    rows.append(("sqlml seasonal_naive (conformal per step)", snaive.forecasts, secs))
    ref, secs = timed(lambda: SeasonalNaive(season_length=12).forecast(
        y=train["y"].to_numpy(), h=24, level=[80]))
    rows.append(("seasonal naive (statsforecast, 80% interval)", test[["unique_id", "ds"]].assign(
        p10=ref["lo-80"], p50=ref["mean"], p90=ref["hi-80"]), secs))
    for name, forecast, secs in rows:
        m = evaluate(test, forecast, train)
        print(f"   {name:44s} {m['scaled_pinball']:14.3f} {m['coverage']:11.1%} "
              f"{m['mase']:6.3f} {secs:8.2f}")
    print("   AUTO's trials: " + ", ".join(f"{t['candidate']} {t['score']:.3f}"
                                          for t in fit.trials if t["status"] in ("ok", "chosen")))
    print()


def synthetic_panel(n_series: int, length: int, seed: int = 0) -> pd.DataFrame:
    """Monthly series: level, trend, a yearly season of random phase and strength, noise; one in
    five intermittent (mostly zero, Poisson demand when not); all non-negative."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    ds = pd.date_range("2010-01-01", periods=length, freq="MS")
    ys = []
    for i in range(n_series):
        level = rng.lognormal(4, 1)
        if i % 5 == 4:
            y = np.where(rng.random(length) < 0.6, 0.0, rng.poisson(max(level / 10, 1), length))
        else:
            season = rng.uniform(0, 0.4) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 2 * np.pi))
            trend = rng.uniform(-0.002, 0.008) * t
            y = level * (1 + trend + season) + rng.normal(0, rng.uniform(0.03, 0.15) * level,
                                                           length)
        ys.append(np.maximum(y, 0.0))
    return pd.DataFrame({"unique_id": np.repeat([f"s{i:04d}" for i in range(n_series)], length),
                         "ds": np.tile(ds, n_series), "y": np.concatenate(ys)})


def panel(n_series: int, length: int, model_names: list[str], auto: bool,
          budget: float, memory_series: int) -> None:
    h = 12
    df = synthetic_panel(n_series, length + h)
    cut = df["ds"].max() - pd.DateOffset(months=h)
    train, test = df[df["ds"] <= cut], df[df["ds"] > cut]
    print(f"== Synthetic panel: {n_series:,} series x {length} months (1 in 5 intermittent), "
          f"h={h}, last {h} held out; n_jobs=1")
    small = train[train["unique_id"].isin(train["unique_id"].unique()[:3])]
    for model in model_names:      # warm-up: imports and first calls are not timed
        fit_forecast(small, horizon=h, quantiles=QUANTILES, method=model)
        sf_direct(small, model, h)
    part = train[train["unique_id"].isin(train["unique_id"].unique()[:memory_series])]
    print(f"   {'contender':46s} {'seconds':>8s} {'x sf':>6s} {'cov':>6s} {'sc.pinball':>10s} "
          f"{'peak MiB':>8s} ({memory_series} series)")
    for model in model_names:
        contenders = [
            (f"sqlml engine, method={model!r}", lambda d, m=model: fit_forecast(
                d, horizon=h, quantiles=QUANTILES, method=m).forecasts),
            (f"statsforecast {SF_MODELS[model]} forecast (a)", lambda d, m=model: sf_direct(
                d, m, h)),
            ("statsforecast cross_validation+forecast (b)", lambda d, m=model: sf_same_work(
                d, m, h)),
        ]
        results = [(name, *timed(lambda fn=fn: fn(train))) for name, fn in contenders]
        base = results[1][2]
        for (name, out, secs), (_, fn) in zip(results, contenders, strict=True):
            quality = evaluate(test, out, train) if "p10" in out.columns else None
            cov = f"{quality['coverage']:6.1%}" if quality else f"{'':6s}"
            sp = f"{quality['scaled_pinball']:10.3f}" if quality else f"{'':10s}"
            mem = peak_mib(lambda fn=fn: fn(part))
            print(f"   {name:46s} {secs:8.1f} {secs / base:6.2f} {cov} {sp} {mem:8.1f}")
    # The goal's bar: every method's held-out scaled pinball below seasonal naive's.
    naive, secs = timed(lambda: fit_forecast(train, horizon=h, quantiles=QUANTILES,
                                             method="seasonal_naive").forecasts)
    q = evaluate(test, naive, train)
    print(f"   {'sqlml engine, method=seasonal_naive (the bar)':46s} {secs:8.1f} {'':6s} "
          f"{q['coverage']:6.1%} {q['scaled_pinball']:10.3f}")
    if auto:
        fit, secs = timed(lambda: fit_forecast(train, horizon=h, quantiles=QUANTILES,
                                               max_runtime=budget))
        q = evaluate(test, fit.forecasts, train)
        print(f"   sqlml AUTO (max_runtime {budget:.0f} s): {secs:.1f} s, chose "
              f"{fit.methods['method'].iloc[0]}, held-out coverage {q['coverage']:.1%}, "
              f"scaled pinball {q['scaled_pinball']:.3f}")
        print("   trials: " + ", ".join(
            f"{t['candidate']} {t['score'] if t['score'] is None else round(t['score'], 3)} "
            f"({t['status']}, {t['seconds']:.0f} s)" for t in fit.trials))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"   process peak RSS: {rss:.0f} MiB\n")


def cpu_timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def auto_speed(n_series: int, length: int) -> None:
    """AUTO on a small panel against two baselines in the same process: sqlml's seasonal naive
    and statsforecast's own one-window cross_validation of AutoETS (n_jobs=1)."""
    from statsforecast import StatsForecast, models

    h = 12
    df = synthetic_panel(n_series, length)
    fit_forecast(df[df["unique_id"].isin(["s0000", "s0001"])], horizon=h)     # warm-up
    print(f"== AUTO speed: {n_series} series x {length} months, h={h} (wall and CPU seconds)")
    sf = StatsForecast(models=[models.AutoETS(season_length=12)], freq="MS", n_jobs=1)
    runs = [("sqlml seasonal_naive", lambda: fit_forecast(df, horizon=h,
                                                          method="seasonal_naive")),
            ("statsforecast AutoETS cross_validation", lambda: sf.cross_validation(
                df=df, h=h, n_windows=1)),
            ("sqlml AUTO", lambda: fit_forecast(df, horizon=h))]
    timings = {name: cpu_timed(fn) for name, fn in runs}
    sf_cpu = timings["statsforecast AutoETS cross_validation"][2]
    for name, (_, wall, cpu) in timings.items():
        print(f"   {name:40s} wall {wall:7.2f} s  CPU {cpu:7.2f} s  {cpu / sf_cpu:6.2f}x "
              f"statsforecast's CPU")
    fit = timings["sqlml AUTO"][0]
    print("   AUTO's trials: " + ", ".join(
        f"{t['candidate']} {t['status']} {t['seconds']:.1f} s" for t in fit.trials))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--models", default="theta,ets",
                        help="comma-separated: theta, ets, arima")
    parser.add_argument("--auto", action="store_true", help="also time AUTO on the panel")
    parser.add_argument("--budget", type=float, default=600.0, help="AUTO's max_runtime")
    parser.add_argument("--memory-series", type=int, default=100,
                        help="series in the traced-memory pass")
    parser.add_argument("--speed-series", type=int, default=100,
                        help="series of the AUTO speed panel (60 months each); 0 to skip")
    parser.add_argument("--no-race", action="store_true",
                        help="AUTO without racing (every candidate on every series), as before")
    args = parser.parse_args()
    first_call()
    airline()
    if args.no_race:
        select.RACE_MIN = 10 ** 9
    if args.speed_series:
        auto_speed(args.speed_series, 60)
    if args.series:
        panel(args.series, args.length, args.models.split(","), args.auto, args.budget,
              args.memory_series)


if __name__ == "__main__":
    main()
