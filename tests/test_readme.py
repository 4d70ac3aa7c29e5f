"""The README's examples run: every ```python and ```sql block, in order, on one connection."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(python|sql)\n(.*?)```", re.S)


def blocks():
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def sql_statements(text: str) -> list[str]:
    out, buf = [], []
    for line in text.splitlines():
        buf.append(line)
        code = line.split("--", 1)[0].rstrip()
        if code.endswith(";"):
            out.append("\n".join(buf))
            buf = []
    if "".join(buf).strip():
        out.append("\n".join(buf))
    return out


@pytest.mark.slow
def test_readme_examples_run_in_order():
    namespace: dict = {}
    ran = 0
    for lang, body in blocks():
        if lang == "python":
            exec(compile(body, str(README), "exec"), namespace)
        else:
            con = namespace["con"]
            for stmt in sql_statements(body):
                con.execute(stmt).fetchall()
        ran += 1
    assert ran >= 8
    con = namespace["con"]
    # The examples did what they say.
    assert con.execute("SELECT count(*) FROM ml_models()").fetchall()[0][0] >= 4
    assert con.execute("SELECT active_version FROM sqlml.models WHERE name = 'churn_lr'"
                       ).fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM sqlml.models WHERE name = 'churn_text'"
                       ).fetchall() == [(0,)]


def test_readme_gives_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "pip install . && .venv/bin/sqlml demo sqlml_demo.duckdb" in text
    assert "pip install '.[test]' && .venv/bin/pytest" in text
