"""sqlml: machine learning inside DuckDB, done in SQL."""

import os

# Before scikit-learn loads OpenMP: idle OpenMP threads then sleep instead of spinning. Training
# runs inside a DuckDB worker thread next to DuckDB's own threads, and with spinning workers a
# histogram gradient boosting fit on a busy 2-core machine took 20x longer (41 s against 1.9 s).
# A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from sqlml.api import create_model, load_model
from sqlml.connection import connect, install
from sqlml.errors import (
    ArtifactError,
    CatalogVersionError,
    InvalidNameError,
    ModelNotFoundError,
    PredictionInputError,
    SqlmlError,
    TrainingError,
)
from sqlml.integrations.sqlalchemy import create_engine, install_on_engine
from sqlml.redshift.script import Result, SqlmlNotice, execute

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "CatalogVersionError",
    "InvalidNameError",
    "ModelNotFoundError",
    "PredictionInputError",
    "Result",
    "SqlmlError",
    "SqlmlNotice",
    "TrainingError",
    "__version__",
    "connect",
    "create_engine",
    "create_model",
    "execute",
    "install",
    "install_on_engine",
    "load_model",
]
