"""Training progress: training reports events, listeners display them.

Progress flows one way. ``ml_create_model`` runs inside a DuckDB thread (and tuning trials in a
thread pool); it reports :class:`~sqlml.events.Event` objects through a
:class:`~sqlml.events.Reporter` to the :class:`~sqlml.events.Hub` of its database instance,
which hands them to whoever listens: the progress bar of ``sqlml.create_model``, the ``sqlml``
command line, or any callback given to :func:`listen`.
A listener cannot reach back into training, and an exception raised by one is swallowed, so a
broken display never fails a training run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

import duckdb

from sqlml import context
from sqlml.errors import SqlmlError
from sqlml.events import PHASES, Event, Hub, Listener, Reporter

if TYPE_CHECKING:  # tqdm itself is imported when a bar first opens
    from tqdm import tqdm

__all__ = ["PHASES", "Event", "Hub", "Listener", "Reporter", "listen", "shown"]

DELAY = 2.0          # seconds of training before a bar appears: quick fits print nothing
TICK = 0.5           # how often a shown bar refreshes its clock between events
# tqdm puts ", " before the postfix; its own {elapsed} counts from when the bar appeared, so the
# postfix carries the training's elapsed time instead.
COUNTED = "{desc} |{bar:20}| {n_fmt}/{total_fmt} trials{postfix}"
PLAIN = "{desc}{postfix}"


def reporter(cur: duckdb.DuckDBPyConnection, model: str, started: float,
             max_runtime: float) -> Reporter:
    inst = context.lookup(cur)
    return Reporter(getattr(inst, "progress", None), model, started, max_runtime)


def hub_of(con: duckdb.DuckDBPyConnection) -> Hub:
    inst = context.lookup(con)
    if inst is None:
        raise SqlmlError("progress: sqlml is not installed on this connection. Open it with "
                         "sqlml.connect(path) or call sqlml.install(con) first.")
    return inst.progress


@contextmanager
def listen(con: duckdb.DuckDBPyConnection, listener: Listener,
           model: str | None = None) -> Iterator[Listener]:
    """Call ``listener(event)`` for every training event of ``model`` (None: any model) on this
    connection's database while the block runs."""
    hub = hub_of(con)
    token = hub.add(listener, model)
    try:
        yield listener
    finally:
        hub.remove(token)


def wanted(setting, stream=None) -> bool:
    """``progress=None`` means: show it when the stream is a terminal."""
    if setting is None:
        stream = stream if stream is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
    return bool(setting)


# -- the bar --------------------------------------------------------------------------------------
def describe(event: Event) -> tuple[str, str]:
    """(description, postfix) of the bar for an event."""
    kind = f" {event.model_type}" if event.model_type else ""
    if event.phase == "epoch":
        what = f"{event.model}: trial {event.trial} epoch {event.epoch}{kind}"
    elif event.phase == "trial":
        what = f"{event.model}: trial {event.trial}{kind} {event.status}"
    elif event.phase == "fit":   # engine 'spark' says what its jobs are doing in status
        what = f"{event.model}: final fit{kind}" + (f" ({event.status})" if event.status
                                                    else "")
    else:
        what = f"{event.model}: " + {"store": "storing", "done": "done"}.get(event.phase,
                                                                             "training")
    parts = [f"elapsed {_clock(event.elapsed)}"]
    if event.best_so_far is not None:
        parts.append(f"best {event.best_so_far:.4g}")
    parts.append(f"budget left {_clock(event.remaining)}")
    return what, ", ".join(parts)


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s}s"


class Bar:
    """A tqdm bar fed by events: trials done out of planned, best score so far, elapsed time and
    the time budget left. Nothing is printed until ``delay`` seconds after training started."""

    def __init__(self, file=None, delay: float = DELAY, tick: float = TICK) -> None:
        self.file = file if file is not None else sys.stderr
        self.delay, self.tick = delay, tick
        self._bar: tqdm | None = None
        self._last: Event | None = None
        self._received = 0.0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # A listener: called from training threads.
    def __call__(self, event: Event) -> None:
        with self._lock:
            if event.phase == "start":
                self._close_bar()
            self._last, self._received = event, time.perf_counter()
            if self._bar is None and event.elapsed >= self.delay:
                self._open()
            if self._bar is not None:
                self._render(event)
            if event.phase == "done":
                self._close_bar()
            elif self._ticker is None and self.tick > 0:
                self._ticker = threading.Thread(target=self._tick_loop, daemon=True,
                                                name="sqlml-progress")
                self._ticker.start()

    def _open(self) -> None:
        from tqdm import tqdm

        # delay > 0 only stops tqdm printing an empty bar before the first event is rendered.
        self._bar = tqdm(total=None, file=self.file, leave=True, dynamic_ncols=True,
                         bar_format=PLAIN, mininterval=0, delay=1e-9)

    def _render(self, event: Event) -> None:
        bar = self._bar
        if bar is None:
            return
        planned = event.trials_planned
        if event.phase in ("fit", "store", "done") and planned:
            done = planned           # tuning is over, whatever the budget cut short
        else:
            done = min(event.trials_done, planned) if planned else event.trials_done
        if planned and bar.total != planned:
            bar.total = planned
            bar.bar_format = COUNTED
        bar.n = done
        desc, post = describe(event)
        bar.set_description_str(desc, refresh=False)
        bar.set_postfix_str(post, refresh=False)
        bar.refresh()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                ev = self._last
                if ev is None or ev.phase == "done":
                    continue
                since = time.perf_counter() - self._received
                live = replace(ev, elapsed=ev.elapsed + since,
                               remaining=max(0.0, ev.remaining - since))
                if self._bar is None and live.elapsed >= self.delay:
                    self._open()
                if self._bar is not None:
                    self._render(live)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @property
    def shown(self) -> bool:
        with self._lock:
            return self._bar is not None

    def close(self) -> None:
        """Stop the clock and close the bar (a finished training has closed it already)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            self._close_bar()


@contextmanager
def shown(con: duckdb.DuckDBPyConnection, setting=None, model: str | None = None,
          file=None, delay: float | None = None) -> Iterator[Bar | None]:
    """A progress bar for the training runs of ``model`` (None: any) while the block runs.

    ``setting``: True shows it, False hides it, None shows it when ``file`` (stderr by default)
    is a terminal. A file-like object as ``setting`` is where the bar is written.
    """
    if setting is not None and not isinstance(setting, bool) and hasattr(setting, "write"):
        file, setting = setting, True
    if not wanted(setting, file):
        yield None
        return
    bar = Bar(file=file, delay=DELAY if delay is None else delay)
    try:
        with listen(con, bar, model):
            yield bar
    finally:
        bar.close()
