"""Postgres catalog compatibility: what psql, psycopg, SQLAlchemy and BI tools ask at connect time.

DuckDB has a partial ``pg_catalog`` (pg_class, pg_namespace, pg_attribute, pg_type...), but not
every function, view or syntax those clients use. Three pieces fill the gap:

- session settings Postgres has and DuckDB does not (``SET application_name``, ``SHOW
  transaction isolation level``, ``current_setting('server_version_num')``) are answered here;
- per-session TEMP macros and views (``catalog``) supply the missing functions and catalog
  views (``pg_get_userbyid``, ``pg_inherits``...), created when the session starts;
- a rewrite with sqlglot (``rewrite``) turns the syntax DuckDB cannot take
  (``OPERATOR(pg_catalog.~)``, ``::regclass``, ``COLLATE pg_catalog.default``, schema-qualified
  ``pg_catalog.f(...)`` calls) into what it can. It runs on queries that touch the catalog, and
  on other queries only after DuckDB has refused them outside a transaction.
"""

from __future__ import annotations

import re
import threading

import duckdb

from sqlml.server.pgwire import statements as stmt_text
from sqlml.server.pgwire.catalog import SERVER_VERSION, temp_objects
from sqlml.server.pgwire.rewrite import rewrite, touches_catalog

__all__ = ["REPORTED", "Answer", "Compat", "touches_catalog"]

# Parameters a Postgres 15 server reports or SHOWs, with what this server says for them.
# (ParameterStatus sends those in REPORTED.)
DEFAULTS = {
    "server_version": SERVER_VERSION, "server_version_num": "150000",
    "server_encoding": "UTF8", "client_encoding": "UTF8", "datestyle": "ISO, MDY",
    "intervalstyle": "postgres", "integer_datetimes": "on", "standard_conforming_strings": "on",
    "is_superuser": "off", "application_name": "", "extra_float_digits": "1",
    "transaction_isolation": "read committed", "default_transaction_isolation": "read committed",
    "transaction_read_only": "off", "default_transaction_read_only": "off",
    "max_identifier_length": "63", "lc_collate": "C", "lc_ctype": "C", "lc_messages": "C",
    "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C", "bytea_output": "hex",
    "statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
    "client_min_messages": "notice", "in_hot_standby": "off", "session_authorization": "",
    "row_security": "on", "search_path": '"$user", public', "jit": "off",
    "synchronous_commit": "on", "max_index_keys": "32", "block_size": "8192",
    # SQLAlchemy 2.1 reflects a table's access method unless it is this one (pg_am: 'duckdb').
    "default_table_access_method": "duckdb", "default_tablespace": "",
}
REPORTED = ("server_version", "server_encoding", "client_encoding", "DateStyle", "IntervalStyle",
            "integer_datetimes", "standard_conforming_strings", "is_superuser",
            "application_name", "session_authorization", "default_transaction_read_only",
            "in_hot_standby", "TimeZone")
# The names as Postgres spells them in ParameterStatus.
SPELLING = {name.lower(): name for name in REPORTED}

_SETTINGS_LOCK = threading.Lock()
_DUCKDB_SETTINGS: set[str] = set()


def duckdb_settings(cur) -> set[str]:
    with _SETTINGS_LOCK:
        if not _DUCKDB_SETTINGS:
            rows = cur.execute("SELECT lower(name) FROM duckdb_settings()").fetchall()
            _DUCKDB_SETTINGS.update(r[0] for r in rows)
        return _DUCKDB_SETTINGS


class Answer:
    """A statement answered here, without DuckDB: optional one-row result, tag and notices."""

    def __init__(self, tag: str, columns: list[str] | None = None, rows: list[tuple] | None = None,
                 notices: list[str] | None = None, report: dict[str, str] | None = None):
        self.tag, self.columns, self.rows = tag, columns or [], rows or []
        self.notices, self.report = notices or [], report or {}


_SET = re.compile(r"^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?(?P<name>[A-Za-z_][\w.]*)\s*(?:=|\s+TO\s+)"
                  r"\s*(?P<value>.*?)\s*;?\s*$", re.I | re.S)
_SET_TIME_ZONE = re.compile(r"^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?TIME\s+ZONE\s+"
                            r"(?P<value>.*?)\s*;?\s*$", re.I | re.S)
_SET_TRANSACTION = re.compile(r"^\s*SET\s+(?:SESSION\s+CHARACTERISTICS\s+AS\s+)?TRANSACTION\b",
                              re.I)
_RESET = re.compile(r"^\s*RESET\s+(?P<name>[A-Za-z_][\w.]*)\s*;?\s*$", re.I)
_SHOW = re.compile(r"^\s*SHOW\s+(?P<name>[A-Za-z_][\w.]*(?:\s+[A-Za-z_]+)*)\s*;?\s*$", re.I)
_DISCARD = re.compile(r"^\s*DISCARD\s+(ALL|PLANS|SEQUENCES|TEMP|TEMPORARY)\s*;?\s*$", re.I)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value


class Compat:
    """One session's compatibility state: its Postgres settings and its TEMP objects."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, *, user: str, pid: int,
                 read_only: bool, application_name: str = ""):
        self.cur, self.user, self.pid = cur, user, pid
        self.settings = dict(DEFAULTS)
        self.settings.update(session_authorization=user, application_name=application_name,
                             default_transaction_read_only="on" if read_only else "off",
                             transaction_read_only="on" if read_only else "off")

    # -- settings
    def timezone(self) -> str:
        return self.cur.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]

    def answer(self, text: str) -> Answer | None:
        """SET, RESET, SHOW and DISCARD of settings DuckDB does not have; None passes through."""
        first = stmt_text.leading_word(text)
        if first == "SET":
            return self._set(text)
        if first == "RESET":
            m = _RESET.match(text)
            if m and m.group("name").lower() not in duckdb_settings(self.cur):
                name = m.group("name").lower()
                if name == "all":
                    self.settings.update({k: v for k, v in DEFAULTS.items()
                                          if k not in ("session_authorization",)})
                else:
                    self.settings[name] = DEFAULTS.get(name, "")
                return Answer("RESET")
            return None
        if first == "SHOW":
            return self._show(text)
        if first == "DISCARD" and (m := _DISCARD.match(text)):
            return Answer("DISCARD " + m.group(1).upper())
        return None

    def _set(self, text: str) -> Answer | None:
        if _SET_TRANSACTION.match(text):
            return Answer("SET", notices=[
                "SET TRANSACTION: accepted and ignored; DuckDB runs every transaction with "
                "snapshot isolation"])
        m = _SET_TIME_ZONE.match(text)
        if m:
            value = _unquote(m.group("value"))
            quoted = value.replace("'", "''")
            self.cur.execute(f"SET TimeZone = '{quoted}'")
            return Answer("SET", report={"TimeZone": value})
        m = _SET.match(text)
        if not m:
            return None
        name = m.group("name").lower()
        if name in duckdb_settings(self.cur):
            return None
        value = _unquote(m.group("value"))
        if name == "client_encoding" and value.upper().replace("-", "") not in ("UTF8",
                                                                                 "UNICODE"):
            from sqlml.server.pgwire.errors import PgError

            raise PgError("22023", f"SET client_encoding: {value!r} is not supported; this "
                                   f"server speaks UTF8 only. Set client_encoding to UTF8.")
        notices = []
        if name not in DEFAULTS:
            notices.append(f"SET {m.group('name')}: DuckDB has no such setting; sqlml serve "
                           f"accepted it and ignores it")
        self.settings[name] = value
        report = {SPELLING[name]: value} if name in SPELLING else {}
        return Answer("SET", notices=notices, report=report)

    def _show(self, text: str) -> Answer | None:
        m = _SHOW.match(text)
        if not m:
            return None
        name = " ".join(m.group("name").lower().split())
        if name == "transaction isolation level":
            name = "transaction_isolation"
        if name in self.settings and name not in duckdb_settings(self.cur):
            return Answer("SHOW", [name], [(self.settings[name],)])
        if name in duckdb_settings(self.cur):
            value = self.cur.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]
            return Answer("SHOW", [name], [(str(value),)])
        return None

    # -- catalog queries
    def install(self) -> None:
        """Create the session's TEMP macros and views (about 20 ms). Done at connection time:
        created inside a client's transaction, a ROLLBACK would take them away again."""
        for sql in temp_objects(self.user, self.pid):
            self.cur.execute(sql)

    def rewrite(self, text: str) -> str | None:
        """DuckDB SQL for a Postgres query, or None when sqlglot cannot read it."""
        return rewrite(text, user=self.user, setting=self._pg_only_setting,
                       pg_settings=self._pg_only_settings)

    def _pg_only_settings(self) -> dict[str, str]:
        return {name: value for name, value in self.settings.items()
                if name not in duckdb_settings(self.cur)}

    def _pg_only_setting(self, name: str) -> str | None:
        if name in self.settings and name not in duckdb_settings(self.cur):
            return self.settings[name]
        return None
