"""SQL-level prepared statements and cursors: ``PREPARE``, ``EXECUTE``, ``DEALLOCATE``, ``CLOSE``.

They share one namespace with the protocol's Parse and Close messages, as in Postgres:
psqlODBC parses ``_PLAN0x...`` with a Parse message and frees it with ``DEALLOCATE
"_PLAN0x..."``. Names follow Postgres' identifier rules: case-sensitive when double-quoted,
folded to lower case when not. The session keeps the statements itself (DuckDB's own PREPARE
folds quoted names and takes no type list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlml.server.pgwire.errors import PgError

_IDENT = r'"(?:[^"]|"")+"|[A-Za-z_][\w$]*'
_PREPARE = re.compile(rf"^\s*PREPARE\s+(?P<name>{_IDENT})\s*(?:\((?P<types>[^)]*(?:\([^)]*\)"
                      rf"[^)]*)*)\))?\s+AS\s+(?P<body>.*?)\s*;?\s*$", re.I | re.S)
_EXECUTE = re.compile(rf"^\s*EXECUTE\s+(?P<name>{_IDENT})\s*(?:\((?P<args>.*)\))?\s*;?\s*$",
                      re.I | re.S)
_DEALLOCATE = re.compile(rf"^\s*DEALLOCATE\s+(?:PREPARE\s+)?(?P<name>{_IDENT})\s*;?\s*$", re.I)
_CLOSE = re.compile(rf"^\s*CLOSE\s+(?P<name>{_IDENT})\s*;?\s*$", re.I)


def identifier(text: str) -> str:
    """A name as Postgres reads it: ``"Plan_1"`` stays as written, ``Plan_1`` is ``plan_1``."""
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


@dataclass
class PrepareCommand:
    name: str
    type_names: list[str]
    body: str


def parse_prepare(sql: str) -> PrepareCommand:
    m = _PREPARE.match(sql)
    if not m:
        raise PgError("42601", "syntax error in PREPARE: write PREPARE name [(type, ...)] AS "
                               "statement, e.g. PREPARE by_id (int) AS SELECT * FROM t WHERE "
                               "id = $1")
    types = split_list(m.group("types")) if m.group("types") else []
    return PrepareCommand(identifier(m.group("name")), types, m.group("body"))


def parse_execute(sql: str) -> tuple[str, list[str]]:
    """The statement name and the argument expressions of ``EXECUTE name(arg, ...)``."""
    m = _EXECUTE.match(sql)
    if not m:
        raise PgError("42601", "syntax error in EXECUTE: write EXECUTE name [(value, ...)], e.g. "
                               "EXECUTE by_id(42)")
    args = m.group("args")
    return identifier(m.group("name")), split_list(args) if args and args.strip() else []


def parse_name(sql: str, command: str) -> str | None:
    """The name ``DEALLOCATE [PREPARE] name`` or ``CLOSE name`` refers to; None for ALL."""
    m = (_DEALLOCATE if command == "DEALLOCATE" else _CLOSE).match(sql)
    if not m:
        raise PgError("42601", f"syntax error in {command}: write {command} name or "
                               f"{command} ALL (a quoted name keeps its case)")
    raw = m.group("name")
    return None if raw.upper() == "ALL" else identifier(raw)


def split_list(text: str) -> list[str]:
    """Top-level comma-separated items: commas inside parentheses, brackets or quotes stay."""
    items, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]
