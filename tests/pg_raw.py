"""A minimal Postgres v3 client written from the protocol documentation, independent of
sqlml.server.pgwire, for tests that need to see the messages themselves (PortalSuspended, the
ReadyForQuery status byte, what follows an error in the extended protocol)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import struct


def _cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def _msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class RawClient:
    def __init__(self, port: int, *, password: str | None = None, user: str = "sqlml",
                 ssl_request: bool = False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if ssl_request:
            self.sock.sendall(struct.pack("!ii", 8, 80877103))
            self.ssl_answer = self._exact(1)
        params = _cstr("user") + _cstr(user) + _cstr("database") + _cstr("shop") + b"\x00"
        body = struct.pack("!i", 196608) + params
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        self.password = password
        self.startup = self.until_ready()

    # -- reading -------------------------------------------------------------------------------
    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return data

    def read(self) -> tuple[str, bytes]:
        head = self._exact(5)
        return head[:1].decode(), self._exact(struct.unpack("!i", head[1:])[0] - 4)

    def until_ready(self) -> list[tuple[str, object]]:
        """Messages up to and including ReadyForQuery, decoded enough to assert on."""
        out = []
        while True:
            kind, body = self.read()
            if kind == "R":
                self._auth(body)
                continue
            out.append((kind, decode(kind, body)))
            if kind == "Z" or (kind == "E" and decode(kind, body)["S"] == "FATAL"):
                return out

    def _auth(self, body: bytes) -> None:
        code = struct.unpack("!i", body[:4])[0]
        if code == 10:                      # SASL: SCRAM-SHA-256, RFC 5802
            self.nonce = base64.b64encode(b"0123456789abcdef01").decode()
            self.first_bare = f"n=,r={self.nonce}"
            first = ("n,," + self.first_bare).encode()
            self.sock.sendall(_msg(b"p", _cstr("SCRAM-SHA-256") + struct.pack("!i", len(first))
                                   + first))
        elif code == 11:
            server_first = body[4:].decode()
            attrs = dict(part.split("=", 1) for part in server_first.split(","))
            salted = hashlib.pbkdf2_hmac("sha256", (self.password or "").encode(),
                                         base64.b64decode(attrs["s"]), int(attrs["i"]))
            client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
            stored = hashlib.sha256(client_key).digest()
            without_proof = f"c=biws,r={attrs['r']}"
            auth = f"{self.first_bare},{server_first},{without_proof}".encode()
            signature = hmac.new(stored, auth, hashlib.sha256).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
            self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
            self.auth_message = auth
            final = f"{without_proof},p={base64.b64encode(proof).decode()}"
            self.sock.sendall(_msg(b"p", final.encode()))
        elif code == 12:
            expected = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
            assert body[4:].decode() == "v=" + base64.b64encode(expected).decode()

    # -- sending -------------------------------------------------------------------------------
    def query(self, sql: str) -> list[tuple[str, object]]:
        self.sock.sendall(_msg(b"Q", _cstr(sql)))
        return self.until_ready()

    def send(self, *messages: bytes) -> None:
        self.sock.sendall(b"".join(messages))

    def close(self) -> None:
        try:
            self.sock.sendall(_msg(b"X"))
        finally:
            self.sock.close()


# -- extended-protocol messages -------------------------------------------------------------------
def parse(sql: str, name: str = "", oids: tuple[int, ...] = ()) -> bytes:
    return _msg(b"P", _cstr(name) + _cstr(sql) + struct.pack("!h", len(oids))
                + b"".join(struct.pack("!i", o) for o in oids))


def bind(params: list[str | None], statement: str = "", portal: str = "",
         result_formats: tuple[int, ...] = ()) -> bytes:
    body = _cstr(portal) + _cstr(statement) + struct.pack("!h", 0) + struct.pack("!h", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p.encode())) \
            + p.encode()
    body += struct.pack("!h", len(result_formats)) + b"".join(struct.pack("!h", f)
                                                               for f in result_formats)
    return _msg(b"B", body)


def describe(kind: str, name: str = "") -> bytes:
    return _msg(b"D", kind.encode() + _cstr(name))


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return _msg(b"E", _cstr(portal) + struct.pack("!i", max_rows))


def sync() -> bytes:
    return _msg(b"S")


def decode(kind: str, body: bytes):
    if kind in ("E", "N"):
        fields, pos = {}, 0
        while body[pos:pos + 1] not in (b"\x00", b""):
            end = body.index(b"\x00", pos + 1)
            fields[chr(body[pos])] = body[pos + 1:end].decode()
            pos = end + 1
        return fields
    if kind == "D":
        n, pos, values = struct.unpack_from("!h", body)[0], 2, []
        for _ in range(n):
            length = struct.unpack_from("!i", body, pos)[0]
            pos += 4
            values.append(None if length == -1 else body[pos:pos + length])
            pos += max(length, 0)
        return values
    if kind == "T":
        n, pos, cols = struct.unpack_from("!h", body)[0], 2, []
        for _ in range(n):
            end = body.index(b"\x00", pos)
            name = body[pos:end].decode()
            _, _, oid, _, _, fmt = struct.unpack_from("!ihihih", body, end + 1)
            cols.append((name, oid, fmt))
            pos = end + 19
        return cols
    if kind == "C":
        return body.rstrip(b"\x00").decode()
    if kind == "S":
        return body[:-1].decode()          # name NUL value
    if kind == "Z":
        return body.decode()
    if kind == "t":
        n = struct.unpack_from("!h", body)[0]
        return list(struct.unpack_from(f"!{n}i", body, 2))
    return body
