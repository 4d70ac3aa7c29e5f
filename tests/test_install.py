import duckdb
import pytest

import sqlml


def test_connect_returns_real_duckdb_connection_with_catalog():
    con = sqlml.connect()
    assert isinstance(con, duckdb.DuckDBPyConnection)
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sqlml'").fetchall()}
    assert {"models", "model_versions", "model_metrics", "training_runs"} <= tables


def test_install_is_idempotent():
    con = duckdb.connect()
    sqlml.install(con)
    sqlml.install(con)
    n = con.execute("SELECT count(*) FROM sqlml.meta").fetchall()[0][0]
    assert n == 1


def test_new_file_uses_storage_compatibility(db_path):
    con = sqlml.connect(db_path)
    version = con.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    con.close()
    # A 1.4-format file is readable by the duckdb 1.5 CLI; checked for real in test_cli_client.
    assert db_path.exists()
    assert version is not None


def test_installed_package_is_used_not_source_tree():
    # CI installs the wheel; the sql files must come from inside the installed package.
    from sqlml import sqlfiles

    folder = sqlfiles._folder()
    assert (folder / "catalog.sql").exists()
    if "site-packages" in sqlml.__file__:
        assert "site-packages" in str(folder)
    else:
        pytest.skip("running from an editable install; CI runs against the built wheel")
