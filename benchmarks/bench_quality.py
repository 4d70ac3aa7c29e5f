"""AUTO against a data scientist's first models, on the same outer splits (issue 14, part 6).

For each data set, repeated stratified outer folds (3 folds x 2 repeats, seeded; ``--quick``: 3
folds x 1 repeat on at most 1,500 rows). On each outer fold:

- sqlml AUTO is trained through SQL, ``ml_create_model`` on a DuckDB table of the outer-train rows
  with default settings except ``max_runtime`` (``--max-runtime``, 30 s by default), and the
  outer-test rows are scored in SQL by the generated ``predict_<name>_probabilities`` function
  (one untimed AUTO run on 200 rows first, so that first-call imports are not charged to a fold);
- the hand-built baselines are fitted on the same outer-train rows: logistic regression (median
  imputation + scaling, one-hot categoricals), HistGradientBoosting with defaults (categoricals
  ordinal-encoded with native categorical support), and, for text, TF-IDF word 1-2 grams +
  logistic regression.

The metric is ROC AUC for binary targets and macro one-vs-rest ROC AUC for multiclass (wine is
kept multiclass, 3 cultivars), computed with scikit-learn on the outer-test rows. Per data set
the table shows AUTO's mean, the best baseline (the best mean over the same folds, which is
chosen on the test folds and so favours the baselines), AUTO minus it, the outer-fold standard
deviation of the paired difference, whether the difference is beyond noise (|mean| > one
standard error, std / sqrt(folds)) and the mean seconds to train. Recommendation rows come from
``benchmarks/quality_rec.py`` (``run(<../shared/data>, quick)``) when it exists; until then they
are skipped with a printed reason.

    python benchmarks/bench_quality.py [--quick] [--datasets churn,sms,synthetic,breast_cancer,wine]
                                       [--max-runtime 30] [--folds 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlml

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUICK_ROWS = 1500


@dataclass
class Dataset:
    """One benchmark table: features, a string target, the positive class (None: multiclass)."""

    name: str
    frame: pd.DataFrame
    target: str
    positive: str | None
    text: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return "ROC AUC" if self.positive is not None else "macro OvR ROC AUC"


# --- data sets --------------------------------------------------------------------------------

def load_churn() -> Dataset | str:
    path = DATA / "churn" / "mlc_churn.csv"
    if not path.exists():
        return f"{path} is absent (../shared/data not mounted)"
    frame = pd.read_csv(path).drop(columns=["rownames"])
    return Dataset("churn", frame, "churn", "yes")


def load_sms() -> Dataset | str:
    path = DATA / "text" / "SMSSpamCollection"
    if not path.exists():
        return f"{path} is absent (../shared/data not mounted)"
    rows = [line.rstrip("\n").split("\t", 1) for line in path.open(encoding="utf-8")]
    frame = pd.DataFrame(rows, columns=["label", "text"])
    return Dataset("sms", frame, "label", "spam", text=["text"])


def make_synthetic(n: int = 3000, seed: int = 0) -> Dataset:
    """Known structure: an interaction, a threshold, a 30-level categorical effect, NULLs, noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    levels = np.array([f"lvl_{i:02d}" for i in range(30)])
    effect = rng.normal(scale=1.0, size=30)
    cat = rng.integers(0, 30, size=n)
    flag = rng.random(n) < 0.3
    logit = (1.2 * x[:, 0] * x[:, 1] + 1.0 * (x[:, 2] > 0.5) - 0.8 * x[:, 3]
             + effect[cat] + 0.7 * flag - 0.3)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])  # x4, x5: pure noise
    frame.loc[rng.random(n) < 0.05, "x3"] = np.nan
    frame["segment"] = levels[cat]
    frame["plan"] = np.where(flag, "premium", "basic")
    frame["y"] = np.where(y, "yes", "no")
    return Dataset("synthetic", frame, "y", "yes")


def load_sklearn(kind: str) -> Dataset:
    from sklearn.datasets import load_breast_cancer, load_wine

    bunch = (load_breast_cancer if kind == "breast_cancer" else load_wine)(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" ", "_").replace("/", "_"))
    frame["label"] = np.asarray(bunch.target_names)[frame.pop("target").to_numpy()]
    positive = "malignant" if kind == "breast_cancer" else None
    return Dataset(kind, frame, "label", positive)


LOADERS: dict[str, Callable[[], Dataset | str]] = {
    "churn": load_churn, "sms": load_sms, "synthetic": make_synthetic,
    "breast_cancer": lambda: load_sklearn("breast_cancer"), "wine": lambda: load_sklearn("wine"),
}


def subsample(ds: Dataset, rows: int, seed: int = 0) -> Dataset:
    if len(ds.frame) <= rows:
        return ds
    keep, _ = train_test_split(ds.frame, train_size=rows, stratify=ds.frame[ds.target],
                               random_state=seed)
    return Dataset(ds.name, keep.reset_index(drop=True), ds.target, ds.positive, ds.text)


# --- splits, metric, paired differences (tested in tests/test_bench_quality.py) ---------------

def outer_splits(y, folds: int, repeats: int, seed: int = 0) -> Iterator[tuple]:
    """Repeated stratified outer folds: the same (train, test) index pairs for every model."""
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    yield from cv.split(np.zeros(len(y)), np.asarray(y))


def score(y_true, proba: np.ndarray, classes: list[str], positive: str | None) -> float:
    """ROC AUC of P(positive) for binary; macro one-vs-rest ROC AUC over ``classes`` otherwise."""
    y_true = np.asarray(y_true)
    if positive is not None:
        return float(roc_auc_score(y_true == positive, proba[:, classes.index(positive)]))
    return float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro",
                               labels=classes))


def paired_difference(a, b) -> tuple[float, float, float]:
    """Mean, sample std (ddof=1) and standard error of the fold-by-fold difference a - b."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    std = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
    return float(np.mean(d)), std, std / math.sqrt(len(d))


def beyond_noise(mean: float, stderr: float) -> bool:
    return bool(abs(mean) > stderr) if not math.isnan(stderr) else False


# --- the models -------------------------------------------------------------------------------

def baselines(ds: Dataset) -> dict[str, Callable[[], object]]:
    """What a competent data scientist writes in ten minutes, by kind of data set."""
    if ds.text:
        return {"tfidf_1-2gram+logistic": lambda: make_pipeline(
            ColumnTransformer([("t", TfidfVectorizer(ngram_range=(1, 2)), ds.text[0])]),
            LogisticRegression(max_iter=2000))}
    X = ds.frame.drop(columns=[ds.target])
    cat = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    num = [c for c in X.columns if c not in cat]

    def logistic():
        return make_pipeline(ColumnTransformer([
            ("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            ("c", OneHotEncoder(handle_unknown="ignore"), cat)]),
            LogisticRegression(max_iter=2000))

    def hgb():
        ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
        return make_pipeline(
            ColumnTransformer([("c", ordinal, cat), ("n", "passthrough", num)]),
            HistGradientBoostingClassifier(
                categorical_features=[i < len(cat) for i in range(len(cat) + len(num))],
                random_state=0))
    return {"logistic+onehot": logistic, "hist_gradient_boosting": hgb}


def fit_baseline(make, train: pd.DataFrame, test: pd.DataFrame, ds: Dataset, classes):
    model = make()
    t0 = time.perf_counter()
    model.fit(train.drop(columns=[ds.target]), train[ds.target])
    seconds = time.perf_counter() - t0
    proba = model.predict_proba(test.drop(columns=[ds.target]))
    order = [list(model.classes_).index(c) for c in classes]
    return score(test[ds.target], proba[:, order], classes, ds.positive), seconds


def fit_auto(con, train: pd.DataFrame, test: pd.DataFrame, ds: Dataset, classes, k: int,
             max_runtime: float):
    """Train AUTO through SQL on the outer-train rows, score the outer-test rows in SQL."""
    name = f"q_{ds.name}_{k}"
    con.register("outer_train_df", train)
    con.execute("CREATE OR REPLACE TABLE outer_train AS FROM outer_train_df")
    con.register("outer_test_df", test.drop(columns=[ds.target]).assign(bench_rid=range(len(test))))
    con.execute("CREATE OR REPLACE TABLE outer_test AS FROM outer_test_df")
    t0 = time.perf_counter()
    summary = con.execute(f"SELECT ml_create_model('{name}', 'outer_train', target := "
                          f"'{ds.target}', settings := {{max_runtime: {max_runtime}}})").fetchone()
    seconds = time.perf_counter() - t0
    rows = con.execute(f"SELECT predict_{name}_probabilities(t) FROM outer_test t "
                       f"ORDER BY bench_rid").fetchall()
    by_label = [dict(zip(r[0]["labels"], r[0]["probabilities"], strict=True)) for r in rows]
    proba = np.array([[p[c] for c in classes] for p in by_label])
    con.execute(f"SELECT ml_drop_model('{name}')").fetchall()
    chosen = summary[0].get("model_type", "?") if isinstance(summary[0], dict) else "?"
    return score(test[ds.target], proba, classes, ds.positive), seconds, chosen


def warm_up(con) -> None:
    """One untimed AUTO run on 200 rows: first-call imports are not charged to the first fold."""
    ds = make_synthetic(n=200, seed=1)
    fit_auto(con, ds.frame, ds.frame, ds, ["no", "yes"], 0, 5)


# --- one data set -----------------------------------------------------------------------------

def run_dataset(con, ds: Dataset, args) -> dict:
    classes = sorted(ds.frame[ds.target].unique())
    makers = baselines(ds)
    scores: dict[str, list[float]] = {"AUTO": [], **{b: [] for b in makers}}
    seconds: dict[str, list[float]] = {b: [] for b in scores}
    chosen: list[str] = []
    for k, (tr, te) in enumerate(outer_splits(ds.frame[ds.target], args.folds, args.repeats)):
        train, test = ds.frame.iloc[tr], ds.frame.iloc[te]
        s, sec, kind = fit_auto(con, train, test, ds, classes, k, args.max_runtime)
        scores["AUTO"].append(s)
        seconds["AUTO"].append(sec)
        chosen.append(kind)
        for b, make in makers.items():
            s, sec = fit_baseline(make, train, test, ds, classes)
            scores[b].append(s)
            seconds[b].append(sec)
        print(f"  {ds.name} fold {k}: " + ", ".join(f"{m} {v[-1]:.4f}" for m, v in scores.items())
              + f" (AUTO chose {kind}, {seconds['AUTO'][-1]:.1f} s)", flush=True)
    best = max(makers, key=lambda b: float(np.mean(scores[b])))
    mean, std, stderr = paired_difference(scores["AUTO"], scores[best])
    return {"dataset": ds.name, "metric": ds.metric, "folds": len(scores["AUTO"]),
            "auto": float(np.mean(scores["AUTO"])), "best": best,
            "best_mean": float(np.mean(scores[best])), "diff": mean, "diff_std": std,
            "stderr": stderr, "auto_seconds": float(np.mean(seconds["AUTO"])),
            "best_seconds": float(np.mean(seconds[best])), "chosen": chosen,
            "all": {m: float(np.mean(v)) for m, v in scores.items()}}


def rec_rows(quick: bool) -> list[dict]:
    """Recommendation rows from benchmarks/quality_rec.py (auto-rec's), or none with a reason."""
    try:
        from benchmarks.quality_rec import run  # type: ignore[import-not-found]
    except ImportError as exc:
        print(f"recommendation rows skipped: benchmarks/quality_rec.py is not importable ({exc})")
        return []
    out = []
    for r in run(DATA, quick):
        best = max(r["baselines"], key=lambda b: r["baselines"][b][0])
        b_mean, b_std = r["baselines"][best]
        # Without paired fold scores, the noise is the two stds combined (unpaired), unless the
        # row gives the paired difference's std and standard error itself.
        std = r.get("diff_std", math.sqrt(r["auto_std"] ** 2 + b_std ** 2))
        out.append({"dataset": r["dataset"], "metric": r["metric"], "folds": r.get("folds"),
                    "auto": r["auto"], "best": best, "best_mean": b_mean,
                    "diff": r["auto"] - b_mean, "diff_std": std, "stderr": r.get("stderr", std),
                    "auto_seconds": r["auto_seconds"], "best_seconds": math.nan})
    return out


def report(rows: list[dict]) -> bool:
    print(f"\n{'data set':<14}{'metric':<19}{'AUTO':>7}  {'best baseline':<24}{'mean':>7}"
          f"{'AUTO-best':>10}{'std(d)':>8}{'noise?':>9}{'AUTO s':>8}{'best s':>8}")
    for r in rows:
        noise = "beyond" if beyond_noise(r["diff"], r["stderr"]) else "within"
        print(f"{r['dataset']:<14}{r['metric']:<19}{r['auto']:>7.4f}  {r['best']:<24}"
              f"{r['best_mean']:>7.4f}{r['diff']:>+10.4f}{r['diff_std']:>8.4f}{noise:>9}"
              f"{r['auto_seconds']:>8.1f}{r['best_seconds']:>8.2f}")
    if not rows:
        print("goal NOT MET: no data set was run")
        return False
    at_or_above = all(r["diff"] >= 0 for r in rows)
    wins = sum(r["diff"] > 0 and beyond_noise(r["diff"], r["stderr"]) for r in rows)
    met = at_or_above and wins * 2 >= len(rows)
    print(f"goal (AUTO >= best baseline on every data set, beyond noise on at least half): "
          f"{'MET' if met else 'NOT MET'} - at or above on "
          f"{sum(r['diff'] >= 0 for r in rows)}/{len(rows)}, beyond noise on {wins}/{len(rows)}")
    return met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat, at most 1,500 rows")
    ap.add_argument("--datasets", default=",".join(LOADERS) + ",recommend")
    ap.add_argument("--max-runtime", type=float, default=30.0, help="AUTO's max_runtime (s)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 1
    wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(wanted) - set(LOADERS) - {"recommend"})
    if unknown:
        ap.error(f"--datasets: unknown {unknown}; choose from {[*LOADERS, 'recommend']}")
    con = sqlml.connect()
    warm_up(con)
    rows = []
    for name in wanted:
        if name == "recommend":
            continue
        ds = LOADERS[name]()
        if isinstance(ds, str):
            print(f"{name}: skipped, {ds}")
            continue
        ds = subsample(ds, QUICK_ROWS) if args.quick else ds
        print(f"{name}: {len(ds.frame)} rows, {ds.metric}, {args.folds} folds x "
              f"{args.repeats} repeats", flush=True)
        rows.append(run_dataset(con, ds, args))
    if "recommend" in wanted:
        rows += rec_rows(args.quick)
    return 0 if report(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
