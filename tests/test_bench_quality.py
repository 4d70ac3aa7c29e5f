"""The quality benchmark's own arithmetic: outer splits, the metric and the paired difference.

Checked against scikit-learn's roc_auc_score called directly and a hand-worked example; no AUTO
training here (that is the benchmark's job, CPU heavy).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_quality.py"
_spec = importlib.util.spec_from_file_location("bench_quality", _PATH)
bq = importlib.util.module_from_spec(_spec)
sys.modules["bench_quality"] = bq  # its dataclass looks its module up there
_spec.loader.exec_module(bq)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(3)
    y = np.where(rng.random(60) < 0.3, "yes", "no")
    p_yes = np.clip(0.5 * (y == "yes") + rng.random(60) * 0.6, 0, 1)
    return y, np.column_stack([1 - p_yes, p_yes])


def test_outer_splits_are_stratified_repeated_and_seeded(tiny):
    y, _ = tiny
    splits = list(bq.outer_splits(y, folds=3, repeats=2))
    assert len(splits) == 6
    again = list(bq.outer_splits(y, folds=3, repeats=2))
    assert all((a[1] == b[1]).all() for a, b in zip(splits, again, strict=True))
    for r in range(2):  # each repeat covers every row exactly once as a test row
        tests = np.concatenate([te for _, te in splits[3 * r:3 * r + 3]])
        assert sorted(tests) == list(range(len(y)))
    for train, test in splits:
        assert not set(train) & set(test)
        assert abs((y[test] == "yes").mean() - (y == "yes").mean()) < 0.06


def test_binary_score_is_sklearn_roc_auc_on_each_fold(tiny):
    y, proba = tiny
    for _, test in bq.outer_splits(y, folds=3, repeats=1):
        got = bq.score(y[test], proba[test], ["no", "yes"], "yes")
        assert got == pytest.approx(roc_auc_score(y[test] == "yes", proba[test, 1]))


def test_multiclass_score_is_macro_ovr_auc():
    rng = np.random.default_rng(0)
    y = np.array(["a", "b", "c"] * 10)
    proba = rng.dirichlet([1, 1, 1], size=30)
    want = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert bq.score(y, proba, ["a", "b", "c"], None) == pytest.approx(want)


def test_paired_difference_against_a_hand_worked_example():
    # differences 0.02, 0.00, 0.04, 0.02: mean 0.02; squared deviations 0, 4e-4, 4e-4, 0;
    # sample variance 8e-4 / 3, std 0.016330, standard error 0.016330 / 2 = 0.008165.
    mean, std, stderr = bq.paired_difference([0.92, 0.90, 0.95, 0.91], [0.90, 0.90, 0.91, 0.89])
    assert mean == pytest.approx(0.02)
    assert std == pytest.approx(math.sqrt(8e-4 / 3))
    assert stderr == pytest.approx(math.sqrt(8e-4 / 3) / 2)
    assert bq.beyond_noise(mean, stderr)
    assert not bq.beyond_noise(0.005, stderr)


def test_baselines_fit_the_synthetic_set_and_beat_chance():
    ds = bq.subsample(bq.make_synthetic(n=600), 300)
    train, test = next(bq.outer_splits(ds.frame[ds.target], folds=3, repeats=1))
    for make in bq.baselines(ds).values():
        auc, seconds = bq.fit_baseline(make, ds.frame.iloc[train], ds.frame.iloc[test], ds,
                                       ["no", "yes"])
        assert 0.6 < auc <= 1 and seconds >= 0


def test_shared_data_sets_are_skipped_with_a_reason_when_absent(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bq, "DATA", tmp_path / "no-shared-data")
    assert "absent" in bq.load_churn() and "absent" in bq.load_sms()
    monkeypatch.setattr(bq, "warm_up", lambda con: None)
    monkeypatch.setattr(bq, "run_dataset", lambda *a: pytest.fail("nothing should be trained"))
    assert bq.main(["--datasets", "churn,sms"]) == 1
    out = capsys.readouterr().out
    assert "churn: skipped" in out and "sms: skipped" in out and "NOT MET" in out
