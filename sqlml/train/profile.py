"""The training data's profile, stored with each model version for drift checks (sql/drift.sql).

One row of sqlml.training_profiles per feature, and one for the model's scores:

- numeric columns, text lengths and scores: 10 bins cut at the training deciles (repeated
  deciles merge, so a column with few distinct values has fewer bins) with the training share
  of each, the training CDF at up to 99 percentiles (for the Kolmogorov-Smirnov distance), mean,
  standard deviation and missing rate;
- categories (and booleans): the ``TOP_CATEGORIES`` most frequent values with their shares, the
  share of all others, and whether that list is every value seen;
- text columns: besides the length row above, a ``text_vocabulary`` row: the training
  vocabulary, the ``VOCABULARY`` most frequent word tokens (``TOKEN``: runs of a-z and 0-9 in
  the lowercased text, as DuckDB's regexp_extract_all finds them), each with its share of all
  tokens, and in ``mean`` the training hit rate: the share of the training rows' tokens that
  are in the vocabulary (``other_share`` is the rest, ``complete`` whether it holds every
  token seen). ml_drift compares a query's hit rate with it;
- scores: P(positive class) of a binary model, the predicted value of a regression, on the
  validation rows from the validation fit (out-of-sample, as new rows are). Multiclass models
  and date columns get no row.

Values are read the way ml_drift reads a query's: cast to VARCHAR by DuckDB, then to DOUBLE, so
the training and the new rows fall into bins by the same rules.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

TOP_CATEGORIES = 50
# Words kept as a text column's training vocabulary, and what a word is (sql/drift.sql uses the
# same pattern on the query's rows).
VOCABULARY = 2000
TOKEN = "[a-z0-9]+"
DECILES = [i / 10 for i in range(1, 10)]
PERCENTILES = [i / 100 for i in range(1, 100)]
SCORE_FEATURE = "ml_score"
_TABLE = "__sqlml_profile_source"


def numeric_row(feature: str, kind: str, column_type: str | None, x: np.ndarray,
                rows: int) -> tuple:
    """The profile row of numeric values ``x`` (NaN for missing) out of ``rows``."""
    present = x[~np.isnan(x)]
    missing = 1.0 - len(present) / rows if rows else 0.0
    if not len(present):
        return (feature, kind, column_type, rows, missing, None, None, None, None, None, None,
                None, None, None, None)
    present = np.sort(present)
    upper = np.unique(np.quantile(present, DECILES, method="inverted_cdf"))
    upper = np.append(upper[upper < present[-1]], np.inf)
    # Bin i holds (upper[i-1], upper[i]]: the first edge >= x, as ml_drift's ASOF join finds it.
    counts = np.bincount(np.searchsorted(upper, present, side="left"), minlength=len(upper))
    at = np.unique(np.quantile(present, PERCENTILES, method="inverted_cdf"))
    cdf = np.searchsorted(present, at, side="right") / len(present)
    std = float(np.std(present, ddof=1)) if len(present) > 1 else None
    return (feature, kind, column_type, rows, missing, float(np.mean(present)), std,
            upper.tolist(), (counts / len(present)).tolist(), at.tolist(), cdf.tolist(),
            None, None, None, None)


def category_row(feature: str, column_type: str, values: list) -> tuple:
    rows = len(values)
    present = [v for v in values if v is not None]
    missing = 1.0 - len(present) / rows if rows else 0.0
    uniq, counts = np.unique(np.array(present, dtype=object).astype(str), return_counts=True) \
        if present else (np.array([]), np.array([]))
    order = np.lexsort((uniq, -counts))[:TOP_CATEGORIES]
    n = max(len(present), 1)
    shares = (counts[order] / n).tolist()
    return (feature, "category", column_type, rows, missing, None, None, None, None, None, None,
            uniq[order].tolist(), shares, max(0.0, 1.0 - sum(shares)) if present else 0.0,
            len(uniq) <= TOP_CATEGORIES)


def profile_rows(cur, table: pa.Table, features: list, scores: np.ndarray | None) -> list[tuple]:
    """The sqlml.training_profiles rows (after name and version) of the training ``table``."""
    cur.register(_TABLE, table)
    try:
        rows = table.num_rows
        out = []
        for f in features:
            col = '"' + f.name.replace('"', '""') + '"'
            if f.kind == "numeric":
                x = cur.execute(f"SELECT TRY_CAST({col}::VARCHAR AS DOUBLE) FROM {_TABLE}"
                                ).fetchnumpy()
                out.append(numeric_row(f.name, "numeric", f.type, _floats(x), rows))
            elif f.kind == "text":
                x = cur.execute(f"SELECT length({col}::VARCHAR)::DOUBLE FROM {_TABLE}"
                                ).fetchnumpy()
                out.append(numeric_row(f.name, "text_length", f.type, _floats(x), rows))
                out.append(vocabulary_row(cur, f.name, f.type, col, rows))
            elif f.kind in ("categorical", "boolean"):
                values = [r[0] for r in cur.execute(
                    f"SELECT {col}::VARCHAR FROM {_TABLE}").fetchall()]
                out.append(category_row(f.name, f.type, values))
    finally:
        cur.unregister(_TABLE)
    if scores is not None and len(scores):
        out.append(numeric_row(SCORE_FEATURE, "score", "DOUBLE",
                               np.asarray(scores, dtype=np.float64), len(scores)))
    return out


def vocabulary_row(cur, feature: str, column_type: str, col: str, rows: int) -> tuple:
    """The ``text_vocabulary`` row of text column ``col``: its most frequent tokens, their
    shares and the training hit rate (in ``mean``)."""
    words = cur.execute(
        f"SELECT tok, count(*) AS n FROM (SELECT unnest(regexp_extract_all(lower({col}::VARCHAR),"
        f" '{TOKEN}')) AS tok FROM {_TABLE}) GROUP BY tok ORDER BY n DESC, tok").fetchall()
    total = sum(n for _, n in words)
    missing = cur.execute(f"SELECT count(*) FILTER ({col} IS NULL) FROM {_TABLE}"
                          ).fetchall()[0][0] / rows if rows else 0.0
    kept = words[:VOCABULARY]
    hit = sum(n for _, n in kept) / total if total else None
    return (feature, "text_vocabulary", column_type, rows, missing, hit, None, None, None, None,
            None, [w for w, _ in kept], [n / total for _, n in kept],
            None if hit is None else 1.0 - hit, len(words) <= VOCABULARY)


def _floats(fetched: dict) -> np.ndarray:
    values = next(iter(fetched.values()))
    return np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
