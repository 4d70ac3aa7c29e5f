"""The ``sqlml`` command line through click's runner: output, exit codes, messages on stderr."""

import pytest
from click.testing import CliRunner

import sqlml
from sqlml import progress
from sqlml.cli.commands import main

PETS = "CREATE TABLE pets AS SELECT * FROM (VALUES (1, 'cat'), (2, 'dog')) v(id, kind);\n"
TRAIN = """\
CREATE TABLE people AS
SELECT i AS person_id, (hash(i) % 100) / 100.0 AS x, (hash(i * 3) % 100) / 100.0 AS z,
       ((hash(i) % 100) / 100.0 + (hash(i * 7) % 100) / 200.0 > 0.7) AS bought
FROM range(300) t(i);
CREATE MODEL buyers FROM people TARGET bought FUNCTION predict_buyers MODEL_TYPE logistic;
"""


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A database file with a table and one logistic model, trained by `sqlml run`."""
    path = tmp_path_factory.mktemp("cli") / "shop.duckdb"
    script = path.parent / "train.sql"
    script.write_text(TRAIN)
    result = invoke("run", path, script, "--quiet")
    assert result.exit_code == 0, result.stderr
    return path


def _copy(src, tmp_path):
    dst = tmp_path / "copy.duckdb"
    dst.write_bytes(src.read_bytes())
    return dst


def test_run_trains_with_create_model_and_prints_its_summary(trained):
    con = sqlml.connect(trained, read_only=True)
    row = con.execute("SELECT model_type, function, training_rows FROM ml_models() "
                      "WHERE name = 'buyers'").fetchall()
    con.close()
    assert row == [("logistic", "predict_buyers", 300)]


def test_run_prints_query_results_as_tables(tmp_path):
    script = tmp_path / "s.sql"
    script.write_text(PETS + "SELECT id, upper(kind) AS k FROM pets ORDER BY id;\n"
                      "INSERT INTO pets VALUES (3, 'emu');\nSELECT count(*) AS n FROM pets;")
    result = invoke("run", tmp_path / "db.duckdb", script)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "┌────┬─────┐", "│ id │ k   │", "├────┼─────┤", "│  1 │ CAT │", "│  2 │ DOG │",
        "└────┴─────┘", "(2 rows)",
        "┌───┐", "│ n │", "├───┤", "│ 3 │", "└───┘", "(1 row)"]
    assert result.stderr == ""


def test_run_reads_standard_input_with_a_dash(tmp_path):
    result = invoke("run", tmp_path / "db.duckdb", "-", input="SELECT 6 * 7 AS answer;")
    assert result.exit_code == 0
    assert "│     42 │" in result.stdout


def test_run_reports_a_syntax_error_with_line_and_column_and_runs_nothing(tmp_path):
    script = tmp_path / "bad.sql"
    # Line 3 of the script: "CREATE MODEL m FROM pets " is 25 characters, so TARGT is at 26.
    script.write_text(PETS + "SELECT 1;\nCREATE MODEL m FROM pets TARGT kind FUNCTION f;\n")
    db = tmp_path / "db.duckdb"
    result = invoke("run", db, script)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Syntax error: ")
    assert "bad.sql: CREATE MODEL: line 3, column 26: expected TARGET" in result.stderr
    assert "Did you mean TARGET?" in result.stderr and "Traceback" not in result.stderr
    con = sqlml.connect(db)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'pets'"
                       ).fetchall() == [(0,)]          # the whole script was parsed first
    con.close()


def test_run_stops_at_the_first_failing_statement(tmp_path):
    db = tmp_path / "db.duckdb"
    result = invoke("run", db, "-",
                    input=PETS + "SELECT * FROM nosuch;\nCREATE TABLE after(a INT);")
    assert result.exit_code == 1
    assert "statement 2 of 3, line 2: Catalog Error: Table with name nosuch does not exist" in (
        result.stderr)
    con = sqlml.connect(db)
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() "
                                        "WHERE schema_name = 'main'").fetchall()}
    con.close()
    assert tables == {"pets"}


def test_run_with_a_missing_script_is_a_usage_error(tmp_path):
    result = invoke("run", tmp_path / "db.duckdb", tmp_path / "missing.sql")
    assert result.exit_code == 2
    assert "missing.sql" in result.stderr and "No such file or directory" in result.stderr


def test_models_lists_the_stored_models(trained, tmp_path):
    result = invoke("models", trained)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = [c.strip() for c in lines[1].strip("│").split("│")]
    row = [c.strip() for c in lines[3].strip("│").split("│")]
    assert header[:2] == ["name", "version"] and row[:2] == ["buyers", "1"]
    assert lines[-1].startswith("(1 row")
    empty = invoke("models", tmp_path / "empty.duckdb")
    assert empty.exit_code == 1 and "does not exist" in empty.stderr
    sqlml.connect(tmp_path / "empty.duckdb").close()
    assert invoke("models", tmp_path / "empty.duckdb").stdout.startswith("No models in ")


def test_show_prints_every_property_of_show_model(trained):
    result = invoke("show", trained, "buyers")
    assert result.exit_code == 0
    con = sqlml.connect(trained, read_only=True)
    expected = con.execute("FROM ml_show_model('buyers')").fetchall()
    con.close()
    assert result.stdout.splitlines()[-1] == f"({len(expected)} rows)"
    for prop, value in expected:
        if len(value) < 40:
            assert f"│ {prop.ljust(19)} │ {value}" in result.stdout


def test_show_of_a_missing_model_fails_with_the_reason(trained):
    result = invoke("show", trained, "nope")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("sqlml show: model 'nope' does not exist")
    assert "Models in this database: buyers" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_when_no_model_is_left(trained, tmp_path):
    db = _copy(trained, tmp_path)
    assert invoke("drop", db, "buyers").exit_code == 0
    result = invoke("show", db, "buyers")
    assert result.exit_code == 1
    assert result.stderr.startswith("sqlml show: model 'buyers' does not exist")
    assert "holds no sqlml models" in result.stderr


def test_drop_removes_a_model_and_if_exists_tolerates_a_missing_one(trained, tmp_path):
    db = _copy(trained, tmp_path)
    missing = invoke("drop", db, "nope")
    assert missing.exit_code == 1
    # The message as `sqlml show` gives it: no Python class name before it.
    assert missing.stderr.startswith("sqlml drop: ml_drop_model: model 'nope' does not exist")
    tolerated = invoke("drop", db, "nope", "--if-exists")
    assert tolerated.exit_code == 0 and "nothing was dropped" in tolerated.stdout
    dropped = invoke("drop", db, "buyers")
    assert dropped.exit_code == 0 and dropped.stdout.startswith("Dropped model 'buyers'")
    assert invoke("models", db).stdout.startswith("No models in ")


def test_shell_reads_piped_statements_across_lines_until_quit(trained):
    result = invoke("shell", trained, input="SHOW MODEL ALL;\nSELECT 40\n  + 2 AS answer;\n"
                                            ".quit\nSELECT 'never' AS x;\n")
    assert result.exit_code == 0, result.stderr
    assert "│ buyers │" in result.stdout and "│     42 │" in result.stdout
    assert "never" not in result.stdout


def test_shell_prints_errors_and_goes_on(trained, tmp_path):
    result = invoke("shell", _copy(trained, tmp_path),
                    input="SELECT * FROM nosuch;\n.modles\nSHOW MODEL nope;\nSELECT 7 AS seven;\n")
    assert result.exit_code == 1                          # something failed
    assert "│     7 │" in result.stdout
    assert "Catalog Error: Table with name nosuch does not exist" in result.stderr
    assert "unknown command '.modles'. Did you mean '.models'" in result.stderr
    assert "model 'nope' does not exist" in result.stderr


def test_shell_help_and_tables_dot_commands(tmp_path):
    result = invoke("shell", tmp_path / "db.duckdb", input=PETS + ".tables\n.help\n")
    assert result.exit_code == 0
    assert "│ pets │" in result.stdout and ".quit, .exit" in result.stdout


def test_training_shows_a_progress_bar_unless_quiet(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    db = tmp_path / "db.duckdb"
    shown = invoke("run", db, "--progress", "-", input=TRAIN)
    assert shown.exit_code == 0, shown.stderr
    assert "buyers: done" in shown.stderr and "budget left" in shown.stderr
    quiet = invoke("run", db, "--quiet", "-",
                   input="CREATE MODEL again FROM people TARGET bought FUNCTION predict_again "
                         "MODEL_TYPE logistic;")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert "predict_again" in quiet.stdout


@pytest.mark.parametrize("command", ["shell", "run", "models", "show", "drop", "demo"])
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "sqlml " + command in result.stdout


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and sqlml.__version__ in result.stdout


def test_run_limits_printed_rows_and_a_database_that_cannot_open_fails(tmp_path):
    result = invoke("run", tmp_path / "db.duckdb", "--max-rows", 4, "-",
                    input="SELECT i FROM range(100) t(i);")
    lines = result.stdout.splitlines()
    assert [ln.strip("│ ") for ln in lines[3:8]] == ["0", "1", "…", "98", "99"]
    assert lines[-1] == "(100 rows, 4 shown)"
    (tmp_path / "folder").mkdir()
    broken = invoke("run", tmp_path / "folder", "-", input="SELECT 1;")
    assert broken.exit_code == 1
    assert broken.stderr.startswith(f"sqlml run: cannot open '{tmp_path / 'folder'}': ")


def test_show_and_drop_find_a_model_named_in_other_case(trained, tmp_path):
    db = _copy(trained, tmp_path)
    shown = invoke("show", db, "BUYERS")
    assert shown.exit_code == 0 and "│ model_name          │ buyers" in shown.stdout
    dropped = invoke("drop", db, "Buyers", "--if-exists")
    assert dropped.exit_code == 0 and dropped.stdout.startswith("Dropped model 'buyers'")
