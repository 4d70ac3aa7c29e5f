"""The table the driver tests (JDBC, ODBC, DBeaver's queries) read besides the churn model's
customers: a VARCHAR, a DECIMAL(10,2) and a TIMESTAMP_NS column, which drivers must type."""

from __future__ import annotations

EVENTS = ("CREATE TABLE events (id INTEGER, name VARCHAR, amount DECIMAL(10,2), "
          "happened_at TIMESTAMP_NS)")
EVENTS_ROWS = ("INSERT INTO events VALUES (1, 'signup', 12.34, "
               "TIMESTAMP_NS '2024-01-02 03:04:05.123456789'), "
               "(2, 'renewal', 99.50, TIMESTAMP_NS '2024-02-03 04:05:06')")


def add_events(con) -> list[tuple]:
    """Creates the events table; returns DuckDB's own DESCRIBE of it (name, type), the
    independent reference the tests compare the drivers' column metadata with."""
    con.execute(EVENTS)
    con.execute(EVENTS_ROWS)
    return [(r[0], r[1]) for r in con.execute("DESCRIBE events").fetchall()]
