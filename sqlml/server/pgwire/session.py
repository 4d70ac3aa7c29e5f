"""One client connection: startup and authentication, then the simple and extended query protocols.

Each session runs in its own thread on its own cursor of the server's DuckDB connection, so a
slow or failing query in one session never blocks or breaks another. Statements go through
``sqlml.redshift.parser.parse``: the Redshift ML ones (CREATE MODEL, SHOW MODEL, DROP MODEL,
EXPLAIN_MODEL) run through ``sqlml.execute``, whose notices become NoticeResponses; everything
else goes to DuckDB as written, or rewritten by ``compat`` when it speaks Postgres' catalog.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from sqlml.errors import SqlSyntaxError
from sqlml.redshift.parser import Statement, parse
from sqlml.server import policy as serve_policy
from sqlml.server.pgwire import codec, compat, types
from sqlml.server.pgwire import statements as stmt_text
from sqlml.server.pgwire.auth import AuthFailed, ScramExchange, Verifier
from sqlml.server.pgwire.errors import PgError, describe

# Errors the Postgres-to-DuckDB rewrite may cure (an interrupted or failing query is not retried).
_REFUSED = (duckdb.ParserException, duckdb.CatalogException, duckdb.BinderException)
STARTUP_TIMEOUT = 30.0   # seconds for the startup packet and authentication
_BATCH = 2048            # rows fetched from DuckDB at a time while streaming a result
_FLUSH_BYTES = 1 << 16   # send buffered messages once they reach this size


@dataclass
class Outcome:
    """A statement's result: its columns and rows (still in the cursor, or a list), and tag."""

    fields: list[tuple[str, int, int]]        # (name, type oid, size); [] = no rows
    tag: str                                  # base tag; full_tag adds the row count
    rows: list | None = None                  # None while they are still in the cursor
    cursor: duckdb.DuckDBPyConnection | None = None
    count: int | None = None                  # affected rows, for INSERT/UPDATE/DELETE
    sent: int = 0

    def materialize(self) -> None:
        if self.rows is None and self.cursor is not None:
            self.rows = self.cursor.fetchall()
            self.cursor = None

    def next_rows(self, limit: int) -> list:
        """Up to ``limit`` of the rows not sent yet."""
        if self.rows is not None:
            return self.rows[self.sent:self.sent + limit]
        if self.cursor is None:
            return []
        return self.cursor.fetchmany(limit)

    def done(self) -> bool:
        if self.rows is not None:
            return self.sent >= len(self.rows)
        return self.cursor is None


@dataclass
class Prepared:
    statement: Statement | None          # None for an empty query
    param_oids: list[int]


@dataclass
class Portal:
    prepared: Prepared
    params: list
    result_formats: list[int]
    outcome: Outcome | None = None        # set when Describe ran it before Execute


@dataclass
class SessionConfig:
    verifier: Verifier | None             # None: no authentication
    read_only: bool
    policy: serve_policy.Policy | None = None   # what sessions may run; None: everything


class Session:
    def __init__(self, sock: socket.socket, con: duckdb.DuckDBPyConnection,
                 config: SessionConfig, pid: int,
                 cancel: Callable[[int, int], None] = lambda pid, key: None):
        self.sock, self.con, self.config, self.pid = sock, con, config, pid
        self.key = secrets.randbits(31)      # BackendKeyData: what a CancelRequest must quote
        self._cancel = cancel
        self.cur: duckdb.DuckDBPyConnection | None = None
        self.compat: compat.Compat | None = None
        self.status = "I"                 # ReadyForQuery: I idle, T in transaction, E failed
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self._out: list[bytes] = []
        self._out_size = 0
        self._skip_until_sync = False

    # -- output
    def send(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._out:
            self.sock.sendall(b"".join(self._out))
            self._out, self._out_size = [], 0

    def notice(self, text: str) -> None:
        self.send(codec.notice_response(text))

    def fatal(self, code: str, text: str, hint: str | None = None) -> None:
        self.send(codec.error_response(code, text, severity="FATAL", hint=hint))
        self.flush()

    # -- lifetime
    def serve(self) -> None:
        try:
            # A client that connects and then says nothing must not hold a thread forever.
            self.sock.settimeout(STARTUP_TIMEOUT)
            if self._startup():
                self.sock.settimeout(None)
                self._loop()
        except (ConnectionError, OSError):
            pass                             # the client went away
        except Exception as exc:             # a malformed message, or a bug: say so, then close
            code = "08P01" if isinstance(exc, (codec.ProtocolError, struct.error, ValueError,
                                                IndexError)) else "XX000"
            try:
                self.fatal(code, f"sqlml serve closes this connection: {type(exc).__name__}: "
                                 f"{exc}")
            except OSError:
                pass
        finally:
            if self.cur is not None:
                try:
                    if self.status != "I":
                        self.cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                self.cur.close()
            try:
                self.sock.close()
            except OSError:
                pass

    # Startup sets both before the message loop reads any query, so query handlers use these.
    @property
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self.cur is None:
            raise RuntimeError("the session has no cursor before startup completes")
        return self.cur

    @property
    def _compat(self) -> compat.Compat:
        if self.compat is None:
            raise RuntimeError("the session has no compat layer before startup completes")
        return self.compat

    def interrupt(self) -> None:
        """Stop the statement running now, if any (from another thread): it fails with 57014."""
        if self.cur is not None:
            self.cur.interrupt()

    def _startup(self) -> bool:
        while True:
            startup = codec.read_startup(self.sock)
            if startup.code in (codec.SSL_REQUEST, codec.GSSENC_REQUEST):
                self.sock.sendall(b"N")     # no TLS here: the client goes on in plain text
                continue
            break
        if startup.code == codec.CANCEL_REQUEST:
            # A new connection that names another session's (pid, key); no answer is sent.
            if len(startup.body) >= 12:
                self._cancel(*struct.unpack("!ii", startup.body[4:12]))
            return False
        if startup.code != codec.PROTOCOL_3:
            self.fatal("0A000", f"unsupported frontend protocol {startup.code >> 16}."
                                f"{startup.code & 0xFFFF}: this server speaks 3.0")
            return False
        user = startup.params.get("user", "")
        if not user:
            self.fatal("28000", "no user name given in the startup packet; connect with a user "
                                "name, e.g. psql -U sqlml")
            return False
        policy = self.config.policy
        verifier = policy.verifier(user, self.config.verifier) if policy else self.config.verifier
        if verifier is not None and not self._authenticate(user, verifier):
            return False
        self.send(codec.auth_ok())
        self.cur = self.con.cursor()
        import sqlml

        sqlml.install(self.cur)
        self.compat = compat.Compat(self.cur, user=user, pid=self.pid,
                                    read_only=self.config.read_only,
                                    application_name=startup.params.get("application_name", ""))
        self.compat.install()
        self.compat.settings["timezone"] = self.compat.timezone()
        for name in compat.REPORTED:
            self.send(codec.parameter_status(name, self.compat.settings[name.lower()]))
        self.send(codec.backend_key_data(self.pid, self.key))
        self.send(codec.ready_for_query("I"))
        self.flush()
        return True

    def _authenticate(self, user: str, verifier: Verifier) -> bool:
        self.send(codec.auth_sasl(["SCRAM-SHA-256"]))
        self.flush()
        exchange = ScramExchange(verifier)
        try:
            kind, body = codec.read_message(self.sock)
            if kind != b"p":
                raise AuthFailed("expected a SASLInitialResponse")
            r = codec.Reader(body)
            mechanism = r.cstring()
            if mechanism != "SCRAM-SHA-256":
                raise AuthFailed(f"unsupported SASL mechanism {mechanism!r}")
            length = r.int32()
            self.send(codec.auth_sasl_continue(exchange.first(r.raw(length))))
            self.flush()
            kind, body = codec.read_message(self.sock)
            if kind != b"p":
                raise AuthFailed("expected a SASLResponse")
            self.send(codec.auth_sasl_final(exchange.final(body)))
            return True
        except (AuthFailed, ValueError, IndexError, struct.error) as exc:
            detail = str(exc) if isinstance(exc, AuthFailed) else "malformed SCRAM message"
            text = f'password authentication failed for user "{user}"'
            if detail != "password authentication failed":
                text += f": {detail}"
            self.fatal("28P01", text, hint="Use the password sqlml serve was started with "
                                           "(--password or $SQLML_PASSWORD), or the one it "
                                           "printed at first start.")
            return False

    def _loop(self) -> None:
        handlers = {b"Q": self._query, b"P": self._parse, b"B": self._bind, b"D": self._describe,
                    b"E": self._execute, b"C": self._close, b"S": self._sync, b"H": self._flush}
        # Replies are buffered until Sync, Flush or the end of a simple query, as Postgres
        # does: a pipelined Parse/Bind/Describe/Execute/Sync is answered in one write.
        while True:
            kind, body = codec.read_message(self.sock)
            if kind == b"X":
                return
            if self._skip_until_sync and kind != b"S":
                continue
            handler = handlers.get(kind)
            if handler is None:
                self.fatal("08P01", f"invalid frontend message type "
                                    f"{kind.decode(errors='replace')!r}: sqlml serve has no "
                                    f"COPY and no function calls")
                return
            handler(body)

    # -- errors
    def _fail(self, exc: BaseException, *, extended: bool) -> None:
        code, text = describe(exc, read_only=self.config.read_only)
        hint = exc.hint if isinstance(exc, PgError) else None
        self.send(codec.error_response(code, text, hint=hint))
        if self.status == "T":
            self.status = "E"
        if extended:
            self._skip_until_sync = True

    # -- simple query
    def _query(self, body: bytes) -> None:
        text = codec.Reader(body).cstring()
        try:
            statements = _split(text)
        except SqlSyntaxError as exc:
            self._fail(exc, extended=False)
            statements = None
        if statements == []:
            self.send(codec.EMPTY_QUERY)
        for st in statements or []:
            try:
                outcome = self._run(st, None)
                if outcome.fields:
                    self.send(codec.row_description(outcome.fields))
                self._send_rows(outcome, [0] * len(outcome.fields), 0)
            except Exception as exc:  # reported to the client; the session goes on
                self._fail(exc, extended=False)
                break
        self.send(codec.ready_for_query(self.status))
        self.flush()

    # -- extended query
    def _parse(self, body: bytes) -> None:
        msg = codec.parse_parse(body)
        try:
            if msg.name and msg.name in self.statements:
                raise PgError("42P05", f'prepared statement "{msg.name}" already exists; close '
                                       f"it first or use another name")
            statements = _split(msg.query)
            if len(statements) > 1:
                raise PgError("42601", "cannot insert multiple commands into a prepared "
                                       "statement; send them one at a time")
            st = statements[0] if statements else None
            n = stmt_text.parameter_count(msg.query)
            oids = (msg.param_oids + [0] * n)[:max(n, len(msg.param_oids))]
            self.statements[msg.name] = Prepared(st, oids)
            self.send(codec.PARSE_COMPLETE)
        except (PgError, SqlSyntaxError) as exc:
            self._fail(exc, extended=True)

    def _bind(self, body: bytes) -> None:
        msg = codec.parse_bind(body)
        try:
            prepared = self.statements.get(msg.statement)
            if prepared is None:
                raise PgError("26000", f'prepared statement "{msg.statement}" does not exist')
            if len(msg.params) != len(prepared.param_oids):
                raise PgError("08P01", f"bind message supplies {len(msg.params)} parameters, "
                                       f"but the prepared statement requires "
                                       f"{len(prepared.param_oids)}")
            formats = msg.param_formats
            params = []
            for i, (oid, data) in enumerate(zip(prepared.param_oids, msg.params, strict=True)):
                fmt = codec.result_format(formats, i)
                try:
                    params.append(types.decode_param(oid, fmt, data))
                except ValueError as exc:
                    raise PgError("22P02", f"parameter ${i + 1}: {exc}") from None
            self.portals[msg.portal] = Portal(prepared, params, msg.result_formats)
            self.send(codec.BIND_COMPLETE)
        except PgError as exc:
            self._fail(exc, extended=True)

    def _describe(self, body: bytes) -> None:
        what, name = _target(body)
        try:
            if what == "S":
                prepared = self.statements.get(name)
                if prepared is None:
                    raise PgError("26000", f'prepared statement "{name}" does not exist')
                self.send(codec.parameter_description(
                    [oid or types.TEXT for oid in prepared.param_oids]))
                fields = self._describe_statement(prepared)
                self.send(codec.row_description(fields) if fields else codec.NO_DATA)
                return
            found = self._portal(name, codec.NO_DATA)
            if found is None:
                return
            portal, st = found
            # Describing a portal needs its result's columns, so it runs here; Execute then
            # sends the rows.
            portal.outcome = self._run(st, portal.params)
            fields = portal.outcome.fields
            self.send(codec.row_description(fields, portal.result_formats) if fields
                      else codec.NO_DATA)
        except Exception as exc:
            self._fail(exc, extended=True)

    def _portal(self, name: str, if_empty: bytes) -> tuple[Portal, Statement] | None:
        """The named portal and its statement; None once ``if_empty`` is sent for a portal of
        an empty query, which has no result to describe or run."""
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        st = portal.prepared.statement
        if st is None:
            self.send(if_empty)
            return None
        return portal, st

    def _describe_statement(self, prepared: Prepared) -> list[tuple[str, int, int]]:
        st = prepared.statement
        if st is None or st.kind != "sql":
            return []
        if stmt_text.leading_word(st.sql) not in stmt_text.DESCRIBABLE:
            return []
        self._park_streaming()
        sql = st.sql
        if compat.touches_catalog(sql):
            sql = self._compat.rewrite(sql) or sql
        try:
            rel = self._cursor.sql(sql, params=[None] * len(prepared.param_oids) or None)
        except duckdb.Error:
            return []
        return [_field(name, typ) for name, typ in zip(rel.columns, rel.types, strict=True)]

    def _execute(self, body: bytes) -> None:
        r = codec.Reader(body)
        name, max_rows = r.cstring(), r.int32()
        try:
            found = self._portal(name, codec.EMPTY_QUERY)
            if found is None:
                return
            portal, st = found
            if portal.outcome is None:
                portal.outcome = self._run(st, portal.params)
            outcome = portal.outcome
            formats = [codec.result_format(portal.result_formats, i)
                       for i in range(len(outcome.fields))]
            if max_rows > 0:
                outcome.materialize()
            if not self._send_rows(outcome, formats, max_rows):
                self.send(codec.PORTAL_SUSPENDED)
        except Exception as exc:
            self._fail(exc, extended=True)

    def _close(self, body: bytes) -> None:
        what, name = _target(body)
        (self.statements if what == "S" else self.portals).pop(name, None)
        self.send(codec.CLOSE_COMPLETE)

    def _sync(self, body: bytes) -> None:
        self._skip_until_sync = False
        self.portals.pop("", None)
        if self.status == "I":
            self.portals.clear()
        self.send(codec.ready_for_query(self.status))
        self.flush()

    def _flush(self, body: bytes) -> None:
        self.flush()

    # -- running statements
    def _send_rows(self, outcome: Outcome, formats: list[int], max_rows: int) -> bool:
        """DataRows then CommandComplete; False if ``max_rows`` stopped it first (suspended)."""
        encode = types.encoders([f[1] for f in outcome.fields], formats)
        sent_now = 0
        while not outcome.done():
            want = _BATCH if max_rows == 0 else max_rows - sent_now
            batch = outcome.next_rows(want)
            for row in batch:
                self.send(codec.data_row([e(v) for e, v in zip(encode, row, strict=True)]))
            outcome.sent += len(batch)
            sent_now += len(batch)
            if outcome.rows is None and len(batch) < want:
                outcome.cursor = None           # the cursor's result is exhausted
            if max_rows and sent_now >= max_rows and not outcome.done():
                return False
        count = outcome.count if outcome.count is not None else outcome.sent
        self.send(codec.command_complete(stmt_text.full_tag(outcome.tag, count)))
        return True

    def _park_streaming(self) -> None:
        """Before another statement runs on this cursor, keep the rows of a pending result."""
        pending = [p.outcome for p in self.portals.values()
                   if p.outcome is not None and p.outcome.rows is None
                   and p.outcome.cursor is not None]
        for outcome in pending:
            outcome.materialize()

    def _run(self, st: Statement, params: list | None) -> Outcome:
        self._park_streaming()
        word = stmt_text.leading_word(st.text)
        if self.status == "E" and word not in ("ROLLBACK", "ABORT", "COMMIT", "END"):
            raise PgError("25P02", "current transaction is aborted, commands ignored until end "
                                   "of transaction block; send ROLLBACK")
        if self.config.policy is not None:      # file access, read-only and roles
            self.config.policy.check(self._cursor, st, self._compat.user)
        if st.kind != "sql":
            if params:
                # The training query goes to ml_create_model as text, so a $1 inside it would
                # reach DuckDB unbound ("Values were not provided ...").
                what = " ".join(stmt_text.words(st.text, 2))
                raise PgError("0A000", f"{what} takes no bind parameters, got {len(params)} "
                                       f"value(s) for $1 ...: sqlml runs it as an ml_create_model"
                                       f"(...) call that receives the training query as text. "
                                       f"Write the values into the statement (WHERE state = "
                                       f"'KS'), and send it without parameters.")
            return self._run_sqlml(st)
        answer = self._compat.answer(st.sql) if word in ("SET", "RESET", "SHOW",
                                                        "DISCARD") else None
        if answer is not None:
            return self._answered(answer)
        if word == "DEALLOCATE":
            return self._deallocate(st.sql)
        if word in ("SAVEPOINT", "RELEASE") or stmt_text.words(st.sql, 2) == ["ROLLBACK", "TO"]:
            return self._savepoint(word)
        sql = st.sql
        if self.status == "E":
            sql = "ROLLBACK"
        outcome = self._run_sql(sql, params, word)
        if word in ("BEGIN", "START"):
            self.status = "T"
        elif word in ("COMMIT", "END", "ROLLBACK", "ABORT"):
            if self.status == "E":
                outcome.tag = "ROLLBACK"
            self.status = "I"
        elif word in ("SET", "RESET") and "timezone" in sql.lower():
            # Drivers convert timestamptz values with the TimeZone the server reports.
            self.send(codec.parameter_status("TimeZone", self._compat.timezone()))
        return outcome

    def _run_sql(self, sql: str, params: list | None, word: str) -> Outcome:
        cur = self._cursor
        rewritten = self._compat.rewrite(sql) if compat.touches_catalog(sql) else None
        try:
            cur.execute(rewritten or sql, params)
        except duckdb.Error as first:
            # Outside a transaction a query DuckDB could not parse or bind can be tried again in
            # Postgres' dialect; inside one, DuckDB has already aborted the transaction.
            if rewritten is not None or self.status != "I" or not isinstance(first, _REFUSED):
                raise
            retry = self._compat.rewrite(sql)
            if retry is None or retry == sql:
                raise
            try:
                cur.execute(retry, params)
            except duckdb.Error:
                # The original error names what the user wrote; the rewrite's would not.
                raise first from None
        return self._outcome(cur, sql, word)

    def _outcome(self, cur, sql: str, word: str) -> Outcome:
        description = cur.description
        tag = stmt_text.base_tag(sql)
        if not description:
            return Outcome([], tag)
        # DuckDB answers statements that return nothing with one "Count" or "Success" column.
        count_only = (len(description) == 1 and description[0][0] in ("Count", "Success")
                      and word not in stmt_text.QUERY_WORDS)
        if count_only:
            rows = cur.fetchall()
            count = rows[0][0] if rows and tag in ("INSERT", "UPDATE", "DELETE", "MERGE") else 0
            return Outcome([], tag, count=count)
        fields = [_field(d[0], d[1]) for d in description]
        if tag not in ("INSERT", "UPDATE", "DELETE", "MERGE"):
            tag = "SELECT"
        return Outcome(fields, tag, cursor=cur)

    def _run_sqlml(self, st: Statement) -> Outcome:
        from sqlml.redshift.script import execute

        (result,) = execute(self._cursor, st.text, notice=self.notice)
        fields = []
        for i, name in enumerate(result.columns):
            sample = next((r[i] for r in result.rows if r[i] is not None), None)
            oid = types.oid_of_value(sample)
            fields.append((name, oid, types.SIZES.get(oid, -1)))
        return Outcome(fields, "SELECT", rows=list(result.rows))

    def _answered(self, answer: compat.Answer) -> Outcome:
        for text in answer.notices:
            self.notice(text)
        for name, value in answer.report.items():
            self.send(codec.parameter_status(name, value))
        fields = [(c, types.TEXT, -1) for c in answer.columns]
        return Outcome(fields, answer.tag if not fields else "SELECT", rows=answer.rows)

    def _savepoint(self, word: str) -> Outcome:
        """DuckDB has no savepoints. Drivers set them around steps that rarely fail (psycopg's
        type lookups), so SAVEPOINT and RELEASE are accepted; undoing to one cannot be done."""
        if self.status == "I":
            raise PgError("25P01", f"{word} can only be used in transaction blocks")
        if word == "ROLLBACK":
            raise PgError("0A000", "ROLLBACK TO SAVEPOINT is not supported: DuckDB has no "
                                   "savepoints, so only the whole transaction can be undone; "
                                   "send ROLLBACK")
        return Outcome([], word)

    def _deallocate(self, sql: str) -> Outcome:
        w = stmt_text.words(sql, 3)
        name = w[-1] if len(w) > 1 else ""
        if name == "ALL":
            self.statements = {k: v for k, v in self.statements.items() if k == ""}
        elif name.lower() not in {k.lower() for k in self.statements}:
            raise PgError("26000", f'prepared statement "{name.lower()}" does not exist')
        else:
            self.statements = {k: v for k, v in self.statements.items()
                               if k.lower() != name.lower()}
        return Outcome([], "DEALLOCATE ALL" if name == "ALL" else "DEALLOCATE")


def _field(name: str, duckdb_type) -> tuple[str, int, int]:
    oid = types.oid_of(duckdb_type)
    return name, oid, types.SIZES.get(oid, -1)


def _split(text: str) -> list[Statement]:
    """The statements of a query string; a string with only comments and ';' has none."""
    return parse(text)


def _target(body: bytes) -> tuple[str, str]:
    """What a Describe or Close message names: ``S`` (a prepared statement) or ``P`` (a portal),
    and its name."""
    r = codec.Reader(body)
    return r.byte(), r.cstring()
