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

    def trial(self, chosen: str) -> dict[str, Any]:
        status = "chosen" if self.method.name == chosen else self.status
        params = dict(self.method.params, family=self.method.family)
        if self.error:
            params["error"] = self.error
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


def evaluate(method: Method, batch: Batch, the_plan: backtest.Plan, horizon: int,
             settings: Settings, scale: np.ndarray,
             finish: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Outcome:
    """One candidate's backtest; ``finish(sid, q)`` sorts and clips the quantiles."""
    start = time.perf_counter()
    out = Outcome(method)
    try:
        out.runs = backtest.run(method, batch, the_plan, horizon, settings)
        raw = conformal.calibrated_backtest(out.runs, scale, horizon, settings.quantiles)
        out.quantiles = finish(out.runs.sid, raw)
        out.score = score(out.runs, out.quantiles, settings.quantiles, scale)
    except TimeoutError:
        out.status = "stopped_max_runtime"
    except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError) as exc:
        out.status, out.error = "failed", f"{type(exc).__name__}: {exc}"
    out.seconds = time.perf_counter() - start
    return out


def compare(candidates: list[Method], batch: Batch, the_plan: backtest.Plan, horizon: int,
            settings: Settings, scale: np.ndarray,
            finish: Callable[[np.ndarray, np.ndarray], np.ndarray],
            deadline: float | None, progress: Callable[[str], None]) -> Comparison:
    result = Comparison()
    for method in candidates:
        if method.family != "baseline" and deadline is not None and time.monotonic() > deadline:
            result.outcomes.append(Outcome(method, status="skipped_max_runtime"))
            continue
        progress(f"backtest of {method.name} on {the_plan.windows} window(s)")
        timed = settings if method.family == "baseline" else replace(settings, deadline=deadline)
        result.outcomes.append(evaluate(method, batch, the_plan, horizon, timed, scale, finish))
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


GLOBAL_MIN = 20     # AUTO tries the global model on panels of at least this many series
