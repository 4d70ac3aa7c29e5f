"""``sqlml shell`` in a real terminal: tmux types the keys and the test reads the screen."""

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import sqlml

SQLML = Path(sys.executable).parent / "sqlml"
TIMEOUT = 60.0


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (.ci/run installs it when it can)")
    if not SQLML.exists():
        pytest.skip(f"the sqlml console script is not installed next to {sys.executable}")
    socket = f"sqlml-test-{uuid.uuid4().hex[:8]}"     # a private server: no other session seen

    def run(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True,
                              text=True, timeout=30).stdout

    yield run
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)


def _wait_for(tmux, text: str, after: int = 0) -> str:
    """The screen once ``text`` shows on it for the (after+1)-th time (tmux trims line ends)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        screen = tmux("capture-pane", "-p", "-t", "sh")
        if screen.count(text) > after:
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear on the screen:\n{screen}")
        time.sleep(0.2)


def _type(tmux, line: str) -> None:
    # tmux reads an argument's final ';' as a command separator, even with -l, unless escaped.
    if line.endswith(";"):
        line = line[:-1] + "\\;"
    tmux("send-keys", "-t", "sh", "-l", line)
    tmux("send-keys", "-t", "sh", "Enter")


def test_shell_in_a_terminal(tmux, tmp_path):
    db, history = tmp_path / "shop.duckdb", tmp_path / "history"
    con = sqlml.connect(db)
    con.execute("CREATE TABLE people AS SELECT i AS id, i % 7 AS x, i % 3 = 0 AS bought "
                "FROM range(200) t(i)")
    sqlml.create_model(con, "buyers", "people", target="bought", model_type="logistic",
                       function="predict_buyers", progress=False)
    con.close()

    # COLUMNS: a pane of a session no client is attached to may report a 0x0 size to the
    # program at first (seen under pytest), and table layout would then assume 80 columns.
    tmux("new-session", "-d", "-s", "sh", "-x", "160", "-y", "50",
         f"env SQLML_HISTORY={history} TERM=xterm-256color COLUMNS=160 LINES=50 "
         f"{SQLML} shell {db}")
    _wait_for(tmux, "sqlml>")
    _type(tmux, "CREATE TABLE pets AS")                          # not complete: a new line
    screen = _wait_for(tmux, "...>")
    assert "sqlml> CREATE TABLE pets AS" in screen
    _type(tmux, "SELECT * FROM (VALUES (1, 'cat'), (2, 'dog')) v(id, kind);")
    _wait_for(tmux, "sqlml>", after=1)
    _type(tmux, "SELECT id, upper(kind) AS k FROM pets ORDER BY id;")
    screen = _wait_for(tmux, "(2 rows)")
    lines = [ln.rstrip() for ln in screen.splitlines()]
    at = lines.index("│ id │ k   │")
    assert lines[at - 1:at + 6] == ["┌────┬─────┐", "│ id │ k   │", "├────┼─────┤",
                                    "│  1 │ CAT │", "│  2 │ DOG │", "└────┴─────┘", "(2 rows)"]
    _type(tmux, "SHOW MODEL ALL;")
    screen = _wait_for(tmux, "(1 row)")
    row = next(ln for ln in screen.splitlines() if ln.startswith("│ buyers"))
    cells = [c.strip() for c in row.strip().strip("│").split("│")]
    assert cells[:6] == ["buyers", "1", "1", "READY", "binary_classification", "logistic"]

    _type(tmux, ".quit")
    deadline = time.monotonic() + TIMEOUT
    while True:     # the shell exits, and its session with it
        try:
            tmux("has-session", "-t", "sh")
        except subprocess.CalledProcessError:
            break
        assert time.monotonic() < deadline, "sqlml shell did not exit on .quit"
        time.sleep(0.2)
    # The multi-line statement is one history entry.
    assert ("+CREATE TABLE pets AS\n+SELECT * FROM (VALUES (1, 'cat'), (2, 'dog')) v(id, kind);"
            in history.read_text())
