"""Catalog schema versions: a file written by an older sqlml migrates and serves the same answers.

tests/data/v1_catalog.duckdb was written by the flat-layout sqlml (schema version 1, artifacts
naming sqlml.preprocessing.* and sqlml.scaled_mlp.*); tests/data/make_v1_catalog.py made it.
"""

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import clients
import duckdb
import pytest
import sklearn

import sqlml
from sqlml import sqlfiles
from sqlml.catalog import migrations, store

V1_FILE = Path(__file__).parent / "data" / "v1_catalog.duckdb"
SCORED = "(SELECT * EXCLUDE (churned) FROM customers UNION ALL BY NAME FROM new_customers)"
SCORES = (
    f"SELECT customer_id, predict_churn_lr(c) AS churn_lr, "
    f"predict_churn_lr_probability(c) AS churn_lr_p, predict_churn_gb(c) AS churn_gb, "
    f"predict_churn_gb_probability(c) AS churn_gb_p, predict_spend_mlp(c) AS spend_mlp "
    f"FROM {SCORED} c ORDER BY customer_id")
RECOMMENDATIONS = (
    "SELECT u.user_id, r.* FROM (SELECT DISTINCT user_id FROM expected_recommendations) u, "
    "LATERAL (FROM recommend_movies(u.user_id, k := 5)) r ORDER BY u.user_id, r.rank")
RATINGS = ("SELECT user_id, movie_id, recommend_movies_rating(user_id, movie_id) AS predicted "
           "FROM expected_ratings ORDER BY user_id, movie_id")
EXPECTED = {
    "scores": (SCORES, "FROM expected_scores ORDER BY customer_id"),
    "recommendations": (RECOMMENDATIONS,
                        "FROM expected_recommendations ORDER BY user_id, rank"),
    "ratings": (RATINGS, "FROM expected_ratings ORDER BY user_id, movie_id"),
    "models": ("SELECT name FROM ml_models() ORDER BY name",
               "SELECT name FROM sqlml.models ORDER BY name"),
}
# Run in a new process: nothing of this test's sqlml (loaded models, caches) is reused.
SERVE = """
import json, sys, sqlml
con = sqlml.connect(sys.argv[1])
con.execute("SET enable_progress_bar = false")  # stdout carries only the JSON
out = {{"meta": dict(con.execute("FROM sqlml.meta").fetchall())}}
for key, (got, want) in ({expected!r}.items() if sys.argv[2] == "score" else ()):
    out[key] = [con.execute(got).fetchall(), con.execute(want).fetchall()]
print(json.dumps(out, default=str))
"""


@pytest.fixture
def v1_file(tmp_path) -> Path:
    path = tmp_path / "v1.duckdb"
    shutil.copyfile(V1_FILE, path)
    return path


def meta(path: Path) -> dict:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute("FROM sqlml.meta").fetchall())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def other_scikit_learn() -> str | None:
    """Why the file's models cannot be scored here, when this scikit-learn is not the one that
    fitted them: an estimator fitted by a newer scikit-learn does not load in an older one
    (LogisticRegression of 1.9 has no multi_class for 1.6), whatever sqlml's schema."""
    with duckdb.connect(str(V1_FILE), read_only=True) as con:
        wrote = {json.loads(r[0])["scikit-learn"] for r in con.execute(
            "SELECT library_versions FROM sqlml.model_versions").fetchall()}
    here = sklearn.__version__.split(".")[:2]
    if any(v.split(".")[:2] != here for v in wrote):
        return (f"the models in {V1_FILE.name} were fitted with scikit-learn "
                f"{', '.join(sorted(wrote))}; this is {sklearn.__version__}")
    return None


def test_v1_file_is_what_the_test_claims(v1_file):
    # Unversioned, and its artifacts name the modules of the flat layout.
    assert "schema_version" not in meta(v1_file)
    with duckdb.connect(str(v1_file), read_only=True) as con:
        blobs = [r[0] for r in con.execute("SELECT artifact FROM sqlml.model_versions "
                                           "WHERE model_type <> 'matrix_factorization'").fetchall()]
    schemas = b"".join(zipfile.ZipFile(io.BytesIO(b)).read("schema.json") for b in blobs)
    assert b'"sqlml.preprocessing"' in schemas and b'"sqlml.scaled_mlp"' in schemas


def test_v1_file_migrates_and_serves_identical_predictions(v1_file):
    skip = other_scikit_learn()
    out = subprocess.run([sys.executable, "-c", SERVE.format(expected=EXPECTED), str(v1_file),
                          "meta" if skip else "score"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["meta"]["schema_version"] == str(migrations.LATEST)
    assert result["meta"]["sql_fingerprint"] == sqlfiles.fingerprint()
    if skip:
        pytest.skip(f"migrated; predictions not compared: {skip}")
    for key in EXPECTED:
        got, want = result[key]
        assert want and got == want, key


def test_second_open_does_nothing(v1_file, monkeypatch):
    sqlml.connect(v1_file).close()
    before = digest(v1_file)

    def refuse(*args):
        raise AssertionError("a migrated file was migrated or re-installed again")

    monkeypatch.setattr(migrations, "migrate", refuse)
    monkeypatch.setattr(sqlfiles, "statements", refuse)
    con = sqlml.connect(v1_file)
    assert con.execute("SELECT count(*) FROM sqlml.models").fetchall() == [(4,)]
    con.close()
    assert digest(v1_file) == before
    assert meta(v1_file)["schema_version"] == str(migrations.LATEST)


def test_migrated_file_still_opens_in_the_duckdb_1_5_cli(v1_file):
    sqlml.connect(v1_file).close()
    cli = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(cli).exists():
        pytest.skip("the duckdb CLI (PyPI duckdb-cli) is not installed")
    out = subprocess.run([cli, "-readonly", str(v1_file), "-csv", "-noheader", "-c",
                          "SELECT value FROM sqlml.meta WHERE key = 'schema_version'"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(migrations.LATEST)


def test_read_only_serves_an_older_readable_file_without_migrating(v1_file):
    con = sqlml.connect(v1_file, read_only=True)
    assert con.execute("SELECT count(*) FROM ml_models()").fetchall() == [(4,)]
    if not other_scikit_learn():
        assert con.execute(SCORES).fetchall() == con.execute(EXPECTED["scores"][1]).fetchall()
    con.close()
    assert "schema_version" not in meta(v1_file)


NEXT = migrations.LATEST + 1   # the version a test migration brings a file to


def with_next(monkeypatch, sql: str, read_only_ok: bool = False) -> None:
    step = migrations.Migration(NEXT, "a test migration", sql, read_only_ok=read_only_ok)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, step))
    monkeypatch.setattr(migrations, "LATEST", NEXT)


def test_read_only_refuses_an_older_file_it_cannot_read(v1_file, monkeypatch):
    with_next(monkeypatch, "ALTER TABLE sqlml.models ADD COLUMN note VARCHAR")
    with pytest.raises(sqlml.CatalogVersionError) as err:
        sqlml.connect(v1_file, read_only=True)
    message = str(err.value)
    assert "has schema version 1" in message and f"needs version {NEXT}" in message
    assert f"{NEXT}: a test migration" in message and "Open the file once read-write" in message


def test_newer_file_is_refused_and_left_unchanged(v1_file):
    newer = migrations.LATEST + 1
    with duckdb.connect(str(v1_file)) as con:
        con.execute("INSERT INTO sqlml.meta (key, value) VALUES ('schema_version', ?)",
                    [str(newer)])
    before = digest(v1_file)
    for read_only in (False, True):
        with pytest.raises(sqlml.CatalogVersionError) as err:
            sqlml.connect(v1_file, read_only=read_only)
        message = str(err.value)
        assert f"has schema version {newer}" in message, message
        assert f"reads schema version {migrations.LATEST} and older" in message
        assert f"this sqlml (version {sqlml.__version__})" in message
        assert "written by a newer sqlml. Upgrade sqlml" in message
        assert str(v1_file) in message
    # The refused connection was closed: the file is free and unchanged.
    assert digest(v1_file) == before
    assert meta(v1_file)["schema_version"] == str(newer)


def test_cli_reports_a_newer_file_without_a_traceback(v1_file):
    from click.testing import CliRunner

    from sqlml.cli.commands import main

    with duckdb.connect(str(v1_file)) as con:
        con.execute("INSERT INTO sqlml.meta (key, value) VALUES ('schema_version', '99')")
    result = CliRunner().invoke(main, ["models", str(v1_file)])
    assert result.exit_code == 1
    assert "has schema version 99" in result.output and "Upgrade sqlml" in result.output
    assert "Traceback" not in result.output


def test_a_failing_migration_changes_nothing(v1_file, monkeypatch):
    with_next(monkeypatch, "ALTER TABLE sqlml.models ADD COLUMN note VARCHAR; SELECT nope")
    with pytest.raises(sqlml.CatalogVersionError,
                       match=rf"from schema version {NEXT - 1} to {NEXT} \(a test"):
        sqlml.connect(v1_file)
    assert "schema_version" not in meta(v1_file)
    with duckdb.connect(str(v1_file), read_only=True) as con:
        cols = con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'sqlml' "
                           "AND table_name = 'models'").fetchall()
    assert ("note",) not in cols


def test_added_columns_do_not_shift_inserted_values(v1_file, monkeypatch):
    # A later migration adds a column to every catalog table; training still writes each value
    # into its own column because every INSERT names its columns.
    # IF EXISTS: a table newer than the file is created after the migrations, without it.
    with_next(monkeypatch, ";".join(
        f"ALTER TABLE IF EXISTS sqlml.{t} ADD COLUMN added_later VARCHAR"
        for t in (*store.TABLE_COLUMNS, "meta")))
    con = sqlml.connect(v1_file)
    assert con.execute("SELECT value FROM sqlml.meta WHERE key = 'schema_version'"
                       ).fetchall() == [(str(NEXT),)]
    sqlml.create_model(con, "churn_lr", "SELECT * EXCLUDE (customer_id, support_notes) "
                       "FROM customers", target="churned", model_type="logistic", progress=False)
    row = con.execute("SELECT version, state, model_type, added_later FROM sqlml.model_versions "
                      "WHERE name = 'churn_lr' ORDER BY version DESC LIMIT 1").fetchall()
    assert row == [(2, "READY", "logistic", None)]
    assert con.execute("SELECT active_version, function_name FROM sqlml.models "
                       "WHERE name = 'churn_lr'").fetchall() == [(2, "predict_churn_lr")]
    assert con.execute("SELECT count(predict_churn_lr_probability(c)) FROM customers c"
                       ).fetchall() == [(200,)]
    con.close()


def test_table_columns_match_catalog_sql():
    con = sqlml.connect()
    tables = {}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'sqlml' "
            "AND table_name IN (SELECT table_name FROM duckdb_tables()) "   # not the views
            "ORDER BY table_name, column_index").fetchall():
        tables.setdefault(table, []).append(column)
    con.close()
    assert tables.pop("meta") == ["key", "value"]
    assert {t: tuple(c) for t, c in tables.items()} == store.TABLE_COLUMNS


def test_new_file_is_stamped_with_the_latest_version(db_path):
    sqlml.connect(db_path).close()
    assert meta(db_path)["schema_version"] == str(migrations.LATEST)


def test_migrations_are_numbered_in_order():
    numbers = [m.version for m in migrations.MIGRATIONS]
    assert numbers == list(range(migrations.UNVERSIONED + 1, migrations.LATEST + 1))


def test_migrated_file_serves_its_models_in_the_plain_duckdb_cli(v1_file):
    # Migration 3 rewrites the models' functions, so a client without Python calls them by
    # name: compiled models answer as the stored expectations do, and a model only Python
    # scores says so with the remedy, never a missing internal function.
    if other_scikit_learn():
        pytest.skip("the file's artifacts do not load in this scikit-learn")
    sqlml.connect(v1_file).close()
    got = clients.cli_json(v1_file, "SELECT customer_id, predict_churn_gb(c) AS churn_gb, "
                                    "predict_churn_gb_probability(c) AS p FROM "
                                    f"{SCORED} c ORDER BY customer_id")
    assert isinstance(got, list), got
    with duckdb.connect(str(v1_file), read_only=True) as con:
        want = con.execute("SELECT customer_id, churn_gb, churn_gb_p FROM expected_scores "
                           "ORDER BY customer_id").fetchall()
    assert len(got) == len(want) > 0
    assert all(clients.same(list(g.values()), list(w)) for g, w in zip(got, want, strict=True))
    refused = clients.cli_json(v1_file, "SELECT predict_churn_lr(c) FROM customers c LIMIT 1")
    assert isinstance(refused, str) and "does not exist" not in refused
    assert "model 'churn_lr' is scored by sqlml's Python package only" in refused
    assert "TF-IDF text column support_notes" in refused
    ratings = clients.cli_json(v1_file, RATINGS)
    with duckdb.connect(str(v1_file), read_only=True) as con:
        expected = con.execute(EXPECTED["ratings"][1]).fetchall()
    assert isinstance(ratings, list) and len(ratings) == len(expected)
    assert all(clients.same(list(g.values()), list(w))
               for g, w in zip(ratings, expected, strict=True))
