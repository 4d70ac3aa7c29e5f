"""Evaluation of sqlml recommenders: holdout error for ratings, ranking metrics for top-k lists.

Metric definitions (per user, then averaged over the users in the holdout; ``rel`` is the user's
held-out item set, ``hits`` the recommended items in it, ranks start at 1):

- ``precision@k`` = |hits| / k;  ``recall@k`` = |hits| / |rel|;  ``hit_rate@k`` = 1 if any hit.
- ``ndcg@k`` = sum over hits of 1/log2(rank + 1), divided by that sum for ranks 1..min(|rel|, k).
- ``map@k`` = sum over hits of precision@rank, divided by min(|rel|, k).
- ``coverage@k`` = distinct recommended items / items the model knows (catalog coverage).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sqlml.errors import SqlmlError
from sqlml.recommend.model import RecommenderModel, _column, _timestamps

__all__ = ["evaluate_explicit", "evaluate_ranking", "leave_last_out", "ranking_metrics"]


def leave_last_out(users, items, timestamps=None, *, random_state=42) -> np.ndarray:
    """Boolean mask of the held-out rows: each user's latest interaction.

    Latest by timestamp, ties going to the later row; without timestamps one random row per user.
    Users with a single distinct item keep everything in training. Other rows of the held-out
    (user, item) pair are held out too, so the item is not already "seen" in training.
    """
    u = pd.factorize(_column(users, "users"))[0]
    i = pd.factorize(_column(items, "items"))[0]
    n = len(u)
    if timestamps is None:
        t = np.random.default_rng(random_state).permutation(n).astype(float)
    else:
        t = _timestamps(timestamps)
        if len(t) != n:
            raise SqlmlError(f"timestamps must have one value per row: {n}; got {len(t)}.")
    order = np.lexsort((np.arange(n), t, u))
    last = order[np.r_[u[order][1:] != u[order][:-1], True]]
    pair = u.astype(np.int64) * (i.max() + 1) + i
    n_items = np.bincount(u[np.unique(pair, return_index=True)[1]])
    held = np.isin(pair, pair[last[n_items[u[last]] >= 2]])
    return held


def evaluate_explicit(model: RecommenderModel, users, items, ratings) -> dict:
    """RMSE and MAE of ``model.predict`` on holdout rows (cold start included)."""
    err = model.predict(users, items) - np.asarray(ratings, dtype=float)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))),
            "n": len(err)}


def evaluate_ranking(model: RecommenderModel, users, items, k=10, *, exclude_seen=True) -> dict:
    """Ranking metrics of the model's top-k lists against held-out (user, item) rows."""
    k = model._check_k(k)
    uc, ic = model._codes(users, "user"), model._codes(items, "item")
    holdout_users, user_of_row = np.unique(uc, return_inverse=True)
    rel: list[set[int]] = [set() for _ in holdout_users]
    for row, code in zip(user_of_row.tolist(), ic.tolist(), strict=True):
        if code >= 0:  # an item the model never saw cannot be recommended: still counts in |rel|
            rel[row].add(code)
    n_rel = np.bincount(user_of_row, minlength=len(holdout_users))
    known = holdout_users >= 0
    top: dict[int, list[int]] = {}
    if known.any():
        rec = model.recommend_all(k, exclude_seen, reasons=False, users=holdout_users[known])
        codes = model._codes(rec["item"], "item")
        user_rows = np.searchsorted(holdout_users, model._codes(rec["user"], "user"))
        for row, code in zip(user_rows.tolist(), codes.tolist(), strict=True):
            top.setdefault(row, []).append(code)
    if not known.all():
        cold = model._cold_scores()
        cold_top = list(np.lexsort((np.arange(len(cold)), -cold))[:k])
        for row in np.flatnonzero(~known).tolist():
            top[row] = cold_top
    return ranking_metrics([top.get(row, []) for row in range(len(rel))], rel, n_rel, k,
                           len(model.item_ids))


def ranking_metrics(top, rel, n_rel, k, n_items) -> dict:
    """The metrics above from per-user ranked lists ``top`` and relevant sets ``rel``."""
    disc = 1 / np.log2(np.arange(2, k + 2))
    p = r = nd = ap = hit = 0.0
    for items, relevant, size in zip(top, rel, n_rel, strict=True):
        flags = np.array([item in relevant for item in items[:k]], dtype=float)
        n_hit = flags.sum()
        p += n_hit / k
        r += n_hit / size
        hit += n_hit > 0
        nd += (flags * disc[:len(flags)]).sum() / disc[:min(size, k)].sum()
        ap += (flags * np.cumsum(flags) / np.arange(1, len(flags) + 1)).sum() / min(size, k)
    n = max(len(top), 1)
    shown = {item for items in top for item in items[:k]}
    return {f"precision@{k}": p / n, f"recall@{k}": r / n, f"ndcg@{k}": nd / n,
            f"map@{k}": ap / n, f"hit_rate@{k}": hit / n,
            f"coverage@{k}": len(shown) / max(n_items, 1), "users": len(top)}
