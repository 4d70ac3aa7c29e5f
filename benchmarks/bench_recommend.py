"""Recommender benchmark on MovieLens ml-latest-small (../shared/data/ratings/ratings.csv).

Prints, in one run and side by side with the peers that are installed:
1. explicit ratings, 5-fold CV (shuffled, seed 42): RMSE, MAE, mean fit seconds per fold
   (peers: Surprise SVD and BaselineOnly, if ``surprise`` is importable);
2. implicit feedback, positives = ratings >= 4, leave-last-out by timestamp: HR@10, NDCG@10 and fit
   seconds (peers: ``implicit`` ALS in four configurations, and popularity);
3. top-10 for all users: ``recommend_all`` time over the numpy floor (factors product plus
   argpartition, seen items masked), best of several interleaved runs.

Run: ``python benchmarks/bench_recommend.py`` (about a minute; ``--quick`` runs 2 folds).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sqlml.recommend.evaluate import evaluate_explicit, evaluate_ranking, leave_last_out
from sqlml.recommend.fit import RecommenderModel, fit_recommender

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ratings" / "ratings.csv"
SEED = 42
SEEDS = (0, 1, 2, 3, 4)


def folds(n_rows, n_folds=5, seed=SEED):
    parts = np.array_split(np.random.default_rng(seed).permutation(n_rows), n_folds)
    for f in range(n_folds):
        yield np.concatenate([parts[j] for j in range(n_folds) if j != f]), parts[f]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def explicit_cv(df, n_folds):
    print(f"== Explicit ratings: {n_folds}-fold CV on {len(df):,} ratings (shuffled, seed {SEED})")
    try:
        import surprise
    except ImportError:
        surprise = None
        print("   (scikit-surprise not installed: peers skipped)")
    rows = {}
    for f, (tr, te) in enumerate(folds(len(df))):
        if f >= n_folds:
            break
        a, b = df.iloc[tr], df.iloc[te]
        model, secs = timed(lambda a=a: fit_recommender(a.userId, a.movieId, a.rating))
        m = evaluate_explicit(model, b.userId, b.movieId, b.rating)
        rows.setdefault("sqlml (Bayesian MF, Gibbs)", []).append((m["rmse"], m["mae"], secs))
        if surprise is None:
            continue
        reader = surprise.Reader(rating_scale=(0.5, 5.0))
        train = surprise.Dataset.load_from_df(a[["userId", "movieId", "rating"]],
                                              reader).build_full_trainset()
        test = list(b[["userId", "movieId", "rating"]].itertuples(index=False, name=None))
        for name, algo in (("Surprise SVD", surprise.SVD(random_state=SEED)),
                           ("Surprise BaselineOnly", surprise.BaselineOnly(verbose=False))):
            _, secs = timed(lambda algo=algo, train=train: algo.fit(train))
            pred = algo.test(test)
            rows.setdefault(name, []).append((surprise.accuracy.rmse(pred, verbose=False),
                                              surprise.accuracy.mae(pred, verbose=False), secs))
    print(f"   {'model':32s} {'RMSE':>7s} {'MAE':>7s} {'fit s/fold':>10s}")
    for name, vals in rows.items():
        rmse, mae, secs = np.mean(vals, axis=0)
        print(f"   {name:32s} {rmse:7.4f} {mae:7.4f} {secs:10.3f}")
    print("   target: RMSE <= 0.860 with fit <= 0.8 s/fold (Surprise SVD's time)\n")


def as_model(template, user_factors, item_factors):
    """A RecommenderModel with a peer's factors, so that every model is scored the same way."""
    arrays = template.to_arrays() | {"user_factors": np.asarray(user_factors, float),
                                     "item_factors": np.asarray(item_factors, float)}
    meta = template.to_metadata() | {"factors": int(np.shape(user_factors)[1])}
    return RecommenderModel.from_arrays(arrays, meta)


def implicit_ranking(df):
    pos = df[df.rating >= 4]
    held = leave_last_out(pos.userId, pos.movieId, pos.timestamp)
    tr, te = pos[~held], pos[held]
    print(f"== Implicit: positives = ratings >= 4 ({len(pos):,}), leave-last-out by timestamp "
          f"({held.sum()} users); seed {SEED}, then mean +- sd over seeds {SEEDS}")
    print(f"   {'model':40s} {'HR@10':>6s} {'NDCG@10':>8s} {'fit s':>6s}   "
          f"{'NDCG@10 over seeds':>18s} {'fit s':>6s}")

    def show(name, fit):
        """fit(seed) -> (model, seconds); the first seed is the headline."""
        runs = []
        for seed in (SEED, *SEEDS):
            model, secs = fit(seed)
            m = evaluate_ranking(model, te.userId, te.movieId, 10)
            runs.append((m["hit_rate@10"], m["ndcg@10"], secs))
        (hr, ndcg, secs), rest = runs[0], np.array(runs[1:])
        print(f"   {name:40s} {hr:6.3f} {ndcg:8.4f} {secs:6.3f}   {rest[:, 1].mean():9.4f} +- "
              f"{rest[:, 1].std():.4f} {np.median(rest[:, 2]):6.3f}")
        return model

    ours = show("sqlml WMF-ALS + recency (defaults)", lambda seed: timed(
        lambda: fit_recommender(tr.userId, tr.movieId, None, tr.timestamp, feedback="implicit",
                                random_state=seed)))
    show("sqlml WMF-ALS, no timestamps", lambda seed: timed(
        lambda: fit_recommender(tr.userId, tr.movieId, None, feedback="implicit",
                                random_state=seed)))
    pop = as_model(ours, np.ones((len(ours.user_ids), 1)), ours.popularity[:, None])
    show("popularity", lambda seed: (pop, 0.0))
    try:
        import implicit
        import scipy.sparse as sp
    except ImportError:
        print("   (implicit not installed: peer skipped)\n")
        return ours
    # the same users, items and weights as the model above, in its dense index order
    counts = np.diff(ours.seen_indptr)
    matrix = sp.csr_matrix((ours.seen_values, (np.repeat(np.arange(len(counts)), counts),
                                               ours.seen_items)),
                           shape=(len(ours.user_ids), len(ours.item_ids)))

    def peer(factors, alpha, reg):
        def fit(seed):
            als = implicit.cpu.als.AlternatingLeastSquares(
                factors=factors, regularization=reg, alpha=alpha, iterations=15,
                random_state=seed)
            with threadpool_limits(1, user_api="blas"):  # as implicit itself asks
                _, secs = timed(lambda: als.fit(matrix, show_progress=False))
            return as_model(ours, als.user_factors, als.item_factors), secs
        return fit

    for factors, alpha, reg in ((32, 10.0, 1.0), (64, 10.0, 1.0), (32, 10.0, 10.0),
                                (64, 1.0, 1.0)):
        show(f"implicit ALS f={factors} alpha={alpha:g} reg={reg:g} it=15",
             peer(factors, alpha, reg))
    print("   target: NDCG@10 >= 0.045 with fit time no worse than implicit ALS\n")
    return ours


def top_all_speed(models, repeats=7):
    print("== Top-10 for all users: recommend_all vs the numpy floor (best of "
          f"{repeats} interleaved runs)")
    for name, model in models:
        counts = np.diff(model.seen_indptr)
        rows, cols = np.repeat(np.arange(len(counts)), counts), model.seen_items
        uf, vf = model.user_factors, model.item_factors

        def floor(uf=uf, vf=vf, rows=rows, cols=cols):
            s = uf @ vf.T
            s[rows, cols] = -np.inf
            return np.argpartition(-s, 9, axis=1)[:, :10]

        def floor_one_blas_thread():
            with threadpool_limits(1, user_api="blas"):
                return floor()

        best = {"floor": np.inf, "with reasons": np.inf, "no reasons": np.inf}
        for _ in range(repeats):
            # the floor is the faster of default BLAS threads and one thread (as sqlml uses)
            for key, fn in (("floor", floor), ("floor", floor_one_blas_thread),
                            ("with reasons", lambda m=model: m.recommend_all(10)),
                            ("no reasons", lambda m=model: m.recommend_all(10, reasons=False))):
                best[key] = min(best[key], timed(fn)[1])
        print(f"   {name:10s} floor {best['floor']:.4f} s | recommend_all "
              f"{best['with reasons']:.4f} s = {best['with reasons'] / best['floor']:.2f}x with "
              f"reasons, {best['no reasons'] / best['floor']:.2f}x without")
    print("   target: <= 2x the floor")


def main():
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (the benchmark needs ../shared/data beside the repo)")
        return
    df = pd.read_csv(DATA)
    explicit_cv(df, 2 if "--quick" in sys.argv else 5)
    implicit_model = implicit_ranking(df)
    explicit_model = fit_recommender(df.userId, df.movieId, df.rating)
    top_all_speed((("explicit", explicit_model), ("implicit", implicit_model)))


if __name__ == "__main__":
    main()
