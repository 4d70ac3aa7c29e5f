"""No function in sqlml/ runs over 60 lines, so each one can be read as a whole.

A long function is split by stage or by meaning (see sqlml.train.supervised.train). Modules that
are generated data, not code, would be listed in GENERATED; none is today.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sqlml"
MAX_LINES = 60
GENERATED: set[str] = set()   # paths relative to sqlml/, e.g. "spec_tables.py"


def long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in GENERATED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    found.append(f"sqlml/{relative}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_over_60_lines():
    found = long_functions()
    assert not found, (f"functions over {MAX_LINES} lines (split them by stage or meaning): "
                       + "; ".join(found))


def test_the_check_sees_functions():
    # A walk that found no files would pass vacuously.
    assert len(list(PACKAGE.rglob("*.py"))) > 40
    assert not GENERATED - {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
