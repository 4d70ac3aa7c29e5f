"""The numerical core of sqlml's recommenders (sqlml.recommend.fit*), independent of SQL."""

import json
import uuid

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

from sqlml.errors import ArtifactError, PredictionInputError, SqlmlError, TrainingError
from sqlml.recommend.evaluate import (
    evaluate_explicit,
    evaluate_ranking,
    leave_last_out,
    ranking_metrics,
)
from sqlml.recommend.fit import (
    RecommenderModel,
    _Blocks,
    _low_rank,
    _newer_count,
    _solve,
    fit_recommender,
)
from sqlml.recommend.model import _top_k


def synthetic(n_users=60, n_items=40, rank=3, density=0.5, seed=0):
    """Ratings 1..5 from a low-rank taste model plus noise, as a DataFrame."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items)) / np.sqrt(rank)
    rows = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < density]
    u, i = np.array(rows).T
    r = np.clip(np.round(3 + taste[u, i] + 0.3 * rng.normal(size=len(u))), 1, 5)
    return pd.DataFrame({"user": u, "item": i, "rating": r, "ts": rng.permutation(len(u))})


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def explicit(data):
    return fit_recommender(data.user, data.item, data.rating, feedback="explicit", factors=4)


@pytest.fixture(scope="module")
def implicit(data):
    liked = data[data.rating >= 4]
    return fit_recommender(liked.user, liked.item, None, liked.ts, feedback="implicit", factors=8)


def formula(model, u, i):
    """The score the SQL side computes from the stored arrays, written out independently."""
    a, m = model.to_arrays(), model.to_metadata()
    return (m["global_mean"] + a["user_bias"][u] + a["item_bias"][i]
            + a["user_factors"][u] @ a["item_factors"][i])


# ---------------------------------------------------------------- solvers against references


@pytest.mark.parametrize("d", [3, 12, 40])  # primal only, mixed, dual only
@pytest.mark.parametrize("with_prior_mean", [False, True])
def test_block_solver_matches_direct_solves(d, with_prior_mean):
    rng = np.random.default_rng(d)
    pairs = np.unique(rng.integers(0, 30, 400) * 50 + rng.integers(0, 50, 400))
    ent, other = pairs // 50, pairs % 50
    Y, v, w = rng.normal(size=(50, d)), rng.normal(size=len(ent)), rng.uniform(0, 2, len(ent))
    M = rng.normal(size=(d, d))
    B = M @ M.T + np.eye(d)
    m0 = rng.normal(size=(30, d)) if with_prior_mean else None
    got = _solve(_Blocks(ent, other, 30, 50), Y, v, w, B, m0)
    for e in range(30):
        rows = ent == e
        Ye = Y[other[rows]]
        rhs = Ye.T @ v[rows] + (B @ m0[e] if with_prior_mean else 0)
        np.testing.assert_allclose(got[e], np.linalg.solve(Ye.T @ (w[rows, None] * Ye) + B, rhs),
                                   atol=1e-9)


def test_low_rank_is_the_truncated_svd_of_the_product():
    rng = np.random.default_rng(1)
    P, Q = rng.normal(size=(30, 40)), rng.normal(size=(50, 40))
    P[:, :5] *= 20  # a clear top-5 subspace, as averaged sampler draws have
    uf, vf = _low_rank(P, Q, 5, rng)
    U, s, Vt = np.linalg.svd(P @ Q.T)
    np.testing.assert_allclose(uf @ vf.T, (U[:, :5] * s[:5]) @ Vt[:5], atol=1e-6 * s[0])


def test_top_k_matches_a_full_sort():
    rng = np.random.default_rng(2)
    for trial in range(150):
        rows, n, k = rng.integers(1, 12), rng.integers(1, 300), rng.integers(1, 25)
        s = rng.normal(size=(rows, n))
        if trial % 3 == 0:
            s = np.round(s * 2) / 2  # many ties: the lower index wins
        if trial % 5 == 0:
            s[rng.random(s.shape) < 0.8] = -np.inf  # masked items, some rows short of k
        expected = [np.lexsort((np.arange(n), -row))[:k] for row in s]
        np.testing.assert_array_equal(_top_k(s, k), expected)


def test_newer_count_shares_ties():
    u = np.array([0, 0, 0, 0, 1, 1])
    t = np.array([5.0, 9.0, 9.0, 1.0, 3.0, 4.0])
    assert _newer_count(u, t).tolist() == [2, 0, 0, 3, 1, 0]


def test_implicit_user_vectors_minimize_the_weighted_objective(data):
    """Without timestamps the last sweep solves users exactly: check the dense normal equations."""
    model = fit_recommender(data.user, data.item, data.rating, feedback="implicit", factors=6,
                            implicit_threshold=4, alpha=5.0, regularization=2.0)
    X, Y = model.user_factors, model.item_factors
    pref = np.zeros((len(X), len(Y)))
    conf = np.ones_like(pref)
    for u in range(len(X)):
        lo, hi = model.seen_indptr[u], model.seen_indptr[u + 1]
        liked = model.seen_items[lo:hi][model.seen_values[lo:hi] > 0]
        pref[u, liked] = 1
        conf[u, liked] = 1 + 5.0 * model.seen_values[lo:hi][model.seen_values[lo:hi] > 0]
    for u in range(len(X)):
        A = (Y * conf[u, :, None]).T @ Y + 2.0 * np.eye(6)
        np.testing.assert_allclose(X[u], np.linalg.solve(A, Y.T @ (conf[u] * pref[u])),
                                   rtol=1e-3, atol=1e-4)  # float32 solves


# ---------------------------------------------------------------- fitting and scoring


def test_explicit_model_learns_the_low_rank_signal():
    df = synthetic(n_users=120, n_items=80, density=0.4, seed=3)
    held = np.random.default_rng(0).random(len(df)) < 0.2
    tr, te = df[~held], df[held]
    model = fit_recommender(tr.user, tr.item, tr.rating, factors=3)
    biases_only = fit_recommender(tr.user, tr.item, tr.rating, factors=1, regularization=1e6)
    ours = evaluate_explicit(model, te.user, te.item, te.rating)["rmse"]
    assert ours < 0.8 * evaluate_explicit(biases_only, te.user, te.item, te.rating)["rmse"]


def test_scores_equal_the_stored_formula(explicit, implicit):
    for model in (explicit, implicit):
        u, i = np.meshgrid(np.arange(len(model.user_ids)), np.arange(len(model.item_ids)))
        u, i = u.ravel(), i.ravel()
        np.testing.assert_allclose(model.predict(model.user_ids[u], model.item_ids[i]),
                                   [formula(model, a, b) for a, b in zip(u, i, strict=True)],
                                   rtol=0, atol=1e-9)
        for _, item, score, source, _ in model.recommend(model.user_ids[3], k=5):
            assert source == "personalized"
            code = int(np.searchsorted(model.item_ids, item))
            assert score == pytest.approx(formula(model, 3, code), abs=1e-9)
    assert implicit.global_mean == 0 and not implicit.user_bias.any()


def test_same_seed_same_model(data):
    a, b = (fit_recommender(data.user, data.item, data.rating, factors=3, iterations=5)
            for _ in range(2))
    np.testing.assert_array_equal(a.user_factors, b.user_factors)


def test_string_and_uuid_ids(data):
    names = np.array([f"user-{u:03d}" for u in data.user], dtype=object)
    uuids = [uuid.UUID(int=int(i) + 1) for i in data.item]
    model = fit_recommender(names, uuids, data.rating, factors=3, iterations=5)
    assert model.user_kind == "str" and model.item_kind == "uuid"
    recs = model.recommend("user-007", k=3)
    assert len(recs) == 3 and all(isinstance(item, uuid.UUID) for _, item, *_ in recs)
    base = fit_recommender(data.user, data.item, data.rating, factors=3, iterations=5)
    # same rows, same seed: ids are only labels, so the scores match the integer-id model
    np.testing.assert_allclose(model.predict(["user-007"], [uuid.UUID(int=5)]),
                               base.predict([7], [4]), atol=1e-9)
    assert model.predict(["user-007"], [str(uuid.UUID(int=5))])[0] == pytest.approx(
        base.predict([7], [4])[0])
    similar = model.similar_items(uuid.UUID(int=1), k=2)
    assert [rank for rank, *_ in similar] == [1, 2]


def test_duplicates_are_aggregated(data):
    dup = pd.concat([data, data.iloc[:5].assign(rating=1.0)])
    model = fit_recommender(dup.user, dup.item, dup.rating, factors=3, iterations=5)
    merged = dup.groupby(["user", "item"], as_index=False).rating.mean()
    reference = fit_recommender(merged.user, merged.item, merged.rating, factors=3, iterations=5)
    np.testing.assert_allclose(model.user_factors, reference.user_factors)
    assert model.info["duplicates"] == 5
    counts = pd.DataFrame({"u": [1, 1, 1, 2, 2, 3], "i": [7, 7, 8, 7, 9, 9],
                           "n": [2.0, 3.0, 1.0, 1.0, 1.0, 4.0]})
    imp = fit_recommender(counts.u, counts.i, counts.n, feedback="implicit", factors=2)
    assert imp.seen_values.tolist() == [5.0, 1.0, 1.0, 1.0, 4.0]  # summed per pair


def test_cold_start_and_exclude_seen(explicit, implicit, data):
    for model in (explicit, implicit):
        recs = model.recommend("someone new", k=4) if model.user_kind == "str" else \
            model.recommend(10_000, k=4, exclude_seen=True)  # no-op: nothing was seen
        assert [source for *_, source, _ in recs] == ["popular"] * 4
        assert all(reason is None for *_, reason in recs)
        expected = (model.popularity if model is implicit
                    else model.global_mean + model.item_bias)
        assert [item for _, item, *_ in recs] == list(
            model.item_ids[np.lexsort((np.arange(len(expected)), -expected))[:4]])
    assert explicit.predict([10_000], [0])[0] == pytest.approx(
        explicit.global_mean + explicit.item_bias[0])
    assert explicit.predict([0], [10_000])[0] == pytest.approx(
        explicit.global_mean + explicit.user_bias[0])
    seen = set(data.item[data.user == 5])
    assert not seen & {item for _, item, *_ in explicit.recommend(5, k=10)}
    everything = explicit.recommend(5, k=len(explicit.item_ids), exclude_seen=False)
    assert {item for _, item, *_ in everything} == set(explicit.item_ids)
    scores = [score for _, _, score, *_ in everything]
    assert scores == sorted(scores, reverse=True)


def test_user_without_positives_gets_popular_items_minus_seen():
    df = pd.DataFrame({"u": [1, 1, 2, 2, 3, 3], "i": [1, 2, 2, 3, 1, 3],
                       "r": [5, 5, 4, 5, 1, 2]})
    model = fit_recommender(df.u, df.i, df.r, feedback="implicit", implicit_threshold=4,
                            factors=2)
    recs = model.recommend(3, k=5)
    assert [(item, source) for _, item, _, source, _ in recs] == [(2, "popular")]
    assert model.cold_users.tolist() == [False, False, True]


def test_reason_is_the_closest_rated_item(explicit, implicit, data):
    for model in (explicit, implicit):
        unit = model.item_factors / np.linalg.norm(model.item_factors, axis=1, keepdims=True)
        for user in (0, 7, 21):
            code = int(np.searchsorted(model.user_ids, user))
            lo, hi = model.seen_indptr[code], model.seen_indptr[code + 1]
            rated = [j for j, v in zip(model.seen_items[lo:hi], model.seen_values[lo:hi],
                                       strict=True) if v > 0]
            for _, item, _, _, reason in model.recommend(user, k=5, exclude_seen=False):
                j = int(np.searchsorted(model.item_ids, item))
                cands = [c for c in rated if c != j]
                best = max(cands, key=lambda c, j=j: (unit[c] @ unit[j], -c))
                assert reason == f"because you rated {model.item_ids[best]}"


def test_similar_items_by_cosine(explicit):
    from sklearn.metrics.pairwise import cosine_similarity

    sims = cosine_similarity(explicit.item_factors)[3]
    sims[3] = -np.inf
    got = explicit.similar_items(explicit.item_ids[3], k=5)
    assert [item for _, item, _ in got] == list(explicit.item_ids[np.argsort(-sims)[:5]])
    np.testing.assert_allclose([s for *_, s in got], np.sort(sims)[::-1][:5])
    assert explicit.similar_items(123456, k=5) == []


def test_recommend_all_equals_per_user_recommend(explicit, implicit):
    for model in (explicit, implicit):
        for exclude in (True, False):
            out = model.recommend_all(k=6, exclude_seen=exclude)
            assert set(out) == {"user", "rank", "item", "score", "source", "reason"}
            rows = list(zip(out["rank"].tolist(), out["item"].tolist(), out["score"].tolist(),
                            out["source"].tolist(), out["reason"].tolist(), strict=True))
            at = 0
            for user in model.user_ids:
                one = model.recommend(user, k=6, exclude_seen=exclude)
                got = rows[at:at + len(one)]
                assert [r[:2] + r[3:] for r in got] == [r[:2] + r[3:] for r in one]
                np.testing.assert_allclose([r[2] for r in got], [r[2] for r in one], atol=1e-9)
                assert set(out["user"][at:at + len(one)].tolist()) == {user}
                at += len(one)
            assert at == len(rows)


def test_round_trip_without_pickle(tmp_path, explicit, implicit):
    for model in (explicit, implicit):
        arrays, meta = model.to_arrays(), json.loads(json.dumps(model.to_metadata()))
        assert all(a.dtype != object for a in arrays.values())
        np.savez(tmp_path / "m.npz", **arrays)
        with np.load(tmp_path / "m.npz", allow_pickle=False) as stored:
            back = RecommenderModel.from_arrays(dict(stored), meta)
        assert back.recommend(4, k=5) == model.recommend(4, k=5)
        np.testing.assert_array_equal(back.predict([0, 1], [2, 3]), model.predict([0, 1], [2, 3]))
        broken = arrays | {"item_bias": arrays["item_bias"][:-1]}
        with pytest.raises(ArtifactError, match="inconsistent"):
            RecommenderModel.from_arrays(broken, meta)
        with pytest.raises(ArtifactError, match="Not a stored sqlml recommender"):
            RecommenderModel.from_arrays(arrays, meta | {"format": "other"})


def test_datetime_timestamps(data):
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(data.ts, unit="h")
    a = fit_recommender(data.user, data.item, None, when, feedback="implicit", factors=4)
    b = fit_recommender(data.user, data.item, None, data.ts, feedback="implicit", factors=4)
    np.testing.assert_allclose(a.user_factors, b.user_factors)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, error, pieces", [
    (dict(users=[1, None, 2]), TrainingError, ["users", "1 of 3 rows are NULL", "IS NOT NULL"]),
    (dict(items=[1.0, np.nan, 2.0]), TrainingError, ["items", "NULL", "row 1"]),
    (dict(ratings=[4.0, None, 3.0]), TrainingError, ["ratings", "NULL", "IS NOT NULL"]),
    (dict(ratings=["good", "bad", "ok"]), TrainingError, ["must be numeric", "'good'", "Cast"]),
    (dict(ratings=[1.0, np.inf, 2.0]), TrainingError, ["finite", "inf"]),
    (dict(users=[1, 1, 1]), TrainingError, ["at least 2 distinct users", "got 1", "more data"]),
    (dict(items=["a", "a", "a"]), TrainingError, ["at least 2 distinct items", "'a'"]),
    (dict(users=[1, "x", 2]), TrainingError,
     ["user ids must all be integers, all strings or all UUIDs", "int and str", "Cast"]),
    (dict(users=[1, 2]), TrainingError, ["same length", "2 and 3"]),
    (dict(ratings=None), TrainingError, ["needs ratings", "feedback='implicit'"]),
    (dict(factors=0), TrainingError, ["'factors'", "positive integer", "got 0", "Default"]),
    (dict(iterations=2.5), TrainingError, ["'iterations'", "got 2.5"]),
    (dict(feedback="implicit", recency_half_life=-1), TrainingError,
     ["'recency_half_life'", "non-negative number", "got -1", "Default for implicit"]),
    (dict(feedback="implicit", implicit_threshold="4"), TrainingError,
     ["'implicit_threshold'", "must be a number", "got '4'"]),
    (dict(feedback="stars"), TrainingError, ["'explicit' or 'implicit'", "'stars'"]),
    (dict(implicit_threshold=4), TrainingError,
     ["only applies to feedback='implicit'", "implicit_threshold=4", "set feedback='implicit'"]),
    (dict(alpha=10), TrainingError, ["'alpha'", "only applies to feedback='implicit'"]),
    (dict(feedback="implicit", ratings=[-1.0, 4.0, 5.0]), TrainingError,
     ["counts or weights (>= 0)", "-1.0", "implicit_threshold"]),
    (dict(feedback="implicit", implicit_threshold=9), TrainingError,
     ["at least 2 distinct users with a positive interaction", "got 0"]),
])
def test_bad_training_input(kwargs, error, pieces):
    args = dict(users=[1, 2, 3], items=[10, 20, 10], ratings=[4.0, 5.0, 3.0]) | kwargs
    with pytest.raises(error) as info:
        fit_recommender(args.pop("users"), args.pop("items"), args.pop("ratings"), **args)
    assert isinstance(info.value, SqlmlError)
    for piece in pieces:
        assert piece in str(info.value)


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "10"])
def test_k_must_be_positive(explicit, k):
    for call in (lambda: explicit.recommend(0, k=k), lambda: explicit.similar_items(0, k=k),
                 lambda: explicit.recommend_all(k=k)):
        with pytest.raises(PredictionInputError, match=r"k .* must be a positive integer; got"):
            call()


def test_null_ids_at_scoring_time(explicit):
    assert np.isnan(explicit.predict([None, 1], [2, np.nan])).all()
    assert explicit.predict([None, 1], [2, 3])[1] == pytest.approx(formula(explicit, 1, 3))
    assert explicit.recommend(None) == [] and explicit.similar_items(None) == []


def test_query_id_of_the_wrong_type(explicit):
    with pytest.raises(PredictionInputError, match=r"user ids are ints; got .*Cast"):
        explicit.recommend("alice")


# ---------------------------------------------------------------- evaluation helpers


def test_ranking_metrics_by_hand():
    # user A: relevant {1, 2}, list [1, 5, 2]: hits at ranks 1 and 3
    # user B: relevant {9}, list [4, 5, 6]: no hit
    m = ranking_metrics([[1, 5, 2], [4, 5, 6]], [{1, 2}, {9}], np.array([2, 1]), 3, n_items=10)
    ndcg_a = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert m["precision@3"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall@3"] == pytest.approx((1 + 0) / 2)
    assert m["hit_rate@3"] == pytest.approx(0.5)
    assert m["ndcg@3"] == pytest.approx(ndcg_a / 2)
    assert m["map@3"] == pytest.approx(((1 + 2 / 3) / 2) / 2)
    assert m["coverage@3"] == pytest.approx(5 / 10)  # {1, 2, 4, 5, 6}


def test_evaluate_ranking_and_explicit_on_a_model(explicit):
    top = [item for _, item, *_ in explicit.recommend(2, k=3)]
    m = evaluate_ranking(explicit, [2, 99_999], [top[1], 5], k=3)
    cold = [item for _, item, *_ in explicit.recommend(99_999, k=3)]
    # user 2: hit at rank 2; the unknown user gets the popular list
    hit_cold = 5 in cold
    assert m["hit_rate@3"] == pytest.approx((1 + hit_cold) / 2)
    assert m["ndcg@3"] == pytest.approx((1 / np.log2(3) + (
        1 / np.log2(cold.index(5) + 2) if hit_cold else 0)) / 2)
    pred = explicit.predict([0, 1], [0, 1])
    e = evaluate_explicit(explicit, [0, 1], [0, 1], pred + np.array([0.5, -1.5]))
    assert e["rmse"] == pytest.approx(np.sqrt((0.25 + 2.25) / 2))
    assert e["mae"] == pytest.approx(1.0)


def test_leave_last_out():
    users = ["a", "a", "a", "b", "b", "c", "d", "d"]
    items = [1, 2, 3, 1, 2, 1, 4, 4]
    ts = [3, 9, 9, 5, 1, 7, 1, 2]
    held = leave_last_out(users, items, ts)
    # a: ts 9 tie -> later row (item 3); b: item 1; c: single item stays; d: one distinct item
    assert held.tolist() == [False, False, True, True, False, False, False, False]
    random = leave_last_out(users, items)
    assert random.sum() == 2 and random[:3].sum() == 1 and random[3:5].sum() == 1
    again = leave_last_out(["x", "x", "y", "y", "x"], [1, 2, 1, 2, 1], [1, 2, 1, 2, 3])
    assert again.tolist() == [True, False, False, True, True]  # item 1 of x held out entirely


# ---------------------------------------------------------------- real data


def movielens_sample():
    path = shared_file("ratings", "sample_movielens_ratings.txt")
    return pd.read_csv(path, sep="::", engine="python", names=["user", "item", "rating", "ts"])


def test_spark_sample_explicit_and_implicit():
    df = movielens_sample()
    held = leave_last_out(df.user, df.item, df.ts)
    tr, te = df[~held], df[held]
    model = fit_recommender(tr.user, tr.item, tr.rating, tr.ts)
    mean_only = np.sqrt(np.mean((te.rating - tr.rating.mean()) ** 2))
    assert evaluate_explicit(model, te.user, te.item, te.rating)["rmse"] < mean_only
    liked = tr[tr.rating >= 3]
    imp = fit_recommender(liked.user, liked.item, None, liked.ts, feedback="implicit")
    m = evaluate_ranking(imp, te.user, te.item, k=10)
    assert m["users"] == 30 and 0 <= m["ndcg@10"] <= m["hit_rate@10"] <= 1
    assert len(imp.recommend_all(k=10)["item"]) == 300


@pytest.mark.slow
def test_movielens_targets():
    """ml-latest-small: explicit 5-fold RMSE <= 0.860 and implicit NDCG@10 >= 0.045 (~10 s)."""
    df = pd.read_csv(shared_file("ratings", "ratings.csv"))
    parts = np.array_split(np.random.default_rng(42).permutation(len(df)), 5)
    rmse = []
    for f in range(5):
        tr = df.iloc[np.concatenate([p for j, p in enumerate(parts) if j != f])]
        te = df.iloc[parts[f]]
        model = fit_recommender(tr.userId, tr.movieId, tr.rating)
        rmse.append(evaluate_explicit(model, te.userId, te.movieId, te.rating)["rmse"])
    assert np.mean(rmse) <= 0.860
    pos = df[df.rating >= 4]
    held = leave_last_out(pos.userId, pos.movieId, pos.timestamp)
    model = fit_recommender(pos.userId[~held], pos.movieId[~held], None, pos.timestamp[~held],
                            feedback="implicit")
    m = evaluate_ranking(model, pos.userId[held], pos.movieId[held], k=10)
    assert m["users"] == 608 and m["ndcg@10"] >= 0.045
