"""Training events and the hub that carries them: training reports, listeners receive.

Kept apart from :mod:`sqlml.progress` (which displays them and finds a connection's hub) so that
:mod:`sqlml.context`, which gives each database instance its hub, depends on nothing above it.
A listener cannot reach back into training, and an exception raised by one is swallowed, so a
broken display never fails a training run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

PHASES = ("start", "trial", "epoch", "fit", "store", "done")


@dataclass(frozen=True)
class Event:
    """One step of a training run.

    ``phase``: ``start``; ``trial`` when a trial (a tuning trial, or one candidate compared by
    ``model_type := 'auto'``) has ended, with ``status`` saying how (completed, stopped_early,
    timed_out, failed, skipped); ``epoch`` after each epoch of an iterative trial; ``fit`` when
    the chosen model is fitted for validation and refitted on every row; ``store`` while the
    version is written; ``done`` at the end. ``remaining`` is what is left of ``max_runtime``.
    """

    model: str
    phase: str
    elapsed: float
    remaining: float
    max_runtime: float
    trial: int | None = None
    trials_done: int = 0
    trials_planned: int | None = None
    model_type: str | None = None
    status: str | None = None
    epoch: int | None = None
    score: float | None = None
    best_so_far: float | None = None


Listener = Callable[[Event], None]


class Hub:
    """The listeners of one database instance, by model name (None: every model)."""

    def __init__(self) -> None:
        self._listeners: dict[int, tuple[str | None, Listener]] = {}
        self._lock = threading.Lock()
        self._next = 0

    def add(self, listener: Listener, model: str | None = None) -> int:
        with self._lock:
            self._next += 1
            self._listeners[self._next] = (model, listener)
            return self._next

    def remove(self, token: int) -> None:
        with self._lock:
            self._listeners.pop(token, None)

    def active(self, model: str) -> bool:
        with self._lock:
            return any(m is None or m == model for m, _ in self._listeners.values())

    def emit(self, event: Event) -> None:
        with self._lock:
            targets = [f for m, f in self._listeners.values() if m is None or m == event.model]
        for f in targets:
            try:
                f(event)
            except Exception:  # a display problem must not fail training
                pass


class Reporter:
    """What training holds: stamps each event with the elapsed time and the budget left."""

    def __init__(self, hub: Hub | None, model: str, started: float, max_runtime: float) -> None:
        self.hub, self.model = hub, model
        self.started, self.max_runtime = started, float(max_runtime)
        self._lock = threading.Lock()
        self._done = 0
        self._best: float | None = None
        self._planned: int | None = None

    def emit(self, phase: str, **fields) -> None:
        if self.hub is None or not self.hub.active(self.model):
            return
        elapsed = time.perf_counter() - self.started
        with self._lock:
            event = Event(self.model, phase, elapsed, max(0.0, self.max_runtime - elapsed),
                          self.max_runtime, trials_done=self._done,
                          trials_planned=self._planned, best_so_far=self._best)
        self.hub.emit(replace(event, **fields))

    def trial(self, record: dict, planned: int) -> None:
        """A finished trial (``record`` as stored in ``sqlml.trials``) of ``planned``.

        The best so far is the highest completed score, as in tuning and ``compare`` (sqlml's
        scores are all greater-is-better); keeping it here, under one lock, keeps it monotone
        when parallel trials finish in any order."""
        with self._lock:
            self._done += 1
            self._planned = planned
            score = record.get("score")
            if record.get("status") == "completed" and score is not None:
                self._best = score if self._best is None else max(self._best, score)
        self.emit("trial", trial=record.get("trial"), model_type=record.get("model_type"),
                  status=record.get("status"), score=score)

    def epoch(self, row: dict) -> None:
        """A training-log row (``sqlml.training_log``) of an iterative trial."""
        if row.get("event") != "epoch":
            return      # the trial's end arrives through trial(), with its record
        with self._lock:
            self._planned = row.get("trials_planned") or self._planned
        self.emit("epoch", trial=row.get("trial"), model_type=row.get("model_type"),
                  epoch=row.get("epoch"), score=row.get("score"))
