"""AUTO: every candidate is backtested on the same rolling-origin windows, its quantiles
calibrated from its own residuals, and the one with the lowest scaled pinball loss over all
series wins (a global choice: one method for the panel, which keeps the calibration honest and
the choice stable where each series has few windows). Baselines always run; the other
candidates run while max_runtime lasts: one that runs out of it stops between series (status
stopped_max_runtime), and those after it are recorded as skipped (skipped_max_runtime)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sqlml.forecast import backtest, conformal
from sqlml.forecast.baselines import BASELINES
from sqlml.forecast.metrics import pinball
from sqlml.forecast.series import Batch, Method, Settings


@dataclass
class Outcome:
    method: Method
    runs: backtest.Runs | None = None
    quantiles: np.ndarray | None = None     # the calibrated backtest forecasts
    score: float = float("nan")
    seconds: float = 0.0
    status: str = "ok"
    error: str = ""
    race: dict[str, Any] = field(default_factory=dict)   # the probe's figures, where raced

    def trial(self, chosen: str) -> dict[str, Any]:
        status = "chosen" if self.method.name == chosen else self.status
        params = dict(self.method.params, family=self.method.family)
        if self.error:
            params["error"] = self.error
        if self.race:
            params["race"] = self.race
        score = self.score if np.isfinite(self.score) else None    # failed or skipped
        return {"candidate": self.method.name, "score": score,
                "seconds": round(self.seconds, 4), "status": status, "params": params}


@dataclass
class Comparison:
    outcomes: list[Outcome] = field(default_factory=list)

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "ok" and np.isfinite(o.score)]

    def best(self, names: list[str] | None = None) -> Outcome:
        pool = [o for o in self.ok() if names is None or o.method.name in names]
        return min(pool, key=lambda o: o.score)


def score(runs: backtest.Runs, q: np.ndarray, quantiles: tuple[float, ...],
          scale: np.ndarray) -> float:
    """Mean over series of the scaled pinball loss of the calibrated backtest quantiles."""
    loss = np.mean([pinball(runs.actual, q[:, j], p) for j, p in enumerate(quantiles)], axis=0)
    per = np.bincount(runs.sid, loss / scale[runs.sid]) / np.maximum(np.bincount(runs.sid), 1)
    return float(per[np.bincount(runs.sid) > 0].mean())


def probe_rows(n_series: int) -> np.ndarray:
    """The series a candidate is raced on first: PROBE_SHARE of the panel (at least
    PROBE_MIN), spread evenly over it; none for a panel under RACE_MIN series."""
    if n_series < RACE_MIN:
        return np.arange(0)
    size = max(PROBE_MIN, int(n_series * PROBE_SHARE))
    return np.unique(np.linspace(0, n_series - 1, size).round().astype(int))


def calibrated_score(runs: backtest.Runs, horizon: int, settings: Settings, scale: np.ndarray,
                     finish: Callable[[np.ndarray, np.ndarray], np.ndarray]
                     ) -> tuple[np.ndarray, float]:
    """The backtest's calibrated, sorted and clipped quantiles and their score."""
    q = finish(runs.sid, conformal.calibrated_backtest(runs, scale, horizon, settings.quantiles))
    return q, score(runs, q, settings.quantiles, scale)


def _race(method: Method, batch: Batch, the_plan: backtest.Plan, horizon: int,
          settings: Settings, scale: np.ndarray,
          finish: Callable[[np.ndarray, np.ndarray], np.ndarray], leader: Outcome | None,
          out: Outcome) -> backtest.Runs | None:
    """Backtest the probe series first; go on to the rest only where the candidate beats the
    leader (the best candidate so far) on those same series, each calibrated on them alone.
    Returns the whole backtest, or None with the outcome marked dropped_behind."""
    probe = probe_rows(len(batch))
    if leader is None or leader.runs is None or len(probe) == 0:
        return backtest.run(method, batch, the_plan, horizon, settings)
    first = backtest.run(method, batch, backtest.only(the_plan, probe), horizon, settings)
    theirs = leader.runs.rows(np.isin(leader.runs.sid, probe))
    mine_score = calibrated_score(first, horizon, settings, scale, finish)[1]
    their_score = calibrated_score(theirs, horizon, settings, scale, finish)[1]
    out.race = {"probe_series": len(probe), "probe_score": round(mine_score, 6),
                "leader": leader.method.name, "leader_probe_score": round(their_score, 6)}
    if not mine_score < their_score:
        out.status = "dropped_behind"
        return None
    rest = np.setdiff1d(np.arange(len(batch)), probe)
    return first.join(backtest.run(method, batch, backtest.only(the_plan, rest), horizon,
                                   settings))


def evaluate(method: Method, batch: Batch, the_plan: backtest.Plan, horizon: int,
             settings: Settings, scale: np.ndarray,
             finish: Callable[[np.ndarray, np.ndarray], np.ndarray],
             leader: Outcome | None = None) -> Outcome:
    """One candidate's backtest; ``finish(sid, q)`` sorts and clips the quantiles. A
    statistical candidate with a ``leader`` to beat is raced (_race)."""
    start = time.perf_counter()
    out = Outcome(method)
    try:
        raced = method.family == "statistical" and leader is not None
        out.runs = (_race(method, batch, the_plan, horizon, settings, scale, finish, leader, out)
                    if raced else backtest.run(method, batch, the_plan, horizon, settings))
        if out.runs is not None:
            out.quantiles, out.score = calibrated_score(out.runs, horizon, settings, scale,
                                                        finish)
    except TimeoutError:
        out.status = "stopped_max_runtime"
    except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError) as exc:
        out.status, out.error = "failed", f"{type(exc).__name__}: {exc}"
    out.seconds = time.perf_counter() - start
    return out


def compare(candidates: list[Method], batch: Batch, the_plan: backtest.Plan, horizon: int,
            settings: Settings, scale: np.ndarray,
            finish: Callable[[np.ndarray, np.ndarray], np.ndarray],
            deadline: float | None, progress: Callable[[str], None],
            race: bool = False) -> Comparison:
    """Backtest the candidates in order; with ``race`` (AUTO), each statistical one against
    the best so far (_race)."""
    result = Comparison()
    for method in candidates:
        if method.family != "baseline" and deadline is not None and time.monotonic() > deadline:
            result.outcomes.append(Outcome(method, status="skipped_max_runtime"))
            continue
        progress(f"backtest of {method.name} on {the_plan.windows} window(s)")
        timed = settings if method.family == "baseline" else replace(settings, deadline=deadline)
        leader = result.best() if race and result.ok() else None
        result.outcomes.append(evaluate(method, batch, the_plan, horizon, timed, scale, finish,
                                        leader))
    return result


def candidates(method: str, n_series: int, extra: dict[str, Method]) -> list[Method]:
    """The baselines, then the method asked for (AUTO: every model that fits the panel)."""
    out = list(BASELINES.values())
    if method == "auto":
        out += [m for m in extra.values() if m.family != "global" or n_series >= GLOBAL_MIN]
    elif method not in BASELINES:
        out += [m for name, m in extra.items() if name in variants(method)]
    return out


def variants(method: str) -> list[str]:
    """The candidates a method name stands for (the log variants are AUTO's)."""
    return [method]


# Racing: on a panel of RACE_MIN series or more, a statistical candidate is first backtested on
# PROBE_SHARE of the series (at least PROBE_MIN) and goes on only if it beats the best so far on
# them. The cheapest candidates run first, so the expensive ones (ARIMA) mostly stop early.
RACE_MIN = 40
PROBE_MIN = 20
PROBE_SHARE = 0.2
GLOBAL_MIN = 20     # AUTO tries the global model on panels of at least this many series
