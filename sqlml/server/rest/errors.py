"""How an error becomes an HTTP status and the JSON body ``{"error": {"type", "message"}}``.

The message is the one sqlml gives in SQL: an error raised inside a scoring UDF reaches Python as
``Invalid Input Error: Python exception occurred while executing the UDF: <Class>: <message>``,
and only ``<message>`` is meant for the user.
"""

from __future__ import annotations

import re

import duckdb

from sqlml.errors import ArtifactError, ModelNotFoundError, SqlmlError


class RequestError(SqlmlError):
    """A request the REST endpoint refuses, with the HTTP status it answers."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


_UDF_ERROR = re.compile(
    r"^(?:[A-Za-z ]+ Error: )?(?:Python exception occurred while executing the UDF: )?"
    r"(?P<cls>[A-Z][A-Za-z]*Error): (?P<msg>.*)$", re.S)
_CLIENT_DUCKDB = (duckdb.InvalidInputException, duckdb.ConversionException,
                  duckdb.BinderException, duckdb.ParserException, duckdb.ConstraintException,
                  duckdb.OutOfRangeException)
# sqlml's own error classes raised inside a UDF, by the status they deserve.
_STATUS_OF_CLASS = {"ModelNotFoundError": 404, "PredictionInputError": 422,
                    "InvalidNameError": 422, "SqlmlError": 422, "ArtifactError": 500}


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(status, type, message) for any exception a request handler let through."""
    if isinstance(exc, RequestError):
        return exc.status, exc.kind, str(exc)
    if isinstance(exc, ModelNotFoundError):
        return 404, "ModelNotFoundError", str(exc)
    if isinstance(exc, ArtifactError):
        return 500, "ArtifactError", str(exc)
    if isinstance(exc, SqlmlError):
        return 422, type(exc).__name__, str(exc)
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        m = _UDF_ERROR.match(text)
        if m and m["cls"] in _STATUS_OF_CLASS:
            return _STATUS_OF_CLASS[m["cls"]], m["cls"], m["msg"].strip()
        status = 400 if isinstance(exc, _CLIENT_DUCKDB) else 500
        return status, type(exc).__name__, text
    return 500, type(exc).__name__, f"internal error: {exc}"
