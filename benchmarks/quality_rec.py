"""Recommendation rows of the quality benchmark (issue 14, part 4): AUTO against hand-built peers.

On MovieLens ml-latest-small (``<data_dir>/ratings/ratings.csv``), with the same outer splits for
AUTO and every baseline, repeated over seeds for a standard deviation:

- implicit feedback without timestamps: every rating is one interaction (weight 1, the stars
  ignored); each user's held-out item is one drawn at random (``leave_last_out`` without
  timestamps, seeded); metric NDCG@10 over the top-10 unseen items, all scored by
  ``sqlml.recommend.evaluate.evaluate_ranking``. Baselines: popularity, and the ``implicit``
  library's ALS tuned over a grid (factors, regularization, alpha, BM25 weighting or none) on an
  inner leave-one-out split of the training part, then refitted on the whole training part;
- explicit ratings: a seeded random 80/20 split; metric RMSE (lower is better). Baseline:
  Surprise SVD with its defaults.

AUTO is ``ml_create_model(..., problem_type := 'recommendation')`` with only the column and
feedback settings: it picks its own candidates (sqlml/recommend/auto.py), timed end to end.

``run(data_dir, quick)`` returns one row per data set for benchmarks/bench_quality.py:
``{dataset, metric, auto, auto_std, auto_seconds, baselines: {name: (mean, std)}}``, plus
``seeds``, ``best_baseline``, and ``gain`` / ``gain_std`` (AUTO minus the best baseline, paired
per split; positive means AUTO is better, for RMSE too).

    python -m benchmarks.quality_rec [--quick]      # prints the table
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

import sqlml
from sqlml.recommend.evaluate import evaluate_explicit, evaluate_ranking, leave_last_out
from sqlml.recommend.fit import RecommenderModel, fit_recommender

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
K = 10
CHOSEN: list[str] = []   # what AUTO chose, per run, in order (printed with the table)
# implicit's ALS: 15 iterations (its default); the grid spans its documented ranges.
ALS_GRID = {"factors": (64, 128), "regularization": (0.05, 1.0), "alpha": (1.0, 10.0),
            "bm25": (False, True)}
QUICK_GRID = {"factors": (64, 128), "regularization": (0.05,), "alpha": (1.0, 10.0),
              "bm25": (False, True)}


def _as_model(template: RecommenderModel, user_factors, item_factors) -> RecommenderModel:
    """A factor model with a peer's factors and the template's ids and seen items, so that every
    model is scored by the same code."""
    arrays = template.to_arrays() | {"user_factors": np.asarray(user_factors, float),
                                     "item_factors": np.asarray(item_factors, float)}
    meta = template.to_metadata() | {"factors": int(np.shape(user_factors)[1])}
    return RecommenderModel.from_arrays(arrays, meta)


def _matrix(template: RecommenderModel) -> sp.csr_matrix:
    counts = np.diff(template.seen_indptr)
    return sp.csr_matrix((template.seen_values, template.seen_items, template.seen_indptr),
                         shape=(len(counts), len(template.item_ids)))


def _implicit_als(template: RecommenderModel, params: dict, seed: int) -> RecommenderModel:
    import implicit
    from implicit.nearest_neighbours import bm25_weight

    matrix = _matrix(template)
    if params["bm25"]:
        matrix = bm25_weight(matrix, K1=100, B=0.8).tocsr()
    als = implicit.cpu.als.AlternatingLeastSquares(
        factors=params["factors"], regularization=params["regularization"],
        alpha=params["alpha"], iterations=15, random_state=seed)
    with threadpool_limits(1, user_api="blas"):   # as implicit itself asks
        als.fit(matrix, show_progress=False)
    return _as_model(template, als.user_factors, als.item_factors)


def _template(df: pd.DataFrame) -> RecommenderModel:
    """A cheap implicit model of these rows: its ids and seen items carry the baselines."""
    return fit_recommender(df.userId, df.movieId, feedback="implicit", factors=2, iterations=1)


def _tuned_implicit(train: pd.DataFrame, test: pd.DataFrame, seed: int, grid: dict) -> float:
    """implicit ALS: the grid point best on an inner split of ``train``, refitted on all of it."""
    held = leave_last_out(train.userId, train.movieId, random_state=seed)
    inner_train, inner_test = train[~held], train[held]
    inner = _template(inner_train)
    best, best_score = None, -1.0
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        model = _implicit_als(inner, params, seed)
        score = evaluate_ranking(model, inner_test.userId, inner_test.movieId, K)[f"ndcg@{K}"]
        if score > best_score:
            best, best_score = params, score
    assert best is not None
    model = _implicit_als(_template(train), best, seed)
    return evaluate_ranking(model, test.userId, test.movieId, K)[f"ndcg@{K}"]


def _auto(con, train: pd.DataFrame, settings: str) -> tuple[Any, float]:
    con.register("bench_frame", train)
    con.execute("CREATE OR REPLACE TABLE bench_train AS FROM bench_frame")
    con.unregister("bench_frame")
    started = time.perf_counter()
    con.execute("SELECT ml_create_model('bench_rec', 'FROM bench_train', problem_type := "
                f"'recommendation', settings := {settings})").fetchall()
    seconds = time.perf_counter() - started
    model = sqlml.load_model(con, "bench_rec").model
    CHOSEN.append(f"{model.algorithm} " + ", ".join(
        f"{k}={model.params[k]}" for k in ("factors", "regularization", "alpha", "weighting")
        if model.params.get(k) is not None and not (model.algorithm == "ease" and k == "factors")))
    return model, seconds


def _implicit_row(df: pd.DataFrame, seeds: tuple[int, ...], grid: dict) -> dict:
    runs: dict[str, list[float]] = {"auto": [], "seconds": [], "implicit ALS (tuned)": [],
                                    "popularity": []}
    con = sqlml.connect()
    for seed in seeds:
        held = leave_last_out(df.userId, df.movieId, random_state=seed)
        train, test = df[~held], df[held]
        model, seconds = _auto(con, train, (
            f"{{user_col: 'userId', item_col: 'movieId', feedback: 'implicit', "
            f"random_state: {seed}}}"))
        runs["auto"].append(evaluate_ranking(model, test.userId, test.movieId, K)[f"ndcg@{K}"])
        runs["seconds"].append(seconds)
        runs["implicit ALS (tuned)"].append(_tuned_implicit(train, test, seed, grid))
        template = _template(train)
        pop = _as_model(template, np.ones((len(template.user_ids), 1)),
                        template.popularity[:, None])
        runs["popularity"].append(evaluate_ranking(pop, test.userId, test.movieId,
                                                   K)[f"ndcg@{K}"])
    con.close()
    return _row("ml-latest-small implicit (leave-one-out, no timestamps)", f"NDCG@{K}", runs)


def _explicit_row(df: pd.DataFrame, seeds: tuple[int, ...]) -> dict:
    import surprise

    runs: dict[str, list[float]] = {"auto": [], "seconds": [], "Surprise SVD": []}
    con = sqlml.connect()
    for seed in seeds:
        test_mask = np.random.default_rng(seed).random(len(df)) < 0.2
        train, test = df[~test_mask], df[test_mask]
        model, seconds = _auto(con, train, "{user_col: 'userId', item_col: 'movieId', "
                                           f"rating_col: 'rating', random_state: {seed}}}")
        runs["auto"].append(evaluate_explicit(model, test.userId, test.movieId,
                                              test.rating)["rmse"])
        runs["seconds"].append(seconds)
        reader = surprise.Reader(rating_scale=(0.5, 5.0))
        trainset = surprise.Dataset.load_from_df(train[["userId", "movieId", "rating"]],
                                                 reader).build_full_trainset()
        svd = surprise.SVD(random_state=seed)
        svd.fit(trainset)
        pred = svd.test(list(test[["userId", "movieId", "rating"]].itertuples(index=False,
                                                                                name=None)))
        runs["Surprise SVD"].append(surprise.accuracy.rmse(pred, verbose=False))
    con.close()
    return _row("ml-latest-small explicit (random 80/20)", "RMSE (lower is better)", runs)


def _row(dataset: str, metric: str, runs: dict[str, list[float]]) -> dict:
    """The row; ``gain``/``gain_std``: AUTO minus the best baseline per seed (positive = AUTO
    better, also for RMSE), its mean and standard deviation over the paired splits."""
    names = [k for k in runs if k not in ("auto", "seconds")]
    base = {k: (float(np.mean(runs[k])), float(np.std(runs[k]))) for k in names}
    sign = -1.0 if metric.startswith("RMSE") else 1.0
    best = max(names, key=lambda k: sign * base[k][0])
    gain = sign * (np.array(runs["auto"]) - np.array(runs[best]))
    return {"dataset": dataset, "metric": metric, "auto": float(np.mean(runs["auto"])),
            "auto_std": float(np.std(runs["auto"])),
            "auto_seconds": float(np.mean(runs["seconds"])), "baselines": base,
            "seeds": len(runs["auto"]), "best_baseline": best, "gain": float(gain.mean()),
            "gain_std": float(gain.std())}


def run(data_dir: Path, quick: bool) -> list[dict]:
    """The recommendation rows; none when ``<data_dir>/ratings/ratings.csv`` is absent."""
    path = Path(data_dir) / "ratings" / "ratings.csv"
    if not path.exists():
        return []
    df = pd.read_csv(path)
    seeds = (0, 1) if quick else (0, 1, 2)
    return [_implicit_row(df[["userId", "movieId"]], seeds, QUICK_GRID if quick else ALS_GRID),
            _explicit_row(df[["userId", "movieId", "rating"]], seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds and a smaller ALS grid")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    rows = run(args.data, args.quick)
    if not rows:
        print(f"skipped: {args.data}/ratings/ratings.csv is absent")
        return
    for r in rows:
        print(f"== {r['dataset']}: {r['metric']}, mean +- sd over {r['seeds']} seeds")
        print(f"   {'AUTO (sqlml)':24s} {r['auto']:.4f} +- {r['auto_std']:.4f}   "
              f"({r['auto_seconds']:.1f} s to train)")
        for name, (mean, std) in r["baselines"].items():
            print(f"   {name:24s} {mean:.4f} +- {std:.4f}")
        print(f"   AUTO minus the best baseline, {r['best_baseline']} (positive = AUTO better), "
              f"paired over the splits: {r['gain']:+.4f} +- {r['gain_std']:.4f}")
    print("AUTO chose, per split: " + "; ".join(CHOSEN))


if __name__ == "__main__":
    main()
