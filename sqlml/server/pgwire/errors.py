"""Exceptions as Postgres ErrorResponses: a SQLSTATE code and the message, sqlml's verbatim."""

from __future__ import annotations

import re

import duckdb

from sqlml.cli.console import message as peeled
from sqlml.errors import SqlmlError
from sqlml.redshift.parser import SqlSyntaxError

READ_ONLY_PREFIX = "sqlml serve --read-only: writes are refused: "

# sqlml's own error classes, as DuckDB passes them on: "ModelNotFoundError: model 'x' ..."
_SQLML_CODES = {"ModelNotFoundError": "42704", "InvalidNameError": "42602",
                "PredictionInputError": "22023", "TrainingError": "22023",
                "ArtifactError": "XX001", "SqlSyntaxError": "42601"}


# sqlml's SQL macros raise this one through error(), without a class name.
_UNKNOWN_MODEL = re.compile(r"\bmodel '[^']*' does not exist")


class PgError(Exception):
    """An error the server itself raises, with its SQLSTATE."""

    def __init__(self, code: str, text: str, hint: str | None = None):
        super().__init__(text)
        self.code, self.text, self.hint = code, text, hint


def _catalog_code(text: str) -> str:
    low = text.lower()
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


def describe(exc: BaseException, *, read_only: bool = False) -> tuple[str, str]:
    """(SQLSTATE, message) for any exception raised while running a client's statement."""
    if isinstance(exc, PgError):
        return exc.code, exc.text
    text = peeled(exc)
    if isinstance(exc, SqlSyntaxError):
        return "42601", text
    if isinstance(exc, SqlmlError):
        return _SQLML_CODES.get(type(exc).__name__, "22023"), text
    if not isinstance(exc, duckdb.Error):
        return "XX000", f"internal error in sqlml serve: {type(exc).__name__}: {exc}"
    low = text.lower()
    if read_only and ("read-only" in low or "read only" in low):
        return "25006", READ_ONLY_PREFIX + text
    head = text.split(":", 1)[0]
    if head in _SQLML_CODES:
        return _SQLML_CODES[head], text
    if isinstance(exc, duckdb.ParserException):
        return "42601", text
    if isinstance(exc, duckdb.CatalogException):
        return _catalog_code(text), text
    if isinstance(exc, duckdb.BinderException):
        return ("42703" if "column" in low else "42804"), text
    if isinstance(exc, duckdb.ConversionException):
        return "22P02", text
    if isinstance(exc, duckdb.OutOfRangeException):
        return "22003", text
    if isinstance(exc, duckdb.ConstraintException):
        if "not null" in low:
            return "23502", text
        return ("23505" if "duplicate" in low or "unique" in low else "23514"), text
    if isinstance(exc, duckdb.TransactionException):
        return ("25P02" if "aborted" in low else "25001"), text
    if isinstance(exc, duckdb.InterruptException):
        return "57014", "canceling statement due to user request"
    if isinstance(exc, duckdb.PermissionException):
        return "42501", text
    if isinstance(exc, duckdb.InvalidInputException):
        return ("42704" if _UNKNOWN_MODEL.search(text) else "22023"), text
    if isinstance(exc, duckdb.NotImplementedException):
        return "0A000", text
    return "XX000", text
