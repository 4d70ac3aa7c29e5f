"""The import graph: lower layers never reach up, and module-level imports form no cycle.

The statement parser (``sqlml shell``, ``sqlml.execute``) and the Postgres server's query path run
on every statement a client sends; they must not load training, scoring or scikit-learn. Checked
in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sqlml"
HEAVY = ("sqlml.train", "sqlml.recommend", "sqlml.score", "sqlml.compile", "sklearn")


def loaded_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def reached(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


@pytest.mark.parametrize(("statement", "forbidden"), [
    ("import sqlml", (*HEAVY, "sqlml.cli", "sqlml.server", "duckdb")),
    ("import sqlml.redshift.parser", (*HEAVY, "sqlml.cli", "sqlml.server")),
    ("from sqlml.redshift.parser import parse; parse('SHOW MODEL ALL')",
     (*HEAVY, "sqlml.cli", "sqlml.server")),
    ("import sqlml.server.pgwire.session", (*HEAVY, "sqlml.cli")),
    ("import sqlml.server.pgwire.errors", (*HEAVY, "sqlml.cli")),
    ("import sqlml.context", ("sqlml.progress", *HEAVY)),
    ("import sqlml.spec", (*HEAVY, "duckdb", "numpy", "pandas")),
])
def test_no_reach_up(statement, forbidden):
    assert reached(loaded_after(statement), forbidden) == [], (
        f"`{statement}` loads modules it must not need")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The sqlml modules a module imports when it is loaded (not inside functions, not only for
    type checking)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(sub, ast.Import):
                out |= {a.name for a in sub.names if a.name.startswith("sqlml")}
            elif isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("sqlml"):
                for a in sub.names:
                    full = f"{sub.module}.{a.name}"
                    out.add(full if full in modules else str(sub.module))
    return out


def test_module_imports_have_no_cycle():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: top_level_imports(p, set(paths)) & set(paths) for m, p in paths.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_server_does_not_reach_up_into_the_cli():
    """Not even inside a function: the server runs without the command line."""
    for path in (PACKAGE / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                    a.name for a in node.names]
                assert not any(n.startswith("sqlml.cli") for n in names), path
