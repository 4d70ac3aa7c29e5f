"""Hyperparameter ranges, search strategies, the median stopping rule and the time budget."""

import json

import duckdb
import numpy as np
import pytest

import sqlml
from sqlml.errors import TrainingError
from sqlml.train import tuning


# -- ranges and scales -----------------------------------------------------------------------
def _decade_shares(r: tuning.Range, n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.array([r.sample(rng) for _ in range(n)])
    return np.histogram(np.log10(x), bins=[-4, -3, -2, -1, 0])[0] / n


def test_log_scale_puts_equal_mass_in_each_decade():
    shares = _decade_shares(tuning.parse_range("lr", {"min": 1e-4, "max": 1.0, "scale": "log"}))
    assert np.allclose(shares, 0.25, atol=0.03), shares


def test_linear_scale_spends_most_trials_in_the_top_decade():
    shares = _decade_shares(tuning.parse_range("lr", {"min": 1e-4, "max": 1.0,
                                                      "scale": "linear"}))
    assert 0.87 < shares[-1] < 0.93, shares
    assert shares[0] < 0.01


def test_auto_scale_is_log_when_a_positive_range_spans_two_decades():
    assert tuning.parse_range("a", {"min": 1e-4, "max": 1.0}).scale == "log"
    assert tuning.parse_range("a", {"min": 1, "max": 100}).scale == "log"
    assert tuning.parse_range("a", {"min": 1, "max": 99}).scale == "linear"
    assert tuning.parse_range("a", {"min": 0, "max": 100}).scale == "linear"
    r = tuning.parse_range("depth", {"min": 2, "max": 12})
    assert r.integer and all(isinstance(r.sample(np.random.default_rng(i)), int)
                             for i in range(20))


def test_values_fixed_and_ranges_are_told_apart():
    fixed, space = tuning.split_space({"learning_rate": {"min": 1e-4, "max": 1.0},
                                       "max_depth": {"values": [3, 5, 8]}, "l2": 0.1,
                                       "class_weight": {"0": 1, "1": 5}})
    assert fixed == {"l2": 0.1, "class_weight": {"0": 1, "1": 5}}
    assert isinstance(space["learning_rate"], tuning.Range)
    assert space["max_depth"] == tuning.Choice("max_depth", (3, 5, 8))


@pytest.mark.parametrize("spec, words", [
    ({"min": 1.0, "max": 0.1}, ["min 1.0 is greater than max 0.1", "Swap"]),
    ({"min": 0, "max": 1, "scale": "log"}, ["log scale needs min > 0", "got min 0"]),
    ({"min": -1, "max": 1, "scale": "log"}, ["log scale needs min > 0"]),
    ({"min": 1, "max": 2, "scale": "lgo"}, ["scale 'lgo' is unknown",
                                                    "Did you mean 'log'"]),
    ({"min": 1, "mx": 2}, ["key 'mx'", "Did you mean 'max'"]),
    ({"values": []}, ["at least one value"]),
])
def test_bad_ranges_get_clear_errors(spec, words):
    with pytest.raises(TrainingError) as err:
        tuning.parse_range("learning_rate", spec)
    assert "'learning_rate'" in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_grid_points_cover_choices_and_range_ends():
    _, space = tuning.split_space({"a": {"values": ["x", "y"]},
                                   "b": {"min": 1e-3, "max": 1e-1}})
    points = tuning.grid_points(space)
    assert len(points) == 6
    assert sorted({p["b"] for p in points}) == pytest.approx([1e-3, 1e-2, 1e-1])


def test_plan_defaults_and_bayesian_parallelism():
    p = tuning.plan({"strategy": "bayesian", "max_parallel_trials": 4})
    assert p.parallel == 1 and "one trial at a time" in p.notes[0]
    assert tuning.plan({"strategy": "random", "max_parallel_trials": 3}).parallel == 3
    assert tuning.plan({}).max_trials == tuning.DEFAULT_MAX_TRIALS
    with pytest.raises(TrainingError, match=r"strategy 'baysian' is unknown\. Did you mean "
                                            r"'bayesian'"):
        tuning.plan({"strategy": "baysian"})
    with pytest.raises(TrainingError, match="max_trials must be a whole number"):
        tuning.plan({"max_trials": 0})


# -- the median stopping rule ----------------------------------------------------------------
def test_median_rule_with_hand_made_sequences():
    rule = tuning.MedianStoppingRule(maximize=True, min_trials=3)
    # Too few earlier trials: never stops.
    rule.finish([0.50, 0.60, 0.70])
    rule.finish([0.40, 0.50, 0.60])
    assert rule.should_stop(1, 0.0) == (False, None)
    rule.finish([0.60, 0.70, 0.80])
    # Running averages at epoch 2: 0.55, 0.45, 0.65 -> median 0.55.
    assert rule.median(2) == pytest.approx(0.55)
    assert rule.should_stop(2, 0.54) == (True, pytest.approx(0.55))
    assert rule.should_stop(2, 0.56)[0] is False
    # Epoch 3: averages 0.6, 0.5, 0.7 -> 0.6. Epoch 1: the first values 0.5, 0.4, 0.6 -> 0.5.
    assert rule.median(3) == pytest.approx(0.6)
    assert rule.median(1) == pytest.approx(0.5)
    assert rule.should_stop(1, 0.45)[0] and not rule.should_stop(1, 0.5)[0]
    # A shorter earlier trial (stopped at epoch 1) counts with the epochs it has.
    rule.finish([0.1])
    assert rule.median(3) == pytest.approx(np.median([0.6, 0.5, 0.7, 0.1]))


def test_median_rule_when_minimising():
    rule = tuning.MedianStoppingRule(maximize=False, min_trials=2)
    rule.finish([3.0, 2.0])
    rule.finish([5.0, 4.0])
    # Running averages at epoch 2: 2.5 and 4.5 -> median 3.5; lower is better.
    assert rule.should_stop(2, 3.6)[0] and not rule.should_stop(2, 3.4)[0]


# -- through SQL -----------------------------------------------------------------------------

def test_random_search_records_trials_and_epochs(customers):
    s = customers.execute("""
        SELECT ml_create_model('rf', 'customers', target := 'churned',
            model_type := 'random_forest',
            hyperparameters := {n_estimators: 24, max_depth: {'values': [1, 12]},
                                min_samples_leaf: {'min': 1, 'max': 20}},
            settings := {strategy: 'random', max_trials: 8, max_parallel_trials: 1})
    """).fetchall()[0][0]
    assert s["model_type"] == "random_forest"
    trials = customers.execute(
        "SELECT trial, status, epochs, score, fold_scores, parameters FROM ml_trials('rf')"
    ).fetchall()
    assert [t[0] for t in trials] == list(range(1, 9))
    statuses = {t[1] for t in trials}
    assert statuses <= {"completed", "stopped_early"} and "completed" in statuses
    for _, status, epochs, score, folds, params in trials:
        params = json.loads(params)
        assert params["n_estimators"] == 24 and params["max_depth"] in (1, 12)
        assert 1 <= params["min_samples_leaf"] <= 20
        if status == "completed":
            assert epochs == 8 and len(json.loads(folds)) == 3
            assert score == pytest.approx(np.mean(json.loads(folds)))
    # Depth-1 forests fall below the median of earlier trials and are stopped before the end.
    stopped = [t for t in trials if t[1] == "stopped_early"]
    assert stopped and all(t[2] < 8 for t in stopped)
    assert all(json.loads(t[5])["max_depth"] == 1 for t in stopped)
    assert f"stopped {len(stopped)} trial(s) early" in s["notes"]
    log = customers.execute(
        "SELECT trial, epoch, event, median_of_earlier, score FROM ml_training_log('rf') "
        "WHERE event = 'stopped_early'").fetchall()
    assert len(log) == len(stopped)
    assert all(score < median for _, _, _, median, score in log)
    best = max((t for t in trials if t[1] == "completed"), key=lambda t: t[3])
    served = customers.execute(
        "SELECT parameters FROM sqlml.model_versions WHERE name = 'rf'").fetchall()[0][0]
    assert json.loads(served)["estimator"]["min_samples_leaf"] == \
        json.loads(best[5])["min_samples_leaf"]


def test_auto_with_tuning_compares_then_tunes_the_best(customers):
    s = customers.execute("""
        SELECT ml_create_model('auto_tuned', 'customers', target := 'churned',
            settings := {strategy: 'bayesian', max_trials: 5, max_parallel_trials: 2})
    """).fetchall()[0][0]
    assert "one trial at a time, not 2" in s["notes"]
    rows = customers.execute("SELECT model_type, status FROM ml_trials('auto_tuned')").fetchall()
    assert len(rows) == 5
    assert [r[0] for r in rows[:3]] == ["logistic", "gradient_boosting", "random_forest"]
    assert len({r[0] for r in rows[3:]}) == 1
    assert rows[3][0] == s["model_type"] or s["model_type"] in [r[0] for r in rows[:3]]


def test_grid_search_runs_every_point(customers):
    customers.execute("""
        SELECT ml_create_model('grid', 'customers', target := 'churned', model_type := 'logistic',
            hyperparameters := {C: {'values': [0.01, 1.0]},
                                class_weight: {'values': [NULL, 'balanced']}},
            settings := {strategy: 'grid'})""").fetchall()
    rows = customers.execute("SELECT parameters FROM ml_trials('grid')").fetchall()
    combos = {(json.loads(p)["C"], json.loads(p)["class_weight"]) for (p,) in rows}
    assert combos == {(0.01, None), (0.01, "balanced"), (1.0, None), (1.0, "balanced")}


def test_max_runtime_ends_tuning_and_keeps_the_best(customers):
    s = customers.execute("""
        SELECT ml_create_model('budget', 'customers', target := 'churned',
            model_type := 'gradient_boosting',
            hyperparameters := {learning_rate: {'min': 0.01, 'max': 0.5}},
            settings := {max_trials: 200, max_runtime: 1})""").fetchall()[0][0]
    n = customers.execute("SELECT count(*) FROM ml_trials('budget')").fetchall()[0][0]
    assert 1 <= n < 200
    assert "max_runtime 1 s ended tuning after" in s["notes"]
    assert "kept the best so far" in s["notes"]


@pytest.mark.parametrize("call, words", [
    ("model_type := 'gradient_boosting', hyperparameters := {learning_rat: {'min': 0.01, "
     "'max': 0.5}}", ["'learning_rat' is not a parameter", "Did you mean 'learning_rate'"]),
    ("model_type := 'gradient_boosting', hyperparameters := {learning_rate: {'min': 1e-4, "
     "'max': 0.0, 'scale': 'log'}}", ["min 0.0001 is greater than max 0.0"]),
    ("model_type := 'gradient_boosting', hyperparameters := {learning_rate: {'min': 0.0, "
     "'max': 1.0, 'scale': 'log'}}", ["log scale needs min > 0"]),
    ("settings := {max_runtime: 0, max_trials: 3}", ["max_runtime must be a positive number"]),
    ("settings := {max_runtime: -5}", ["max_runtime must be a positive number, got -5"]),
    ("settings := {strategy: 'grdi'}", ["strategy 'grdi' is unknown", "Did you mean 'grid'"]),
])
def test_bad_tuning_requests_get_clear_errors(customers, call, words):
    with pytest.raises(duckdb.Error) as err:
        customers.execute(f"SELECT ml_create_model('bad', 'customers', target := 'churned', "
                          f"{call})").fetchall()
    for w in words:
        assert w in str(err.value)
    assert customers.execute("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]


def test_progress_rows_are_visible_from_another_connection_while_training(customers):
    import threading

    watcher = customers.cursor()
    trainer = sqlml.install(customers.cursor())   # a cursor gets the session's functions
    result = {}

    def run():
        result["summary"] = trainer.execute("""
            SELECT ml_create_model('progress', 'customers', target := 'churned',
                model_type := 'random_forest', hyperparameters := {n_estimators: 16,
                min_samples_leaf: {'min': 1, 'max': 30}},
                settings := {max_trials: 10000, max_runtime: 2, max_parallel_trials: 1})
        """).fetchall()[0][0]

    t = threading.Thread(target=run)
    t.start()
    seen_while_running = []
    while t.is_alive():
        rows = watcher.execute(
            "SELECT trial, trials_planned, best_so_far, elapsed_seconds, remaining_seconds "
            "FROM sqlml.training_log WHERE name = 'progress'").fetchall()
        if rows and t.is_alive():
            seen_while_running.append(rows)
        t.join(0.05)
    assert seen_while_running, "no progress row was visible before training ended"
    last = seen_while_running[-1][-1]
    assert last[1] == 10000 and last[3] >= 0 and last[4] >= 0
    # On a loaded machine the budget can end before any trial completes; either way the
    # budget, not the 10,000 trials, ended tuning, and the notes say so.
    notes = result["summary"]["notes"]
    assert ("max_runtime 2 s ended tuning" in notes
            or "no trial completed within max_runtime 2 s" in notes), notes


def test_class_weight_balanced_is_a_hyperparameter_for_every_auto_candidate(customers):
    customers.execute("""SELECT ml_create_model('balanced', 'customers', target := 'churned',
                         hyperparameters := {class_weight: 'balanced'})""").fetchall()
    rows = customers.execute("SELECT parameters FROM ml_trials('balanced')").fetchall()
    assert len(rows) == 3
    assert all(json.loads(p)["class_weight"] == "balanced" for (p,) in rows)


def test_auto_successive_halving_tunes_the_better_half_then_the_best(customers):
    # 11 trials, 3 candidates: 3 at defaults; 8 left, so the better 2 get min(3, 8 // 4) = 2
    # sampled trials each (interleaved); the 4 left go to the model type of the best trial.
    customers.execute("""
        SELECT ml_create_model('halving', 'customers', target := 'churned',
            settings := {strategy: 'random', max_trials: 11, max_parallel_trials: 1,
                         median_stopping: false})""").fetchall()
    rows = customers.execute(
        "SELECT trial, model_type, score, status FROM ml_trials('halving') ORDER BY trial"
    ).fetchall()
    assert len(rows) == 11 and all(r[3] == "completed" for r in rows)
    defaults = sorted(rows[:3], key=lambda r: -r[2])
    better = [defaults[0][1], defaults[1][1]]
    assert [r[1] for r in rows[3:7]] == better * 2
    leader = max(rows[:7], key=lambda r: (r[2], -r[0]))[1]
    assert {r[1] for r in rows[7:]} == {leader}


def test_budget_estimates_trials_and_keeps_back_the_work_after_tuning():
    import time

    b = tuning.Budget(started=time.perf_counter(), max_runtime=10.0)
    assert b.can_start("logistic") and b.reserve == 0     # no estimate yet: the first may start
    b.completed("gradient_boosting", 3.0, 3)               # 1 s per fold
    assert b.reserve == pytest.approx(tuning.POST_FOLDS * 1.0)
    assert b.expected("gradient_boosting") == 3.0 and b.expected("logistic") == 3.0
    b.completed("logistic", 1.0, 3)
    assert b.expected("logistic") == 1.0 and b.expected("random_forest") == 2.0
    # 10 s budget - 4.5 s kept back = 5.5 s: a 3 s trial fits now, not after 3 s have passed.
    assert b.can_start("gradient_boosting") and not b.refused
    b.started -= 3.0
    assert not b.can_start("gradient_boosting") and b.refused
    assert b.can_start("logistic")                         # 3 + 1 <= 5.5
    assert not b.over()
    b.started -= 7.5
    assert b.over() and not b.can_start("logistic")


def test_first_trial_is_cut_when_it_alone_exceeds_max_runtime():
    import time

    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from sqlml.train import estimators

    X, y = make_classification(300, 6, random_state=0)
    cand = tuning.Candidate("random_forest", StandardScaler(), lambda hp: estimators.lookup(
        "random_forest").make("binary_classification", hp, 0))
    log = []
    # Started 100 s ago with a 1 s budget: over before the first epoch ends.
    trials, best, notes = tuning.tune(
        [cand], {"n_estimators": 40, "min_samples_leaf": {"values": [1, 5]}},
        pd.DataFrame(X), y, StratifiedKFold(3), "roc_auc", "auc",
        {"max_runtime": 1, "random_state": 0, "max_trials": 5, "max_parallel_trials": 1},
        time.perf_counter() - 100,
        log.append)
    assert [(t["status"], t["epochs"]) for t in trials] == [("timed_out", 1)]
    assert best is trials[0] and best["score"] > 0.5
    assert [r["event"] for r in log] == ["timed_out"]
    assert any(n.startswith("no trial completed within max_runtime 1 s; kept the best one cut "
                            "short (trial 1, after 1 epoch(s))") for n in notes)


def test_jsonable_is_the_one_copy_training_uses():
    from sqlml.train import supervised as training

    assert tuning.jsonable(np.int64(3)) == 3 and type(tuning.jsonable(np.float32(0.5))) is float
    assert tuning.jsonable((64, 32)) == [64, 32] and tuning.jsonable(None) is None
    assert not hasattr(training, "_jsonable")


def test_no_time_left_to_refit_serves_the_training_split_fit(customers, monkeypatch):
    from sklearn.base import clone

    import sqlml
    from sqlml.train import evaluation
    from sqlml.train import supervised as training

    monkeypatch.setattr(training, "_fit_seconds", lambda trials, best: float("inf"))
    s = customers.execute("""
        SELECT ml_create_model('short', 'customers', target := 'churned',
            model_type := 'logistic', hyperparameters := {C: {'min': 0.01, 'max': 10}},
            settings := {max_trials: 2})""").fetchall()[0][0]
    assert "left no time to refit on every row: the served model is the one fitted on the " \
           "training split (480 of 600 rows); raise max_runtime to refit" in s["notes"]
    served = sqlml.load_model(customers, "short").pipeline
    df = customers.sql("FROM customers").df()
    X, y = df.drop(columns=["churned"]), df["churned"].to_numpy()
    train_idx, _ = evaluation.split(len(y), y, "binary", 0.2, 42, "ml_create_model")
    X = X[[c for c in X.columns if c in served.feature_names_in_]]
    on_split = clone(served).fit(X.iloc[train_idx], y[train_idx])
    on_all = clone(served).fit(X, y)
    assert np.array_equal(served.predict_proba(X), on_split.predict_proba(X))
    assert not np.allclose(served.predict_proba(X), on_all.predict_proba(X))


def test_decision_tree_has_a_default_space_over_depth_and_leaf_size(customers):
    customers.execute("""
        SELECT ml_create_model('tree_tuned', 'customers', target := 'churned',
            model_type := 'decision_tree', settings := {max_trials: 6, strategy: 'random'})
    """).fetchall()
    rows = customers.execute("SELECT parameters FROM ml_trials('tree_tuned')").fetchall()
    params = [json.loads(p) for (p,) in rows]
    assert len(params) == 6
    assert {p["max_depth"] for p in params} <= {4, 6, 8, 12, None}
    leaves = [p["min_samples_leaf"] for p in params]
    assert all(1 <= v <= 50 for v in leaves) and len(set(leaves)) > 1
