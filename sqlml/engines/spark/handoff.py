"""The data hand-off of engine 'spark': DuckDB writes a query to Parquet in a working
directory, Spark reads it there, and the directory is removed when training ends, whether it
succeeded or not. The rows never pass through Python: DuckDB's COPY writes them, Spark's
reader reads them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlml.errors import TrainingError

FN = "ml_create_model"
# Object stores DuckDB writes through httpfs and Spark reads through Hadoop's s3a connector.
REMOTE = ("s3://", "s3a://", "gs://", "gcs://", "abfss://", "az://")


@dataclass(frozen=True)
class Handoff:
    """One training run's directory: ``path`` for DuckDB, ``uri`` for Spark."""
    path: str
    remote: bool

    def file(self, name: str) -> tuple[str, str]:
        """(DuckDB's path, Spark's URI) of one Parquet data set in the directory."""
        path = f"{self.path.rstrip('/')}/{name}"
        if self.remote:
            return path, ("s3a://" + path[len("s3://"):] if path.startswith("s3://") else path)
        return path, "file://" + path

    def write(self, cur, query: str, name: str) -> str:
        """COPY the query's rows to Parquet (one file per DuckDB thread, so Spark reads them
        in parallel); returns the URI Spark reads."""
        path, uri = self.file(name)
        quoted = path.replace("'", "''")
        cur.execute(f"COPY ({query}) TO '{quoted}' (FORMAT parquet, PER_THREAD_OUTPUT true, "
                    f"OVERWRITE_OR_IGNORE true)")
        return uri


@contextmanager
def workdir(setting: str | None, model: str) -> Iterator[Handoff]:
    """A new directory under settings spark_workdir (default: the system's temporary
    directory), removed afterwards. An object-store prefix is used as it is and its files are
    left to the bucket's lifecycle rules: DuckDB cannot delete them."""
    if setting and setting.startswith(REMOTE):
        yield Handoff(f"{setting.rstrip('/')}/sqlml-{model}-{uuid.uuid4().hex[:12]}", True)
        return
    base = os.path.abspath(os.path.expanduser(setting or tempfile.gettempdir()))
    try:
        os.makedirs(base, exist_ok=True)
        path = tempfile.mkdtemp(prefix=f"sqlml-{model}-", dir=base)
    except OSError as exc:
        raise TrainingError(
            f"{FN}: settings spark_workdir {setting!r} of model {model!r} cannot hold the "
            f"training data: {exc.strerror}. Name a writable directory that Spark's executors "
            f"can read, e.g. settings := {{spark_workdir: '/mnt/shared/sqlml'}}.") from None
    try:
        yield Handoff(path, False)
    finally:
        shutil.rmtree(path, ignore_errors=True)
