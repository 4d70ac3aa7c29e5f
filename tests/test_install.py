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
    keys = con.execute("SELECT key FROM sqlml.meta ORDER BY key").fetchall()
    assert keys == [("schema_version",), ("sql_fingerprint",)]


def test_new_file_uses_storage_compatibility(db_path, tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    con = sqlml.connect(db_path)
    setting = con.execute("SELECT current_setting('storage_compatibility_version')").fetchall()
    con.close()
    assert setting == [("v1.4.0",)]
    cli = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(cli).exists():
        pytest.skip("the duckdb CLI (PyPI duckdb-cli) is not installed")
    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).close()

    def opens(path):
        return subprocess.run([cli, "-readonly", str(path), "-c", "SELECT 1"],
                              capture_output=True, timeout=60).returncode == 0

    # The 1.5 CLI cannot open a file written by duckdb 2 with default settings, but opens ours.
    assert opens(db_path)
    if int(duckdb.__version__.split(".")[0]) >= 2:
        assert not opens(plain)


def test_installed_package_is_used_not_source_tree():
    # CI installs the wheel; the sql files must come from inside the installed package.
    from sqlml import sqlfiles

    folder = sqlfiles._folder()
    assert (folder / "catalog.sql").exists()
    if "site-packages" in sqlml.__file__:
        assert "site-packages" in str(folder)
    else:
        pytest.skip("running from an editable install; CI runs against the built wheel")
