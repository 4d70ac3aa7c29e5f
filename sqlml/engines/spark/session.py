"""The Spark side of engine 'spark': a SparkSession from the settings, and the jobs of one
training run under one job group, so that max_runtime can cancel them and their progress can
reach sqlml's progress events.

pyspark is imported here only, and only when a model asks for engine 'spark': ``import sqlml``
and every in-process training run never load it.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlml.errors import SparkJobError, SparkUnavailableError, SqlmlError, TrainingError
from sqlml.events import Reporter

FN = "ml_create_model"
INSTALL = ("pip install 'sqlml[spark]' (pyspark), and a Java runtime (17 or 21) on PATH or in "
           "JAVA_HOME, e.g. apt-get install default-jre-headless")
POLL = 0.5        # seconds between two looks at Spark's status tracker


def require_pyspark(model: str):
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailableError(
            f"{FN}: model {model!r} asks for settings engine 'spark', but pyspark is not "
            f"installed. Install it with: {INSTALL}. Or leave engine out to train in this "
            f"process.") from None
    return pyspark


def java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return True
    return shutil.which("java") is not None


def conf_of(value: Any, model: str) -> dict[str, str]:
    """settings spark_conf as {key: text}; Spark reads every value as text."""
    if value is None:
        return {}
    if isinstance(value, str):         # JSON text, as Redshift's SETTINGS gives it
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)            # a DuckDB MAP arrives as [(key, value), ...]
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TrainingError(
            f"{FN}: settings spark_conf of model {model!r} must map Spark configuration keys to "
            f"values, got {value!r}. Use e.g. settings := {{engine: 'spark', spark_conf: "
            f"{{'spark.executor.memory': '4g'}}}}.")
    return {k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in value.items()}


def get_session(settings: dict, model: str):
    """The process's SparkSession for ``settings``: an active one is reused as it is (Spark
    has one per process; its master wins over spark_master), else one is built."""
    require_pyspark(model)
    master = settings["spark_master"]
    if not master.startswith("sc://") and not java_found():
        raise SparkUnavailableError(
            f"{FN}: model {model!r} asks for settings engine 'spark' with master {master!r}, "
            f"which starts a Java virtual machine, but no java was found on PATH or in "
            f"JAVA_HOME. Install {INSTALL.split(', and ')[1]}.")
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.remote(master) if master.startswith("sc://")
               else SparkSession.builder.master(master).appName(f"sqlml {model}"))
    for key, value in conf_of(settings.get("spark_conf"), model).items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:
        raise SparkJobError(
            f"{FN}: Spark could not start a session at master {master!r} for model {model!r}: "
            f"{spark_message(exc)}. Check settings spark_master and spark_conf.") from None


def spark_message(exc: BaseException, limit: int = 600) -> str:
    """Spark's own words for a failure: the first lines, not the JVM stack trace."""
    java = getattr(exc, "java_exception", None)
    text = ""
    if java is not None:
        try:
            text = f"{java.getClass().getName()}: {java.getMessage()}"
        except Exception:
            text = ""
    text = text or f"{type(exc).__name__}: {exc}"
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("\tat ")]
    out = " ".join(" ".join(lines[:4]).split())
    return out if len(out) <= limit else out[:limit] + "..."


def about(spark, settings: dict) -> dict:
    """What the catalog records: engine, Spark version and master."""
    try:
        master = spark.sparkContext.master
    except Exception:       # Spark Connect has no SparkContext on the client
        master = settings["spark_master"]
    return {"engine": "spark", "spark_version": spark.version, "spark_master": master}


@dataclass
class Jobs:
    """The job group of one training run; ``check`` raises once max_runtime is spent."""
    group: str
    deadline: float
    max_runtime: float
    model: str
    timed_out: threading.Event

    def check(self, stage: str) -> None:
        if time.perf_counter() > self.deadline:
            self.timed_out.set()
            raise SparkJobError(self._late(stage))

    def _late(self, stage: str) -> str:
        return (f"{FN}: model {self.model!r} ran past settings max_runtime "
                f"{self.max_runtime:g} s with engine 'spark' ({stage}); its Spark jobs were "
                f"cancelled and the previous version, if any, still serves. Raise max_runtime, "
                f"e.g. settings := {{max_runtime: {round(self.max_runtime * 4)}}}, or give Spark "
                f"more executors.")


@contextmanager
def jobs(spark, model: str, started: float, max_runtime: float,
         report: Reporter | None) -> Iterator[Jobs]:
    """Run the block's Spark jobs in one job group: cancelled when max_runtime is spent (a
    timer), their stages reported as 'fit' progress events, and any Spark failure raised as
    SparkJobError with Spark's message."""
    run = Jobs(f"sqlml-{model}-{uuid.uuid4().hex[:8]}", started + max_runtime, max_runtime,
               model, threading.Event())
    sc = _context(spark)
    if sc is not None:
        sc.setJobGroup(run.group, f"sqlml: training model {model}", interruptOnCancel=True)
    stop = threading.Event()

    def expire() -> None:
        run.timed_out.set()
        if sc is not None:
            sc.cancelJobGroup(run.group)

    timer = threading.Timer(max(0.0, run.deadline - time.perf_counter()), expire)
    timer.daemon = True
    timer.start()
    watcher = threading.Thread(target=_watch, args=(sc, run.group, report, stop), daemon=True)
    if sc is not None and report is not None:
        watcher.start()
    try:
        yield run
    except KeyboardInterrupt:
        # Ctrl-C (or any KeyboardInterrupt) reaches the thread running this UDF while it waits
        # on Spark: cancel this run's jobs, and say so in the error ml_training_history keeps.
        interrupted = _cancel(sc, run.group)
        raise KeyboardInterrupt(
            f"{FN}: training of model {model!r} on Spark was interrupted; {interrupted} and the "
            f"previous version, if any, still serves.") from None
    except SqlmlError:
        raise
    except Exception as exc:
        if not _from_spark(exc) and not run.timed_out.is_set():
            raise               # sqlml's own failure, not Spark's: its traceback stays
        if run.timed_out.is_set():
            raise SparkJobError(run._late(spark_message(exc, 200))) from None
        raise SparkJobError(
            f"{FN}: a Spark job failed while training model {model!r}; the previous version, "
            f"if any, still serves. Spark said: {spark_message(exc)}") from None
    finally:
        timer.cancel()
        stop.set()
        if sc is not None:
            sc.setLocalProperty("spark.jobGroup.id", None)


def _cancel(sc, group: str) -> str:
    """Cancel the job group ``group``; what became of it, for the error message."""
    if sc is None:
        return "Spark Connect gives no job group to cancel, so its running job may finish"
    try:
        sc.cancelJobGroup(group)
    except Exception as exc:     # the JVM or its gateway already gone: nothing left to cancel
        return f"its Spark jobs could not be cancelled ({spark_message(exc, 200)})"
    return f"its Spark jobs (job group {group}) were cancelled"


def parallelism(spark, cap: int = 50) -> int:
    """ALS's user and item blocks: the session's default parallelism (10 through Spark
    Connect, which does not tell it), at most ``cap``."""
    sc = _context(spark)
    return max(1, min(cap, sc.defaultParallelism if sc is not None else 10))


def checkpoint_interval(spark, every: int = 10) -> int:
    """ALS's checkpointInterval: ``every`` once the context has a checkpoint directory, else -1.

    Without checkpoints each ALS iteration lengthens the RDD lineage, and past about a hundred
    iterations deserialising it overflows the executor's stack (java.lang.StackOverflowError,
    which on a local master takes the driver's JVM down). A local master with no directory
    gets one in a temporary directory removed at exit; on a cluster the directory must be on
    storage the executors share, so there it is the user's (spark.checkpoint.dir,
    docs/spark.md)."""
    sc = _context(spark)
    if sc is None:
        return -1
    if sc.getCheckpointDir() is None:
        if not str(sc.master).startswith("local"):
            return -1
        path = tempfile.mkdtemp(prefix="sqlml-spark-checkpoints-")
        atexit.register(shutil.rmtree, path, True)
        sc.setCheckpointDir(path)
    return every


def _from_spark(exc: BaseException) -> bool:
    """Whether Spark (the JVM through py4j, or pyspark itself) raised ``exc``."""
    return any(c.__module__.split(".")[0] in ("py4j", "pyspark") for c in type(exc).__mro__)


def _context(spark):
    try:
        return spark.sparkContext
    except Exception:       # Spark Connect: no SparkContext, no job groups on the client
        return None


def _watch(sc, group: str, report: Reporter, stop: threading.Event) -> None:
    """Spark's status tracker, read every POLL seconds: one 'fit' event per change."""
    last = None
    while not stop.wait(POLL):
        try:
            tracker = sc.statusTracker()
            stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            jobs_done = sum(1 for j in tracker.getJobIdsForGroup(group)
                            if (info := tracker.getJobInfo(j)) and info.status == "SUCCEEDED")
        except Exception:
            return          # the session went away: nothing more to report
        running = [s for s in stages if s is not None]
        tasks = (sum(s.numCompletedTasks for s in running), sum(s.numTasks for s in running))
        now = (jobs_done, len(running), tasks)
        if now != last:
            last = now
            where = (f", stage tasks {tasks[0]}/{tasks[1]}" if running else "")
            report.emit("fit", model_type="spark", status=f"{jobs_done} Spark jobs done{where}")
