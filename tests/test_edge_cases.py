"""Inputs a new user brings that the other tests did not: odd column types, odd tables, odd
sources and odd scoring inputs. Each test pins a crash, a wrong answer or an unclear error found
by using sqlml on data it had not seen, against an independent reference where there is one."""

import duckdb
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sqlml
from sqlml.train import estimators, evaluation

BASE = """
CREATE OR REPLACE TABLE base AS
SELECT i, (hash(i) % 1000) / 10.0 AS x1, (hash(i * 3) % 7)::INTEGER AS x2,
       ['a', 'b', 'c'][1 + (hash(i * 5) % 3)::INTEGER] AS cat,
       ((hash(i) % 1000) / 10.0 + (hash(i * 7) % 300) / 10.0
        + CASE WHEN (hash(i * 5) % 3) = 0 THEN 20 ELSE 0 END > 60) AS y
FROM range(300) t(i)
"""


@pytest.fixture
def base(con):
    con.execute(BASE)
    return con


def train(con, name, source, **kw):
    kw.setdefault("model_type", "logistic")
    return sqlml.create_model(con, name, source, **kw)


def column(con, sql):
    return [r[0] for r in con.execute(sql).fetchall()]


# -- target types ------------------------------------------------------------------------------
def test_hugeint_and_decimal_class_labels_train_as_the_bigint_ones_do(base):
    # HUGEINT and DECIMAL(p, 0) arrive from Arrow as Decimal objects, which scikit-learn called
    # an "unknown" target type: every candidate failed. Same rows as BIGINT are the reference.
    base.execute("CREATE TABLE tiers AS SELECT i, x1, 'k' || x2 AS k, x2 % 3 * 1000 AS tier "
                 "FROM base")
    for name, cast in (("as_bigint", "BIGINT"), ("as_hugeint", "HUGEINT"),
                       ("as_decimal", "DECIMAL(4,0)")):
        s = train(base, name, f"SELECT x1, k, tier::{cast} AS tier FROM tiers", target="tier",
                  problem_type="multiclass_classification")
        assert s["problem_type"] == "multiclass_classification"
    want = column(base, "SELECT predict_as_bigint(t)::VARCHAR FROM tiers t ORDER BY i")
    assert set(want) == {"0", "1000", "2000"}
    for name in ("as_hugeint", "as_decimal"):
        assert column(base, f"SELECT predict_{name}(t) FROM tiers t ORDER BY i") == want
        assert column(base, f"SELECT predict_{name}_sql(t) FROM tiers t ORDER BY i") == want


def test_infinite_values_are_named_before_any_model_sees_them(base):
    base.execute("CREATE TABLE inf AS SELECT x1, CASE WHEN i % 3 = 0 THEN 'inf'::DOUBLE "
                 "ELSE x1 END AS \"odd col\", y FROM base")
    with pytest.raises(duckdb.Error) as info:
        train(base, "m", "inf", target="y")
    assert ("column 'odd col' holds 100 infinite value(s) (first: inf), which no model can "
            "learn from. Replace them in the training query, e.g. CASE WHEN isinf(\"odd col\") "
            "THEN NULL ELSE \"odd col\" END AS \"odd col\"") in str(info.value)
    with pytest.raises(duckdb.Error, match=r"target 'x1' holds 100 infinite value\(s\), which a "
                                           r"regression cannot fit. Leave those rows out"):
        train(base, "r", "SELECT x2, CASE WHEN i % 3 = 0 THEN '-inf'::DOUBLE ELSE x1 END AS x1 "
              "FROM base", target="x1", model_type="linear")
    assert base.execute("SELECT count(*) FROM sqlml.model_versions").fetchall() == [(0,)]


# -- feature column types ----------------------------------------------------------------------
def test_timestamptz_features_are_read_as_utc_whatever_the_session_time_zone(base):
    # It failed with pandas' "Cannot subtract tz-naive and tz-aware datetime-like objects".
    base.execute("SET TimeZone = 'America/New_York'")
    base.execute("CREATE TABLE tz AS SELECT x1, TIMESTAMPTZ '2024-01-01 00:00:00+00' "
                 "+ to_hours(i * 7) AS seen, y FROM base")
    base.execute("CREATE TABLE naive AS SELECT x1, timezone('UTC', seen) AS seen, y FROM tz")
    train(base, "tz", "tz", target="y")
    train(base, "naive", "naive", target="y")
    want = column(base, "SELECT predict_naive_probability(t) FROM naive t ORDER BY x1, seen")
    # Equal to 1e-12: one model may be served by its compiled SQL, the other through Python.
    got = column(base, "SELECT predict_tz_probability(t) FROM tz t ORDER BY x1, seen")
    assert got == pytest.approx(want, rel=0, abs=1e-12)
    base.execute("SET TimeZone = 'Asia/Tokyo'")
    assert column(base, "SELECT predict_tz_probability(t) FROM tz t ORDER BY x1, seen") == got


def test_unsupported_column_types_are_left_out_with_a_note_not_a_crash(base):
    # A UNION column failed with pyarrow's "No known equivalent Pandas block".
    s = train(base, "odd", "SELECT x1, union_value(k := x2) AS u, [x2] AS l, {'k': x2} AS st, "
              "MAP {'k': x2} AS mp, cat::BLOB AS bl, to_days(x2) AS iv, "
              "'nan'::DOUBLE AS nan_only, y FROM base", target="y")
    notes = s["notes"].split("; ")
    for col, kind in (("u", "UNION(k INTEGER)"), ("l", "INTEGER[]"), ("st", "STRUCT(k INTEGER)"),
                      ("mp", "MAP(VARCHAR, INTEGER)"), ("bl", "BLOB"), ("iv", "INTERVAL")):
        assert f"column {col} left out: type {kind} is not supported" in notes
    assert "column nan_only left out: every value is NULL or NaN" in notes
    assert [f.name for f in sqlml.load_model(base, "odd").features] == ["x1"]


def test_integers_beyond_2_to_the_53_are_rounded_as_duckdb_casts_them(base):
    # hash() values (UBIGINT) failed pyarrow's safe cast: "Integer value ... not in range".
    base.execute("CREATE TABLE h AS SELECT x1, hash(i % 40) AS h, y FROM base")
    base.execute("CREATE TABLE hd AS SELECT x1, h::DOUBLE AS h, y FROM h")
    train(base, "h", "h", target="y")
    train(base, "hd", "hd", target="y")
    want = column(base, "SELECT predict_hd_probability(t) FROM hd t ORDER BY x1, h")
    assert column(base, "SELECT predict_h_probability(t) FROM h t ORDER BY x1, h") == want
    got = column(base, "SELECT predict_h_probability_sql(t) FROM h t ORDER BY x1, h")
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_one_feature_sql_function_refuses_a_whole_row(base):
    # The one-parameter macro read a row as the feature: CAST(row AS VARCHAR) is an unseen
    # category, so every row got the same, wrong probability.
    train(base, "one", "SELECT cat, y FROM base", target="y")
    want = column(base, "SELECT predict_one_probability(b) FROM base b ORDER BY i")
    assert column(base, "SELECT predict_one_probability_sql(b.cat) FROM base b ORDER BY i") \
        == pytest.approx(want, abs=1e-12)
    with pytest.raises(duckdb.Error) as info:
        base.execute("SELECT predict_one_probability_sql(b) FROM base b").fetchall()
    assert ("predict_one_probability_sql: model function of one feature (cat VARCHAR) takes "
            "that column, not a whole row, in SQL. Call predict_one_probability_sql(t.\"cat\") "
            "(in a sqlml session the function without _sql also takes the row).") \
        in str(info.value)
    # The function without _sql takes the row in a session: Python serves one-feature models.
    assert column(base, "SELECT predict_one_probability(b) FROM base b ORDER BY i") == want


# -- model defaults on small data ----------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_on_iris_learns_instead_of_stopping_at_chance(con):
    # Early stopping held out 12 of iris' 120 training rows and stopped at accuracy 0.33.
    X, y = load_iris(return_X_y=True, as_frame=True)
    frame = X.set_axis([f"f{i}" for i in range(4)], axis=1).assign(species=y)
    con.execute("CREATE TABLE iris AS FROM frame")
    notes = train(con, "iris", "iris", target="species", model_type="mlp")["notes"]
    got = dict(con.execute("SELECT metric, value FROM ml_model_metrics('iris') "
                           "WHERE class_label IS NULL").fetchall())["accuracy"]
    tr, va = evaluation.split(len(y), y.to_numpy(), "multiclass_classification", 0.2, 42, "t")
    ref = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=300,
                                                        random_state=42))
    ref.fit(frame.iloc[tr, :4], y.iloc[tr])
    assert got == pytest.approx(ref.score(frame.iloc[va, :4], y.iloc[va]), abs=1e-12)
    assert got >= 0.9
    # scikit-learn warns it used all 300 epochs; sqlml says so in the notes, not on stderr.
    assert ref[-1].n_iter_ == 300
    assert notes == ("mlp ran all max_iter 300 epochs without converging; raise it, e.g. "
                     "hyperparameters := {max_iter: 600}, for a closer fit")
    mlp = estimators.lookup("mlp")
    assert mlp.make("regression", {}, 0, rows=120).early_stopping is False
    assert mlp.make("regression", {}, 0, rows=20_000).early_stopping is True
    assert mlp.make("regression", {"early_stopping": True}, 0, rows=120).early_stopping is True


def test_knn_on_a_ten_row_table_asks_for_no_more_neighbours_than_rows(base):
    # It failed with scikit-learn's "Expected n_neighbors <= n_samples_fit".
    train(base, "tiny", "SELECT x1, cat, i % 2 = 0 AS even FROM base LIMIT 10", target="even",
          model_type="knn")
    est = sqlml.load_model(base, "tiny").pipeline.named_steps["model"]
    assert est.n_neighbors == 8   # the 8 rows of the training split
    assert len(column(base, "SELECT predict_tiny(b) FROM base b")) == 300


# -- sources -------------------------------------------------------------------------------------
def test_a_source_is_read_never_run_for_its_effects(base):
    for source, got in (("SELECT x1, y FROM base; DROP TABLE base", "2 statement(s) (SELECT, "
                                                                     "DROP)"),
                        ("CREATE TABLE copy AS SELECT * FROM base", "1 statement(s) (CREATE)")):
        with pytest.raises(duckdb.Error) as info:
            train(base, "m", source, target="y")
        assert (f"ml_create_model: the training data must be a table name or one query that "
                f"returns rows (SELECT, FROM, VALUES, WITH ...), got {got}") in str(info.value)
    train(base, "m", "base", target="y")
    with pytest.raises(duckdb.Error, match=r"ml_refresh_scores: the source must be a table name "
                                           r"or one query .* got 2 statement\(s\) \(SELECT, "
                                           r"DELETE\)"):
        base.execute("SELECT ml_refresh_scores('m', 'FROM base; DELETE FROM base', "
                     "key := 'i')").fetchall()
    assert base.execute("SELECT count(*) FROM base").fetchall() == [(300,)]
    assert base.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'copy'"
                        ).fetchall() == [(0,)]


def test_quoted_table_names_files_and_target_case(base, tmp_path):
    base.execute('CREATE TABLE "my table" AS SELECT x1, cat, y AS Churned FROM base')
    path = tmp_path / "rows.parquet"
    base.execute(f"COPY \"my table\" TO '{path}'")
    a = train(base, "quoted", '"my table"', target="churned")   # DuckDB ignores case, so do we
    b = train(base, "file", f"'{path}'", target="CHURNED")
    assert a["training_rows"] == b["training_rows"] == 300
    assert a["validation_score"] == b["validation_score"]
    with pytest.raises(duckdb.Error, match=r"column 'x1' appears more than once in the training "
                                           r"data \(as 'x1' and 'x1'\); each feature needs a name "
                                           r"of its own. Rename one in the query"):
        train(base, "dup", "SELECT x1, x1, y FROM base", target="y")
    with pytest.raises(duckdb.Error, match=r"no usable feature columns remain \(the training "
                                           r"data has no column besides the target\)"):
        train(base, "lone", "SELECT y FROM base", target="y")


# -- scoring inputs and names ------------------------------------------------------------------
def test_scoring_inputs_of_the_wrong_kind_are_named(base):
    base.execute("CREATE TABLE dated AS SELECT x1, cat, DATE '2024-01-01' + x2 AS d, y FROM base")
    train(base, "dated", "dated", target="y")
    # An integer for a DATE used to be read as nanoseconds since 1970: a silent wrong answer.
    # The same words from Python (ml_predict, the model's own function) and from its compiled
    # SQL (_sql); each names the type as its side knows it.
    for call, got in (("ml_predict('dated', x1, cat, 5)", "int32"),
                      ("predict_dated(x1, cat, 5)", "int32"),
                      ("predict_dated_sql(x1, cat, 5)", "INTEGER")):
        with pytest.raises(duckdb.Error, match=r"(predict_dated(_probability)?|ml_predict): "
                                               r"feature 'd' must be a date or "
                                               rf"timestamp \(DATE at training\), got {got} "
                                               r"value 5\."):
            base.execute(f"SELECT {call} FROM base").fetchall()
    for call, got in (("ml_predict('dated', x1, {'k': 1}, d)", "struct<k: int32>"),
                      ("predict_dated_sql(x1, {'k': 1}, d)", "STRUCT\\(k INTEGER\\)")):
        with pytest.raises(duckdb.Error, match=r"(predict_dated(_probability)?|ml_predict): "
                                               r"feature 'cat' must be text or "
                                               rf"a category \(VARCHAR at training\), got {got} "
                                               r"value \{'k': 1\}"):
            base.execute(f"SELECT {call} FROM dated").fetchall()
    with pytest.raises(duckdb.Error, match=r"model reference 'dated@latest': model 'dated' has "
                                           r"no version 'latest'; stored versions are 1"):
        base.execute("SELECT ml_predict('dated@latest', t) FROM dated t").fetchall()


def test_function_names_that_differ_only_in_case_clash_with_a_usable_remedy(base):
    train(base, "churn", "base", target="y")
    with pytest.raises(duckdb.Error) as info:
        train(base, "Churn", "base", target="y")
    assert ("function name 'predict_Churn' clashes with the function of model 'churn' macro "
            "function 'predict_churn") in str(info.value)
    assert ("(DuckDB function names ignore case). Choose another name, e.g. function := "
            "'predict_Churn_2'.") in str(info.value)


def test_python_predict_proba_finds_columns_as_sql_does(base):
    train(base, "py", "SELECT x1, x2, cat, y FROM base", target="y",
          model_type="gradient_boosting", hyperparameters={"max_iter": 20})
    model = sqlml.load_model(base, "py")
    df = base.sql("SELECT i, cat, x2, x1 FROM base ORDER BY i").df()
    want = column(base, "SELECT predict_py_probability(b) FROM base b ORDER BY i")
    # Extra and reordered columns, names in another case: as a whole-row SQL call reads them.
    got = model.predict_proba(df.rename(columns=str.upper))[:, 1]
    np.testing.assert_array_equal(got, want)
    assert model.predict_proba(df.iloc[:0]).shape == (0, 2)   # scikit-learn refuses 0 rows
    with pytest.raises(sqlml.errors.PredictionInputError) as info:
        model.predict_proba(df.drop(columns="cat"))
    assert str(info.value) == (
        "predict_proba: the DataFrame has no column 'cat', which model 'py' needs. It expects "
        "(x1 DOUBLE, x2 INTEGER, cat VARCHAR). Add those columns to the DataFrame.")
