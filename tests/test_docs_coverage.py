"""The docs cover the code: every command and every public SQL function has an entry, the
generated reference is current, and links between pages lead somewhere."""

import functools
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest

import sqlml
from sqlml.cli.commands import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
MACRO = re.compile(r"^CREATE OR REPLACE (?:TEMP )?MACRO (ml_\w+)", re.M | re.I)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@functools.cache
def gen() -> ModuleType:
    """docs/gen.py, imported from its file (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("docs_gen", DOCS / "gen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("docs_gen", module)
    spec.loader.exec_module(module)
    return module


def prose(page: Path) -> str:
    """A page without its fenced blocks: entries are written in the text, not in examples."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def documented(name: str) -> bool:
    """The name inside an inline code span (`ml_f1(...)`, `FROM ml_models()`) of some page."""
    span = re.compile(rf"`[^`\n]*\b{re.escape(name)}\b[^`\n]*`")
    return any(span.search(prose(page)) for page in PAGES)


def public_sql_functions() -> list[str]:
    # Private helpers are named __sqlml_*; every ml_* function sqlml installs is public.
    con = sqlml.connect()
    installed = {r[0] for r in con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() "
        "WHERE function_name LIKE 'ml\\_%' ESCAPE '\\'").fetchall()}
    con.close()
    macros = {m for f in sorted((ROOT / "sql").glob("*.sql"))
              for m in MACRO.findall(f.read_text(encoding="utf-8"))}
    return sorted(installed | macros)


def test_every_public_sql_function_has_an_entry():
    names = public_sql_functions()
    assert {"ml_create_model", "ml_predict", "ml_drop_model", "ml_roc_auc"} <= set(names)
    missing = [name for name in names if not documented(name)]
    assert not missing, (
        f"no entry (the name in backticks, outside code blocks) in README.md or docs/*.md for: "
        f"{', '.join(missing)}")


COMMANDS = list(gen().commands(main))


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_help_and_a_mention(path: list[str], command: click.Command):
    assert (command.help or "").strip(), f"`{' '.join(path)}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"`{' '.join(path)}` {param.opts[0]} has no help"
    name = " ".join(path)
    assert re.search(rf"`{re.escape(name)}[` ]", prose(DOCS / "cli.md")), (
        f"docs/cli.md does not mention `{name}`")


def test_the_walk_finds_every_command():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"sqlml", "sqlml demo", "sqlml run", "sqlml serve"} <= names


def test_generated_reference_is_current():
    stale = gen().stale()
    assert not stale, f"generated docs are stale: {', '.join(stale)}; run: python docs/gen.py"


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as -."""
    headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text(encoding="utf-8")),
                          re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_links_between_pages_lead_somewhere():
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page)):
            if re.match(r"[a-z]+:", target):
                continue  # another site
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


# Written in the docs before it exists: docs/gen.py fills the option tables from it once it does.
NOT_YET = {"sqlml.spec"}


def resolves(dotted: str) -> bool:
    """Whether `sqlml.a.b` names a module, or an attribute of one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_module_paths_in_the_docs_exist():
    # After a move, text naming an old module path (sqlml.pgwire, sqlml/compile_trees.py) fails
    # here. Names in the sqlml schema (sqlml.model_versions, sqlml.rec_...) are tables.
    con = sqlml.connect()
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sqlml'").fetchall()}
    con.close()
    wrong = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for dotted in sorted(set(re.findall(r"\bsqlml(?:\.[a-z_]+)+", text))):
            first = dotted.split(".")[1]
            if first in tables or first.startswith("rec_") or dotted in NOT_YET:
                continue
            if not resolves(dotted):
                wrong.append(f"{page.relative_to(ROOT)}: {dotted}")
        for path in sorted(set(re.findall(r"\bsqlml/[\w/]+\.py\b", text))):
            if not (ROOT / path).exists():
                wrong.append(f"{page.relative_to(ROOT)}: {path}")
    assert not wrong, "no such module or attribute:\n" + "\n".join(wrong)


def test_every_page_is_listed_in_the_index_and_the_readme():
    index = prose(DOCS / "index.md")
    readme = prose(ROOT / "README.md")
    for page in sorted(DOCS.glob("*.md")):
        if page.name == "index.md":
            continue
        assert f"]({page.name})" in index, f"docs/index.md does not link to {page.name}"
        assert f"](docs/{page.name})" in readme, f"README.md does not link to docs/{page.name}"
