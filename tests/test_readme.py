"""The documentation's examples run: README.md and every docs/*.md page, each on its own.

Every ```python and ```sql block of a page runs, in order, in one namespace per page, so each
page must set up what it uses (its first block creates the demo tables, and trains the models
it needs). SQL blocks run on the page's `con`; a page whose code makes none gets a fresh
`sqlml.connect()`. A block inside an HTML comment (`<!-- ... -->`) runs too: it is setup the
page does not need to show. Other fences (bash, text, sh) are shown, not run: they need a shell,
a running server or a terminal.
"""

import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import sqlml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(python|sql)\n(.*?)```", re.S)


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def blocks(page: Path) -> list[tuple[str, str, int]]:
    """(language, code, line of the code's first line in the page) for every runnable block."""
    text = page.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start(2)) + 1)
            for m in BLOCK.finditer(text)]


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


def run_page(page: Path) -> dict:
    """Run a page's blocks in order; a failure names the page and the line of its block."""
    namespace: dict = {}
    for lang, body, line in blocks(page):
        try:
            if lang == "python":
                # Padded so that a traceback's line numbers are the page's.
                exec(compile("\n" * (line - 1) + body, str(page), "exec"), namespace)
            else:
                con = namespace.setdefault("con", sqlml.connect())
                for stmt in sql_statements(body):
                    con.execute(stmt).fetchall()
        except Exception as exc:
            exc.add_note(f"in the {lang} block at {page_id(page)}:{line}")
            raise
    return namespace


def count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(sql).fetchall()[0][0]


def check_readme(ns: dict) -> None:
    con = ns["con"]
    assert {r[0] for r in con.execute("SELECT name FROM ml_models()").fetchall()} == {
        "customer_churn", "churn_lr", "movie_recs", "retail"}
    assert count(con, "SELECT active_version FROM sqlml.models WHERE name = 'churn_lr'") == 1
    # AUTO's trials each carry the selection rule's decision.
    assert count(con, "SELECT count(*) FROM ml_trials('customer_churn') "
                      "WHERE parameters->>'selection' IS NULL AND status = 'completed'") == 0
    assert count(con, "SELECT count(*) FROM ml_trials('customer_churn') "
                      "WHERE status = 'completed'") >= 2
    # The forecasting section: 3 stores x 12 months, quantiles ordered, 6 rows at horizon 6.
    assert count(con, "SELECT count(*) FROM forecast_sales()") == 36
    assert count(con, "SELECT count(*) FROM forecast_sales() WHERE NOT (p10 <= p50 AND "
                      "p50 <= p90)") == 0
    assert count(con, "SELECT count(*) FROM forecast_sales(horizon := 6) WHERE store = 2") == 6


def check_training(ns: dict) -> None:
    con = ns["con"]
    assert count(con, "SELECT count(*) FROM ml_models()") >= 10
    assert count(con, "SELECT count(*) FROM ml_trials('churn_tuned')") == 6


def check_predicting(ns: dict) -> None:
    con = ns["con"]
    # The page's last block drops the compiled model, with its macros.
    assert count(con, "SELECT count(*) FROM sqlml.models WHERE name = 'churn_plain'") == 0
    assert count(con, "SELECT count(*) FROM sqlml_scores.churn_lr") == 20


def check_recommendations(ns: dict) -> None:
    assert count(ns["con"], "SELECT count(*) FROM recommend_movies(42, k := 5)") == 5


def check_metrics(ns: dict) -> None:
    assert count(ns["con"], "SELECT count(*) FROM ml_compare_models('validation', "
                 "actual := 'churned', model := 'model', score := 'p_churn')") == 2


# What each page's examples leave behind, beyond not raising.
CHECKS: dict[str, Callable[[dict], None]] = {
    "README.md": check_readme,
    "docs/training.md": check_training,
    "docs/predicting.md": check_predicting,
    "docs/recommendations.md": check_recommendations,
    "docs/metrics.md": check_metrics,
}


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page_examples_run_in_order(page: Path):
    namespace = run_page(page)
    if page_id(page) in CHECKS:
        CHECKS[page_id(page)](namespace)


def ci_test_command() -> str:
    """.ci/run's test commands (everything it runs in its venv but pip), as the README writes
    them: `.venv/bin/...` joined by `&&`."""
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    steps = [line.replace(".venv-ci/", ".venv/") for line in run
             if line.startswith(".venv-ci/bin/") and not line.startswith(".venv-ci/bin/pip")]
    assert steps, ".ci/run runs nothing in its venv"
    return " && ".join(steps)


def test_readme_gives_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert ("python3 -m venv .venv && .venv/bin/pip install . && "
            ".venv/bin/sqlml demo sqlml_demo.duckdb") in text
    # The test command is exactly what CI runs.
    assert (f"python3 -m venv .venv && .venv/bin/pip install '.[test]' && {ci_test_command()}"
            in text), f"README.md must give the test command CI runs: {ci_test_command()}"
