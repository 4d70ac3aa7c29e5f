"""A Postgres wire protocol server for sqlml: psql, psycopg, JDBC and BI tools on a DuckDB file.

Modules: ``codec`` (messages on the wire), ``auth`` (SCRAM-SHA-256), ``types`` (DuckDB values as
Postgres types), ``statements`` (command tags, parameters), ``compat`` (Postgres settings, and
the catalog layer built from ``catalog``, the TEMP macros and views DuckDB's pg_catalog lacks,
and ``rewrite``, Postgres syntax rewritten for DuckDB), ``errors`` (SQLSTATE codes), ``session``
(one client) and ``server`` (the listener). ``sqlml serve`` starts it; ``start_in_thread``
embeds it.
"""

from sqlml.server.pgwire.server import PgServer, start_in_thread

__all__ = ["PgServer", "start_in_thread"]
