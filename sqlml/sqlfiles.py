"""The SQL that sqlml installs into a connection, read from the ``sql/`` folder.

In a wheel the folder ships as ``sqlml/sql``; in a source checkout it is the top-level ``sql/``.
Statements derived from ``sqlml.spec`` (the ``ml_create_model`` macro) are generated here and
read as part of their file, so the install fingerprint covers them too.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

from sqlml import spec

# Order matters: tables first, then macros that read them.
SQL_FILES = ("catalog.sql", "macros.sql", "metrics.sql")
# Statements generated from the spec, put in front of a file's own.
GENERATED = {"macros.sql": spec.create_model_macro}


def _folder() -> Path:
    packaged = resources.files("sqlml") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "sql"


@cache
def read(name: str) -> str:
    path = _folder() / name
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    make = GENERATED.get(name)
    return make() + text if make else text


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
