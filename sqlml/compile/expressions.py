"""SQL text every model compiler writes (sqlml.compile.preprocessing, compile_estimators and
compile_sql): float64 literals that read back to the same bits, quoted strings and balanced sums;
and NotCompilable, which any stage raises for a part plain SQL cannot reproduce exactly.
"""

from __future__ import annotations

import numpy as np


class NotCompilable(Exception):
    """The model has a part that plain SQL cannot reproduce exactly; the text says which."""


def num(x) -> str:
    """A float64 literal that DuckDB reads back to the same bits (a literal with an exponent is
    parsed as DOUBLE; without one it would be a DECIMAL, rounded twice on the way to DOUBLE)."""
    x = float(x)
    if np.isnan(x):
        return "'nan'::DOUBLE"
    if np.isinf(x):
        return "'inf'::DOUBLE" if x > 0 else "'-inf'::DOUBLE"
    r = repr(x)
    if "e" not in r:
        r += "e0"
    return f"({r})" if r.startswith("-") else r


def text(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def total(terms: list[str]) -> str:
    """A sum as a balanced tree: depth log2(n), far below DuckDB's expression depth limit."""
    if not terms:
        return "0.0e0"
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
