"""What the server needs to know about one statement's text: its command tag, whether it returns
rows, and how many ``$n`` parameters it takes."""

from __future__ import annotations

import re

# Leading words of statements whose result is rows, even a lone "Count" column.
QUERY_WORDS = {"SELECT", "FROM", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC",
               "SUMMARIZE", "PRAGMA", "CALL", "PIVOT", "UNPIVOT", "EXPLAIN", "("}
# Those whose result can be described without running them (a lazy DuckDB relation).
DESCRIBABLE = {"SELECT", "FROM", "WITH", "VALUES", "TABLE", "("}
_MODIFIERS = {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "PERSISTENT", "IF", "NOT", "EXISTS",
              "GLOBAL", "LOCAL", "MATERIALIZED"}
_NOISE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.S)
_PARAM = re.compile(r"\$(\d+)")
_WORDS = re.compile(r"\(|[A-Za-z_][A-Za-z_0-9]*")


def words(text: str, n: int = 6) -> list[str]:
    """The first ``n`` words of a statement, upper-cased, comments and strings skipped."""
    out = []
    for m in _WORDS.finditer(_NOISE.sub(" ", text)):
        out.append(m.group(0).upper())
        if len(out) == n:
            break
    return out


def leading_word(text: str) -> str:
    w = words(text, 1)
    return w[0] if w else ""


def parameter_count(text: str) -> int:
    found = [int(m.group(1)) for m in _PARAM.finditer(_NOISE.sub(" ", text))]
    return max(found, default=0)


def base_tag(text: str) -> str:
    """The command tag without a row count: BEGIN, CREATE TABLE, INSERT, SELECT..."""
    w = words(text)
    if not w:
        return ""
    first = w[0]
    if first in ("BEGIN", "START"):
        return "BEGIN"
    if first in ("COMMIT", "END"):
        return "COMMIT"
    if first in ("ROLLBACK", "ABORT"):
        return "ROLLBACK"
    if first in ("CREATE", "DROP", "ALTER"):
        rest = [x for x in w[1:] if x not in _MODIFIERS]
        return f"{first} {rest[0]}" if rest else first
    if first in QUERY_WORDS:
        return "SELECT"
    return first


def full_tag(base: str, count: int) -> str:
    if base == "INSERT":
        return f"INSERT 0 {count}"
    if base in ("SELECT", "UPDATE", "DELETE", "MERGE", "COPY", "FETCH", "MOVE"):
        return f"{base} {count}"
    return base
