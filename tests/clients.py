"""Plain DuckDB clients, without sqlml or Python UDFs, for tests that open a file sqlml wrote:
the duckdb command-line client (the pinned ``duckdb-cli`` test extra) and Node.js with
``@duckdb/node-api`` (tests/node, installed by .ci/run where node is present). Each test using
one skips cleanly where it cannot be had.

``same`` compares their answers with a sqlml session's: text and booleans equal, numbers to a
tolerance, STRUCTs and lists element by element (each client prints them its own way: the CLI's
JSON writes BIGINT as a number, Node's as a string).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"


def duckdb_cli() -> str:
    beside = Path(sys.executable).with_name("duckdb")
    found = shutil.which("duckdb") or (str(beside) if beside.exists() else None)
    if found is None:
        pytest.skip("the duckdb command-line client is not installed (pip install duckdb-cli)")
    return found


def cli_json(path: Path, sql: str) -> list[dict] | str:
    """One statement's rows as the CLI's JSON mode prints them, or its error text."""
    done = subprocess.run([duckdb_cli(), "-readonly", "-json", str(path), "-c", sql],
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or "Error" in done.stderr:
        return done.stderr.strip() or done.stdout.strip()
    return json.loads(done.stdout) if done.stdout.strip() else []


def node_available() -> bool:
    return shutil.which("node") is not None and \
        (NODE_DIR / "node_modules" / "@duckdb" / "node-api").exists()


def node_json(path: Path, statements: list[str]) -> list[dict]:
    """Each statement's {'rows': [[...], ...]} or {'error': text}, from Node.js."""
    if not node_available():
        pytest.skip("Node.js with @duckdb/node-api is not installed "
                    "(node and npm, then npm ci --prefix tests/node)")
    done = subprocess.run(["node", str(NODE_DIR / "query.mjs"), str(path),
                           json.dumps(statements)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def flat(value) -> list:
    """A row's values in order, STRUCTs (dicts) and lists opened up."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in flat(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in flat(v)]
    return [value]


def same(got, want, tol: float = 1e-12) -> bool:
    """Whether a client's value equals the session's: numbers within ``tol`` (relative above
    1), everything else exactly."""
    g, w = flat(got), flat(want)
    if len(g) != len(w):
        return False
    for a, b in zip(g, w, strict=True):
        if isinstance(b, bool) or b is None or isinstance(b, str):
            if a != b and not (isinstance(b, str) and str(a) == b):
                return False
        elif isinstance(b, int | float):
            try:
                a = float(a)
            except (TypeError, ValueError):
                return False
            if not (math.isnan(a) and math.isnan(b)) and \
                    abs(a - b) > tol * max(1.0, abs(b)):
                return False
        elif str(a) != str(b):
            return False
    return True
