"""What a served session may run: ``sqlml serve`` is locked down by default.

Two layers. DuckDB's own (``lock_down``): ``enable_external_access`` off, so no statement reads or
writes a server file or URL (read_text, read_csv, COPY ... TO 'file', ATTACH 'file', INSTALL,
LOAD of a file), and ``lock_configuration`` on, so no ``SET`` turns it back on. Sessions may
still set their TimeZone and Calendar (DuckDB's ``allowed_configs``, in DuckDB 2.0; DuckDB 1.4
has no such exemption, so there the configuration is held by this module's SET rule alone), and
search_path/schema, which DuckDB never locks.

And this module's statement policy (``Policy.check``), called by the wire session before each
statement runs. It classifies statements by DuckDB's own parser (``extract_statements``, on the
session's locked cursor) and tokenizer, never by regular expressions, and refuses with a Postgres
error that names the statement, the rule and the remedy:

- file access off (the default): COPY to or from a server file, ATTACH, DETACH, INSTALL, LOAD,
  EXPORT/IMPORT DATABASE, SET or RESET of DuckDB settings other than the session ones, PRAGMAs
  and functions that change the server's configuration (enable_logging, enable_profiling...):
  SQLSTATE 42501. ``COPY (query) TO STDOUT`` and ``COPY t FROM STDIN`` move rows through the
  client and stay allowed.
- ``--read-only``: every write, COPY to a file included, even with --allow-file-access:
  SQLSTATE 25006, as Postgres answers a write in a read-only transaction.
- the ``reader`` role: scoring, catalog views and SELECT only; no training (ml_create_model,
  CREATE MODEL), dropping (ml_drop_model, DROP MODEL), rolling back (ml_rollback_model) or
  writing tables: SQLSTATE 42501.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import duckdb

from sqlml.redshift.parser import Statement
from sqlml.server.pgwire.auth import Verifier
from sqlml.server.pgwire.errors import READ_ONLY_PREFIX, PgError

ADMIN, READER = "admin", "reader"
ROLES = (ADMIN, READER)
# Session settings a client may change while the configuration is locked (lower case). DuckDB
# exempts schema and search_path from lock_configuration itself, the zone ones by allowed_configs.
SESSION_SETTINGS = frozenset({"timezone", "calendar", "search_path", "schema"})
ALLOWED_CONFIGS = ("TimeZone", "Calendar")
# PRAGMAs that only read (PRAGMA name, CALL name() or FROM pragma_name()).
READ_PRAGMAS = frozenset({
    "version", "platform", "user_agent", "database_list", "database_size", "show_tables",
    "show_tables_expanded", "show_databases", "show", "table_info", "storage_info",
    "metadata_info", "functions", "collations", "extension_versions"})
# Table functions (and PRAGMAs) that change the server's configuration, its log or its files.
STATE_FUNCTIONS = frozenset({
    "enable_logging", "disable_logging", "truncate_duckdb_logs", "enable_profiling",
    "enable_profile", "disable_profiling", "disable_profile", "enable_progress_bar",
    "disable_progress_bar", "enable_print_progress_bar", "disable_print_progress_bar",
    "enable_optimizer", "disable_optimizer", "enable_verification", "disable_verification",
    "enable_object_cache", "disable_object_cache", "enable_checkpoint_on_shutdown",
    "disable_checkpoint_on_shutdown", "import_database", "copy_database", "add_parquet_key",
    "add_grammar_extension", "remove_grammar_extension", "create_external_resource",
    "destroy_external_resource", "register_external_resource",
    "deregister_external_resource", "register_external_resource_type", "python_map_function"})
# Keywords that make a statement write, wherever they stand (a data-modifying WITH, EXPLAIN
# ANALYZE of a write): a reader's SELECT must have none.
WRITE_KEYWORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "COPY", "CREATE",
                            "DROP", "ALTER", "ATTACH", "DETACH", "INSTALL", "LOAD", "EXPORT",
                            "IMPORT", "VACUUM", "CHECKPOINT"})
# Statement kinds that only read (DuckDB's StatementType names, or the leading word).
READ_KINDS = frozenset({"SELECT", "EXPLAIN", "TRANSACTION", "EXECUTE", "PREPARE", "RELATION",
                        "MULTI"})
# Handled by the wire session itself, never by DuckDB.
SESSION_WORDS = frozenset({"DEALLOCATE", "SAVEPOINT", "RELEASE", "DISCARD", "BEGIN", "START",
                           "COMMIT", "END", "ROLLBACK", "ABORT", "SHOW"})
# Functions that run SQL given as a value: a reader's call is checked only when that SQL is one
# string literal (its words are then read like the statement's own); built at run time
# ('ml_' || 'create_model(...)') it could call anything.
DYNAMIC_SQL = frozenset({"query", "query_table", "json_execute_serialized_sql"})
# sqlml's functions that write the catalog, and the built-ins that write a sequence.
WRITE_UDF_PREFIX = "__sqlml_py_"
SEQUENCE_WRITES = frozenset({"nextval", "setval"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_CACHE_SECONDS = 5.0

REMEDY_FILES = ("Move rows through the client with COPY (query) TO STDOUT or COPY table FROM "
                "STDIN (psql's \\copy), or, on a trusted setup only, start sqlml serve with "
                "--allow-file-access.")
RULE_FILES = ("served sessions cannot reach the server's files or network (sqlml serve is "
              "locked down by default; PostgreSQL allows this only to superusers and "
              "pg_read_server_files/pg_write_server_files)")


@dataclass(frozen=True)
class User:
    """A login of its own: its role and its stored SCRAM-SHA-256 verifier."""

    name: str
    role: str
    verifier: Verifier | None


@dataclass
class Policy:
    """The rules of one server. ``file_access``: False locks files, network and configuration
    (``sqlml serve``'s default); ``read_only``: refuse every write; ``users``: logins with their
    own password and role (any other user name logs in with the server's password as admin)."""

    file_access: bool = True
    read_only: bool = False
    users: dict[str, User] = field(default_factory=dict)
    _writers: tuple[float, frozenset[str]] = field(default=(0.0, frozenset()), init=False,
                                                   repr=False, compare=False)

    def verifier(self, user: str, default: Verifier | None) -> Verifier | None:
        named = self.users.get(user)
        return named.verifier if named is not None else default

    def role(self, user: str) -> str:
        named = self.users.get(user)
        return named.role if named is not None else ADMIN

    def check(self, cur: duckdb.DuckDBPyConnection, st: Statement, user: str) -> None:
        """Raise PgError if ``st`` may not run in a session of ``user``; return otherwise."""
        reader = self.role(user) == READER
        if st.kind != "sql":
            if reader and st.kind in ("create_model", "drop_model"):
                what = "CREATE MODEL" if st.kind == "create_model" else "DROP MODEL"
                raise _denied(user, _short(st.text), f"{what} "
                              f"{'trains' if st.kind == 'create_model' else 'drops'} a model")
            return
        if self.file_access and not self.read_only and not reader:
            return
        _Check(self, cur, user, reader).statement(st.sql)

    def writers(self, cur: duckdb.DuckDBPyConnection) -> frozenset[str]:
        """Functions that write when called: sqlml's catalog-writing UDFs, nextval/setval, and
        every macro that calls one of them, however deep (ml_create_model, ml_drop_model,
        ml_rollback_model, ml_refresh_scores, and a user's macro over them)."""
        stamp, names = self._writers
        if names and time.monotonic() - stamp < _CACHE_SECONDS:
            return names
        rows = cur.execute(
            "SELECT DISTINCT lower(function_name), has_side_effects, "
            "coalesce(macro_definition, '') FROM duckdb_functions()").fetchall()
        out = {n for n, side, _ in rows if side and n.startswith(WRITE_UDF_PREFIX)}
        out |= SEQUENCE_WRITES
        macros = [(n, body.lower()) for n, _, body in rows if body]
        grew = True
        while grew:
            grew = False
            for name, body in macros:
                # A macro's calls are its identifiers; the names in its error messages (strings)
                # are not. Only bodies that mention a writer at all are tokenized.
                if name in out or not any(w in body for w in out):
                    continue
                if {t.text.lower() for t in tokens(body) if t.kind == "identifier"} & out:
                    out.add(name)
                    grew = True
        self._writers = (time.monotonic(), frozenset(out))
        return self._writers[1]


@dataclass
class _Tok:
    text: str
    kind: str          # keyword | identifier | string_const | numeric_const | operator
    start: int         # where it starts in the statement

    @property
    def word(self) -> str:
        return self.text.upper() if self.kind in ("keyword", "identifier") else ""


def tokens(sql: str) -> list[_Tok]:
    """DuckDB's tokens of ``sql`` (its tokenizer, so strings and comments are told apart)."""
    raw = duckdb.tokenize(sql)
    out = []
    for i, (start, kind) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else len(sql)
        text = sql[start:end].strip()
        name = getattr(kind, "name", str(kind))
        if name == "comment":
            continue
        if name in ("keyword", "identifier") and text and not text.startswith('"'):
            text = text.split()[0]     # DuckDB 1.4 glues a following comment to the token
        elif name == "identifier" and text.startswith('"'):
            text = text[1:text.find('"', 1)] if text.find('"', 1) > 0 else text.strip('"')
        out.append(_Tok(text, name, start))
    return out


def _short(text: str, limit: int = 70) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def _denied(user: str, what: str, reason: str) -> PgError:
    return PgError("42501", f'sqlml serve: permission denied for user "{user}" (role reader): '
                            f"{what} is refused: {reason}. The reader role may score "
                            f"(predict_*(...), ml_predict, ml_models()), read the catalog and "
                            f"SELECT tables, but not train, drop or roll back models nor write; "
                            f"connect as a user with role admin for that.")


def _locked(what: str, rule: str, remedy: str = REMEDY_FILES) -> PgError:
    return PgError("42501", f"sqlml serve: {what} is refused: {rule}. {remedy}")


REMEDY_READ_ONLY = ("Use COPY (query) TO STDOUT to get rows on the client, or serve the file "
                    "without --read-only.")


def _read_only(what: str, writes: str, remedy: str = REMEDY_READ_ONLY) -> PgError:
    return PgError("25006", f"{READ_ONLY_PREFIX}{what} {writes}, and a read-only server writes "
                            f"nothing (--allow-file-access included). {remedy}")


class _Check:
    """One statement's check (with the statements inside EXPLAIN and PREPARE)."""

    def __init__(self, policy: Policy, cur, user: str, reader: bool):
        self.policy, self.cur, self.user, self.reader = policy, cur, user, reader
        self.locked = not policy.file_access

    def statement(self, sql: str) -> None:
        toks = tokens(sql)
        if not toks:
            return
        first = toks[0].word
        if first in SESSION_WORDS:
            return
        if first in ("EXPLAIN", "PREPARE"):
            self._inner(sql, toks)
            return
        kind = self._kind(sql, first)
        what = _short(sql)
        self._functions(toks, what)
        handler = getattr(self, f"_{kind.lower()}", None)
        if handler is not None:
            handler(toks, what)
        elif self.reader and kind not in READ_KINDS:
            raise _denied(self.user, what, f"{kind} writes to the database")
        if self.reader and kind in READ_KINDS | {"CREATE"}:
            self._no_write_keywords(toks[1:], what)

    def _kind(self, sql: str, first: str) -> str:
        if first in ("IMPORT", "PRAGMA", "COPY", "ATTACH", "DETACH", "INSTALL", "LOAD", "EXPORT"):
            return "SET" if first == "PRAGMA" and self._assigns(sql) else first
        try:
            kinds = {s.type.name for s in self.cur.extract_statements(sql)}
        except duckdb.ParserException:
            # Postgres syntax DuckDB cannot read (the session may rewrite it); its leading word
            # says what it is, and a rewrite keeps the statement's kind.
            return "SET" if first in ("SET", "RESET", "USE") else (
                "SELECT" if first in ("SELECT", "WITH", "VALUES", "TABLE", "FROM") else first)
        except (duckdb.Error, ValueError):
            return "UNKNOWN"
        if first in ("PIVOT", "UNPIVOT") and kinds <= {"CREATE", "SELECT", "MULTI"}:
            return "MULTI"               # DuckDB 1.4 plans PIVOT as CREATE TYPE + SELECT
        return kinds.pop() if len(kinds) == 1 else "UNKNOWN"

    @staticmethod
    def _assigns(sql: str) -> bool:
        toks = tokens(sql)
        return len(toks) > 2 and toks[2].text == "="

    def _inner(self, sql: str, toks: list[_Tok]) -> None:
        """EXPLAIN [ANALYZE] [(options)] stmt, PREPARE name [(types)] AS stmt: check stmt."""
        depth, before_as = 0, toks[0].word == "PREPARE"
        for tok in toks[1:]:
            if tok.text == "(":
                depth += 1
            elif tok.text == ")":
                depth -= 1
            elif depth == 0 and tok.kind == "keyword":
                if before_as:
                    before_as = tok.word != "AS"
                elif tok.word not in ("ANALYZE", "ANALYSE", "VERBOSE"):
                    self.statement(sql[tok.start:])
                    return

    def _functions(self, toks: list[_Tok], what: str) -> None:
        """No call of a function that changes the server's state; for a reader, none that
        writes. Names are looked for in identifiers and inside string constants (query('...'),
        a training query passed as text)."""
        names = _names(toks)
        if (self.locked or self.policy.read_only or self.reader) and names & STATE_FUNCTIONS:
            bad = sorted(names & STATE_FUNCTIONS)[0]
            rule = "changes the server's configuration, log or files"
            if self.reader:
                raise _denied(self.user, what, f"{bad}() {rule}")
            if self.policy.read_only and not self.locked:
                raise _read_only(what, f"calls {bad}(), which changes the server's state",
                                 "Configure logging and profiling where the server starts.")
            raise _locked(what, f"{bad}() {rule}, which are locked for served sessions",
                          "Configure logging and profiling where the server starts, or, on a "
                          "trusted setup only, start sqlml serve with --allow-file-access.")
        if self.reader:
            dynamic = _dynamic_sql(toks)
            if dynamic:
                raise _denied(self.user, what, f"{dynamic}(...) runs SQL that is built while the "
                                               f"statement runs, which the reader role cannot "
                                               f"check; pass the query as one string literal")
            writing = names & self.policy.writers(self.cur)
            if writing:
                bad = sorted(writing)[0]
                raise _denied(self.user, what, f"{bad}(...) writes (it trains, drops or rolls "
                                               f"back a model, or writes the catalog)")

    def _no_write_keywords(self, toks: list[_Tok], what: str) -> None:
        found = [t.word for t in toks if t.kind == "keyword" and t.word in WRITE_KEYWORDS]
        if found:
            raise _denied(self.user, what, f"it contains {found[0]}, which writes")

    # -- one method per statement kind that has a rule
    def _unknown(self, toks: list[_Tok], what: str) -> None:
        if self.reader:
            raise _denied(self.user, what, "DuckDB's parser cannot tell what it does")
        raise _locked(what, "DuckDB's parser cannot tell what kind of statement it is, and a "
                            "locked-down server runs only statements it can classify",
                      "Send it as plain SQL DuckDB knows, or, on a trusted setup only, start "
                      "sqlml serve with --allow-file-access.")

    def _create(self, toks: list[_Tok], what: str) -> None:
        words = [t.word for t in toks[1:6]]
        if "SECRET" in words and "PERSISTENT" in words and (self.locked or self.reader
                                                             or self.policy.read_only):
            if self.policy.read_only and not self.locked:
                raise _read_only(what, "writes the secret into a file on the server")
            raise _locked(what, f"a PERSISTENT SECRET is a file on the server: {RULE_FILES}",
                          "Create a temporary secret (CREATE SECRET without PERSISTENT).")
        if self.reader and not ({"TEMP", "TEMPORARY"} & set(words[:3])):
            raise _denied(self.user, what, "CREATE writes the database (CREATE TEMP objects, "
                                           "which live in the session only, stay allowed)")

    def _copy(self, toks: list[_Tok], what: str) -> None:
        direction, target = _copy_target(toks)
        stream = target in ("STDOUT", "STDIN")
        if direction == "TO" and stream:
            return
        if direction == "DATABASE":
            if self.reader:
                raise _denied(self.user, what, "COPY FROM DATABASE writes a database")
            if self.policy.read_only:
                raise _read_only(what, "writes a database")
            return
        if self.reader:
            raise _denied(self.user, what, "it writes a table" if direction == "FROM" else
                          "it writes a file on the server")
        if self.policy.read_only:
            raise _read_only(what, "writes a table" if direction == "FROM" else
                             "writes a file on the server")
        if self.locked and not stream:
            raise _locked(what, f"COPY {direction} a server file: {RULE_FILES}")

    def _attach(self, toks: list[_Tok], what: str) -> None:
        if self.reader:
            raise _denied(self.user, what, "ATTACH opens another database")
        if self.locked:
            raise _locked(what, f"ATTACH opens another database file: {RULE_FILES}",
                          "sqlml serve serves the one database it was started on; on a "
                          "trusted setup only, start it with --allow-file-access.")
        if self.policy.read_only and "READ_ONLY" not in {t.word for t in toks}:
            raise _read_only(what, "may create or write a database file (add (READ_ONLY))")

    def _detach(self, toks: list[_Tok], what: str) -> None:
        if self.reader:
            raise _denied(self.user, what, "DETACH changes the databases attached")
        if self.locked:
            raise _locked(what, "DETACH changes the databases this server serves, which is "
                                "locked with its file access",
                          "On a trusted setup only, start sqlml serve with --allow-file-access.")

    def _load(self, toks: list[_Tok], what: str) -> None:
        installs = toks[0].word in ("INSTALL", "FORCE") or (
            len(toks) > 1 and toks[1].word == "INSTALL")
        if self.reader:
            raise _denied(self.user, what, "extensions are the server's to install and load")
        if self.locked:
            raise _locked(what, f"{'INSTALL' if installs else 'LOAD'} would run code from the "
                                f"server's disk or network: {RULE_FILES}",
                          "Install and load extensions where the server starts (they are then "
                          "available to every session), or, on a trusted setup only, start "
                          "sqlml serve with --allow-file-access.")
        if self.policy.read_only and installs:
            raise _read_only(what, "writes the extension into the server's extension folder",
                             "Install extensions before serving read-only; LOAD stays allowed.")

    _install = _load

    def _export(self, toks: list[_Tok], what: str) -> None:
        if self.reader:
            raise _denied(self.user, what, "EXPORT DATABASE writes files on the server")
        if self.policy.read_only:
            raise _read_only(what, "writes files on the server")
        if self.locked:
            raise _locked(what, f"EXPORT DATABASE writes server files: {RULE_FILES}")

    def _import(self, toks: list[_Tok], what: str) -> None:
        if self.reader:
            raise _denied(self.user, what, "IMPORT DATABASE creates tables")
        if self.policy.read_only:
            raise _read_only(what, "creates tables")
        if self.locked:
            raise _locked(what, f"IMPORT DATABASE reads server files: {RULE_FILES}")

    def _set(self, toks: list[_Tok], what: str) -> None:
        name, scope = _setting(toks)
        if name is None:
            return                       # SET VARIABLE, USE: the session's own
        if name not in _duckdb_settings(self.cur):
            return                       # a Postgres setting, answered by the wire layer
        if name in SESSION_SETTINGS and scope != "GLOBAL":
            return
        rule = (f"DuckDB setting {name!r} is the server's, not the session's"
                + (" (SET GLOBAL would change it for every session)" if scope == "GLOBAL"
                   else ""))
        allowed = ", ".join(sorted(SESSION_SETTINGS))
        if self.reader:
            raise _denied(self.user, what, f"{rule}; sessions may set {allowed}")
        if self.policy.read_only and not self.locked:
            raise _read_only(what, f"changes DuckDB setting {name!r} for the whole server",
                             f"Sessions may set {allowed}; set others when the server starts.")
        raise _locked(what, f"{rule}, and the server's configuration is locked; sessions may set "
                            f"{allowed}",
                      "Set it when the server starts (sqlml.connect(..., config=...) for an "
                      "embedded server), or, on a trusted setup only, start sqlml serve with "
                      "--allow-file-access.")

    def _pragma(self, toks: list[_Tok], what: str) -> None:
        name = toks[1].text.lower() if len(toks) > 1 else ""
        if name in READ_PRAGMAS:
            return
        if self.reader:
            raise _denied(self.user, what, f"PRAGMA {name} is the server's to change")
        if self.policy.read_only and not self.locked:
            raise _read_only(what, f"PRAGMA {name} changes the server's state",
                             f"The PRAGMAs that only read stay allowed "
                             f"({', '.join(sorted(READ_PRAGMAS))}).")
        raise _locked(what, f"PRAGMA {name} changes the server's configuration, log or files, "
                            f"which is locked; the PRAGMAs that only read stay allowed "
                            f"({', '.join(sorted(READ_PRAGMAS))})",
                      "On a trusted setup only, start sqlml serve with --allow-file-access.")

    def _call(self, toks: list[_Tok], what: str) -> None:
        name = toks[1].text.lower() if len(toks) > 1 else ""
        if toks[0].word in ("CHECKPOINT", "FORCE") or name in ("checkpoint", "force_checkpoint"):
            if self.reader:
                raise _denied(self.user, what, "CHECKPOINT writes the database file")
            return
        if name.removeprefix("pragma_") in READ_PRAGMAS or name.startswith("duckdb_"):
            return
        # Other calls are table functions: _functions has looked at their names.


_SETTINGS: set[str] = set()


def _duckdb_settings(cur) -> set[str]:
    """DuckDB's setting names, lower-cased (read once: they are the same for every database)."""
    if not _SETTINGS:
        _SETTINGS.update(r[0] for r in cur.execute(
            "SELECT lower(name) FROM duckdb_settings()").fetchall())
    return _SETTINGS


def _names(toks: list[_Tok]) -> set[str]:
    """Identifiers, and the words inside string constants, lower-cased."""
    out = set()
    for t in toks:
        if t.kind == "identifier" or t.kind == "keyword":
            out.add(t.text.lower())
        elif t.kind == "string_const":
            out |= {w.lower() for w in _WORD.findall(t.text)}
    return out


def _dynamic_sql(toks: list[_Tok]) -> str | None:
    """The first call of a DYNAMIC_SQL function whose argument is not one string literal."""
    for i, t in enumerate(toks):
        name = t.text.lower()
        if name not in DYNAMIC_SQL or i + 1 >= len(toks) or toks[i + 1].text != "(":
            continue
        literal = (i + 3 < len(toks) and toks[i + 2].kind == "string_const"
                   and toks[i + 3].text == ")")
        if name == "json_execute_serialized_sql" or not literal:
            return name
    return None


def _copy_target(toks: list[_Tok]) -> tuple[str, str]:
    """("TO" or "FROM", what follows it: STDOUT, STDIN, or a file), or ("DATABASE", "")."""
    if len(toks) > 2 and toks[1].word == "FROM" and toks[2].word == "DATABASE":
        return "DATABASE", ""
    depth = 0
    for i, t in enumerate(toks[1:], start=1):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.kind == "keyword" and t.word in ("TO", "FROM"):
            target = toks[i + 1] if i + 1 < len(toks) else None
            return t.word, target.word if target is not None and target.kind == "keyword" \
                else "FILE"
    return "TO", "FILE"


def _setting(toks: list[_Tok]) -> tuple[str | None, str]:
    """(setting name lower-cased, scope) of SET/RESET/PRAGMA x = v; None for SET VARIABLE and
    USE. ``SET TIME ZONE`` is TimeZone."""
    first = toks[0].word
    if first == "USE":
        return None, ""
    rest = toks[1:]
    scope = ""
    if rest and rest[0].word in ("SESSION", "GLOBAL", "LOCAL"):
        scope, rest = rest[0].word, rest[1:]
    if not rest or rest[0].word == "VARIABLE":
        return None, scope
    if rest[0].word == "TIME" and len(rest) > 1 and rest[1].word == "ZONE":
        return "timezone", scope
    if rest[0].word == "ALL":
        return "all", scope
    return rest[0].text.lower(), scope


def lock_down(con: duckdb.DuckDBPyConnection) -> bool:
    """Turn off DuckDB's access to files and network for the database of ``con`` (every
    connection and cursor of it, for as long as it stays open: it cannot be turned back on),
    and lock its configuration except the session settings. True if DuckDB's own
    lock_configuration is on; False on a DuckDB without ``allowed_configs`` (1.4), where locking
    would refuse the sessions' SET TimeZone too: there ``Policy`` alone holds the configuration.
    """
    settings = dict(con.execute("SELECT name, lower(value) FROM duckdb_settings()").fetchall())
    if settings["enable_external_access"] != "false":
        con.execute("SET enable_external_access = false")
    if "allowed_configs" not in settings:
        return False
    if settings["lock_configuration"] != "true":      # called again: already locked
        listed = ", ".join(f"'{n}'" for n in ALLOWED_CONFIGS)
        con.execute(f"SET allowed_configs = [{listed}]")
        con.execute("SET lock_configuration = true")
    return True


def permission_message(message: str) -> str | None:
    """sqlml serve's words for DuckDB's own refusal of a file, URL or extension in a locked-down
    server (read_text('/etc/hostname'), FROM 'data.csv'...), or None for any other error."""
    low = message.lower()
    if "disabled by configuration" in low or "disabled through configuration" in low:
        return (f"sqlml serve: {RULE_FILES}; DuckDB says: {message}. Load data through the "
                f"client (COPY table FROM STDIN, INSERT with parameters), or, on a trusted "
                f"setup only, start sqlml serve with --allow-file-access.")
    if "the configuration has been locked" in low:
        return (f"sqlml serve: the server's DuckDB configuration is locked (lock_configuration); "
                f"sessions may set {', '.join(sorted(SESSION_SETTINGS))}. DuckDB says: "
                f"{message}. Set it when the server starts, or, on a trusted setup only, start "
                f"sqlml serve with --allow-file-access.")
    return None
