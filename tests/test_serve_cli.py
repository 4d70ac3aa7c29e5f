"""`sqlml serve`: a real subprocess on free ports, psycopg against it, SIGTERM to stop it; the
generated password stored hashed and reused; the refusal to listen wider by accident."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

import sqlml
from sqlml.cli.commands import main
from sqlml.server import serve

psycopg = pytest.importorskip("psycopg")


class Served:
    """`python -m sqlml.cli.commands serve ...` with its output read line by line."""

    def __init__(self, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "sqlml.cli.commands", "serve", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, pattern: str, timeout: float = 90) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError(f"no line matching {pattern!r}; output so far: {self.lines}")

    def started(self) -> int:
        port = int(self.until(r"Postgres wire protocol on 127\.0\.0\.1:(\d+)").group(1))
        self.until(r"Ctrl-C or SIGTERM stops it")
        return port

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def _query(port: int, password: str, sql: str):
    with psycopg.connect(host="127.0.0.1", port=port, user="sqlml", password=password,
                         dbname="shop", autocommit=True, connect_timeout=10) as conn:
        return conn.execute(sql).fetchall()


def test_generated_password_is_printed_stored_hashed_and_reused(tmp_path):
    db = tmp_path / "shop.duckdb"
    con = sqlml.connect(db)
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(7)")
    con.close()
    first = Served(str(db), "--port", "0", "--http-port", "0")
    try:
        port = first.started()
        text = "\n".join(first.lines)
        password = re.search(r"Postgres password \(generated, shown once, stored hashed in "
                             r"\S+\): (\S+)", text).group(1)
        token = re.search(r"REST token \(generated, shown once, .*\): (\S+)", text).group(1)
        assert _query(port, password, "SELECT count(*) FROM t") == [(7,)]
    finally:
        assert first.stop() == 0
    state_file = tmp_path / "shop.duckdb.sqlml-serve.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    stored = state_file.read_text()
    assert password not in stored and token not in stored
    assert json.loads(stored)["pg_scram_verifier"].startswith("SCRAM-SHA-256$4096:")

    second = Served(str(db), "--port", "0", "--http-port", "0")
    try:
        port = second.started()
        text = "\n".join(second.lines)
        assert "Postgres password: the one printed at first start" in text
        assert "REST token: the one printed at first start" in text
        assert password not in text and token not in text
        assert _query(port, password, "SELECT sum(x) FROM t") == [(21,)]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _query(port, "not the password", "SELECT 1")
        http_port = int(re.search(r"REST endpoint on http://127\.0\.0\.1:(\d+)", text).group(1))
        httpx = pytest.importorskip("httpx")
        url = f"http://127.0.0.1:{http_port}/v1/models"
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    finally:
        assert second.stop() == 0


def test_listening_beyond_loopback_needs_allow_remote(tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "x.duckdb"), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "sqlml serve: --host 0.0.0.0 would accept connections from other machines, which needs "
        "--allow-remote to confirm.")
    assert not (tmp_path / "x.duckdb").exists()
    assert serve.is_loopback("127.0.0.2") and serve.is_loopback("::1")
    assert serve.is_loopback("localhost") and not serve.is_loopback("192.168.1.10")


def test_supplied_password_is_used_and_not_stored(tmp_path):
    db = str(tmp_path / "given.duckdb")
    stop, lines = threading.Event(), []
    env_before = os.environ.pop("SQLML_PASSWORD", None)
    thread = threading.Thread(target=serve.run, args=(db,), kwargs=dict(
        port=0, http_port=None, password="given-secret", echo=lines.append, stop=stop))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(re.search(r":(\d+):", lines[0]).group(1))
        assert _query(port, "given-secret", "SELECT 42") == [(42,)]
        assert not any("password" in line.lower() for line in lines[1:])
    finally:
        stop.set()
        thread.join(30)
        if env_before is not None:
            os.environ["SQLML_PASSWORD"] = env_before
    assert not os.path.exists(db + ".sqlml-serve.json")


def test_read_only_needs_an_existing_file_and_a_busy_port_is_named(tmp_path):
    with pytest.raises(serve.ServeError, match=r"--read-only: database file .*missing\.duckdb.* "
                                               r"does not exist"):
        serve.run(str(tmp_path / "missing.duckdb"), read_only=True, password="x",
                  http_port=None)
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(serve.ServeError, match=rf"cannot listen for Postgres clients on "
                                                   rf"127\.0\.0\.1:{port}: .*Choose another "
                                                   rf"--port"):
            serve.run(str(tmp_path / "busy.duckdb"), port=port, http_port=None)
    # a start that failed stores no generated password, since nobody was shown it
    assert not (tmp_path / "busy.duckdb.sqlml-serve.json").exists()
