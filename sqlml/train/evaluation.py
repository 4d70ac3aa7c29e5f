"""The validation split and the metrics stored with every model version."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from sqlml import spec
from sqlml.errors import TrainingError


def split(n_rows: int, y, problem_type: str, test_size: float, random_state: int, fn: str):
    """Indices of a train/validation split; stratified for classification."""
    spec.check(spec.SETTING["test_size"], test_size, caller=fn)
    n_val = int(np.ceil(n_rows * test_size))
    n_train = n_rows - n_val
    stratify = None
    if problem_type != "regression":
        labels, counts = np.unique(y, return_counts=True)
        need = max(2 * len(labels), int(np.ceil(len(labels) / test_size)))
        if counts.min() < 2 or n_val < len(labels) or n_train < len(labels):
            rare = labels[np.argmin(counts)]
            rare = rare.item() if isinstance(rare, np.generic) else rare   # False, not np.False_
            raise TrainingError(
                f"{fn}: the training set is too small for a {test_size:.0%} validation split: "
                f"{n_rows} rows, class {rare!r} has {counts.min()} row(s), and a stratified split "
                f"needs at least 2 rows of every class and at least {need} rows in all. Add rows, "
                f"or change settings := {{test_size: ...}}.")
        stratify = y
    elif n_val < 2 or n_train < 5:
        raise TrainingError(
            f"{fn}: the training set is too small for a {test_size:.0%} validation split: "
            f"{n_rows} rows give {n_train} training and {n_val} validation rows; regression needs"
            f" at least 5 and 2. Add rows, or change settings := {{test_size: ...}}.")
    idx = np.arange(n_rows)
    return train_test_split(idx, test_size=n_val, random_state=random_state, stratify=stratify)


def binary_metrics(y, proba_pos, labels_pred, positive) -> dict[str, float]:
    y_pos = np.asarray(y) == positive
    p_pos = np.asarray(labels_pred) == positive
    tp = int(np.sum(y_pos & p_pos))
    fp = int(np.sum(~y_pos & p_pos))
    tn = int(np.sum(~y_pos & ~p_pos))
    fn = int(np.sum(y_pos & ~p_pos))
    both = len(np.unique(y_pos)) == 2
    return {
        "accuracy": (tp + tn) / len(y_pos),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": float(skm.roc_auc_score(y_pos, proba_pos)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y_pos, proba_pos)) if both else float("nan"),
        "log_loss": float(skm.log_loss(y_pos, proba_pos, labels=[False, True])),
        "false_negative_rate": fn / (tp + fn) if tp + fn else 0.0,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }


def multiclass_metrics(y, proba, labels_pred, classes) -> tuple[dict, list[tuple]]:
    """Overall metrics, and (metric, class, value) rows for each class."""
    headline = {"accuracy": float(skm.accuracy_score(y, labels_pred)),
                "log_loss": float(skm.log_loss(y, proba, labels=list(classes)))}
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y, labels_pred, labels=list(classes), average=avg, zero_division=0)
        headline.update({f"precision_{avg}": p, f"recall_{avg}": r, f"f1_{avg}": f})
    p, r, f, s = skm.precision_recall_fscore_support(
        y, labels_pred, labels=list(classes), zero_division=0)
    per_class = []
    for i, c in enumerate(classes):
        per_class += [("precision", c, p[i]), ("recall", c, r[i]), ("f1", c, f[i]),
                      ("support", c, s[i])]
    return {k: float(v) for k, v in headline.items()}, per_class


def regression_metrics(y, pred) -> dict[str, float]:
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    nonzero = y != 0
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)),
        # MAPE over rows whose actual value is not zero, where it is defined.
        "mape": float(np.mean(np.abs((y[nonzero] - pred[nonzero]) / y[nonzero])))
        if nonzero.any() else float("nan"),
    }


# Validation rows whose (actual, predicted) pairs are stored for the model report's curves; a
# larger validation split stores a seeded random sample of this many (the report says so).
STORED_PREDICTIONS = 20_000


def stored_predictions(actual, predicted, settings: dict) -> pd.DataFrame:
    """sqlml.validation_predictions rows: (row, actual, predicted) with actual 1/0 (positive
    or not) and predicted P(positive) for a binary model, the values for a regression."""
    actual = np.asarray(actual, dtype=float)
    rows = np.arange(len(actual))
    if len(rows) > STORED_PREDICTIONS:
        rng = np.random.default_rng(settings.get("random_state", 42))
        rows = np.sort(rng.choice(len(rows), size=STORED_PREDICTIONS, replace=False))
    return pd.DataFrame({"row": rows.astype(np.int64), "actual": actual[rows],
                         "predicted": np.asarray(predicted, dtype=float)[rows]})


def confusion(y, labels_pred, classes) -> list[tuple[str, str, int]]:
    m = skm.confusion_matrix(y, labels_pred, labels=list(classes))
    return [(str(a), str(p), int(m[i, j])) for i, a in enumerate(classes)
            for j, p in enumerate(classes)]


# Objectives: name -> (scikit-learn scorer, the problem kinds it applies to). The names, kinds and
# defaults are declared in sqlml.spec; only the scorer is said here.
_SCORERS = {"auc": "roc_auc", "f1": "f1", "accuracy": "accuracy", "recall": "recall",
            "precision": "precision", "log_loss": "neg_log_loss", "cost": "roc_auc",
            "f1_macro": "f1_macro", "rmse": "neg_root_mean_squared_error",
            "mae": "neg_mean_absolute_error", "r2": "r2",
            "mape": "neg_mean_absolute_percentage_error"}
_KINDS = {"binary": "binary", "classification": "any_clf", "regression": "regression"}
OBJECTIVES = {o.name: (_SCORERS[o.name], _KINDS[o.applies]) for o in spec.OBJECTIVE_SPECS}
DEFAULT_OBJECTIVE = spec.DEFAULT_OBJECTIVE
