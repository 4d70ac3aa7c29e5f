"""sqlml.train.sklearn_compat: the workarounds for older supported scikit-learn releases."""

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from sqlml.train import estimators  # noqa: F401  (applies sqlml.train.sklearn_compat)


@pytest.mark.parametrize("labels", [np.array(["no", "yes"]), np.array(["no", "yes"], dtype=object),
                                    np.array([0, 1])])
def test_mlp_early_stopping_takes_text_labels(labels):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = labels[(X[:, 0] > 0).astype(int)]
    model = MLPClassifier(hidden_layer_sizes=(4,), early_stopping=True, max_iter=20,
                          random_state=0).fit(X, y)
    # one validation accuracy per epoch, as with numeric labels
    assert len(model.validation_scores_) == model.n_iter_
    assert all(0 <= s <= 1 for s in model.validation_scores_)
    assert set(model.predict(X)) <= set(labels.tolist())
