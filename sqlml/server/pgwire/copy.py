"""``COPY ... TO STDOUT`` and ``COPY ... FROM STDIN``: Postgres' COPY sub-protocol.

The session sends these here before the statement reaches DuckDB (whose own COPY would write
the rows into the server's stdout, or a server file). Out: CopyOutResponse, one CopyData per
row, CopyDone, then ``COPY n``. In: CopyInResponse, then the client's CopyData until CopyDone
(or CopyFail), then one INSERT of all the rows, so a bad row loads none. Text and CSV formats,
with Postgres' options (HEADER, DELIMITER, NULL, QUOTE, ESCAPE); BINARY is read FROM
STDIN only (asyncpg's copy_records_to_table), and refused TO STDOUT (0A000).
A COPY to or from a file is not handled here: it goes on to DuckDB (and the session's policy).
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlml.server.pgwire import codec, types
from sqlml.server.pgwire.errors import PgError

if TYPE_CHECKING:
    from sqlml.server.pgwire.session import Session

_BATCH = 2048
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_TABLE = re.compile(rf"\s*(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}})\s*"
                    rf"(?:\((?P<columns>[^)]*)\))?", re.S)
_TARGET = re.compile(r"\s*(?P<dir>TO\s+STDOUT|FROM\s+STDIN)\b(?P<options>.*?)\s*;?\s*$",
                     re.I | re.S)
_TOKEN = re.compile(r"'(?:[^']|'')*'|E'(?:[^'\\]|\\.|'')*'|[A-Za-z_]\w*|[(),]|\S", re.S)
_COUNTER = itertools.count(1)


@dataclass
class CopyCommand:
    out: bool                                 # TO STDOUT (else FROM STDIN)
    query: str | None = None                  # COPY (query) TO STDOUT
    table: str | None = None                  # COPY table [(columns)] ...
    columns: list[str] = field(default_factory=list)
    format: str = "text"
    header: bool = False
    delimiter: str = "\t"
    null: str = "\\N"
    quote: str = '"'
    escape: str = '"'


def _closing_paren(text: str, start: int) -> int:
    depth, quote = 0, ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise PgError("42601", "syntax error in COPY: the query in parentheses is not closed")


def parse_copy(sql: str) -> CopyCommand | None:
    """The COPY to the client or from it; None for any other COPY (to or from a file)."""
    m = re.match(r"\s*COPY\b\s*", sql, re.I)
    if not m:
        return None
    pos = m.end()
    query = table = None
    columns: list[str] = []
    if sql[pos:pos + 1] == "(":
        end = _closing_paren(sql, pos)
        query, pos = sql[pos + 1:end].strip(), end + 1
    else:
        t = _TABLE.match(sql, pos)
        if not t:
            return None
        table, pos = t.group("table"), t.end()
        if t.group("columns"):
            columns = [c.strip() for c in t.group("columns").split(",") if c.strip()]
    target = _TARGET.match(sql, pos)
    if not target:
        return None
    cmd = CopyCommand(out=target.group("dir").upper().startswith("TO"), query=query,
                      table=table, columns=columns)
    if query is not None and not cmd.out:
        raise PgError("42601", "COPY (query) FROM STDIN is not possible: load into a table, "
                               "COPY table [(columns)] FROM STDIN")
    _apply_options(cmd, [t for t in _TOKEN.findall(target.group("options"))])
    return cmd


def _literal(token: str) -> str:
    if token[:2] in ("E'", "e'"):
        return token[2:-1].encode().decode("unicode_escape").replace("''", "'")
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    return token


def _apply_options(cmd: CopyCommand, tokens: list[str]) -> None:
    """Both spellings: ``(FORMAT csv, HEADER true)`` and the older ``WITH CSV HEADER``."""
    words = [t for t in tokens if t not in ("(", ")", ",")]
    i = 0
    if words and words[0].upper() == "WITH":
        i = 1
    while i < len(words):
        key = words[i].upper()
        value = words[i + 1] if i + 1 < len(words) else None
        if value is not None and value.upper() == "AS":      # DELIMITER AS ','
            i += 1
            value = words[i + 1] if i + 1 < len(words) else None
        if key in ("CSV", "BINARY"):
            cmd.format, i = key.lower(), i + 1
            if key == "CSV":
                cmd.delimiter, cmd.null = ",", ""
            continue
        if key == "HEADER":
            truth = (value or "").lower()
            known = truth in ("true", "on", "1", "false", "off", "0", "match")
            cmd.header = truth not in ("false", "off", "0")
            i += 2 if known else 1
            continue
        if value is None:
            raise PgError("42601", f"COPY option {words[i]} needs a value")
        _set_option(cmd, key, _literal(value))
        i += 2
    if cmd.format == "binary" and cmd.out:
        raise PgError("0A000", "COPY ... TO STDOUT (FORMAT binary) is not supported by sqlml "
                               "serve; use FORMAT text or FORMAT csv (binary is read only FROM "
                               "STDIN)")


def _set_option(cmd: CopyCommand, key: str, value: str) -> None:
    if key == "FORMAT":
        fmt = value.lower()
        if fmt not in ("text", "csv", "binary"):
            raise PgError("22023", f'COPY format "{value}" not recognized; use text or csv')
        if fmt == "csv" and cmd.format != "csv":
            cmd.delimiter = "," if cmd.delimiter == "\t" else cmd.delimiter
            cmd.null = "" if cmd.null == "\\N" else cmd.null
        cmd.format = fmt
    elif key in ("DELIMITER", "QUOTE", "ESCAPE"):
        if len(value) != 1:
            raise PgError("22023", f"COPY {key.lower()} must be a single one-byte character, "
                                   f"got {value!r}")
        setattr(cmd, key.lower(), value)
        if key == "QUOTE" and cmd.escape == '"':
            cmd.escape = value
    elif key == "NULL":
        cmd.null = value
    elif key == "ENCODING":
        if value.upper().replace("-", "") not in ("UTF8", "UNICODE"):
            raise PgError("22023", f"COPY encoding {value!r} is not supported; this server "
                                   f"speaks UTF8 only")
    elif key in ("FREEZE", "FORCE_QUOTE", "FORCE_NOT_NULL", "FORCE_NULL", "OIDS"):
        return
    else:
        raise PgError("42601", f'COPY option "{key.lower()}" not recognized; sqlml serve takes '
                               f"FORMAT, HEADER, DELIMITER, NULL, QUOTE, ESCAPE and ENCODING")


# -- out ---------------------------------------------------------------------------------------
def _copy_response(kind: bytes, ncols: int, fmt: int = 0) -> bytes:
    return codec.message(kind, struct.pack("!bh", fmt, ncols) + struct.pack("!h", fmt) * ncols)


def _text_field(cmd: CopyCommand, value) -> str:
    if value is None:
        return cmd.null
    text = types.to_text(value)
    text = (text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t"))
    if cmd.delimiter != "\t":
        text = text.replace(cmd.delimiter, "\\" + cmd.delimiter)
    return text


def _csv_field(cmd: CopyCommand, value) -> str:
    if value is None:
        return cmd.null
    text = value if isinstance(value, str) else types.to_text(value)
    if (text == cmd.null or text == "\\." or any(c in text for c in (cmd.delimiter, cmd.quote,
                                                                      "\n", "\r"))):
        doubled = text.replace(cmd.escape, cmd.escape * 2) if cmd.escape != cmd.quote else text
        doubled = doubled.replace(cmd.quote, cmd.escape + cmd.quote)
        return cmd.quote + doubled + cmd.quote
    return text


def format_row(cmd: CopyCommand, row) -> bytes:
    one = _csv_field if cmd.format == "csv" else _text_field
    return (cmd.delimiter.join(one(cmd, v) for v in row) + "\n").encode("utf-8")


def _statement(session: Session, sql: str, params: list | None):
    """Run ``sql`` as the session runs a client's statement (its rewrite, its checks)."""
    from sqlml.redshift.parser import parse

    statements = parse(sql)
    if len(statements) != 1:
        raise PgError("42601", f"COPY takes one query in parentheses, got {len(statements)}")
    return session._run(statements[0], params)


def copy_out(session: Session, cmd: CopyCommand, params: list | None) -> int:
    """Run the query and send its rows as CopyData; the number of rows."""
    sql = cmd.query or f"SELECT {', '.join(cmd.columns) or '*'} FROM {cmd.table}"
    outcome = _statement(session, sql, params)
    names = [f[0] for f in outcome.fields]
    session.send(_copy_response(b"H", len(names)))
    if cmd.header:
        header = CopyCommand(out=True, format="csv", delimiter=cmd.delimiter, null="\0",
                             quote=cmd.quote, escape=cmd.escape)
        session.send(codec.message(b"d", format_row(header, names) if cmd.format == "csv"
                                   else (cmd.delimiter.join(names) + "\n").encode()))
    n = 0
    while batch := outcome.next_rows(_BATCH):
        # A CopyData may hold any part of the stream: one per batch, not one per row.
        session.send(codec.message(b"d", b"".join(format_row(cmd, row) for row in batch)))
        n += len(batch)
        outcome.sent = n
    outcome.cursor = None
    session.send(codec.message(b"c"))
    return n


# -- in ----------------------------------------------------------------------------------------
def receive(session: Session, ncols: int, fmt: int) -> bytes:
    """CopyInResponse, then the client's CopyData up to CopyDone."""
    session.send(_copy_response(b"G", ncols, fmt))
    session.flush()
    chunks = []
    while True:
        kind, body = codec.read_message(session.sock)
        if kind == b"d":
            chunks.append(body)
        elif kind == b"c":
            return b"".join(chunks)
        elif kind == b"f":
            reason = codec.Reader(body).cstring() if body else ""
            raise PgError("57014", f"COPY from stdin failed: {reason or 'the client sent '}"
                                   f"{'' if reason else 'CopyFail'}; nothing was loaded")
        elif kind not in (b"H", b"S"):       # Flush and Sync are ignored during COPY, as in PG
            raise codec.ProtocolError(f"unexpected message type {kind!r} during COPY from stdin")


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out, i = [], 0
    simple = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
    while i < len(raw):
        ch = raw[i]
        if ch != "\\" or i + 1 == len(raw):
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", raw[i + 1:])
            assert m is not None
            out.append(chr(int(m.group(0), 8)))
            i += 1 + len(m.group(0))
        elif nxt == "x" and (m2 := re.match(r"[0-9A-Fa-f]{1,2}", raw[i + 2:])):
            out.append(chr(int(m2.group(0), 16)))
            i += 2 + len(m2.group(0))
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _split_text_line(line: str, delimiter: str) -> list[str]:
    fields, buf, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            buf.append(line[i:i + 2])
            i += 2
        elif ch == delimiter:
            fields.append("".join(buf))
            buf, i = [], i + 1
        else:
            buf.append(ch)
            i += 1
    fields.append("".join(buf))
    return fields


def text_rows(cmd: CopyCommand, data: str) -> Iterator[list[str | None]]:
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for k, line in enumerate(lines):
        line = line.removesuffix("\r")
        if line == "\\.":
            return
        if k == 0 and cmd.header:
            continue
        yield [None if f == cmd.null else _unescape(f)
               for f in _split_text_line(line, cmd.delimiter)]


def csv_rows(cmd: CopyCommand, data: str) -> Iterator[list[str | None]]:
    """CSV as Postgres reads it: an unquoted field equal to NULL is NULL, a quoted one never."""
    row: list[str | None] = []
    buf: list[str] = []
    quoted = in_quotes = False
    first, i, n = True, 0, len(data)

    def end_field() -> None:
        text = "".join(buf)
        row.append(None if not quoted and text == cmd.null else text)

    while i < n:
        ch = data[i]
        if in_quotes:
            # Inside quotes the escape character quotes the next quote (or itself).
            if ch == cmd.escape and i + 1 < n and data[i + 1] in (cmd.quote, cmd.escape):
                buf.append(data[i + 1])
                i += 2
                continue
            if ch == cmd.quote:
                in_quotes = False
            else:
                buf.append(ch)
            i += 1
            continue
        if ch == cmd.quote:
            in_quotes = quoted = True
        elif ch == cmd.delimiter:
            end_field()
            buf, quoted = [], False
        elif ch in "\r\n":
            if ch == "\r" and data[i + 1:i + 2] == "\n":
                i += 1
            if not row and not buf and not quoted:
                i += 1
                continue
            if not row and "".join(buf) == "\\." and not quoted:
                return
            end_field()
            if not (first and cmd.header):
                yield row
            first, row, buf, quoted = False, [], [], False
        else:
            buf.append(ch)
        i += 1
    if buf or row or quoted:
        if not row and "".join(buf) == "\\." and not quoted:
            return
        end_field()
        if not (first and cmd.header):
            yield row


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def binary_rows(data: bytes, oids: list[int]) -> Iterator[list]:
    """Postgres' binary COPY (asyncpg's copy_records_to_table): signature, flags, header
    extension, then per row an int16 field count and each field as int32 length and bytes."""
    if not data.startswith(_SIGNATURE):
        raise PgError("22P04", "COPY FROM STDIN (FORMAT binary): the data does not start with "
                               "the PGCOPY signature")
    (extension,) = struct.unpack_from("!i", data, 15)
    pos = 19 + extension
    while pos < len(data):
        (count,) = struct.unpack_from("!h", data, pos)
        pos += 2
        if count == -1:
            return
        row = []
        for i in range(count):
            (n,) = struct.unpack_from("!i", data, pos)
            pos += 4
            oid = oids[i] if i < len(oids) else types.TEXT
            try:
                row.append(types.decode_param(oid, 1, None if n == -1 else data[pos:pos + n]))
            except ValueError as exc:
                raise PgError("22P03", f"COPY, field {i + 1}: {exc}") from None
            pos += max(n, 0)
        yield row


def _as_column(values: list, oid: int):
    """One column for DuckDB: bytes for bytea (Postgres' \\x hex form read), text otherwise;
    DuckDB's INSERT casts the text to the column's type."""
    import pyarrow as pa

    if oid == types.BYTEA:
        return pa.array([v if v is None or isinstance(v, bytes) else
                         bytes.fromhex(v[2:]) if v.startswith("\\x") else v.encode()
                         for v in values], pa.binary())
    return pa.array([v if v is None or isinstance(v, str) else types.to_text(v)
                     for v in values], pa.string())


def copy_in(session: Session, cmd: CopyCommand) -> int:
    """Receive the client's rows and insert them into the table in one statement."""
    import pyarrow as pa

    cur = session._cursor
    if cmd.table is None:
        raise PgError("42601", "COPY FROM STDIN needs a table")
    described = cur.execute(f"SELECT {', '.join(cmd.columns) or '*'} FROM {cmd.table} "
                            f"LIMIT 0").description or []
    columns = cmd.columns or [d[0] for d in described]
    oids = [types.oid_of(d[1]) for d in described]
    data = receive(session, len(columns), 1 if cmd.format == "binary" else 0)
    if cmd.format == "binary":
        rows = list(binary_rows(data, oids))
    else:
        reader = csv_rows if cmd.format == "csv" else text_rows
        rows = list(reader(cmd, data.decode("utf-8")))
    for line, row in enumerate(rows, start=1 + cmd.header):
        if len(row) != len(columns):
            problem = ("extra data after last expected column" if len(row) > len(columns)
                       else f"missing data for column {columns[len(row)]}")
            raise PgError("22P04", f"COPY {cmd.table}, line {line}: {problem} ({len(row)} "
                                   f"fields, the table takes {len(columns)}); nothing was "
                                   f"loaded")
    if not rows:
        return 0
    table = pa.table({f"c{i}": _as_column([r[i] for r in rows], oids[i])
                      for i in range(len(columns))})
    name = f"_sqlml_copy_{session.pid}_{next(_COUNTER)}"
    cur.register(name, table)
    try:
        _statement(session, f"INSERT INTO {cmd.table} ({', '.join(_quote(c) for c in columns)})"
                            f" SELECT * FROM {name}", None)
    finally:
        cur.unregister(name)
    return len(rows)


def _quote(column: str) -> str:
    return column if column.startswith('"') else '"' + column.replace('"', '""') + '"'


def run(session: Session, cmd: CopyCommand, params: list | None) -> int:
    """The number of rows copied, for the ``COPY n`` tag."""
    return copy_out(session, cmd, params) if cmd.out else copy_in(session, cmd)
