"""The one table of Python UDFs sqlml registers, and the function that registers them.

Python UDFs are private and positional (``__sqlml_*``); users meet the SQL macros in ``sql/``
that own the named arguments and defaults and call these.
"""

from __future__ import annotations

import duckdb

from sqlml.context import Instance


def register(con: duckdb.DuckDBPyConnection, inst: Instance) -> None:
    con.create_function("__sqlml_instance", lambda: inst.id, [], "VARCHAR", side_effects=False)
