"""AUTO for implicit recommenders: EASE against its closed form, SQL against Python, trials."""

import numpy as np
import pytest
import scipy.sparse as sp

import sqlml
from sqlml.datasets import make_ratings
from sqlml.errors import TrainingError
from sqlml.recommend import ease
from sqlml.recommend.fit import fit_recommender

IMPLICIT = ("{user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating', "
            "feedback: 'implicit', implicit_threshold: 3.5")


def closed_form(X: np.ndarray, lam: float) -> np.ndarray:
    """EASE as Steck (2019) writes it, computed directly: B = I - P / diag(P), zero diagonal."""
    P = np.linalg.inv(X.T @ X + lam * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    return B


@pytest.mark.parametrize(("n_users", "n_items"), [(60, 30), (30, 60)])   # both Gram paths
def test_ease_weights_equal_the_closed_form(n_users, n_items):
    rng = np.random.default_rng(3)
    X = (rng.random((n_users, n_items)) < 0.3).astype(float)
    X[:2] = 1.0          # every item has at least two positives: none is left out
    pu, pi = np.nonzero(X)
    for lam in (0.5, 20.0):
        got = ease.fit_ease(pu, pi, n_users, n_items, lam, neighbors=n_items).toarray()
        np.testing.assert_allclose(got, closed_form(X, lam), atol=1e-5)


def test_ease_model_scores_are_the_profile_times_the_weights():
    df = make_ratings(80, 60, density=0.15, seed=5)
    m = fit_recommender(df.user_id, df.movie_id, feedback="implicit", algorithm="ease",
                        regularization=10.0)
    X = np.zeros((len(m.user_ids), len(m.item_ids)))
    owner = np.repeat(np.arange(len(m.user_ids)), np.diff(m.seen_indptr))
    X[owner, m.seen_items] = 1.0
    B = m.neighbors.toarray()
    users, items = m.user_ids[owner[:40]], m.item_ids[m.seen_items[::7][:40]]
    ref = X[m._codes(users, "user")] @ B
    np.testing.assert_allclose(m.predict(users, items),
                               ref[np.arange(40), m._codes(items, "item")], atol=1e-9)
    top = m.recommend(users[0], k=5)
    row = m._codes([users[0]], "user")[0]
    unseen = np.where(X[row] > 0, -np.inf, (X @ B)[row])
    assert [r[1] for r in top] == m.item_ids[np.argsort(-unseen, kind="stable")[:5]].tolist()


@pytest.fixture(scope="module")
def auto_con():
    c = sqlml.connect()
    ratings = make_ratings(120, 90, density=0.12, seed=11)  # noqa: F841 (read by DuckDB)
    c.execute("CREATE TABLE ratings AS FROM ratings")
    c.execute(f"SELECT ml_create_model('auto_recs', 'ratings', problem_type := "
              f"'recommendation', function := 'rec_auto', settings := {IMPLICIT}}})")
    c.execute(f"SELECT ml_create_model('ease_recs', 'ratings', problem_type := "
              f"'recommendation', function := 'rec_ease', settings := {IMPLICIT}, "
              f"algorithm: 'ease'}})")
    yield c
    c.close()


def test_auto_records_each_candidate_in_ml_trials(auto_con):
    trials = auto_con.execute("SELECT trial, model_type, objective, score, seconds, status, "
                              "parameters FROM ml_trials('auto_recs')").fetchall()
    kinds = {t[1] for t in trials}
    assert kinds == {"matrix_factorization", "ease"} and len(trials) >= 6
    assert all(t[2] == "ndcg_at_k" and t[5] == "completed" and 0 <= t[3] <= 1 and t[4] >= 0
               for t in trials)
    best = max(trials, key=lambda t: t[3])[3]
    stored = auto_con.execute("SELECT value FROM ml_model_metrics('auto_recs') "
                              "WHERE metric = 'ndcg_at_k'").fetchall()
    assert stored and stored[0][0] == pytest.approx(best)
    ease_only = auto_con.execute("SELECT DISTINCT model_type FROM ml_trials('ease_recs')")
    assert ease_only.fetchall() == [("ease",)]


def test_ease_sql_recommendations_equal_python(auto_con):
    users = [r[0] for r in auto_con.execute(
        "SELECT DISTINCT user_id FROM ratings ORDER BY 1 LIMIT 15").fetchall()]
    for u in [*users, 10**9]:
        py = auto_con.execute(f"SELECT rank, movie_id, score, source FROM rec_ease({u}, k := 7)"
                              ).fetchall()
        sql = auto_con.execute(f"SELECT rank, movie_id, score, source FROM rec_ease_sql({u}, "
                               f"k := 7)").fetchall()
        assert [r[:2] for r in py] == [r[:2] for r in sql] and len(py) == 7
        assert all(abs(a[2] - b[2]) < 1e-9 and a[3] == b[3] for a, b in zip(py, sql, strict=True))
    pairs = auto_con.execute("SELECT user_id, movie_id, rec_ease_rating(user_id, movie_id), "
                             "rec_ease_rating_sql(user_id, movie_id) FROM ratings "
                             "USING SAMPLE 30 ROWS (reservoir, 2)").fetchall()
    assert all(abs(p - s) < 1e-9 for _, _, p, s in pairs)
    every = auto_con.execute("SELECT count(*), count(DISTINCT user_id) FROM rec_ease_all(k := 3)"
                             ).fetchall()[0]
    assert every[0] == 3 * every[1] and every[1] >= len(users)
    python_all = auto_con.execute("SELECT user_id, rank, movie_id FROM rec_ease_all(k := 3) "
                                  "ORDER BY ALL").fetchall()
    model = sqlml.load_model(auto_con, "ease_recs").model
    rec = model.recommend_all(3, reasons=False)
    assert python_all == sorted(zip(rec["user"].tolist(), rec["rank"].tolist(),
                                    rec["item"].tolist(), strict=True))


def test_ease_model_survives_a_reload(auto_con):
    model = sqlml.load_model(auto_con, "ease_recs").model
    assert model.algorithm == "ease" and model.neighbors.nnz > 0


@pytest.mark.parametrize(("settings", "message"), [
    ("rating_col: 'rating', algorithm: 'ease'",
     r"algorithm 'ease' ranks items from implicit feedback.*Set feedback: 'implicit'"),
    ("feedback: 'implicit', algorithm: 'knn'",
     r"algorithm 'knn' is unknown.*'auto' or one of: 'als', 'ease'"),
], ids=["ease-with-explicit-feedback", "unknown-algorithm"])
def test_a_bad_algorithm_setting_names_the_remedy(con, settings, message):
    ratings = make_ratings(30, 20, density=0.25)  # noqa: F841 (read by DuckDB)
    with pytest.raises(Exception, match=message):
        con.execute("SELECT ml_create_model('bad', 'FROM ratings', problem_type := "
                    "'recommendation', settings := {user_col: 'user_id', item_col: 'movie_id', "
                    f"{settings}}})")


def test_ease_above_its_item_limit_is_refused(monkeypatch):
    monkeypatch.setattr(ease, "MAX_ITEMS", 10)
    df = make_ratings(30, 20, density=0.25)
    with pytest.raises(TrainingError, match=r"limited to 10 items; the training data has 20\. "
                                            r"Use algorithm 'als'"):
        fit_recommender(df.user_id, df.movie_id, feedback="implicit", algorithm="ease")


def test_bm25_weights_equal_the_implicit_library():
    nn = pytest.importorskip("implicit.nearest_neighbours")   # the 'bench' extra
    rng = np.random.default_rng(4)
    X = (rng.random((40, 30)) < 0.3) * rng.integers(1, 5, (40, 30)).astype(float)
    ref = nn.bm25_weight(sp.csr_matrix(X), K1=100, B=0.8)
    pu, pi = np.nonzero(X)
    got = ease.bm25(pu, pi, X[pu, pi], 40, 30)
    np.testing.assert_allclose(got, np.maximum(ref.toarray()[pu, pi], 0), rtol=1e-6)


def test_weighting_with_explicit_feedback_is_refused_with_a_remedy(con):
    ratings = make_ratings(30, 20, density=0.25)  # noqa: F841 (read by DuckDB)
    with pytest.raises(Exception, match=r"weighting 'bm25' applies to implicit ALS, but feedback "
                                        r"is 'explicit'\. Leave weighting out"):
        con.execute("SELECT ml_create_model('bad', 'FROM ratings', problem_type := "
                    "'recommendation', settings := {user_col: 'user_id', item_col: 'movie_id', "
                    "rating_col: 'rating', weighting: 'bm25'})")
