"""The decision threshold of a binary model, chosen on validation data at training time.

The choice is made by the same pure-SQL functions a user runs on any table
(``ml_best_threshold`` and ``ml_threshold_table`` in ``sql/metrics.sql``), so a threshold
chosen at training time and one chosen later by hand agree.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from sqlml.errors import TrainingError

FN = "ml_create_model"
MAX_STORED = 2000
TABLE_COLUMNS = ("threshold", "tp", "fp", "tn", "fn", "precision", "recall", "f1", "fnr", "fpr",
                 "accuracy", "cost")


def wanted(objective: str, fn_cost, fp_cost, min_recall) -> bool:
    return objective == "cost" or min_recall is not None or fn_cost is not None \
        or fp_cost is not None


def choose(cur, actual: np.ndarray, score: np.ndarray, objective: str, fn_cost, fp_cost,
           min_recall) -> tuple[float, str, list[tuple]]:
    """(threshold, reason, threshold table rows) from the validation rows."""
    fn_c = 1.0 if fn_cost is None else float(fn_cost)
    fp_c = 1.0 if fp_cost is None else float(fp_cost)
    pick = "cost" if objective == "cost" or fn_cost is not None or fp_cost is not None else "f1"
    frame = pd.DataFrame({"actual": actual.astype(bool), "score": score.astype(np.float64)})
    view = "__sqlml_validation_scores"
    cur.register(view, frame)
    try:
        best = cur.execute(
            f"SELECT ml_best_threshold(actual, score, objective := ?, fn_cost := ?, "
            f"fp_cost := ?, min_recall := ?) FROM {view}",
            [pick, fn_c, fp_c, min_recall]).fetchall()[0][0]
        columns = ", ".join(f'"{c}"' for c in TABLE_COLUMNS)
        table = cur.execute(
            f"SELECT {columns} FROM ml_threshold_table('{view}', actual := 'actual', "
            f"score := 'score', fn_cost := ?, fp_cost := ?)", [fn_c, fp_c]).df()
    except duckdb.Error as exc:
        message = str(exc).split("Error: ", 1)[-1]
        raise TrainingError(
            f"{FN}: choosing the decision threshold on the validation rows failed: {message}"
        ) from None
    finally:
        cur.unregister(view)
    goal = (f"minimises validation cost {fn_c:g} x FN + {fp_c:g} x FP" if pick == "cost"
            else "maximises validation F1")
    bound = f" subject to recall >= {min_recall:g}" if min_recall is not None else ""
    reason = (f"{goal}{bound}: cost {best['cost']:g}, recall {best['recall']:.3f}, precision "
              f"{best['precision']:.3f} at P(positive) >= {best['threshold']:.6g}")
    return float(best["threshold"]), reason, thin(table, float(best["threshold"]))


def thin(table: pd.DataFrame, chosen: float) -> pd.DataFrame:
    """At most MAX_STORED rows, evenly spaced by rank, always with the ends and the chosen row.

    Every distinct score is a threshold, so a large validation set would store a row per row;
    the choice itself is made on all of them."""
    if len(table) <= MAX_STORED:
        return table
    keep = np.unique(np.r_[np.linspace(0, len(table) - 1, MAX_STORED).round().astype(int),
                           np.flatnonzero(table["threshold"].to_numpy() == chosen)])
    return table.iloc[keep].reset_index(drop=True)
