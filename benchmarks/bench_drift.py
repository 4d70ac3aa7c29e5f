"""Drift checks (sql/drift.sql): the verdicts on unshifted data and on data with a known shift,
for the demo churn model (sqlml.datasets.make_customers) and, when ../shared/data/churn/
mlc_churn.csv exists, for a model trained on that file; the time of FROM ml_drift over 100,000
rows against numpy/scipy computing the same PSI and KS in this process; and the size and
generation time of the model report with a drift section.

    .venv/bin/python benchmarks/bench_drift.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from scipy.stats import ks_2samp

import sqlml
from sqlml import datasets

CHURN_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "churn" / "mlc_churn.csv"
BIG_ROWS = 100_000


def _verdicts(con, model: str, queries: dict[str, str]) -> None:
    """One line per feature: psi, ks and verdict for each query, side by side."""
    got = {label: {r["feature"]: r for r in sqlml.drift(con, model, q)}
           for label, q in queries.items()}
    head = "".join(f" | {label:^28s}" for label in queries)
    print(f"{'feature':30s}{head}")
    print(f"{'':30s}" + " | {:>8s} {:>8s} {:>10s}".format("psi", "ks", "verdict") * len(queries))
    for feature in next(iter(got.values())):
        cells = ""
        for label in queries:
            r = got[label][feature]
            psi = "" if r["psi"] is None else f"{r['psi']:.4f}"
            ks = "" if r["ks"] is None else f"{r['ks']:.4f}"
            cells += f" | {psi:>8s} {ks:>8s} {r['verdict'] or '-':>10s}"
        print(f"{feature:30s}{cells}")
    for feature, r in next(iter(got.values())).items():
        if r["hit_rate"] is not None:
            rates = [(lab, got[lab][feature]) for lab in queries]
            print(f"  {feature}: vocabulary hit rate " + ", ".join(
                f"{lab} {x['hit_rate']:.3f} ({x['hit_rate_change']:+.3f})" for lab, x in rates)
                + f" against {r['training_hit_rate']:.3f} at training")
    for label in queries:
        counts = {v: sum(r["verdict"] == v for r in got[label].values())
                  for v in ("stable", "shifted", "broken")}
        print(f"  {label}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    print()


def _reverse_words(text):
    return text if not isinstance(text, str) else " ".join(w[::-1] for w in text.split(" "))


def demo(con) -> None:
    train = datasets.make_customers(5000)  # noqa: F841 (read by DuckDB)
    month = datasets.make_customers(5000, seed=7)  # noqa: F841
    shifted = datasets.make_customers(5000, seed=7)
    shifted["tenure_months"] += 24
    shifted.loc[shifted.index % 7 == 0, "plan"] = "platinum"
    third = shifted.index % 3 == 0
    shifted.loc[third, "support_notes"] = shifted.loc[third, "support_notes"].map(_reverse_words)
    for name in ("train", "month", "shifted"):
        con.execute(f"CREATE OR REPLACE TABLE {name} AS FROM {name}")
    con.execute("SELECT ml_create_model('customer_churn', 'train', target := 'churned', "
                "model_type := 'logistic', function := 'predict_churn')")
    print("Demo churn model (make_customers(5000), logistic): an unshifted month "
          "(make_customers seed 7) and the same month shifted (tenure + 24 months, plan "
          "'platinum' in 1 row of 7, support_notes spelled backwards in 1 row of 3)")
    _verdicts(con, "customer_churn", {"unshifted": "FROM month", "shifted": "FROM shifted"})


def real_churn(con) -> None:
    if not CHURN_CSV.exists():
        print(f"mlc_churn: {CHURN_CSV} is absent; skipped.\n")
        return
    con.execute(f"CREATE OR REPLACE TABLE mlc AS FROM read_csv('{CHURN_CSV}')")
    con.execute("CREATE OR REPLACE TABLE mlc_train AS SELECT * EXCLUDE (rownames) FROM mlc "
                "WHERE rownames % 10 < 7")
    con.execute("CREATE OR REPLACE TABLE mlc_later AS SELECT * EXCLUDE (rownames) FROM mlc "
                "WHERE rownames % 10 >= 7")
    con.execute("CREATE OR REPLACE TABLE mlc_shifted AS SELECT * REPLACE ("
                "total_day_minutes * 1.3 AS total_day_minutes, "
                "number_customer_service_calls + 2 AS number_customer_service_calls) "
                "FROM mlc_later")
    con.execute("SELECT ml_create_model('mlc_churn', 'mlc_train', target := 'churn', "
                "model_type := 'logistic')")
    rows = con.execute("SELECT count(*) FROM mlc_train").fetchall()[0][0]
    print(f"mlc_churn.csv ({rows:,} training rows, logistic): the other 30% of rows, and those "
          f"with total_day_minutes x 1.3 and number_customer_service_calls + 2")
    _verdicts(con, "mlc_churn", {"unshifted": "FROM mlc_later", "shifted": "FROM mlc_shifted"})


def _numpy_drift(profile: list[tuple], train: dict, new: dict) -> dict[str, tuple]:
    """The same PSI (over the stored training bins or categories, shares floored at 0.0001)
    and the exact two-sample KS (scipy, on the raw training rows), per feature."""
    out = {}
    for feature, kind, upper, share, cats, cat_share, other in profile:
        if kind == "category":
            values = new[feature][new[feature] != None]  # noqa: E711 (an object array)
            idx = {c: i for i, c in enumerate(cats)}
            counts = np.bincount([idx.get(str(v), len(cats)) for v in values],
                                 minlength=len(cats) + 1)
            expected = np.r_[cat_share, other]
            ks = None
        else:
            x = new[feature]
            if kind == "text_length":
                x = np.array([np.nan if s is None else len(s) for s in x], dtype=float)
                t = np.array([np.nan if s is None else len(s) for s in train[feature]],
                             dtype=float)
            else:
                x, t = x.astype(float), train[feature].astype(float)
            x, t = x[~np.isnan(x)], t[~np.isnan(t)]
            counts = np.bincount(np.searchsorted(np.asarray(upper), x, side="left"),
                                 minlength=len(upper))
            expected = np.asarray(share)
            ks = ks_2samp(t, x).statistic
        a = np.maximum(counts / max(counts.sum(), 1), 1e-4)
        e = np.maximum(expected, 1e-4)
        out[feature] = (float(np.sum((a - e) * np.log(a / e))), ks)
    return out


def _column(values) -> np.ndarray:
    """A fetched column with NULL as None (text) or NaN (numbers)."""
    masked = np.ma.asarray(values)
    if masked.dtype == object:
        return np.where(np.ma.getmaskarray(masked), None, np.ma.getdata(masked))
    return np.ma.filled(masked.astype(float), np.nan)


def speed(con, repeats: int = 3) -> None:
    big = datasets.make_customers(BIG_ROWS, seed=11)  # noqa: F841
    con.execute("CREATE OR REPLACE TABLE big AS FROM big")
    profile = con.execute(
        "SELECT feature, kind, bin_upper, bin_share, categories, category_share, other_share "
        "FROM sqlml.training_profiles WHERE name = 'customer_churn' AND kind NOT IN "
        "('score', 'text_vocabulary') ORDER BY feature").fetchall()
    features = [p[0] for p in profile]
    # Categories as ml_drift reads them: DuckDB's text of the value ('true', not True).
    cols = ", ".join(f'"{f}"::VARCHAR AS "{f}"' if k == "category" else f'"{f}"'
                     for f, k, *_ in profile)
    sql_times, np_times = [], []
    con.execute("FROM ml_drift('customer_churn', 'FROM big')").fetchall()   # warm
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = con.execute("FROM ml_drift('customer_churn', 'FROM big')").fetchall()
        sql_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    train = con.execute(f"SELECT {cols} FROM train").fetchnumpy()
    new = con.execute(f"SELECT {cols} FROM big").fetchnumpy()
    fetch = time.perf_counter() - t0
    train = {k: _column(v) for k, v in train.items()}
    new = {k: _column(v) for k, v in new.items()}
    for _ in range(repeats):
        t0 = time.perf_counter()
        reference = _numpy_drift(profile, train, new)
        np_times.append(time.perf_counter() - t0)
    ours = {r[0]: r[3] for r in rows}
    gap = max(abs(ours[f] - reference[f][0]) for f in features)
    s, n = statistics.median(sql_times), statistics.median(np_times)
    print(f"FROM ml_drift over {BIG_ROWS:,} rows ({len(features)} features, pure SQL): "
          f"{s:.3f} s (median of {repeats})")
    print(f"numpy/scipy, same PSI + exact KS, data already in numpy: {n:.3f} s "
          f"(+ {fetch:.3f} s to fetch the columns from DuckDB)")
    print(f"ratio ml_drift / numpy: {s / n:.2f}x (ml_drift / numpy incl. fetch: "
          f"{s / (n + fetch):.2f}x); largest PSI difference {gap:.2e}\n")


def report(con, repeats: int = 3) -> None:
    sqlml.report(con, "customer_churn")   # the first report loads matplotlib: not counted
    print(f"{'report':34s} {'size KB':>8s} {'seconds (median of ' + str(repeats) + ')':>24s}")
    for label, drift in (("customer_churn", None), ("customer_churn + drift (5,000 rows)",
                                                    "FROM shifted")):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            html = sqlml.report(con, "customer_churn", drift=drift)
            times.append(time.perf_counter() - t0)
        print(f"{label:34s} {len(html.encode()) / 1024:8.0f} {statistics.median(times):24.2f}")


def main() -> None:
    con = sqlml.connect()
    demo(con)
    real_churn(con)
    speed(con)
    report(con)


if __name__ == "__main__":
    main()
