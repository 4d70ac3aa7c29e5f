"""Collaborative filtering in numpy: train a recommender from (user, item, rating) rows.

Rules (they hold for the SQL functions built on this module too):

- Ids may be integers, strings or UUIDs (one kind per column). NULL ids, NULL ratings and NULL
  timestamps raise ``TrainingError``; filter them out first (``WHERE col IS NOT NULL``).
- Ratings must be numeric (booleans count as 0/1). With ``feedback='implicit'`` they are interaction
  strengths (counts, plays, weights) and must be >= 0, or ``ratings=None`` for one interaction per
  row; star ratings become implicit positives only through ``implicit_threshold`` (rows rating >=
  threshold are positives, weight 1 each; the other rows count as seen, not as positives).
- Duplicate (user, item) rows are aggregated: explicit feedback keeps their mean rating, implicit
  feedback sums their weights; the pair's timestamp is its latest one.
- At least 2 distinct users and 2 distinct items are needed (with a positive weight, for implicit).
- Scores follow one formula that SQL can reproduce from the stored arrays:
  ``global_mean + user_bias[u] + item_bias[i] + dot(user_factors[u], item_factors[i])``, all
  float64; an implicit model has zero global mean and biases, so its score is the dot product.

Explicit feedback is Bayesian biased matrix factorization: a Gibbs sampler whose hyperpriors learn
the regularization from the data (so nothing is tuned per data set), averaged over its sweeps and
folded back to ``factors`` dimensions by a truncated SVD of the averaged score matrix. Implicit
feedback is weighted matrix factorization (confidence ``1 + alpha * weight``) by alternating least
squares; with timestamps, the final user solve gives recent interactions more of the user's
confidence (half-life ``recency_half_life`` interactions), because a user's next item follows
their latest ones far more than their old ones.
"""

from __future__ import annotations

import itertools
import numbers
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sqlml.errors import TrainingError
from sqlml.recommend import ease
from sqlml.recommend.model import (
    RecommenderModel,
    _column,
    _id_kind,
    _numeric,
    _timestamps,
    single_blas,
)

__all__ = ["RecommenderModel", "fit_recommender"]

DEFAULTS = {
    # Explicit: picked by inner validation inside the training part of a CV fold (factors 5, 10,
    # 20 x sweeps 15, 25, 40): 10 factors score best for the time; more sweeps keep helping a
    # little, 25 fit the time of one SGD fit. regularization None: learned by the hyperpriors.
    "explicit": {"factors": 10, "regularization": None, "iterations": 25, "alpha": None,
                 "recency_half_life": None},
    # Implicit: chosen on earlier leave-last-out splits of the training data (never the test
    # split): 64 factors, lambda 30, alpha 10, half-life of 1 interaction; 3 sweeps score as
    # well there as 5 from the warm start, in 60% of the time.
    "implicit": {"factors": 64, "regularization": 30.0, "iterations": 3, "alpha": 10.0,
                 "recency_half_life": 1.0},
}


EASE_LAMBDA = 200.0   # EASE's ridge when not chosen by AUTO (ml-latest-small: 100-400 within 0.005)
EASE_FACTORS = 32     # EASE's factors: similar items and reasons only


# ---------------------------------------------------------------------------- solvers


class _Blocks:
    """The rows of each entity (user or item), gathered into padded blocks of similar length.

    Pad slots point one past the end of the row arrays and of the other side's factors, where the
    solver keeps zeros, so a block needs no mask and every block is one batched solve."""

    def __init__(self, ent, other, n_ent, n_other):
        order = np.argsort(ent, kind="stable")
        counts = np.bincount(ent, minlength=n_ent)
        starts = np.cumsum(counts) - counts
        edges = [0, 1, 2, 3, 4, 6]
        while edges[-1] < counts.max():
            edges.append(int(edges[-1] * 1.3) + 1)
        self.n, self.parts = n_ent, []
        for lo, hi in itertools.pairwise(edges):
            ents = np.flatnonzero((counts > lo) & (counts <= hi))
            if len(ents):
                slot = np.arange(counts[ents].max())
                valid = slot < counts[ents][:, None]
                rows = np.where(valid, order[np.where(valid, starts[ents][:, None] + slot, 0)],
                                len(ent))
                oth = np.append(other, n_other)[rows]
                self.parts.append((ents, rows, oth))
        # Two halves of similar cost for two threads: big blocks are cut in two by entity.
        self.halves, load = ([], []), [0, 0]
        for part in sorted(self.parts, key=lambda p: -p[1].size):
            if len(part[0]) >= 64:
                cut = len(part[0]) // 2
                for h, piece in enumerate((slice(None, cut), slice(cut, None))):
                    self.halves[h].append(tuple(x[piece] for x in part))
                    load[h] += part[1][piece].size
            else:
                h = int(load[1] < load[0])
                self.halves[h].append(part)
                load[h] += part[1].size


def _solve(blocks, Y, v, w, B, m0=None):
    """Per entity e: ``m0_e + (B + sum w y y')^-1 sum_rows (v - w y.m0_e) y``.

    That is weighted least squares with targets v/w under a Gaussian prior (mean m0, precision B);
    v = 1 + w gives the implicit-feedback system. Entities with fewer rows than dimensions are
    solved in the dual by the push-through identity (m x m instead of d x d): most items have a
    handful of rows. The two halves of the blocks go to two threads: numpy's gathers, matmuls
    and solves release the GIL."""
    d = Y.shape[1]
    Yz = np.vstack([Y, np.zeros((1, d), Y.dtype)])
    YBz = Yz @ np.linalg.inv(B).astype(Y.dtype)
    vz, wz = np.append(v, 0).astype(Y.dtype), np.append(w, 0).astype(Y.dtype)
    X = np.zeros((blocks.n, d), Y.dtype) if m0 is None else m0.astype(Y.dtype)
    w_all = w[0] if len(w) and np.all(w == w[0]) else None  # one weight: skip a pass per block

    def run(parts):
        primal = ([], [], [])  # all d x d systems go to one batched solve
        for ents, rows, oth in parts:
            # np.take: several times faster than fancy indexing for these row gathers
            Yp, s, wp = np.take(Yz, oth, axis=0), np.take(vz, rows), np.take(wz, rows)
            if m0 is not None:
                s = s - wp * (Yp @ np.take(X, ents, axis=0)[..., None])[..., 0]
            m = Yp.shape[1]
            if m < d:
                YB = np.take(YBz, oth, axis=0)
                K = wp[..., None] * (Yp @ YB.transpose(0, 2, 1))
                K[:, np.arange(m), np.arange(m)] += 1
                beta = s[..., None] / K[:, :, :1] if m == 1 else np.linalg.solve(K, s[..., None])
                X[ents] += (YB.transpose(0, 2, 1) @ beta)[..., 0]
            else:
                Yt = Yp.transpose(0, 2, 1)
                primal[0].append(ents)
                gram = w_all * (Yt @ Yp) if w_all is not None else (Yt * wp[:, None, :]) @ Yp
                primal[1].append(gram + B)
                primal[2].append(Yt @ s[..., None])
        if primal[0]:
            ents = np.concatenate(primal[0])
            A, rhs = np.concatenate(primal[1]), np.concatenate(primal[2])
            X[ents] += np.linalg.solve(A, rhs)[..., 0]

    list(_pool().map(run, blocks.halves))  # disjoint rows of X: no lock needed
    return X


def _pool():
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(2, thread_name_prefix="sqlml-recommend")
    return _POOL


_POOL = None


def _prior(X, rng, fixed):
    """Draw the per-dimension prior precision and mean of one side's vectors (Normal-Gamma)."""
    if fixed is not None:
        return np.full(X.shape[1], float(fixed)), np.zeros(X.shape[1])
    n = len(X)
    center = X.sum(0) / (n + 1)
    lam = rng.gamma(1 + n / 2, 1 / (1 + ((X - center) ** 2).sum(0) / 2))
    return lam, rng.normal(center, 1 / np.sqrt(lam * (n + 1)))


def fit_explicit(u, i, r, nu, ni, k, sweeps, reg, rng):
    """Gibbs sampler for rating ~ mu + b_u + b_i + p_u.q_i; returns the averaged model, rank k."""
    mu = float(r.mean())
    bu, bi = np.zeros(nu), np.zeros(ni)
    for _ in range(3):  # shrunk-mean biases: the chain starts near its mode, not at zero
        bu = np.bincount(u, r - mu - bi[i], nu) / (np.bincount(u, minlength=nu) + 5)
        bi = np.bincount(i, r - mu - bu[u], ni) / (np.bincount(i, minlength=ni) + 5)
    f32 = np.float32  # draws are noisy anyway; float32 halves the memory traffic
    # Column 0 of each side is its bias; the other side sees a constant 1 there.
    # Factors start at about their equilibrium scale: from near zero the chain needs ~30 sweeps
    # to grow them, and every early draw is averaged in.
    side = [np.hstack([b[:, None], rng.normal(0, 0.3, (n, k))]).astype(f32)
            for b, n in ((bu, nu), (bi, ni))]
    rows, counts = (u, i), (nu, ni)
    blocks = (_Blocks(u, i, nu, ni), _Blocks(i, u, ni, nu))
    sum_b, draws = [np.zeros(nu), np.zeros(ni)], ([], [])
    for _ in range(sweeps):
        Uu, Vi = np.take(side[0], u, axis=0), np.take(side[1], i, axis=0)
        resid = r - mu - Uu[:, 0] - Vi[:, 0] - np.einsum("nd,nd->n", Uu[:, 1:], Vi[:, 1:])
        alpha = rng.gamma(1 + len(r) / 2, 1 / (1 + resid @ resid / 2))
        for s in (0, 1):
            other = side[1 - s].copy()
            offset = np.take(other[:, 0], rows[1 - s])
            other[:, 0] = 1
            lam, mean = _prior(side[s], rng, reg)
            # Perturb-and-solve: solving the perturbed system gives an exact posterior draw.
            noise = rng.standard_normal(len(r), f32)
            v = alpha * (r - mu - offset) + np.sqrt(alpha) * noise
            m0 = mean + rng.standard_normal((counts[s], k + 1), f32) / np.sqrt(lam)
            side[s] = _solve(blocks[s], other, v, np.full(len(r), alpha),
                             np.diag(lam).astype(f32), m0)
            sum_b[s] += side[s][:, 0]
            draws[s].append(side[s][:, 1:])
    uf, vf = _low_rank(np.hstack(draws[0]), np.hstack(draws[1]) / sweeps, k, rng)
    return mu, sum_b[0] / sweeps, sum_b[1] / sweeps, uf, vf


def _top_svd(mul, rmul, shape, k, rng, power):
    """Top-k singular triplets (U, s, V) of an operator M given ``mul(Z) = M @ Z`` and
    ``rmul(Z) = M.T @ Z``, by randomized subspace iteration; accurate when M has most of its
    mass in k directions. Orthonormalizes only on the smaller side (QR of a tall matrix is the
    slow step), and gets the other side from a small eigenproblem."""
    if shape[0] > shape[1]:
        V, s, U = _top_svd(rmul, mul, shape[::-1], k, rng, power)
        return U, s, V
    Z = mul(rng.standard_normal((shape[1], min(k + 10, *shape))).astype(np.float32))
    for _ in range(power):
        Z = mul(rmul(np.linalg.qr(Z)[0]))
    Q = np.linalg.qr(Z)[0]
    B = np.asarray(rmul(Q), float)  # M.T @ Q = V S X.T
    s2, X = np.linalg.eigh(B.T @ B)
    top = np.argsort(s2)[::-1][:k]
    s = np.sqrt(np.maximum(s2[top], 0))
    return Q @ X[:, top], s, B @ X[:, top] / np.where(s > 0, s, 1)


def _low_rank(P, Q, k, rng, power=2):
    """Rank-k factors of P @ Q.T, singular values split evenly, without forming the product.

    The average of the sampler's draws has rank sweeps*k but nearly all its mass in k
    directions, so the truncation loses nothing measurable."""
    U, s, V = _top_svd(lambda Z: P @ (Q.T @ Z), lambda Z: Q @ (P.T @ Z), (len(P), len(Q)), k,
                       rng, power)
    uf, vf = (np.asarray(x, float) * np.sqrt(s) for x in (U, V))
    if uf.shape[1] < k:  # fewer users or items than factors: pad, so the width is always k
        uf, vf = (np.pad(x, ((0, 0), (0, k - x.shape[1]))) for x in (uf, vf))
    return uf, vf


def _newer_count(u, t):
    """Per row, how many of the user's rows are strictly later (ties share one value)."""
    order = np.lexsort((-t, u))
    us, ts = u[order], t[order]
    n = len(us)
    first_of_user = np.r_[True, us[1:] != us[:-1]]
    user_start = np.maximum.accumulate(np.where(first_of_user, np.arange(n), 0))
    run_start = np.maximum.accumulate(
        np.where(first_of_user | np.r_[True, ts[1:] != ts[:-1]], np.arange(n), 0))
    out = np.empty(n, np.int64)
    out[order] = run_start - user_start
    return out


def fit_implicit(u, i, wgt, ts, nu, ni, k, sweeps, reg, alpha, half_life, rng):
    """Weighted MF: min sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|x|^2 + |y|^2), p = [weight > 0],
    c = 1 + alpha * weight. Item vectors come from ``sweeps`` ALS sweeps; the user vectors are
    then solved exactly against them, with recency-weighted confidence when ``ts`` is given."""
    f32 = np.float32
    blk_u, blk_i = _Blocks(u, i, nu, ni), _Blocks(i, u, ni, nu)
    w = (alpha * wgt).astype(f32)
    # Warm start from the top singular vectors: fewer sweeps, and far less seed-to-seed spread.
    R = sp.csr_matrix((wgt.astype(f32), (u, i)), shape=(nu, ni))
    _, sv, V = _top_svd(R.__matmul__, R.T.__matmul__, (nu, ni), k, rng, power=2)
    Y = np.zeros((ni, k), f32)
    Y[:, :len(sv)] = V * np.sqrt(sv)
    ridge = reg * np.eye(k, dtype=f32)
    for _ in range(sweeps):
        X = _solve(blk_u, Y, 1 + w, w, Y.T @ Y + ridge)
        Y = _solve(blk_i, X, 1 + w, w, X.T @ X + ridge)
    if ts is not None and half_life:
        # Recency moves confidence towards the latest interactions without changing its total:
        # a user's next item follows their last few far more than their old ones.
        decay = 0.5 ** np.minimum(_newer_count(u, ts) / half_life, 60.0)
        scale = np.bincount(u, wgt, nu) / np.maximum(np.bincount(u, wgt * decay, nu), 1e-300)
        w = (alpha * wgt * decay * scale[u]).astype(f32)
    X = _solve(blk_u, Y, 1 + w, w, Y.T @ Y + ridge)
    return X.astype(float), Y.astype(float)


# ---------------------------------------------------------------------------- inputs


def _setting(name, value, feedback, low="positive", integer=False):
    if value is None:
        return DEFAULTS[feedback].get(name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (not integer or float(value).is_integer())
    ok = ok and (low is None or value > 0 or (low == "nonnegative" and value == 0))
    if not ok:
        kind = {"positive": "a positive", "nonnegative": "a non-negative", None: "a"}[low]
        default = DEFAULTS[feedback].get(name)
        raise TrainingError(
            f"The {name!r} setting of a recommender must be {kind} "
            f"{'integer' if integer else 'number'}; got {value!r}."
            + (f" Default for {feedback} feedback: {default!r}." if default is not None else ""))
    return int(value) if integer else float(value)


def _train(pu, pi, value, pts, positive, nu, ni, implicit, k, sweeps, reg, alpha, half_life,
           rng, weighting="linear"):
    params = {"factors": k, "regularization": reg, "iterations": sweeps}
    if not implicit:
        mu, ub, ib, uf, vf = fit_explicit(pu, pi, value, nu, ni, k, sweeps, reg, rng)
        return uf, vf, mu, ub, ib, params
    a = _setting("alpha", alpha, "implicit")
    hl = _setting("recency_half_life", half_life, "implicit", low="nonnegative")
    wgt = value[positive]
    if weighting == "bm25":
        wgt = ease.bm25(pu[positive], pi[positive], wgt, nu, ni)
    uf, vf = fit_implicit(pu[positive], pi[positive], wgt,
                          None if pts is None else pts[positive], nu, ni, k, sweeps, reg, a, hl,
                          rng)
    params |= {"alpha": a, "recency_half_life": hl if pts is not None else None,
               "weighting": weighting}
    return uf, vf, 0.0, np.zeros(nu), np.zeros(ni), params


def _train_ease(pu, pi, nu, ni, lam):
    """EASE's item-item weights, and factors of the positives (the top eigenvectors of X'X) that
    serve only similar items and reasons."""
    basis = ease.basis(pu, pi, nu, ni)
    neighbors = basis.weights(lam)
    k = min(EASE_FACTORS, len(basis.e))
    top = np.argsort(basis.e)[::-1][:k]
    vf = np.zeros((ni, EASE_FACTORS))
    vf[basis.keep, :k] = basis.V[:, top] * np.sqrt(basis.e[top])
    X = sp.csr_matrix((np.ones(len(pu)), (pu, pi)), shape=(nu, ni))
    uf = np.asarray(X @ vf) / np.maximum(np.sqrt(np.bincount(pu, minlength=nu)), 1)[:, None]
    params = {"algorithm": "ease", "regularization": lam, "neighbors": ease.NEIGHBORS,
              "factors": EASE_FACTORS}
    return uf, vf, neighbors, params


def fit_recommender(users, items, ratings=None, timestamps=None, *, feedback="explicit",
                    factors=None, regularization=None, iterations=None, alpha=None,
                    implicit_threshold=None, recency_half_life=None, random_state=42,
                    algorithm="als", weighting=None):
    """Train a recommender from parallel arrays of user ids, item ids and ratings.

    :param users, items: ids, one per row: integers, strings or UUIDs.
    :param ratings: explicit ratings, or implicit interaction strengths (>= 0); ``None`` means one
        interaction per row (implicit only).
    :param timestamps: optional numbers or datetimes. Implicit models weight recent interactions
        more in each user's profile; ``leave_last_out`` uses them to split.
    :param feedback: ``'explicit'`` (predict ratings) or ``'implicit'`` (rank items).
    :param factors: dimensions of the user and item vectors (explicit 10, implicit 64).
    :param regularization: explicit: ``None`` learns the prior precision from the data, a number
        fixes it; implicit: ridge penalty (default 30).
    :param iterations: explicit: Gibbs sweeps averaged (25); implicit: ALS sweeps (3).
    :param alpha: implicit confidence scale, confidence = 1 + alpha * weight (default 10).
    :param implicit_threshold: implicit only: rows with rating >= threshold are the positives.
    :param recency_half_life: implicit only: a user's interaction counts half as much in their
        profile per this many later interactions (default 1; 0 turns recency off).
    :param random_state: seed; the same inputs and seed give the same model.
    :param algorithm: ``'als'`` (matrix factorization) or, implicit only, ``'ease'``: item-item
        weights in closed form (sqlml/recommend/ease.py), ``regularization`` its lambda (200).
    :param weighting: implicit ALS: ``'linear'`` (None) confidence 1 + alpha * weight, or ``'bm25'``
        (1 + alpha * BM25 of the weights).
    :returns: :class:`RecommenderModel`.
    """
    implicit = _check_feedback(feedback, alpha=alpha, implicit_threshold=implicit_threshold,
                               recency_half_life=recency_half_life)
    weighting = "linear" if weighting is None else weighting
    _check_algorithm(algorithm, weighting, implicit)
    k = _setting("factors", factors, feedback, integer=True)
    sweeps = _setting("iterations", iterations, feedback, integer=True)
    reg = None if regularization is None and not implicit else _setting(
        "regularization", regularization, feedback)
    u_arr, i_arr, r, ts = _rows(users, items, ratings, timestamps, feedback, implicit_threshold)
    p = _pairs(u_arr, i_arr, r, ts, implicit)
    rng = np.random.default_rng(random_state)
    extra = {}
    if algorithm == "ease":   # one big inverse: every BLAS thread helps
        _check_ease_size(p.ni)
        lam = EASE_LAMBDA if regularization is None else reg
        uf, vf, nb, params = _train_ease(p.pu[p.positive], p.pi[p.positive], p.nu, p.ni, lam)
        mu, ub, ib = 0.0, np.zeros(p.nu), np.zeros(p.ni)
        extra = {"neighbor_indptr": nb.indptr.astype(np.int64),
                 "neighbor_items": nb.indices.astype(np.int64), "neighbor_weights": nb.data}
    else:
        with single_blas():
            uf, vf, mu, ub, ib, params = _train(
                p.pu, p.pi, p.value, p.pts, p.positive, p.nu, p.ni, implicit, k, sweeps, reg,
                alpha, recency_half_life, rng, weighting)
    params |= {"feedback": feedback, "random_state": random_state,
               "implicit_threshold": implicit_threshold}
    return _model(p, feedback, u_arr, mu, ub, ib, uf, vf, params, extra)


def _model(p, feedback, u_arr, mu, ub, ib, uf, vf, params, extra) -> RecommenderModel:
    seen_indptr = np.concatenate([[0], np.cumsum(np.bincount(p.pu, minlength=p.nu))])
    info = {"rows": len(u_arr), "pairs": len(p.pu), "duplicates": int(len(u_arr) - len(p.pu)),
            "rating_min": float(p.value.min()), "rating_max": float(p.value.max())}
    return RecommenderModel(
        feedback=feedback, user_kind=p.user_kind, item_kind=p.item_kind, user_ids=p.user_ids,
        item_ids=p.item_ids, global_mean=mu, user_bias=ub, item_bias=ib, user_factors=uf,
        item_factors=vf, popularity=np.bincount(p.pi[p.positive], minlength=p.ni).astype(float),
        seen_indptr=seen_indptr, seen_items=p.pi, seen_values=p.value, params=params, info=info,
        **extra)


def _check_algorithm(algorithm, weighting, implicit) -> None:
    if algorithm not in ("als", "ease"):
        raise TrainingError(f"The 'algorithm' setting of a recommender must be 'auto', 'als' or "
                            f"'ease'; got {algorithm!r}. Leave it out for AUTO.")
    if weighting not in ("linear", "bm25"):
        raise TrainingError(f"The 'weighting' of implicit ALS must be 'linear' or 'bm25'; got "
                            f"{weighting!r}.")
    if algorithm == "ease" and not implicit:
        raise TrainingError("algorithm 'ease' ranks items from implicit feedback; got "
                            "feedback='explicit'. Set feedback := 'implicit' (with "
                            "implicit_threshold for star ratings), or use algorithm 'als'.")


def _check_ease_size(n_items: int) -> None:
    if n_items > ease.MAX_ITEMS:
        raise TrainingError(
            f"algorithm 'ease' inverts an items x items matrix and is limited to "
            f"{ease.MAX_ITEMS:,} items; the training data has {n_items:,}. Use algorithm 'als' "
            f"(or 'auto', which skips EASE above the limit), or keep the most frequent items.")


def _check_feedback(feedback, **implicit_only) -> bool:
    """Whether feedback is implicit; explicit feedback refuses the implicit-only settings."""
    if feedback not in DEFAULTS:
        raise TrainingError(f"feedback must be 'explicit' or 'implicit'; got {feedback!r}.")
    implicit = feedback == "implicit"
    if not implicit:
        for name, value in implicit_only.items():
            if value is not None:
                hint = (" To treat ratings as implicit positives, set feedback='implicit' and"
                        " implicit_threshold." if name == "implicit_threshold" else "")
                raise TrainingError(f"The {name!r} setting only applies to feedback='implicit'; "
                                    f"got {name}={value!r} with feedback='explicit'.{hint}")
    return implicit


def _rows(users, items, ratings, timestamps, feedback, implicit_threshold):
    """The input columns checked as arrays of one length: user and item ids, ratings (implicit
    positives when a threshold is given) and timestamps (or None)."""
    implicit = feedback == "implicit"
    u_arr, i_arr = _column(users, "users"), _column(items, "items")
    if len(u_arr) != len(i_arr):
        raise TrainingError(f"users and items must have the same length; got {len(u_arr)} and "
                            f"{len(i_arr)}.")
    if ratings is None:
        if not implicit:
            raise TrainingError("An explicit recommender needs ratings; got ratings=None. Pass "
                                "the rating column, or set feedback='implicit'.")
        r = np.ones(len(u_arr))
    else:
        r = _numeric(_column(ratings, "ratings"), "ratings")
        if len(r) != len(u_arr):
            raise TrainingError(f"ratings must have one value per row: {len(u_arr)}; got {len(r)}.")
    ts = None if timestamps is None else _timestamps(timestamps)
    if ts is not None and len(ts) != len(u_arr):
        raise TrainingError(f"timestamps must have one value per row: {len(u_arr)}; got {len(ts)}.")
    if implicit:
        if implicit_threshold is not None:
            r = (r >= _setting("implicit_threshold", implicit_threshold, feedback,
                               low=None)).astype(float)
        elif (r < 0).any():
            raise TrainingError(
                f"An implicit recommender reads ratings as interaction counts or weights (>= 0); "
                f"got {float(r[r < 0][0])!r}. To treat explicit ratings as implicit feedback, pass "
                "implicit_threshold (e.g. 4: ratings >= 4 are positives).")
    return u_arr, i_arr, r, ts


@dataclass(frozen=True)
class _Pairs:
    """The distinct (user, item) pairs, as positions into the sorted user and item ids."""
    user_kind: str
    item_kind: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    pu: np.ndarray
    pi: np.ndarray
    value: np.ndarray               # mean rating (explicit) or summed weight (implicit)
    pts: np.ndarray | None          # the pair's latest timestamp
    positive: np.ndarray

    @property
    def nu(self) -> int:
        return len(self.user_ids)

    @property
    def ni(self) -> int:
        return len(self.item_ids)


def _pairs(u_arr, i_arr, r, ts, implicit: bool) -> _Pairs:
    """Duplicate rows aggregated into pairs; at least 2 users and 2 items must remain."""
    (uk, u_ids), (ik, i_ids) = _id_kind(u_arr, "user"), _id_kind(i_arr, "item")
    user_ids, u = np.unique(u_ids, return_inverse=True)
    item_ids, i = np.unique(i_ids, return_inverse=True)
    ni = len(item_ids)
    pair, inv = np.unique(u * ni + i, return_inverse=True)
    count = np.bincount(inv)
    value = np.bincount(inv, r) / (1 if implicit else count)
    pu, pi = pair // ni, pair % ni
    pts = None
    if ts is not None:
        pts = np.full(len(pair), -np.inf)
        np.maximum.at(pts, inv, ts)
    positive = value > 0 if implicit else np.ones(len(pair), bool)
    for what, n, ids in (("users", len(np.unique(pu[positive])), user_ids),
                         ("items", len(np.unique(pi[positive])), item_ids)):
        if n < 2:
            detail = "with a positive interaction " if implicit else ""
            raise TrainingError(
                f"A recommender needs at least 2 distinct {what} {detail}to learn from; got {n} "
                f"(first: {ids[0].item()!r}). Train on more data, or check implicit_threshold.")
    return _Pairs(uk, ik, user_ids, item_ids, pu, pi, value, pts, positive)
