"""Errors sqlml raises, and the one translation of any error into what its user is told.

Every message names the object, states the rule, quotes the value it got and gives the remedy,
because inside DuckDB a UDF error reaches the user as ``ClassName: message`` and nothing more.

Each class carries the outcome it deserves on every surface: ``sqlstate`` (the PostgreSQL
SQLSTATE code ``sqlml serve`` answers a Postgres client) and ``http_status`` (what the REST
endpoint answers). ``describe`` turns any exception (a sqlml error raised directly, one that came
back from DuckDB wrapped in a ``duckdb.Error``, or DuckDB's own) into an ``Outcome``; the CLI, the
REST endpoint and the Postgres server all use it, so one error reads and maps the same on each.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# The classes DuckDB may name before a message (a UDF's exception, or a macro's error() text), by
# name; every subclass of SqlmlError enters itself.
REGISTRY: dict[str, type[SqlmlError]] = {}


class SqlmlError(ValueError):
    """Base class: a ValueError so that existing ``except ValueError`` clauses still catch it.

    Raised as itself for a bad argument or setting no subclass names more precisely. A subclass
    states its outcome in its header, ``class X(SqlmlError, sqlstate=..., http_status=...)``, and
    is entered in ``REGISTRY`` by that, so no class can be left out of the translation."""

    sqlstate = "22023"          # invalid_parameter_value
    http_status = 422

    def __init_subclass__(cls, *, sqlstate: str, http_status: int, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.sqlstate, cls.http_status = sqlstate, http_status
        REGISTRY[cls.__name__] = cls


REGISTRY["SqlmlError"] = SqlmlError


# SQLSTATE 42704: undefined_object
class ModelNotFoundError(SqlmlError, sqlstate="42704", http_status=404):
    """A model name, or a version of a model, that the catalog does not hold."""


# SQLSTATE 42602: invalid_name
class InvalidNameError(SqlmlError, sqlstate="42602", http_status=422):
    """A model or function name that is not a plain SQL identifier, or is taken."""


# SQLSTATE 22023: invalid_parameter_value
class TrainingError(SqlmlError, sqlstate="22023", http_status=422):
    """Training refused the data or a setting: the target, the rows, a hyperparameter."""


# SQLSTATE 22023: invalid_parameter_value
class PredictionInputError(SqlmlError, sqlstate="22023", http_status=422):
    """Rows passed to a model function that do not fit the features it was trained on."""


# SQLSTATE 22023: invalid_parameter_value
class DriftError(SqlmlError, sqlstate="22023", http_status=422):
    """A drift check (ml_drift) that cannot compare the query with the model's training data:
    a missing feature, a changed type, no rows, a model without a stored profile."""


# SQLSTATE 22023: invalid_parameter_value
class ForecastError(SqlmlError, sqlstate="22023", http_status=422):
    """A forecast that cannot be fitted as asked: a horizon below 1, quantiles outside (0, 1) or
    unsorted, a series with fewer points than the minimum, an unknown method, future covariate
    values missing for the horizon."""


# SQLSTATE XX001: data_corrupted
class ArtifactError(SqlmlError, sqlstate="XX001", http_status=500):
    """A stored model artifact is not one sqlml wrote, or it was altered."""


# SQLSTATE 55000: object_not_in_prerequisite_state
class CatalogVersionError(SqlmlError, sqlstate="55000", http_status=500):
    """The file's catalog has a schema version this sqlml cannot serve: newer than it reads, or
    older with a migration that a read-only connection cannot make."""


# SQLSTATE 55006: object_in_use
class DatabaseLockedError(SqlmlError, sqlstate="55006", http_status=409):
    """A database file another process holds open: DuckDB lets one process write a file, or
    several read it, never both. The message names the holder's PID and the remedies."""

    def __init__(self, message: str, path: str = "", pid: int | None = None) -> None:
        super().__init__(message)
        self.path, self.pid = path, pid


# SQLSTATE 42601: syntax_error
class SqlSyntaxError(SqlmlError, sqlstate="42601", http_status=400):
    """A Redshift statement that does not follow the grammar; nothing of the script ran."""

    def __init__(self, statement: str, line: int, column: int, expected: str, got: str,
                 hint: str = ""):
        self.statement, self.line, self.column = statement, line, column
        self.expected, self.got = expected, got
        super().__init__(f"{statement}: line {line}, column {column}: expected {expected}, "
                         f"got {got}.{hint}")


# SQLSTATE 22023: invalid_parameter_value
class RequestError(SqlmlError, sqlstate="22023", http_status=400):
    """A request the REST endpoint refuses, with the HTTP status it answers and the error type
    its JSON body names (e.g. 413 and ``TooManyRows``)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.http_status = status
        self.kind = kind


# SQLSTATE 22023: invalid_parameter_value
class ServeError(SqlmlError, sqlstate="22023", http_status=500):
    """A ``sqlml serve`` setting that cannot work; the message says which and what to do."""


# SQLSTATE 0A000: feature_not_supported
class MissingDependencyError(SqlmlError, ImportError, sqlstate="0A000", http_status=500):
    """An optional dependency of the called function is not installed."""


# SQLSTATE 0A000: feature_not_supported
class SparkUnavailableError(MissingDependencyError, sqlstate="0A000", http_status=500):
    """Training with settings engine 'spark' where pyspark or a Java runtime is missing; the
    message gives the install commands."""


# SQLSTATE 58000: system_error
class SparkJobError(SqlmlError, sqlstate="58000", http_status=502):
    """A Spark job that failed, was cancelled or ran past max_runtime while training with
    engine 'spark'; the message carries Spark's own error. The previous version still serves."""


@dataclass(frozen=True)
class Outcome:
    """What a user is told about one error, on every surface."""

    cls_name: str       # a sqlml class, DuckDB's exception class, or a REST error type
    message: str        # the text meant for the user, DuckDB's wrapping peeled off
    sqlstate: str       # PostgreSQL SQLSTATE code
    http_status: int
    internal: bool = False   # neither sqlml nor DuckDB reported it: a bug, shown as one


# DuckDB's wrapping of an error raised inside a function: a UDF's exception, or error('...').
_INVALID_INPUT = "Invalid Input Error: "
_UDF = "Python exception occurred while executing the UDF: "
_CLASS_PREFIX = re.compile(r"(?P<cls>[A-Za-z_][A-Za-z0-9_]*): ")
# DuckDB before 2.0 appends the UDF's Python traceback ("At:" and file lines) to the message.
_UDF_TRACEBACK = re.compile(r"\n\s*At:\n.*\Z", re.S)


def describe(exc: BaseException) -> Outcome:
    """The outcome of any exception: sqlml's own, DuckDB's wrapping of sqlml's, or DuckDB's."""
    if isinstance(exc, SqlmlError):
        name = exc.kind if isinstance(exc, RequestError) else type(exc).__name__
        return Outcome(name, str(exc), exc.sqlstate, exc.http_status)
    import duckdb  # here, not at import time: errors.py is imported by everything

    if not isinstance(exc, duckdb.Error):
        return Outcome(type(exc).__name__, str(exc), "XX000", 500, internal=True)
    text = str(exc).strip()
    if text.startswith(_INVALID_INPUT):
        text = text.removeprefix(_INVALID_INPUT).removeprefix(_UDF)
        m = _CLASS_PREFIX.match(text)
        cls = REGISTRY.get(m["cls"]) if m else None
        if m and cls is not None:
            message = _UDF_TRACEBACK.sub("", text[m.end():]).strip()
            return Outcome(cls.__name__, message, cls.sqlstate, cls.http_status)
    sqlstate, status = _duckdb_codes(exc, text.lower())
    return Outcome(type(exc).__name__, text, sqlstate, status)


def _catalog_code(low: str) -> str:
    if "does not exist" in low or "not found" in low:
        if "table with name" in low or "view with name" in low:
            return "42P01"
        if "function with name" in low or "macro" in low:
            return "42883"
        if "schema" in low:
            return "3F000"
        return "42704"
    if "already exists" in low:
        return "42P07"
    return "42000"


def _constraint_code(low: str) -> str:
    if "not null" in low:
        return "23502"
    return "23505" if "duplicate" in low or "unique" in low else "23514"


# DuckDB's own errors, by exception class, first match wins: (class name, SQLSTATE of the
# lowered message, HTTP status). A 400 is a statement or value the client got wrong.
_DUCKDB_CODES: tuple[tuple[str, Callable[[str], str], int], ...] = (
    ("ParserException", lambda low: "42601", 400),
    ("CatalogException", _catalog_code, 500),
    ("BinderException", lambda low: "42703" if "column" in low else "42804", 400),
    ("ConversionException", lambda low: "22P02", 400),
    ("OutOfRangeException", lambda low: "22003", 400),
    ("ConstraintException", _constraint_code, 400),
    ("TransactionException", lambda low: "25P02" if "aborted" in low else "25001", 500),
    ("InterruptException", lambda low: "57014", 500),
    ("PermissionException", lambda low: "42501", 500),
    ("InvalidInputException", lambda low: "22023", 400),
    ("NotImplementedException", lambda low: "0A000", 500),
)


def _duckdb_codes(exc: BaseException, low: str) -> tuple[str, int]:
    import duckdb

    for name, code, status in _DUCKDB_CODES:
        if isinstance(exc, getattr(duckdb, name)):
            return code(low), status
    return "XX000", 500


def closest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    hits = closest(word, choices)
    if not hits:
        return ""
    return " Did you mean " + " or ".join(repr(h) for h in hits) + "?"
