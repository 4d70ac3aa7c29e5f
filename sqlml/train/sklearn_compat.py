"""Workarounds for bugs in the older scikit-learn releases sqlml supports, applied on import.

Each one is gated on the releases that have the bug, so on a current scikit-learn this module
changes nothing.

- scikit-learn 1.6 to 1.8: ``MLPClassifier(early_stopping=True)`` raises ``TypeError: ufunc
  'isnan' not supported`` when the class labels are strings, as its validation score checks the
  predicted labels for NaN (scikit-learn issue 33760, fixed in 1.9). sqlml trains ``mlp`` with
  early stopping on targets as they come, text labels included, so the score is taken as 1.9
  takes it: labels that are not numbers cannot be NaN, so their accuracy is scored directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier

_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2] if part.isdigit())


def _text_labels_score(original: Any) -> Any:
    """MLPClassifier._score that skips the NaN check for labels that are not numbers."""

    def _score(self: MLPClassifier, X: Any, y: Any, sample_weight: Any = None) -> float:
        if np.asarray(self.classes_).dtype.kind in "biuf":
            keywords = {} if sample_weight is None else {"sample_weight": sample_weight}
            return original(self, X, y, **keywords)
        y_pred = self._predict(X, check_input=False)
        return float(accuracy_score(y, y_pred, sample_weight=sample_weight))

    return _score


if _VERSION < (1, 9) and not getattr(MLPClassifier._score, "_sqlml_compat", False):
    MLPClassifier._score = _text_labels_score(MLPClassifier._score)  # type: ignore[method-assign]
    MLPClassifier._score._sqlml_compat = True  # type: ignore[attr-defined]
