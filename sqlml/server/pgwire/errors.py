"""Exceptions as Postgres ErrorResponses: a SQLSTATE code and the message, sqlml's verbatim.

The code comes from ``sqlml.errors.describe``, as the CLI's and the REST endpoint's outcomes do;
this module adds only what a Postgres server says in its own words (a refused write on a
read-only server, a cancelled statement, a bug) and the errors of the protocol itself.
"""

from __future__ import annotations

import duckdb

from sqlml import errors

READ_ONLY_PREFIX = "sqlml serve --read-only: writes are refused: "


class PgError(Exception):
    """An error the server itself raises, with its SQLSTATE (a protocol matter, such as an
    unknown prepared statement, that never reaches sqlml's other surfaces)."""

    def __init__(self, code: str, text: str, hint: str | None = None):
        super().__init__(text)
        self.code, self.text, self.hint = code, text, hint


def describe(exc: BaseException, *, read_only: bool = False) -> tuple[str, str]:
    """(SQLSTATE, message) for any exception raised while running a client's statement."""
    if isinstance(exc, PgError):
        return exc.code, exc.text
    out = errors.describe(exc)
    if out.internal:
        return out.sqlstate, f"internal error in sqlml serve: {out.cls_name}: {out.message}"
    low = out.message.lower()
    if isinstance(exc, duckdb.Error):
        from sqlml.server.policy import permission_message  # the lockdown's own words

        locked = permission_message(out.message)
        if locked is not None:
            return "42501", locked
    if read_only and isinstance(exc, duckdb.Error) and ("read-only" in low or "read only" in low):
        return "25006", READ_ONLY_PREFIX + out.message
    if out.sqlstate == "57014":
        return out.sqlstate, "canceling statement due to user request"
    return out.sqlstate, out.message
