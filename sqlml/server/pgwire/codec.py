"""The Postgres v3 wire protocol's messages: reading the client's, building the server's.

A message is a type byte, an int32 length that counts itself, and a body; the startup packet
has no type byte. Only the messages a query server needs are here (no COPY, no replication).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
# A startup packet or message larger than this is a broken or hostile client, not a query.
MAX_MESSAGE = 256 * 1024 * 1024


class ProtocolError(Exception):
    """The client broke the protocol; the connection is closed after telling it why."""


@dataclass
class Startup:
    code: int
    params: dict[str, str]
    body: bytes = b""


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("client closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_startup(sock: socket.socket) -> Startup:
    (length,) = struct.unpack("!i", recv_exact(sock, 4))
    if not 8 <= length <= 10_000:
        raise ProtocolError(f"invalid startup packet length {length}")
    body = recv_exact(sock, length - 4)
    (code,) = struct.unpack("!i", body[:4])
    params: dict[str, str] = {}
    if code == PROTOCOL_3:
        parts = body[4:].split(b"\x00")
        for key, value in zip(parts[0::2], parts[1::2], strict=False):
            if key:
                params[key.decode()] = value.decode()
    return Startup(code, params, body)


def read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = recv_exact(sock, 5)
    kind, length = header[:1], struct.unpack("!i", header[1:])[0]
    if not 4 <= length <= MAX_MESSAGE:
        raise ProtocolError(f"invalid length {length} for message {kind!r}")
    return kind, recv_exact(sock, length - 4)


class Reader:
    """Fields of one message body, read in order."""

    def __init__(self, body: bytes):
        self.body, self.pos = body, 0

    def int16(self) -> int:
        (v,) = struct.unpack_from("!h", self.body, self.pos)
        self.pos += 2
        return v

    def int32(self) -> int:
        (v,) = struct.unpack_from("!i", self.body, self.pos)
        self.pos += 4
        return v

    def cstring(self) -> str:
        end = self.body.index(b"\x00", self.pos)
        text = self.body[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return text

    def byte(self) -> str:
        v = self.body[self.pos:self.pos + 1].decode()
        self.pos += 1
        return v

    def raw(self, n: int) -> bytes:
        v = self.body[self.pos:self.pos + n]
        self.pos += n
        return v

    def rest(self) -> bytes:
        return self.body[self.pos:]


# -- the client's extended-protocol messages ---------------------------------------------------
@dataclass
class Parse:
    name: str
    query: str
    param_oids: list[int]


@dataclass
class Bind:
    portal: str
    statement: str
    param_formats: list[int]
    params: list[bytes | None]
    result_formats: list[int]


def parse_parse(body: bytes) -> Parse:
    r = Reader(body)
    name, query = r.cstring(), r.cstring()
    return Parse(name, query, [r.int32() for _ in range(r.int16())])


def parse_bind(body: bytes) -> Bind:
    r = Reader(body)
    portal, statement = r.cstring(), r.cstring()
    formats = [r.int16() for _ in range(r.int16())]
    params: list[bytes | None] = []
    for _ in range(r.int16()):
        n = r.int32()
        params.append(None if n == -1 else r.raw(n))
    results = [r.int16() for _ in range(r.int16())]
    return Bind(portal, statement, formats, params, results)


# -- the server's messages -----------------------------------------------------------------------
def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode("utf-8") + b"\x00"


def auth_ok() -> bytes:
    return message(b"R", struct.pack("!i", 0))


def auth_sasl(mechanisms: list[str]) -> bytes:
    return message(b"R", struct.pack("!i", 10) + b"".join(cstr(m) for m in mechanisms) + b"\x00")


def auth_sasl_continue(data: bytes) -> bytes:
    return message(b"R", struct.pack("!i", 11) + data)


def auth_sasl_final(data: bytes) -> bytes:
    return message(b"R", struct.pack("!i", 12) + data)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key_data(pid: int, key: int) -> bytes:
    return message(b"K", struct.pack("!ii", pid, key))


def ready_for_query(status: str) -> bytes:
    return message(b"Z", status.encode())


def row_description(fields: list[tuple[str, int, int]], formats: list[int] | None = None) -> bytes:
    """``fields``: (name, type oid, type size); ``formats``: 0 text / 1 binary, per PG's rules."""
    out = [struct.pack("!h", len(fields))]
    for i, (name, oid, size) in enumerate(fields):
        fmt = result_format(formats, i)
        out.append(cstr(name) + struct.pack("!ihihih", 0, 0, oid, size, -1, fmt))
    return message(b"T", b"".join(out))


def result_format(formats: list[int] | None, i: int) -> int:
    if not formats:
        return 0
    return formats[0] if len(formats) == 1 else formats[i]


def data_row(values: list[bytes | None]) -> bytes:
    out = [struct.pack("!h", len(values))]
    for v in values:
        out.append(b"\xff\xff\xff\xff" if v is None else struct.pack("!i", len(v)) + v)
    return message(b"D", b"".join(out))


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def parameter_description(oids: list[int]) -> bytes:
    return message(b"t", struct.pack("!h", len(oids)) + b"".join(struct.pack("!i", o)
                                                                  for o in oids))


PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
NO_DATA = message(b"n")
EMPTY_QUERY = message(b"I")
PORTAL_SUSPENDED = message(b"s")


def _fields(severity: str, code: str, text: str, detail: str | None, hint: str | None) -> bytes:
    parts = [b"S" + cstr(severity), b"V" + cstr(severity), b"C" + cstr(code), b"M" + cstr(text)]
    if detail:
        parts.append(b"D" + cstr(detail))
    if hint:
        parts.append(b"H" + cstr(hint))
    return b"".join(parts) + b"\x00"


def error_response(code: str, text: str, *, severity: str = "ERROR", detail: str | None = None,
                   hint: str | None = None) -> bytes:
    return message(b"E", _fields(severity, code, text, detail, hint))


def notice_response(text: str, *, code: str = "00000", severity: str = "NOTICE") -> bytes:
    return message(b"N", _fields(severity, code, text, None, None))
