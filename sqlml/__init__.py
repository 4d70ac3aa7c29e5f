"""sqlml: machine learning inside DuckDB, done in SQL."""

import os

# Before scikit-learn loads OpenMP: idle OpenMP threads then sleep instead of spinning. Training
# runs inside a DuckDB worker thread next to DuckDB's own threads, and with spinning workers a
# histogram gradient boosting fit on a busy 2-core machine took 20x longer (41 s against 1.9 s).
# A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import TYPE_CHECKING

from sqlml.errors import (
    ArtifactError,
    CatalogVersionError,
    DatabaseLockedError,
    DriftError,
    InvalidNameError,
    ModelNotFoundError,
    PredictionInputError,
    SqlmlError,
    SqlSyntaxError,
    TrainingError,
)

# The rest of the public API is imported on first use (PEP 562): ``import sqlml.redshift.parser``
# (the shell, the Postgres server) must not pay for loading scikit-learn and the training code.
_LAZY = {
    "create_model": "sqlml.api", "load_model": "sqlml.api", "report": "sqlml.api",
    "drift": "sqlml.api",
    "connect": "sqlml.connection", "install": "sqlml.connection",
    "Result": "sqlml.redshift.script", "SqlmlNotice": "sqlml.redshift.script",
    "execute": "sqlml.redshift.script",
    "create_engine": "sqlml.integrations.sqlalchemy",
    "install_on_engine": "sqlml.integrations.sqlalchemy",
}

if TYPE_CHECKING:
    from sqlml.api import create_model, drift, load_model, report
    from sqlml.connection import connect, install
    from sqlml.integrations.sqlalchemy import create_engine, install_on_engine
    from sqlml.redshift.script import Result, SqlmlNotice, execute


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sqlml' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "CatalogVersionError",
    "DatabaseLockedError",
    "DriftError",
    "InvalidNameError",
    "ModelNotFoundError",
    "PredictionInputError",
    "Result",
    "SqlSyntaxError",
    "SqlmlError",
    "SqlmlNotice",
    "TrainingError",
    "__version__",
    "connect",
    "create_engine",
    "create_model",
    "drift",
    "execute",
    "install",
    "install_on_engine",
    "load_model",
    "report",
]
