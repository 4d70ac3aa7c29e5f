"""A compiled model's arrays, kept as rows of ``sqlml.model_params`` rather than in its SQL.

DuckDB stores a macro as text and parses, binds and optimises it again in every query that calls
it, so SQL that spells out every tree node or vocabulary term costs seconds per query on a large
model. A compiler instead adds each array here and gets back a small SQL expression that reads
it: an uncorrelated scalar subquery, which DuckDB evaluates once per query, not once per row.
The macro's text then has one shape whatever the model's size.

The rows are keyed by model name and version. A version's rows are written in the transaction
that publishes it (``rows``), before the macros that read them are created; training runs the
compiled SQL on sample rows first with the rows written inside a transaction it rolls back
(``staged``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

KINDS = ("ints", "doubles", "texts")
TABLE = "sqlml.model_params"
# What ``Params.ref`` writes, to find the references in an expression: DuckDB refuses a
# subquery inside a lambda, so code that wraps an expression in one hoists them out first.
REF = re.compile(r"\(SELECT (?:ints|doubles|texts) FROM sqlml\.model_params WHERE name = "
                 r"'(?:[^']|'')*' AND version = \d+ AND key = '(?:[^']|'')*'\)")


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Params:
    """The arrays of one model version, and the SQL that reads each of them."""

    def __init__(self, model: str, version: int):
        self.model, self.version = model, int(version)
        self.arrays: dict[str, tuple[str, list]] = {}

    def add(self, key: str, values: Sequence | np.ndarray, kind: str) -> str:
        """Store ``values`` under ``key`` (unique in this model) and return the SQL of the array.

        ``kind`` is 'ints' (BIGINT[]), 'doubles' (DOUBLE[], bit for bit) or 'texts'
        (VARCHAR[]).
        """
        if kind not in KINDS:
            raise ValueError(f"Params.add: kind must be one of {KINDS}, got {kind!r}.")
        if key in self.arrays:
            raise ValueError(f"Params.add: key {key!r} is already stored for model "
                             f"{self.model!r}; give each array its own key.")
        data: list
        if kind == "ints":
            data = [int(v) for v in values]
        elif kind == "doubles":
            data = [float(v) for v in values]
        else:
            data = [str(v) for v in values]
        self.arrays[key] = (kind, data)
        return self.ref(key)

    def fresh(self, key: str) -> str:
        """``key``, or ``key#2``, ``key#3``... if taken: for an array a compiler may add once per
        use of the same input (a text block's coefficients, once per calibration fold)."""
        n, out = 1, key
        while out in self.arrays:
            n += 1
            out = f"{key}#{n}"
        return out

    def ref(self, key: str) -> str:
        kind, _ = self.arrays[key]
        return (f"(SELECT {kind} FROM {TABLE} WHERE name = {_literal(self.model)} "
                f"AND version = {self.version} AND key = {_literal(key)})")

    def rows(self) -> list[tuple]:
        """(key, ints, doubles, texts) per array: sqlml.model_params without name and version,
        as ``catalog.publish``'s ``extra_rows`` take them."""
        out = []
        for key, (kind, data) in self.arrays.items():
            out.append((key, *(data if k == kind else None for k in KINDS)))
        return out

    def write(self, cur) -> None:
        """Replace this version's stored arrays (inside the caller's transaction)."""
        cur.execute(f"DELETE FROM {TABLE} WHERE name = ? AND version = ?",
                    [self.model, self.version])
        rows = self.rows()
        if rows:
            cur.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                            [(self.model, self.version, *r) for r in rows])


@contextmanager
def staged(cur, params: Params) -> Iterator[None]:
    """Run the body with ``params`` stored, then leave the catalog as it was."""
    cur.execute("BEGIN")
    try:
        params.write(cur)
        yield
    finally:
        cur.execute("ROLLBACK")   # also ends a transaction a failed check left aborted
