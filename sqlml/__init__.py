"""sqlml: machine learning inside DuckDB, done in SQL."""

from sqlml.api import create_model, load_model
from sqlml.connection import connect, install
from sqlml.errors import (
    ArtifactError,
    InvalidNameError,
    ModelNotFoundError,
    PredictionInputError,
    SqlmlError,
    TrainingError,
)

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "InvalidNameError",
    "ModelNotFoundError",
    "PredictionInputError",
    "SqlmlError",
    "TrainingError",
    "__version__",
    "connect",
    "create_model",
    "install",
    "load_model",
]
