"""What a training or scoring call reads: a table name, or one query that returns rows.

The source is read, never run for its effects: DuckDB runs every statement of a multi-statement
string, so ``'SELECT 1 AS y; DROP TABLE customers'`` given as a training query would drop the
table before training failed on the one-row result.
"""

from __future__ import annotations

import re

import duckdb

from sqlml.errors import SqlmlError

_PART = r'(?:[A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")+")'
# A table reference rather than a query: plain, schema-qualified and quoted names ("my table"),
# and a file DuckDB reads by its name ('sales.parquet', 'data/*.csv').
_TABLE_REF = re.compile(rf"^{_PART}(?:\.{_PART}){{0,2}}$|^'(?:[^']|'')+'$")
# PIVOT is planned as a MULTI statement (it looks its column values up first).
_READS = (duckdb.StatementType.SELECT, duckdb.StatementType.MULTI)


def is_table_ref(source: str) -> bool:
    return bool(_TABLE_REF.match(source))


def query_of(source: str) -> str:
    """The SELECT reading ``source``: a table or file reference, or the query itself."""
    source = source.strip()
    return f"SELECT * FROM {source}" if is_table_ref(source) else source


def relation(cur, query: str, fn: str, what: str, error: type[SqlmlError] = SqlmlError):
    """``cur.sql(query)`` once ``query`` is known to be one statement that returns rows.
    DuckDB's own errors (a syntax error, an unknown table) pass through for the caller."""
    kinds = [s.type for s in cur.extract_statements(query)]
    if len(kinds) != 1 or kinds[0] not in _READS:
        got = ", ".join(k.name for k in kinds) or "no statement"
        raise error(
            f"{fn}: the {what} must be a table name or one query that returns rows (SELECT, "
            f"FROM, VALUES, WITH ...), got {len(kinds)} statement(s) ({got}): {query!r}. Run "
            f"other statements on their own first, then pass the table or the SELECT.")
    rel = cur.sql(query)
    if rel is None:   # not expected of a SELECT; kept as a guard for DuckDB's statement kinds
        raise error(f"{fn}: the {what} returned nothing: {query!r}. Pass a table name or a "
                    f"SELECT query.")
    return rel
