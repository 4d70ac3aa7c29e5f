"""Hyperparameter tuning: search spaces, search strategies and the median stopping rule.

``ml_create_model`` tunes when ``hyperparameters`` holds a range (``{'min', 'max', 'scale'}``) or
a choice (``{'values': [...]}``), or when ``settings`` names a ``strategy`` or ``max_trials``.
Every trial cross-validates on the training split. Iterative models (histogram gradient
boosting, random forests, MLPs) are trained in epochs through ``warm_start``: after each epoch
the trial reports its mean validation score over the folds, which goes to the training log and
to the median stopping rule. This module only computes; the catalog writes go through
``sqlml.catalog.store`` (via the ``log`` callback ``train`` passes in).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer
from sklearn.neural_network import MLPClassifier, MLPRegressor

from sqlml import spec
from sqlml.errors import TrainingError, did_you_mean
from sqlml.train import penalties

if TYPE_CHECKING:   # optuna is imported only when a Bayesian search runs
    from optuna.distributions import BaseDistribution

FN = "ml_create_model"
SCALES = ("auto", "linear", "log")
RANGE_KEYS = ("min", "max", "scale")
# Settings this module owns (declared, with their rules, in sqlml.spec).
SETTINGS = {k: spec.SETTING[k].default
            for k in ("strategy", "max_trials", "max_parallel_trials", "median_stopping")}
DEFAULT_MAX_TRIALS = 20
EPOCHS = 8            # an iterative model reports its score this many times per trial
GRID_POINTS = 3       # points per range in a grid (min, middle on its scale, max)
MAX_GRID = 200
POST_FOLDS = 4.5      # the work after tuning, in fold fits (see Budget)
RUNG_TRIALS = 3       # at most this many tuned trials per surviving candidate before the final

# Spaces searched when model_type := 'auto' (or a model type) is tuned without ranges given.
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    # C up to 1000: sparse text wants little regularisation; class weights matter for f1.
    "logistic": {"C": {"min": 1e-2, "max": 1e3}, "class_weight": {"values": [None, "balanced"]}},
    "linear": {"C": {"min": 1e-2, "max": 1e3}, "class_weight": {"values": [None, "balanced"]},
               "alpha": {"min": 1e-3, "max": 100.0}},
    "lasso": {"alpha": {"min": 1e-4, "max": 1.0}},
    "elastic_net": {"alpha": {"min": 1e-4, "max": 1.0}, "l1_ratio": {"min": 0.1, "max": 0.9}},
    "gradient_boosting": {"learning_rate": {"min": 0.01, "max": 0.3, "scale": "log"},
                          "max_leaf_nodes": {"values": [7, 15, 31, 63]},
                          "min_samples_leaf": {"min": 5, "max": 100, "scale": "log"},
                          "l2_regularization": {"min": 1e-3, "max": 10.0},
                          "max_features": {"min": 0.3, "max": 1.0}},
    # A single tree overfits by depth and leaf size first; both are what a search should move.
    "decision_tree": {"max_depth": {"values": [4, 6, 8, 12, None]},
                      "min_samples_leaf": {"min": 1, "max": 50, "scale": "log"},
                      "class_weight": {"values": [None, "balanced"]}},
    "random_forest": {"min_samples_leaf": {"values": [1, 2, 5, 10]},
                      "max_features": {"values": ["sqrt", 0.3, 0.6]}},
    "knn": {"n_neighbors": {"min": 3, "max": 60, "scale": "log"},
            "weights": {"values": ["uniform", "distance"]}},
    "mlp": {"alpha": {"min": 1e-5, "max": 1e-1},
            "learning_rate_init": {"min": 1e-4, "max": 1e-2},
            "hidden_layer_sizes": {"values": [[32], [64], [128], [64, 32]]}},
}
# Fixed values used while tuning: iterative models stop on their own validation loss.
TUNING_FIXED: dict[str, dict[str, Any]] = {
    "gradient_boosting": {"early_stopping": True, "n_iter_no_change": 10, "max_iter": 400},
    "mlp": {"n_iter_no_change": 10},   # early stopping as its defaults say (sqlml.train.estimators)
}


# -- search spaces ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    name: str
    low: float
    high: float
    scale: str          # linear | log (auto resolved)
    integer: bool

    def sample(self, rng: np.random.Generator):
        if self.scale == "log":
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            v = rng.uniform(self.low, self.high)
        return self._cast(v)

    def from_unit(self, u: float):
        """The value at fraction u of the range, on its scale."""
        if self.scale == "log":
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return self._cast(v)

    def _cast(self, v: float):
        v = min(max(v, self.low), self.high)
        return round(v) if self.integer else float(v)


@dataclass(frozen=True)
class Choice:
    name: str
    values: tuple

    def sample(self, rng: np.random.Generator):
        return _value(self.values[int(rng.integers(len(self.values)))])


def _value(v):
    return tuple(v) if isinstance(v, list) else v   # hidden_layer_sizes wants a tuple


def is_spec(value) -> bool:
    return isinstance(value, dict) and any(k in value for k in (*RANGE_KEYS, "values"))


def _number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def parse_range(name: str, spec: dict) -> Range | Choice:
    """A hyperparameter's {'min','max','scale'} or {'values': [...]}, checked."""
    if "values" in spec:
        extra = [k for k in spec if k != "values"]
        values = spec["values"]
        if extra or not isinstance(values, list | tuple) or not values:
            raise TrainingError(
                f"{FN}: hyperparameter {name!r}: a choice is {{'values': [v1, v2, ...]}} with at "
                f"least one value and nothing else, got {spec!r}. Use e.g. "
                f"{{'{name}': {{'values': [3, 5, 8]}}}}.")
        return Choice(name, tuple(values))
    unknown = [k for k in spec if k not in RANGE_KEYS]
    if unknown:
        raise TrainingError(
            f"{FN}: hyperparameter {name!r}: key {unknown[0]!r} is not part of a range."
            f"{did_you_mean(unknown[0], (*RANGE_KEYS, 'values'))} A range is "
            f"{{'min': ..., 'max': ..., 'scale': 'linear'|'log'|'auto'}}; a choice is "
            f"{{'values': [...]}}.")
    lo, hi = spec.get("min"), spec.get("max")
    if not (_number(lo) and _number(hi)):
        raise TrainingError(
            f"{FN}: hyperparameter {name!r}: a range needs numeric 'min' and 'max', got min "
            f"{lo!r} and max {hi!r}. Use e.g. {{'{name}': {{'min': 0.01, 'max': 1.0}}}}.")
    if lo > hi:
        raise TrainingError(
            f"{FN}: hyperparameter {name!r}: min {lo!r} is greater than max {hi!r}. Swap them: "
            f"{{'min': {hi!r}, 'max': {lo!r}}}.")
    scale = str(spec.get("scale", "auto")).lower()
    if scale not in SCALES:
        raise TrainingError(
            f"{FN}: hyperparameter {name!r}: scale {spec.get('scale')!r} is unknown."
            f"{did_you_mean(scale, SCALES)} Use 'linear', 'log' or 'auto'.")
    if scale == "log" and lo <= 0:
        raise TrainingError(
            f"{FN}: hyperparameter {name!r}: a log scale needs min > 0, got min {lo!r} (the "
            f"logarithm of {lo!r} does not exist). Raise min to a small positive value such as "
            f"{hi / 1e4 if hi > 0 else 1e-4:g}, or use 'scale': 'linear'.")
    if scale == "auto":
        scale = "log" if lo > 0 and hi / lo >= 100 else "linear"
    integer = isinstance(lo, int) and isinstance(hi, int)
    return Range(name, float(lo), float(hi), scale, integer)


def split_space(hyper: dict) -> tuple[dict, dict]:
    """(fixed values, {name: Range|Choice}) from a hyperparameters argument."""
    fixed, space = {}, {}
    for k, v in hyper.items():
        if is_spec(v):
            space[k] = parse_range(k, v)
        else:
            fixed[k] = v
    return fixed, space


def wanted(hyper: dict, settings: dict) -> bool:
    return (any(is_spec(v) for v in hyper.values()) or settings.get("strategy") is not None
            or settings.get("max_trials") is not None)


@dataclass
class Plan:
    strategy: str
    max_trials: int
    parallel: int
    use_median_rule: bool
    notes: list = field(default_factory=list)


def plan(settings: dict) -> Plan:
    # parse_request has checked them already; a direct caller gets the same messages.
    strategy = spec.check(spec.SETTING["strategy"], settings.get("strategy") or "random")
    for key in ("max_trials", "max_parallel_trials"):
        spec.check(spec.SETTING[key], settings.get(key))
    notes = []
    asked = settings.get("max_parallel_trials")
    if strategy == "bayesian":
        parallel = 1
        if asked is not None and asked > 1:
            notes.append(
                f"bayesian search ran one trial at a time, not {asked}: each trial is chosen from "
                f"the results of the earlier ones, so parallel trials would weaken it (use "
                f"strategy 'random' to run trials in parallel)")
    else:
        parallel = asked or max(1, min(4, os.cpu_count() or 1))
    return Plan(strategy, settings.get("max_trials") or DEFAULT_MAX_TRIALS, parallel,
                bool(settings.get("median_stopping", True)), notes)


def grid_points(space: dict) -> list[dict]:
    axes = []
    for p in space.values():
        if isinstance(p, Choice):
            axes.append([(p.name, _value(v)) for v in p.values])
        else:
            n = GRID_POINTS if not p.integer else min(GRID_POINTS, int(p.high - p.low) + 1)
            vals = list(dict.fromkeys(p.from_unit(u) for u in np.linspace(0, 1, max(n, 1))))
            axes.append([(p.name, v) for v in vals])
    return [dict(c) for c in itertools.islice(itertools.product(*axes), MAX_GRID)]


# -- the median stopping rule ----------------------------------------------------------------
class MedianStoppingRule:
    """Stop a trial whose objective at epoch e is worse than the median, over earlier trials, of
    their running average of the objective up to epoch e.

    ``maximize``: higher is better (sqlml's scores are all "greater is better").
    ``min_trials``: earlier finished trials needed before the rule stops anything.
    """

    def __init__(self, maximize: bool = True, min_trials: int = 3) -> None:
        self.maximize = maximize
        self.min_trials = min_trials
        self._finished: list[list[float]] = []
        self._lock = threading.Lock()

    def finish(self, values: list[float]) -> None:
        """Record a finished trial's per-epoch objective values (completed or stopped)."""
        if values:
            with self._lock:
                self._finished.append(list(values))

    def median(self, epoch: int) -> float | None:
        """Median over earlier trials of their running average up to ``epoch`` (1-based)."""
        with self._lock:
            earlier = list(self._finished)
        if len(earlier) < self.min_trials:
            return None
        averages = [float(np.mean(v[:epoch])) for v in earlier]
        return float(np.median(averages))

    def should_stop(self, epoch: int, value: float) -> tuple[bool, float | None]:
        m = self.median(epoch)
        if m is None or value is None or not math.isfinite(value):
            return False, m
        return (value < m if self.maximize else value > m), m


# -- training a trial in epochs --------------------------------------------------------------
_WARM = {HistGradientBoostingClassifier: "max_iter", HistGradientBoostingRegressor: "max_iter",
         RandomForestClassifier: "n_estimators", RandomForestRegressor: "n_estimators"}
_MLP = (MLPClassifier, MLPRegressor)


def resource_steps(est) -> tuple[str | None, list[int]]:
    """The parameter grown epoch by epoch and its value after each epoch."""
    if type(est) in _WARM:
        param = _WARM[type(est)]
        total = int(est.get_params()[param])
        n = min(EPOCHS, total)
        return param, sorted({round(total * (i + 1) / n) for i in range(n)})
    if isinstance(est, _MLP):
        total = int(est.max_iter)
        n = min(EPOCHS, total)
        return "max_iter", sorted({round(total * (i + 1) / n) for i in range(n)})
    return None, [1]


def _advance(est, param, target, previous, X, y) -> bool:
    """Train one more epoch; False when the model stopped on its own (converged)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if param is None:
            est.fit(X, y)
            return False
        if isinstance(est, _MLP):
            before = getattr(est, "n_iter_", 0)
            est.set_params(warm_start=True, max_iter=target - previous)
            est.fit(X, y)
            return est.n_iter_ - before >= target - previous
        est.set_params(warm_start=True, **{param: target})
        est.fit(X, y)
        if param == "max_iter":
            return est.n_iter_ >= target
        return True


@dataclass
class Candidate:
    model_type: str
    prep: object                          # unfitted ColumnTransformer
    # hyperparameters -> unfitted estimator (validated); Any: sklearn ships no types.
    make: Callable[[dict], Any]


class Folds:
    """Preprocessing fitted once per fold and model type, shared by every trial."""

    def __init__(self, X, y, cv) -> None:
        self.X, self.y = X, y
        self.splits = list(cv.split(X, y))
        self._cache: dict[str, list] = {}
        self._lock = threading.Lock()

    def get(self, cand: Candidate) -> list:
        with self._lock:
            if cand.model_type not in self._cache:
                out = []
                for tr, va in self.splits:
                    prep = clone(cand.prep).fit(self.X.iloc[tr], self.y[tr])
                    out.append((prep.transform(self.X.iloc[tr]), self.y[tr],
                                prep.transform(self.X.iloc[va]), self.y[va]))
                self._cache[cand.model_type] = out
            return self._cache[cand.model_type]


@dataclass
class Budget:
    """The max_runtime budget, with the work after tuning kept back.

    After tuning, training fits the chosen model on the training split and on every row (side by
    side), then computes permutation importance and stores the model: measured at 2.7 to 4.8
    times one fold's fit of a trial, hence ``reserve`` = POST_FOLDS x the longest per-fold time
    of a completed trial. A trial starts only if it is expected (from the completed trials of its
    model type, else of any) to end before ``deadline``; a running trial is cut at its next epoch
    once the deadline has passed, and the first trial once max_runtime has.
    """

    started: float
    max_runtime: float
    reserve: float = 0.0
    lengths: dict = field(default_factory=dict)   # model type -> seconds of completed trials
    cut: bool = False       # a trial was cut short by the budget
    refused: bool = False   # a trial was not started for lack of time

    @property
    def deadline(self) -> float:
        return self.started + self.max_runtime - self.reserve

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.perf_counter())

    def spent(self) -> bool:
        return time.perf_counter() >= self.deadline

    def over(self) -> bool:
        return time.perf_counter() >= self.started + self.max_runtime

    def completed(self, model_type: str, seconds: float, folds: int) -> None:
        self.lengths.setdefault(model_type, []).append(seconds)
        self.reserve = max(self.reserve, POST_FOLDS * seconds / max(1, folds))

    def expected(self, model_type: str) -> float:
        own = self.lengths.get(model_type)
        seen = own or [s for v in self.lengths.values() for s in v]
        return float(np.mean(seen)) if seen else 0.0

    def can_start(self, model_type: str) -> bool:
        """Until a trial has completed or been cut there is no estimate, and a model is needed:
        yes (as long as trials fail, tuning goes on)."""
        ok = not self.cut if not self.lengths else (
            time.perf_counter() + self.expected(model_type) <= self.deadline)
        self.refused |= not ok
        return ok


class Search:
    """Runs trials and keeps their records; thread-safe for parallel trials."""

    def __init__(self, folds: Folds, score_with, objective: str, budget: Budget,
                 rule: MedianStoppingRule | None, log: Callable[[dict], None],
                 planned: int, on_trial: Callable[[dict, int], None] | None = None) -> None:
        self.folds = folds
        self.on_trial = on_trial     # hears of each ended trial (sqlml.progress)
        self.scorer = get_scorer(score_with) if isinstance(score_with, str) else score_with
        self.objective = objective
        self.budget = budget
        self.rule = rule
        self.log = log
        self.planned = planned
        self.trials: list[dict] = []
        self._lock = threading.Lock()
        self._counter = 0

    def next_number(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    @property
    def best(self) -> dict | None:
        """The best completed trial; if none completed, the best one cut by the budget."""
        with self._lock:
            done = [t for t in self.trials if t["status"] == "completed"] or [
                t for t in self.trials if t["status"] == "timed_out"]
        return max(done, key=lambda t: (t["score"], -t["trial"])) if done else None

    def best_of(self, model_type: str) -> dict | None:
        with self._lock:
            done = [t for t in self.trials
                    if t["status"] == "completed" and t["model_type"] == model_type]
        return max(done, key=lambda t: (t["score"], -t["trial"])) if done else None

    def any_completed(self) -> bool:
        with self._lock:
            return any(t["status"] == "completed" for t in self.trials)

    def run(self, cand: Candidate, hyper: dict, number: int | None = None) -> dict:
        number = number or self.next_number()
        t0 = time.perf_counter()
        record: dict[str, Any] = {
            "trial": number, "model_type": cand.model_type, "parameters": None,
            "objective": self.objective, "score": None, "fold_scores": None,
            "seconds": 0.0, "status": "failed", "epochs": 0, "hyperparameters": hyper}
        try:
            est = cand.make(hyper)
            record["parameters"] = params_of(est)
            self._epochs(cand, est, record)
        except (ValueError, TypeError, TrainingError) as exc:
            record["fold_scores"] = [f"{type(exc).__name__}: {str(exc)[:300]}"]
            record["parameters"] = record["parameters"] or {
                k: jsonable(v) for k, v in hyper.items()}
        record["seconds"] = time.perf_counter() - t0
        with self._lock:
            self.trials.append(record)
            if record["status"] == "completed":
                self.budget.completed(cand.model_type, record["seconds"],
                                      len(record["fold_scores"]))
            self.budget.cut |= record["status"] == "timed_out"
        if self.on_trial is not None:
            self.on_trial(record, self.planned)
        return record

    def _epochs(self, cand: Candidate, est, record: dict) -> None:
        """Train the trial's fold models epoch by epoch until done, stopped or out of time;
        its score, fold scores, epochs and status go into ``record``."""
        data = self.folds.get(cand)
        models = [clone(est) for _ in data]
        param, steps = resource_steps(est)
        values: list[float] = []
        fold_scores, live = [0.0] * len(data), [True] * len(data)
        status = "completed"
        previous = 0
        for epoch, target in enumerate(steps, start=1):
            for i, (Xtr, ytr, Xva, yva) in enumerate(data):
                if live[i]:
                    live[i] = _advance(models[i], param, target, previous, Xtr, ytr)
                    fold_scores[i] = float(self.scorer(models[i], Xva, yva))
            previous = target
            value = float(np.mean(fold_scores))
            values.append(value)
            last = epoch == len(steps) or not any(live)
            event, median = self._event(epoch, value, last)
            best = self.best
            self.log({"trial": record["trial"], "epoch": epoch, "model_type": cand.model_type,
                      "resource": None if param is None else f"{param}={target}",
                      "score": value, "running_average": float(np.mean(values)),
                      "median_of_earlier": median, "event": event,
                      "trials_planned": self.planned,
                      "best_so_far": None if best is None else best["score"],
                      "elapsed": self.budget.elapsed(), "remaining": self.budget.remaining()})
            record["epochs"] = epoch
            if event in ("stopped_early", "timed_out"):
                status = event
                break
            if last:
                break
        record.update(score=values[-1], fold_scores=list(fold_scores), status=status)
        if self.rule is not None and status in ("completed", "stopped_early"):
            self.rule.finish(values)

    def _event(self, epoch: int, value: float, last: bool) -> tuple[str, float | None]:
        """How an epoch ends the trial, or not: stopped_early by the median rule, timed_out by
        the budget, completed at its last epoch, else epoch; and the rule's median."""
        stop, median = (False, None)
        if self.rule is not None and not last:
            stop, median = self.rule.should_stop(epoch, value)
        timed_out = not last and not stop and (
            self.budget.over() or (self.budget.spent() and self.any_completed()))
        event = ("stopped_early" if stop else "timed_out" if timed_out
                 else "completed" if last else "epoch")
        return event, median


def jsonable(v):
    """A parameter value as JSON can hold it (numpy scalars as Python, tuples as lists, any
    other object as its repr)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, tuple | list):
        return [jsonable(x) for x in v]
    return str(v)


def params_of(est) -> dict:
    """An estimator's class and parameters, as stored in ml_trials and the model version."""
    return {"estimator": type(est).__name__,
            **{k: jsonable(v) for k, v in est.get_params().items()}}


# -- strategies ------------------------------------------------------------------------------
def tune(candidates: list[Candidate], hyper: dict, X, y, cv, score_with, objective: str,
         settings: dict, started: float, log: Callable[[dict], None],
         on_trial: Callable[[dict, int], None] | None = None
         ) -> tuple[list[dict], dict, list[str]]:
    """Run the search; returns (trials, best trial, notes). The best trial has completed, or
    was cut short by max_runtime when none completed."""
    return Tuner(candidates, hyper, X, y, cv, score_with, objective, settings, started, log,
                 on_trial).run()


class Tuner:
    """One search over the candidates' hyperparameters, round by round.

    Several model types (auto) go through successive halving: a round of each with its
    defaults (and fixed values), then a round of a few sampled trials for the better half, so a
    model type that tunes well is not judged on its defaults alone. The remaining trials go to
    the best model type, in a final round of the chosen strategy (grid, random or bayesian).
    """

    def __init__(self, candidates: list[Candidate], hyper: dict, X, y, cv, score_with,
                 objective: str, settings: dict, started: float, log: Callable[[dict], None],
                 on_trial: Callable[[dict, int], None] | None = None) -> None:
        self.plan = plan(settings)
        self.notes = list(self.plan.notes)
        self.fixed, user_space = split_space(hyper)
        self.settings = settings
        self.candidates = candidates
        self.budget = Budget(started, float(settings["max_runtime"]))
        rule = MedianStoppingRule() if self.plan.use_median_rule else None
        folds = Folds(X, y, cv)
        self.spaces = {c.model_type: self._space(c, user_space) for c in candidates}
        self.grids: dict[str, list[dict]] = {}
        self.search = Search(folds, score_with, objective, self.budget, rule, log,
                             self._planned(), on_trial)
        self.rng = np.random.default_rng(settings["random_state"])

    def make_for(self, cand: Candidate) -> Callable[[dict], dict]:
        """Sampled values -> the candidate's full hyperparameters (with the fixed ones)."""
        base = {**TUNING_FIXED.get(cand.model_type, {}), **self.fixed}
        return lambda sampled: {**base, **sampled}

    def _space(self, cand: Candidate, user_space: dict) -> dict:
        if user_space:
            space = user_space
        else:
            # A value the user fixed is not searched, nor what a fixed l1 / l2 sets.
            taken = set(self.fixed)
            if any(k in self.fixed for k in penalties.NAMES):
                taken |= set(penalties.sets(type(cand.make({}))))
            space = {k: parse_range(k, v) for k, v in
                     DEFAULT_SPACES.get(cand.model_type, {}).items()
                     if _accepts(cand, k) and k not in taken}
        # Names are checked now, with a value from each range, so a typo fails before training.
        cand.make(self.make_for(cand)({k: _middle(r) for k, r in space.items()}))
        return space

    def _planned(self) -> int:
        """The trials planned: max_trials, or fewer when a grid has fewer points."""
        if self.plan.strategy != "grid":
            return self.plan.max_trials
        self.grids = {c.model_type: grid_points(self.spaces[c.model_type])
                      for c in self.candidates}
        total = sum(len(g) for g in self.grids.values())
        if total > self.plan.max_trials:
            self.notes.append(f"grid search ran {self.plan.max_trials} of its {total} points "
                              f"(max_trials); raise max_trials to run them all")
        return min(total, self.plan.max_trials)

    def run(self) -> tuple[list[dict], dict, list[str]]:
        if len(self.candidates) > 1:
            self._defaults_round()
            self._sampled_round()
            best = self.search.best
            assert best is not None     # the defaults round raises when no trial completed
            chosen = {c.model_type: c for c in self.candidates}[best["model_type"]]
        else:
            chosen = self.candidates[0]
        self._final_round(chosen)
        if not self.spaces[chosen.model_type] and len(self.candidates) == 1:
            self.notes.append(f"model_type {chosen.model_type!r} has no hyperparameters to "
                              f"tune; trained it once")
        return self._result()

    def _run_all(self, jobs: Iterable[tuple[Candidate, dict]], parallel: int) -> None:
        """jobs: (candidate, sampled hyperparameters); stops when the budget is spent."""
        search, jobs = self.search, iter(jobs)
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            running: set = set()
            while True:
                while len(running) < parallel:
                    job = next(jobs, None)
                    if job is None or not search.budget.can_start(job[0].model_type):
                        jobs = iter(())
                        break
                    c, hp = job
                    running.add(pool.submit(search.run, c, self.make_for(c)(hp)))
                if not running:
                    return
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()

    def _sample(self, c: Candidate) -> dict:
        return {k: r.sample(self.rng) for k, r in self.spaces[c.model_type].items()}

    def _defaults_round(self) -> None:
        """Successive halving, rung 0: each model type with its defaults, one at a time."""
        self._run_all(((c, {}) for c in self.candidates), 1)
        if self.search.best is None:
            raise TrainingError(
                f"{FN}: every candidate model failed: "
                + "; ".join(f"{t['model_type']}: {t['fold_scores']}"
                            for t in self.search.trials)
                + ". Check the training data, or name a model_type.")

    def _sampled_round(self) -> None:
        """Rung 1: the better half of the model types (those with a space) get a few sampled
        trials each."""
        search, candidates = self.search, self.candidates
        alive = [c for c in _ranked(search, candidates)[:math.ceil(len(candidates) / 2)]
                 if self.spaces[c.model_type]]
        per = min(RUNG_TRIALS, (search.planned - len(search.trials)) // (2 * max(1, len(alive))))
        if self.plan.strategy != "grid" and per > 0:
            self._run_all([(c, self._sample(c)) for _ in range(per) for c in alive],
                          self.plan.parallel)

    def _final_round(self, chosen: Candidate) -> None:
        """The trials left go to the chosen model type, by the plan's strategy."""
        space = self.spaces[chosen.model_type]
        left = self.search.planned - len(self.search.trials)
        if left > 0 and space and not self.budget.refused:
            if self.plan.strategy == "grid":
                self._grid_round(chosen, left)
            elif self.plan.strategy == "random":
                self._random_round(chosen, left)
            else:
                _bayesian(self.search, chosen, space, left, self.settings["random_state"],
                          self.make_for)
        elif left > 0 and not self.search.trials:
            self._run_all([(chosen, {})], 1)

    def _grid_round(self, chosen: Candidate, left: int) -> None:
        points = self.grids[chosen.model_type]
        self._run_all(((chosen, pt) for pt in points[:left]), self.plan.parallel)

    def _random_round(self, chosen: Candidate, left: int) -> None:
        # Sampled as each trial starts, so a budget that ends the round leaves the rest unsampled.
        self._run_all(((chosen, self._sample(chosen)) for _ in range(left)), self.plan.parallel)

    def _result(self) -> tuple[list[dict], dict, list[str]]:
        """The trials in order, the best one, and notes on how the budget and rule ended it."""
        search, notes, max_runtime = self.search, self.notes, self.settings["max_runtime"]
        best = search.best
        if best is None:
            failures = "; ".join(f"trial {t['trial']}: {t['fold_scores']}"
                                 for t in search.trials)
            raise TrainingError(
                f"{FN}: no tuning trial completed ({failures}). Check the hyperparameter ranges, "
                f"or raise settings max_runtime.")
        trials = sorted(search.trials, key=lambda t: t["trial"])
        counts = {s: sum(t["status"] == s for t in trials)
                  for s in ("stopped_early", "timed_out", "failed")}
        ran, planned = len(trials), search.planned
        if best["status"] == "timed_out":
            notes.append(f"no trial completed within max_runtime {max_runtime:g} s; "
                         f"kept the best one cut short (trial {best['trial']}, after "
                         f"{best['epochs']} epoch(s)); raise max_runtime to tune")
        elif self.budget.refused and ran < planned:
            notes.append(f"max_runtime {max_runtime:g} s ended tuning after {ran} of "
                         f"{planned} trials; kept the best so far (trial {best['trial']})")
        elif counts["timed_out"]:
            notes.append(f"max_runtime {max_runtime:g} s cut {counts['timed_out']} "
                         f"trial(s) short; kept the best so far (trial {best['trial']})")
        if counts["stopped_early"]:
            notes.append(f"median stopping rule stopped {counts['stopped_early']} trial(s) early")
        notes.append(f"{self.plan.strategy} search: best of {ran} trial(s) is trial "
                     f"{best['trial']} ({best['model_type']}, score {best['score']:.4g})")
        return trials, best, notes


def _ranked(search: Search, candidates: list[Candidate]) -> list[Candidate]:
    """Candidates with a completed trial, best first."""
    best = {c.model_type: search.best_of(c.model_type) for c in candidates}
    scores = {m: b["score"] for m, b in best.items() if b is not None}
    done = [c for c in candidates if c.model_type in scores]
    return sorted(done, key=lambda c: -scores[c.model_type])


def _accepts(cand: Candidate, name: str) -> bool:
    try:
        est = cand.make({})
    except TrainingError:
        return False
    return name in est.get_params()


def _middle(r):
    return _value(r.values[0]) if isinstance(r, Choice) else r.from_unit(0.5)


def _bayesian(search: Search, cand: Candidate, space: dict, n: int, seed: int, make_for):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists: dict[str, BaseDistribution] = {}
    for k, r in space.items():
        if isinstance(r, Choice):
            dists[k] = optuna.distributions.CategoricalDistribution(list(range(len(r.values))))
        elif r.integer:
            dists[k] = optuna.distributions.IntDistribution(int(r.low), int(r.high),
                                                            log=r.scale == "log")
        else:
            dists[k] = optuna.distributions.FloatDistribution(r.low, r.high,
                                                              log=r.scale == "log")
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, n // 3)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    # The candidate's earlier sampled trials (successive halving) inform the first suggestions.
    for t in search.trials:
        hp = t["hyperparameters"]
        if t["model_type"] == cand.model_type and t["status"] == "completed" \
                and all(k in hp for k in space):
            params = {k: (_index(space[k], hp[k]) if isinstance(space[k], Choice) else hp[k])
                      for k in space}
            if None not in params.values():
                study.add_trial(optuna.trial.create_trial(
                    params=params, distributions=dists, value=t["score"]))
    for _ in range(n):
        if not search.budget.can_start(cand.model_type):
            break
        ot = study.ask(dists)
        hp = {k: (_value(space[k].values[v]) if isinstance(space[k], Choice) else v)
              for k, v in ot.params.items()}
        rec = search.run(cand, make_for(cand)(hp))
        if rec["status"] == "completed":
            study.tell(ot, rec["score"])
        elif rec["status"] == "stopped_early":
            study.tell(ot, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(ot, state=optuna.trial.TrialState.FAIL)


def _index(choice: Choice, value):
    for i, v in enumerate(choice.values):
        if _value(v) == _value(value):
            return i
    return None


def accepting(candidates: list[str], hyper: dict, problem_type: str) -> list[str]:
    """The auto candidates whose estimator takes every hyperparameter named (at least one)."""
    from sqlml.train import estimators

    def takes(c):
        cls = estimators.lookup(c).estimator_class(problem_type)
        return all(k in cls().get_params() or k in penalties.accepted(cls) for k in hyper)

    return [c for c in candidates if takes(c)] or candidates[:1]
