"""Writes the generated parts of the docs from the code, so reference text cannot drift.

    python docs/gen.py           rewrite every generated section in place
    python docs/gen.py --check   rewrite nothing; exit 1 naming each stale section

A section is the text between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->`` in a page:

- ``cli`` in docs/cli.md: every command's ``--help``, walked from the click group
  ``sqlml.cli.commands.main``;
- ``options`` in docs/training.md: the option tables, from
  ``sqlml.spec.option_tables_markdown()``. Until that function exists the section is skipped,
  and the hand-written lists below its markers stay the reference.

tests/test_docs_coverage.py runs the check in-process, so CI fails on stale text.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

DOCS = Path(__file__).resolve().parent
# Help is rendered at a fixed width, so the text does not depend on the terminal that runs this.
WIDTH = 100


def commands(group: click.Command | None = None) -> Iterator[tuple[list[str], click.Command]]:
    """Every command of the ``sqlml`` group, as (path of names, command), parents first."""
    if group is None:
        from sqlml.cli.commands import main
        group = main
    stack: list[tuple[list[str], click.Command]] = [(["sqlml"], group)]
    while stack:
        path, cmd = stack.pop(0)
        yield path, cmd
        if isinstance(cmd, click.Group):
            stack.extend(([*path, name], cmd.commands[name]) for name in sorted(cmd.commands))


def help_text(path: list[str], command: click.Command) -> str:
    """What ``<path> --help`` prints, at WIDTH columns."""
    from sqlml.cli.commands import main
    ctx = click.Context(main, info_name=path[0], terminal_width=WIDTH, max_content_width=WIDTH)
    cmd: click.Command = main
    for name in path[1:]:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    assert cmd is command
    return command.get_help(ctx)


def cli_reference() -> str:
    parts = []
    for path, cmd in commands():
        parts.append(f"### `{' '.join(path)}`\n\n```text\n{help_text(path, cmd)}\n```\n")
    return "\n".join(parts)


def option_tables() -> str | None:
    """The option tables from sqlml.spec, or None while that module does not provide them."""
    try:
        spec = importlib.import_module("sqlml.spec")
    except ModuleNotFoundError as exc:
        if exc.name != "sqlml.spec":
            raise
        return None
    render = getattr(spec, "option_tables_markdown", None)
    return render() if callable(render) else None


# (page, section name, generator); a generator returning None leaves its section as it is.
SECTIONS: list[tuple[str, str, Callable[[], str | None]]] = [
    ("cli.md", "cli", cli_reference),
    ("training.md", "options", option_tables),
]


def markers(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN GENERATED: {name} -->\n)(.*?)(<!-- END GENERATED: {name} -->)",
                      re.S)


def with_section(text: str, name: str, body: str) -> str:
    pattern = markers(name)
    if not pattern.search(text):
        raise SystemExit(f"docs/gen.py: no '<!-- BEGIN GENERATED: {name} -->' ... "
                         f"'<!-- END GENERATED: {name} -->' markers")
    body = body.strip("\n") + "\n"
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def normalised(text: str) -> str:
    # Whitespace aside: click versions differ in how they wrap help text, not in what it says.
    return " ".join(text.split())


def rendered(docs: Path = DOCS) -> Iterator[tuple[Path, str, str, str]]:
    """(page, section, committed text, generated text) for every section that is generated."""
    for page, name, generate in SECTIONS:
        body = generate()
        if body is None:
            continue
        path = docs / page
        text = path.read_text(encoding="utf-8")
        yield path, name, text, with_section(text, name, body)


def stale(docs: Path = DOCS) -> list[str]:
    """'page: section' for every generated section whose committed text is out of date."""
    return [f"{path.name}: {name}" for path, name, old, new in rendered(docs)
            if normalised(old) != normalised(new)]


def write(docs: Path = DOCS) -> list[str]:
    changed = []
    for path, name, old, new in rendered(docs):
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(f"{path.name}: {name}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated section is stale")
    args = parser.parse_args(argv)
    if args.check:
        old = stale()
        for section in old:
            print(f"stale: docs/{section} (run: python docs/gen.py)", file=sys.stderr)
        return 1 if old else 0
    for section in write():
        print(f"rewrote docs/{section}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
