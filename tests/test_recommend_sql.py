"""Recommenders from SQL: training, generated functions, pure-SQL agreement, errors."""

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pytest

import sqlml
from sqlml.datasets import make_ratings

SETTINGS = ("{user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating', "
            "timestamp_col: 'rated_at', feedback: 'explicit'}")


@pytest.fixture
def recs(con):
    ratings = make_ratings(150, 200, density=0.08)  # noqa: F841 (read by DuckDB)
    con.execute("CREATE TABLE ratings AS FROM ratings")
    s = con.execute(f"SELECT ml_create_model('movie_recs', 'ratings', problem_type := "
                    f"'recommendation', function := 'recommend_movies', settings := {SETTINGS})"
                    ).fetchall()[0][0]
    assert s["problem_type"] == "recommendation" and s["version"] == 1
    return con


def rows(con, sql):
    return con.execute(sql).fetchall()


def test_python_and_pure_sql_recommendations_agree(recs):
    users = [r[0] for r in rows(recs, "SELECT DISTINCT user_id FROM ratings ORDER BY 1 LIMIT 25")]
    for u in [*users, 10**9]:  # the last one is unknown: cold start on both paths
        py = rows(recs, f"SELECT rank, movie_id, score, source FROM recommend_movies({u}, k := 7)")
        sql = rows(recs, f"SELECT rank, movie_id, score, source FROM recommend_movies_sql({u}, "
                         f"k := 7)")
        assert [r[:2] for r in py] == [r[:2] for r in sql] and len(py) == 7
        assert all(abs(a[2] - b[2]) < 1e-6 and a[3] == b[3] for a, b in zip(py, sql, strict=True))
    assert rows(recs, f"SELECT DISTINCT source FROM recommend_movies({10**9})") == [("popular",)]


def test_scores_follow_the_biased_factor_formula(recs):
    model = sqlml.load_model(recs, "movie_recs").model
    pairs = rows(recs, "SELECT user_id, movie_id FROM ratings USING SAMPLE 50 ROWS (reservoir, 1)")
    got = rows(recs, "SELECT recommend_movies_rating(user_id, movie_id), "
                     "recommend_movies_rating_sql(user_id, movie_id) FROM ratings "
                     "USING SAMPLE 50 ROWS (reservoir, 1)")
    for (u, i), (py, sql) in zip(pairs, got, strict=True):
        cu, ci = model._codes([u], "user")[0], model._codes([i], "item")[0]
        ref = (model.global_mean + model.user_bias[cu] + model.item_bias[ci]
               + model.user_factors[cu] @ model.item_factors[ci])
        assert py == pytest.approx(ref, abs=1e-9) and sql == pytest.approx(ref, abs=1e-9)


def test_seen_items_are_excluded_unless_asked(recs):
    u = rows(recs, "SELECT user_id FROM ratings GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    seen = {r[0] for r in rows(recs, f"SELECT movie_id FROM ratings WHERE user_id = {u}")}
    top = {r[0] for r in rows(recs, f"SELECT movie_id FROM recommend_movies({u}, k := 20)")}
    assert not top & seen
    with_seen = {r[0] for r in rows(recs, f"SELECT movie_id FROM recommend_movies({u}, k := 20,"
                                          f" exclude_seen := false)")}
    assert with_seen & seen
    reasons = rows(recs, f"SELECT reason FROM recommend_movies({u}, k := 3)")
    assert all(r[0].startswith("because you rated ") and int(r[0].split()[-1]) in seen
               for r in reasons)


def test_all_users_at_once_and_lateral(recs):
    n_users = rows(recs, "SELECT count(DISTINCT user_id) FROM ratings")[0][0]
    all_rows = rows(recs, "SELECT user_id, rank, movie_id FROM recommend_movies_all(k := 5)")
    assert len(all_rows) == 5 * n_users
    lateral = rows(recs, "SELECT u.user_id, r.rank, r.movie_id FROM (SELECT DISTINCT user_id "
                         "FROM ratings) u, LATERAL (FROM recommend_movies(u.user_id, k := 5)) r "
                         "ORDER BY 1, 2")
    assert lateral == sorted(all_rows)


def test_similar_items_and_stored_metrics(recs):
    sim = rows(recs, "FROM ml_similar_items('movie_recs', 1, k := 4)")
    assert [r[0] for r in sim] == [1, 2, 3, 4]
    assert all(-1 <= r[2] <= 1 for r in sim) and "1" not in [r[1] for r in sim]
    metrics = dict(rows(recs, "SELECT metric, value FROM ml_model_metrics('movie_recs')"))
    assert {"rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k",
            "hit_rate_at_k", "coverage_at_k"} <= set(metrics)
    baseline = rows(recs, "SELECT sqrt(avg((rating - (SELECT avg(rating) FROM ratings))^2)) "
                          "FROM ratings")[0][0]
    assert metrics["rmse"] < baseline  # beats predicting the global mean
    show = dict(rows(recs, "FROM ml_show_model('movie_recs')"))
    assert show["problem_type"] == "recommendation"
    assert show["function_parameters"] == "user_id BIGINT, movie_id BIGINT"


def test_implicit_feedback_string_and_uuid_ids(con):
    con.execute("""CREATE TABLE plays AS SELECT
        ['ann', 'bob', 'cyd', 'dee', 'eve', 'fay'][1 + (i % 6)] AS listener,
        uuid_extract_version(gen_random_uuid()) AS v,
        ('00000000-0000-4000-8000-' || lpad(((i * 7) % 11)::VARCHAR, 12, '0'))::UUID AS song,
        1 + (i % 3) AS n FROM range(300) t(i)""")
    s = con.execute("SELECT ml_create_model('songs', 'SELECT listener, song, n FROM plays', "
                    "problem_type := 'recommendation', settings := {user_col: 'listener', "
                    "item_col: 'song', rating_col: 'n', feedback: 'implicit'})").fetchall()[0][0]
    assert s["function"] == "recommend_songs" and "duplicate" in s["notes"]
    got = rows(con, "SELECT song, source FROM recommend_songs('ann', k := 3, exclude_seen := "
                    "false)")
    assert len(got) == 3 and all(isinstance(r[0], uuid.UUID) for r in got)
    assert rows(con, "SELECT DISTINCT source FROM recommend_songs('zed', k := 3)") == [
        ("popular",)]


@pytest.mark.parametrize("settings,query,message", [
    ("{user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating'}",
     "SELECT user_id, movie_id, NULL::DOUBLE AS rating FROM ratings",
     r"rating column 'rating' has \d+ NULL value\(s\)"),
    ("{user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating'}",
     "SELECT NULL::BIGINT AS user_id, movie_id, rating FROM ratings",
     r"user id column 'user_id' has \d+ NULL value\(s\)"),
    ("{user_col: 'user_id', item_col: 'movie_id', rating_col: 'r'}",
     "SELECT user_id, movie_id, rating::VARCHAR AS r FROM ratings",
     r"rating column 'r' must be numeric, got VARCHAR"),
    ("{user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating'}",
     "SELECT 1 AS user_id, movie_id, rating FROM ratings",
     r"needs at least 2 distinct users"),
    ("{user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating', implicit_threshold: 4}",
     "ratings", r"'implicit_threshold' setting only applies to feedback='implicit'"),
    ("{user_col: 'userid', item_col: 'movie_id', rating_col: 'rating'}",
     "ratings", r"column 'userid' named in settings is not in the training data. Did you mean "
                r"'user_id'"),
    ("{item_col: 'movie_id'}", "ratings", r"needs settings user_col"),
])
def test_bad_training_input(recs, settings, query, message):
    with pytest.raises(Exception, match=message):
        recs.execute(f"SELECT ml_create_model('bad', '{query}', problem_type := "
                     f"'recommendation', settings := {settings})").fetchall()


def test_k_must_be_positive(recs):
    with pytest.raises(Exception, match=r"k is the number of items to return and must be a "
                                        r"positive integer; got 0"):
        recs.execute("FROM recommend_movies(1, k := 0)").fetchall()


def test_drop_removes_factor_tables(recs):
    assert rows(recs, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE "
                      "'rec_movie_recs_v1_%'") == [(3,)]
    recs.execute("SELECT ml_drop_model('movie_recs')").fetchall()
    assert rows(recs, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE "
                      "'rec_movie_recs_%'") == [(0,)]


def test_pure_sql_recommendations_in_the_plain_duckdb_cli(tmp_path):
    cli = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(cli).exists():
        pytest.skip("the duckdb CLI (PyPI duckdb-cli) is not installed")
    path = tmp_path / "recs.duckdb"
    con = sqlml.connect(path)
    ratings = make_ratings(100, 150, density=0.1)  # noqa: F841
    con.execute("CREATE TABLE ratings AS FROM ratings")
    con.execute(f"SELECT ml_create_model('movie_recs', 'ratings', problem_type := "
                f"'recommendation', function := 'recommend_movies', settings := {SETTINGS})"
                ).fetchall()
    u = rows(con, "SELECT min(user_id) FROM ratings")[0][0]
    py = rows(con, f"SELECT movie_id, score FROM recommend_movies({u}, k := 5)")
    con.close()
    out = subprocess.run([cli, "-readonly", "-csv", "-noheader", str(path), "-c",
                          f"SELECT movie_id, score FROM recommend_movies_sql({u}, k := 5);"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cli_rows = [line.split(",") for line in out.stdout.strip().splitlines()]
    assert [int(r[0]) for r in cli_rows] == [r[0] for r in py]
    assert np.allclose([float(r[1]) for r in cli_rows], [r[1] for r in py], atol=1e-6)


def test_explain_model_of_a_recommender_says_what_explains_it(recs):
    with pytest.raises(duckdb.Error, match=r"ml_explain_model: model 'movie_recs' is a "
                                           r"recommender, which has no feature importance"):
        recs.execute("FROM ml_explain_model('movie_recs')").fetchall()


@pytest.mark.parametrize("fn", ["ml_predict", "ml_predict_probability"])
def test_predicting_with_a_recommender_points_to_its_function(recs, fn):
    with pytest.raises(duckdb.Error, match=fr"{fn}: model 'movie_recs' is a recommender, which "
                                           r"ranks items .* FROM recommend_movies\(user_id, "):
        recs.execute(f"SELECT {fn}('movie_recs', user_id) FROM ratings").fetchall()
