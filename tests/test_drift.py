"""Drift against the training data: the stored profile, ml_drift / ml_drift_by in pure SQL,
sqlml.drift() and `sqlml drift`, cross-checked against independent computations (scipy's
ks_2samp on the raw columns, a PSI worked by hand) and refusing bad input with its reason."""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from clients import cli_json
from scipy.stats import ks_2samp

import sqlml
from sqlml.cli.commands import main
from sqlml.datasets import make_customers, make_ratings
from sqlml.errors import describe

DATA = Path(__file__).resolve().parent / "data"
NUMERIC = ("tenure_months", "monthly_charges", "total_charges", "support_calls_90d",
           "avg_session_minutes", "late_payments_12m", "last_nps")
# |our KS - ks_2samp| on these columns: the KS from the stored percentiles misses at most the
# largest step of the training CDF between two stored points (0.01 for a continuous column).
KS_TOLERANCE = 0.02


class Db:
    """The module's file, and a sqlml connection to it that plain clients can close."""

    def __init__(self, path: Path) -> None:
        self.path, self._con = path, sqlml.connect(str(path))

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = sqlml.connect(str(self.path))
        return self._con

    def release(self) -> Path:
        """Close the connection (a duckdb CLI cannot open a file another process writes)."""
        if self._con is not None:
            self._con.execute("CHECKPOINT")
            self._con.close()
            self._con = None
        return self.path


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    state = Db(tmp_path_factory.mktemp("drift") / "drift.duckdb")
    con = state.con
    train = make_customers(2000, seed=1)  # noqa: F841 (read by DuckDB)
    shifted = make_customers(2000, seed=2)
    shifted["tenure_months"] += 24
    shifted.loc[shifted.index % 7 == 0, "plan"] = "platinum"
    fresh = make_customers(2000, seed=3)  # noqa: F841
    for name in ("train", "shifted", "fresh"):
        con.execute(f"CREATE TABLE {name} AS FROM {name}")
    sqlml.create_model(con, "churn", "SELECT * EXCLUDE (customer_id) FROM train",
                       target="churned", model_type="logistic", function="predict_churn")
    yield state
    state.release()


def by_feature(rows: list[dict]) -> dict[str, dict]:
    return {r["feature"]: r for r in rows}


def test_profile_is_stored_with_the_version(db):
    con = db.con
    rows = con.execute("SELECT feature, kind, list_sum(bin_share), list_sum(category_share) "
                       "+ other_share FROM sqlml.training_profiles WHERE name = 'churn' "
                       "AND version = 1 AND kind <> 'text_vocabulary'").fetchall()
    kinds = {f: k for f, k, _, _ in rows}
    assert kinds["tenure_months"] == "numeric" and kinds["plan"] == "category"
    assert kinds["support_notes"] == "text_length" and kinds["ml_score"] == "score"
    assert "signup_date" not in kinds        # dates get no profile
    for _, _, bins, cats in rows:
        assert math.isclose(bins if bins is not None else cats, 1.0, abs_tol=1e-9)
    # A failed training stores no profile.
    with pytest.raises(duckdb.Error):
        con.execute("SELECT ml_create_model('broken', 'SELECT 1 AS x', 'nope')")
    assert con.execute("SELECT count(*) FROM sqlml.training_profiles WHERE name = 'broken'"
                       ).fetchall()[0][0] == 0


def test_a_fresh_sample_is_stable_everywhere(db):
    con = db.con
    rows = sqlml.drift(con, "churn", "SELECT * FROM fresh")
    assert {r["verdict"] for r in rows} == {"stable"}, [
        (r["feature"], r["psi"]) for r in rows if r["verdict"] != "stable"]
    score = by_feature(rows)["ml_score"]
    assert score["kind"] == "prediction" and score["psi"] is not None


def test_a_known_shift_is_found(db):
    con = db.con
    rows = by_feature(sqlml.drift(con, "churn", "SELECT * FROM shifted"))
    assert rows["tenure_months"]["verdict"] == "broken" and rows["tenure_months"]["psi"] > 1
    plan = rows["plan"]
    assert plan["verdict"] == "broken"
    assert plan["unseen_categories"] == 1 and plan["unseen_examples"] == ["platinum"]
    assert "unseen" in plan["note"]
    assert rows["region"]["verdict"] == "stable"


def test_a_column_all_null_is_broken(db):
    con = db.con
    rows = by_feature(sqlml.drift(
        con, "churn", "SELECT * REPLACE (NULL::DOUBLE AS monthly_charges) FROM fresh"))
    assert rows["monthly_charges"]["verdict"] == "broken"
    assert rows["monthly_charges"]["note"] == "every value is NULL"
    r = rows["monthly_charges"]
    assert r["missing_rate"] == 1.0
    assert r["missing_rate_change"] == pytest.approx(1.0 - r["training_missing_rate"])


TOKEN = re.compile("[a-z0-9]+")


def _tokens(texts) -> list[str]:
    return [t for s in texts if isinstance(s, str) for t in TOKEN.findall(s.lower())]


def _reverse_words(text):
    return text if not isinstance(text, str) else " ".join(w[::-1] for w in text.split(" "))


@pytest.mark.parametrize(("every", "verdict"), [(1000, "stable"), (6, "shifted"), (2, "broken")])
def test_vocabulary_hit_rate_equals_a_hand_computation(db, every, verdict):
    """Notes whose words are spelled backwards (same lengths, so the length PSI stays put) in
    every ``every``-th row: the hit rate falls by about their share of the tokens."""
    con = db.con
    counts = Counter(_tokens(make_customers(2000, seed=1)["support_notes"]))
    vocabulary = {t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2000]}
    training = sum(counts[t] for t in vocabulary) / sum(counts.values())
    month = make_customers(2000, seed=3)
    backwards = month.index % every == 0
    month.loc[backwards, "support_notes"] = month.loc[backwards, "support_notes"].map(
        _reverse_words)
    con.execute("CREATE OR REPLACE TABLE reworded AS FROM month")
    tokens = _tokens(month["support_notes"])
    hit = sum(t in vocabulary for t in tokens) / len(tokens)
    row = by_feature(sqlml.drift(con, "churn", "FROM reworded"))["support_notes"]
    assert row["kind"] == "text_length"
    assert row["training_hit_rate"] == pytest.approx(training, abs=1e-6)
    assert row["hit_rate"] == pytest.approx(hit, abs=1e-6)
    assert row["hit_rate_change"] == pytest.approx(hit - training, abs=2e-6)
    assert row["psi"] < 0.1 and row["verdict"] == verdict, row
    if verdict != "stable":
        assert row["note"].startswith("vocabulary hit rate fell by")
    stored = con.execute("SELECT len(categories), complete FROM sqlml.training_profiles "
                         "WHERE name = 'churn' AND kind = 'text_vocabulary'").fetchall()
    assert stored == [(len(counts), len(counts) <= 2000)]


@pytest.mark.parametrize("table", ["fresh", "shifted"])
def test_ks_is_close_to_scipys_on_the_raw_columns(db, table):
    con = db.con
    ours = by_feature(sqlml.drift(con, "churn", f"SELECT * FROM {table}"))
    for column in NUMERIC:
        a, b = (con.execute(f"SELECT {column}::DOUBLE AS {column} FROM {t} "
                            f"WHERE {column} IS NOT NULL").fetchnumpy()[column]
                for t in ("train", table))
        exact = ks_2samp(np.asarray(a), np.asarray(b)).statistic
        assert abs(ours[column]["ks"] - exact) <= KS_TOLERANCE, (column, ours[column]["ks"],
                                                                  exact)


@pytest.fixture(scope="module")
def worked(db):
    """x = 1..100 twice (deciles 10, 20, ..., 90: ten bins of 0.1) and c = a 50%, b 30%, c 20%."""
    con = db.con
    con.execute("CREATE TABLE worked AS SELECT (i % 100) + 1 AS x, "
                "CASE WHEN i < 100 THEN 'a' WHEN i < 160 THEN 'b' ELSE 'c' END AS c, "
                "((i % 100) + hash(i) % 30 > 60) AS y FROM range(200) t(i)")
    sqlml.create_model(con, "worked", "worked", target="y", model_type="logistic")
    return con


def test_psi_equals_a_hand_computed_example(worked):
    # New rows: half in the first bin (x <= 10), half in the last (x > 90); c = a 20%,
    # b 30%, c 30% and 20% of an unseen value d.
    rows = by_feature(sqlml.drift(worked, "worked", """
        SELECT CASE WHEN i < 50 THEN 1 + i % 10 ELSE 91 + i % 10 END AS x,
               CASE WHEN i < 20 THEN 'a' WHEN i < 50 THEN 'b' WHEN i < 80 THEN 'c' ELSE 'd' END
               AS c FROM range(100) t(i)"""))
    floor = 0.0001
    x = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (floor - 0.1) * math.log(floor / 0.1)
    c = ((0.2 - 0.5) * math.log(0.2 / 0.5) + 0 + (0.3 - 0.2) * math.log(0.3 / 0.2)
         + (0.2 - floor) * math.log(0.2 / floor))
    assert rows["x"]["psi"] == pytest.approx(x, abs=1e-5)       # 6.80822
    assert rows["c"]["psi"] == pytest.approx(c, abs=1e-5)       # 1.83480
    assert rows["c"]["unseen_categories"] == 1 and rows["c"]["unseen_examples"] == ["d"]
    # KS: the new CDF is 0.5 from x = 10 to 90, where the training one runs 0.1 .. 0.9.
    assert rows["x"]["ks"] == pytest.approx(0.4, abs=1e-9)


def test_drift_per_group_equals_drift_of_each_group(db):
    con = db.con
    grouped = sqlml.drift(con, "churn", "SELECT * FROM shifted", by="region")
    regions = {r["group"] for r in grouped}
    assert len(regions) == 7
    one = sorted(regions)[0]
    alone = by_feature(sqlml.drift(con, "churn", f"SELECT * FROM shifted WHERE region = '{one}'"))
    for r in grouped:
        if r["group"] == one:
            assert (r["psi"], r["ks"], r["verdict"]) == pytest.approx(
                (alone[r["feature"]]["psi"], alone[r["feature"]]["ks"],
                 alone[r["feature"]]["verdict"])), r["feature"]


def drift_error(con, query: str, model: str = "churn") -> str:
    with pytest.raises(duckdb.Error) as info:
        con.execute(f"FROM ml_drift('{model}', '{query}')").fetchall()
    outcome = describe(info.value)
    assert outcome.cls_name == "DriftError", outcome
    return outcome.message


def test_a_missing_feature_is_named(db):
    con = db.con
    text = drift_error(con, "SELECT * EXCLUDE (tenure_months) FROM fresh")
    assert "no column 'tenure_months'" in text and "'churn'" in text and "Add it" in text


def test_a_type_change_names_both_types(db):
    con = db.con
    text = drift_error(con, "SELECT * REPLACE (tenure_months::VARCHAR AS tenure_months) "
                            "FROM fresh")
    assert "'tenure_months' is VARCHAR in the query but was BIGINT at training" in text
    assert "Cast the column back" in text
    # Another numeric type is the same numbers: no error.
    sqlml.drift(con, "churn", "SELECT * REPLACE (tenure_months::DOUBLE AS tenure_months) "
                              "FROM fresh")


def test_an_empty_query_is_refused(db):
    con = db.con
    text = drift_error(con, "SELECT * FROM fresh WHERE false")
    assert "returned no rows" in text and "'churn'" in text and "WHERE" in text


def test_a_model_without_profile_asks_to_retrain(tmp_path):
    path = tmp_path / "v1.duckdb"
    shutil.copy(DATA / "v1_catalog.duckdb", path)
    con = sqlml.connect(str(path))     # migrates the old catalog: its models have no profile
    model = con.execute("SELECT name FROM sqlml.models ORDER BY name LIMIT 1").fetchall()[0][0]
    text = drift_error(con, "SELECT 1 AS x", model)
    assert f"model '{model}' has no training profile" in text
    assert "Retrain to enable drift checks" in text
    con.close()


def test_a_recommender_is_refused(db):
    con = db.con
    ratings = make_ratings(40, 60, density=0.2)  # noqa: F841 (read by DuckDB)
    con.execute("CREATE TABLE ratings AS FROM ratings")
    sqlml.create_model(con, "recs", "ratings", problem_type="recommendation",
                       function="recommend", settings={"user_col": "user_id",
                                                       "item_col": "movie_id",
                                                       "rating_col": "rating"})
    text = drift_error(con, "SELECT * FROM ratings", "recs")
    assert "'recs' is a recommender" in text and "retrain the recommender" in text


def test_the_duckdb_cli_computes_the_same_rows(db):
    con = db.con
    scored = ("SELECT *, predict_churn_probability(*COLUMNS(* EXCLUDE (customer_id, churned))) "
              "AS ml_score FROM shifted")
    sql = f"FROM ml_drift('churn', '{scored}')"
    rel = con.execute(sql)
    names = [d[0] for d in rel.description]
    session = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    path = db.release()
    plain = cli_json(path, sql)
    assert isinstance(plain, list), plain
    assert [(r["feature"], r["verdict"]) for r in plain] == [(r["feature"], r["verdict"])
                                                              for r in session]
    for got, want in zip(plain, session, strict=True):
        for column in ("psi", "ks", "hit_rate", "hit_rate_change"):
            assert got[column] == pytest.approx(want[column]), column
    assert by_feature(plain)["support_notes"]["hit_rate"] is not None
    assert plain[-1]["feature"] == "ml_score" and plain[-1]["psi"] is not None
    grouped = cli_json(path, "SELECT \"group\", count(*) AS n FROM ml_drift_by('churn', "
                             "'FROM shifted', 'region') GROUP BY ALL")
    assert isinstance(grouped, list) and len(grouped) == 7, grouped


# Wide enough for every column, whatever terminal size another test left in the environment.
CLI = CliRunner(env={"COLUMNS": "200", "LINES": "60"})


def test_the_command_line_prints_the_table_and_fails_on_request(db):
    path = db.release()
    ok = CLI.invoke(main, ["drift", str(path), "churn", "SELECT * FROM fresh"])
    assert ok.exit_code == 0, ok.output
    assert "tenure_months" in ok.output and "ml_score" in ok.output
    fail = CLI.invoke(main, ["drift", str(path), "churn", "SELECT * FROM shifted",
                                     "--fail-on", "broken"])
    assert fail.exit_code == 3 and "verdict broken" in fail.output
    bad = CLI.invoke(main, ["drift", str(path), "churn", "FROM fresh WHERE false"])
    assert bad.exit_code == 1 and "returned no rows" in bad.output


def test_the_vocabulary_keeps_the_most_frequent_words(monkeypatch):
    """With room for 3 words: the 3 most frequent (ties by the word), and the training hit rate
    is their share of every token."""
    import pyarrow as pa

    from sqlml.train import profile

    monkeypatch.setattr(profile, "VOCABULARY", 3)
    texts = ["Late fee, LATE fee again", "fee waived", None, "router 2 broken; late", "2 2"]
    con = duckdb.connect()
    con.register(profile._TABLE, pa.table({"notes": texts}))
    row = profile.vocabulary_row(con, "notes", "VARCHAR", '"notes"', len(texts))
    counts = Counter(_tokens(texts))
    kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert row[1] == "text_vocabulary" and row[11] == [w for w, _ in kept] == ["2", "fee", "late"]
    assert row[5] == pytest.approx(sum(n for _, n in kept) / sum(counts.values()))
    assert row[4] == pytest.approx(0.2) and row[14] is False
