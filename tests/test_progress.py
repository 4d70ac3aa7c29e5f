"""Training progress: the events a real training run reports, and the bar that shows them."""

import io
from itertools import pairwise

import pytest

import sqlml
from sqlml import progress
from sqlml.errors import SqlmlError

TUNED = {"target": "churned", "model_type": "logistic", "function": "predict_tuned",
         "hyperparameters": {"C": {"min": 1e-3, "max": 10.0}},
         "settings": {"strategy": "random", "max_trials": 6, "max_parallel_trials": 2,
                      "max_runtime": 120}}


def _train(con, name, **options):
    events = []
    with progress.listen(con, events.append, model=name):
        summary = sqlml.create_model(con, name, "customers", progress=False, **options)
    return summary, events


def test_a_tuning_run_reports_each_trial_best_so_far_and_budget(customers):
    con = customers
    summary, events = _train(con, "tuned", **TUNED)
    phases = [e.phase for e in events]
    assert phases[0] == "start" and phases[-3:] == ["fit", "store", "done"]
    assert set(phases) == {"start", "trial", "fit", "store", "done"}   # logistic: no epochs
    assert all(e.model == "tuned" for e in events)

    # The trials reported are the trials stored, one event each, as each ended.
    stored = con.execute("SELECT trial, status, score FROM ml_trials('tuned')").fetchall()
    trials = [e for e in events if e.phase == "trial"]
    assert len(stored) == 6
    assert sorted(e.trial for e in trials) == [t for t, _, _ in stored] == [1, 2, 3, 4, 5, 6]
    assert [e.trials_done for e in trials] == [1, 2, 3, 4, 5, 6]
    assert {e.trials_planned for e in trials} == {6}
    assert {e.model_type for e in trials} == {"logistic"}
    by_trial = {t: (status, score) for t, status, score in stored}
    for e in trials:
        assert (e.status, e.score) == pytest.approx(by_trial[e.trial])

    # Best so far: the running maximum of completed scores, never going down.
    best = [e.best_so_far for e in trials]
    running = []
    for k in range(1, len(trials) + 1):
        done = [x.score for x in trials[:k] if x.status == "completed"]
        running.append(max(done) if done else None)
    assert best == running
    assert all(a <= b for a, b in pairwise(best))
    assert events[-1].best_so_far == max(s for _, st, s in stored if st == "completed")

    # The clock runs forward and the budget left runs down, summing to max_runtime.
    elapsed = [e.elapsed for e in events]
    remaining = [e.remaining for e in events]
    assert all(a < b for a, b in pairwise(elapsed))
    assert all(a > b for a, b in pairwise(remaining))
    assert all(e.elapsed + e.remaining == pytest.approx(120.0) for e in events)
    assert events[-1].score == pytest.approx(summary["validation_score"])
    assert events[-1].elapsed <= summary["seconds"] + 0.001     # the summary rounds to ms


def test_iterative_trials_report_their_epochs_as_the_training_log_does(customers):
    con = customers
    _, events = _train(con, "boosted", target="churned", model_type="gradient_boosting",
                       function="predict_boosted",
                       hyperparameters={"max_iter": 16, "early_stopping": False,
                                        "learning_rate": {"min": 0.05, "max": 0.3}},
                       settings={"max_trials": 2, "max_parallel_trials": 1,
                                 "median_stopping": False})
    epochs = [(e.trial, e.epoch) for e in events if e.phase == "epoch"]
    logged = con.execute("SELECT trial, epoch FROM ml_training_log('boosted') "
                         "WHERE event = 'epoch' ORDER BY trial, epoch").fetchall()
    assert epochs == logged and len(epochs) > 0
    # One trial at a time: each trial's epochs count up, then the trial ends.
    order = [(e.phase, e.trial) for e in events if e.phase in ("epoch", "trial")]
    assert order.index(("trial", 1)) < order.index(("epoch", 2))


def test_model_type_auto_reports_each_candidate_compared(customers):
    con = customers
    _, events = _train(con, "auto_churn", target="churned", function="predict_auto_churn")
    stored = con.execute("SELECT trial, model_type, score FROM ml_trials('auto_churn')"
                         ).fetchall()
    trials = [e for e in events if e.phase == "trial"]
    # Candidates are cross-validated two at a time, so each is reported as it ends.
    assert sorted((e.trial, e.model_type) for e in trials) == [(t, m) for t, m, _ in stored]
    assert {e.trials_planned for e in trials} == {len(stored)}
    assert trials[-1].best_so_far == pytest.approx(max(s for _, _, s in stored))
    fit = next(e for e in events if e.phase == "fit")
    chosen = con.execute("SELECT model_type FROM ml_models() WHERE name = 'auto_churn'"
                         ).fetchall()[0][0]
    assert fit.model_type == chosen


def test_the_bar_renders_trials_best_score_and_budget(customers, monkeypatch):
    # tqdm fits the line to $COLUMNS and $LINES when the output is no terminal; a test module
    # run before this one in the same xdist worker may have left them set.
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LINES", "50")
    con = customers
    out = io.StringIO()
    bar = progress.Bar(file=out, delay=0, tick=0)
    with progress.listen(con, bar):
        sqlml.create_model(con, "barred", "customers", progress=False, **{
            **TUNED, "function": "predict_barred"})
    bar.close()
    text = out.getvalue()
    best = max(s for (s,) in con.execute(
        "SELECT score FROM ml_trials('barred') WHERE status = 'completed'").fetchall())
    last = text.rstrip().split("\r")[-1]
    assert last.startswith("barred: done |")
    assert "6/6 trials" in last and f"best {best:.4g}" in last and "budget left" in last
    for k in range(1, 7):
        assert f"{k}/6 trials" in text
    assert "barred: final fit logistic" in text


def _event(phase, elapsed, **kw):
    return progress.Event("m", phase, elapsed, 60 - elapsed, 60.0, **kw)


def test_the_bar_waits_for_the_delay_before_printing_anything(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LINES", "50")
    out = io.StringIO()
    bar = progress.Bar(file=out, delay=2.0, tick=0)
    bar(_event("start", 0.01))
    bar(_event("trial", 1.5, trial=1, trials_done=1, trials_planned=4, model_type="logistic",
               status="completed", score=0.8, best_so_far=0.8))
    assert out.getvalue() == "" and not bar.shown
    bar(_event("trial", 2.5, trial=2, trials_done=2, trials_planned=4, model_type="logistic",
               status="completed", score=0.9, best_so_far=0.9))
    assert bar.shown
    text = out.getvalue()
    assert "m: trial 2 logistic completed" in text and "2/4 trials" in text
    assert "elapsed 2s" in text and "best 0.9" in text and "budget left 58s" in text
    bar(_event("done", 3.0, trials_done=2, trials_planned=4))
    assert not bar.shown and "4/4 trials" in out.getvalue().split("\r")[-1]
    bar.close()


def test_quick_training_prints_nothing_and_auto_is_off_without_a_terminal(customers, capsys,
                                                                         monkeypatch):
    con = customers
    monkeypatch.setattr(progress, "DELAY", 0.0)
    sqlml.create_model(con, "quiet1", "customers", target="churned", model_type="logistic",
                       function="predict_quiet1")           # progress=None, stderr captured
    sqlml.create_model(con, "quiet2", "customers", target="churned", model_type="logistic",
                       function="predict_quiet2", progress=False)
    assert capsys.readouterr().err == ""
    sqlml.create_model(con, "loud", "customers", target="churned", model_type="logistic",
                       function="predict_loud", progress=True)
    err = capsys.readouterr().err
    assert "loud: done" in err and "budget left" in err


def test_a_failing_listener_does_not_fail_training(customers):
    con = customers

    def broken(event):
        raise RuntimeError("display went away")

    with progress.listen(con, broken):
        summary = sqlml.create_model(con, "sturdy", "customers", target="churned",
                                     model_type="logistic", function="predict_sturdy",
                                     progress=False)
    assert summary["version"] == 1
    assert con.execute("SELECT count(*) FROM customers c WHERE predict_sturdy(c) IS NOT NULL"
                       ).fetchall()[0][0] == 600


def test_listening_needs_sqlml_installed():
    import duckdb

    con = duckdb.connect()
    with pytest.raises(SqlmlError, match="sqlml is not installed on this connection"):
        with progress.listen(con, print):
            pass
