"""The SQL that sqlml installs into a connection, read from the ``sql/`` folder.

In a wheel the folder ships as ``sqlml/sql``; in a source checkout it is the top-level ``sql/``.
A ``{{name}}`` in a file is replaced by the SQL of ``PLACEHOLDERS[name]`` as the file is read, so a
message the SQL shares with Python is written once, in Python, and the ``ml_create_model`` macro is
generated from ``sqlml.spec``; the install fingerprint covers what is put in.
"""

from __future__ import annotations

import hashlib
import string
from functools import cache
from importlib import resources
from pathlib import Path

from sqlml import spec
from sqlml.catalog import generated
from sqlml.catalog import store as catalog
from sqlml.errors import ModelNotFoundError

# Order matters: tables first, then macros that read them.
SQL_FILES = ("catalog.sql", "macros.sql", "metrics.sql", "drift.sql")


def _folder() -> Path:
    packaged = resources.files("sqlml") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "sql"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_message(template: str, fields: dict[str, str]) -> str:
    """A ``str.format`` template as a SQL string expression: its text quoted, each field the SQL
    expression ``fields`` gives for it (an empty one is left out)."""
    parts = []
    for text, field, _, _ in string.Formatter().parse(template):
        if text:
            parts.append(_literal(text))
        if field is not None and fields[field]:
            parts.append(fields[field])
    return " || ".join(parts)


# The catalog's unknown-model message, raised by the macro ml_require_model (whose argument is
# model_name). It starts with the class name, as a UDF's error does, for sqlml.errors.describe.
# The Python side's "Did you mean" has no SQL equal, so the SQL leaves it out.
PLACEHOLDERS = {
    "model_not_found": sql_message(f"{ModelNotFoundError.__name__}: {catalog.NOT_FOUND}", {
        "model": "'''' || model_name || ''''",      # as Python's repr() quotes it
        "suggestion": "",
        "listing": f"coalesce((SELECT string_agg(name, ', ' ORDER BY name) FROM sqlml.models), "
                   f"{_literal(catalog.NO_MODELS)})"}),
    # The whole CREATE MACRO statement: its parameters, order and defaults are sqlml.spec's.
    "ml_create_model": spec.create_model_macro().rstrip("\n"),
    # The persisted dispatchers the generated functions call (sqlml/catalog/generated.py).
    "dispatchers": ";\n".join([*generated.dispatch_statements(temp=False),
                                *generated.public_statements()]),
}


@cache
def read(name: str) -> str:
    path = _folder() / name
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for key, sql in PLACEHOLDERS.items():
        text = text.replace("{{" + key + "}}", sql)
    return text


def fingerprint() -> str:
    """Hash of every installed SQL file: a file is re-installed only when its SQL changed."""
    h = hashlib.sha256()
    for name in SQL_FILES:
        h.update(read(name).encode())
    return h.hexdigest()[:16]


def statements(name: str) -> list[str]:
    """Split a file on the ``;`` that ends a line, skipping comment-only chunks."""
    out, buf = [], []
    for line in read(name).splitlines():
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip()
            buf = []
            if any(s.strip() and not s.strip().startswith("--") for s in stmt.splitlines()):
                out.append(stmt)
    return out
