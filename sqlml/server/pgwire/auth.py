"""SCRAM-SHA-256 password authentication (RFC 5802 / 7677), the server's side, as Postgres does it.

The server keeps only a verifier (salt, iteration count, StoredKey, ServerKey), in the same
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` text Postgres stores in
``pg_authid``; the password itself never crosses the wire and is never stored. Channel binding is
not offered (there is no TLS), so the client's gs2 header must be ``n,,`` or ``y,,``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 4096          # Postgres's default scram_iterations


class AuthFailed(Exception):
    """The password was wrong or the exchange was malformed; the message says which."""


@dataclass(frozen=True)
class Verifier:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def __str__(self) -> str:
        b64 = _b64
        return (f"{MECHANISM}${self.iterations}:{b64(self.salt)}$"
                f"{b64(self.stored_key)}:{b64(self.server_key)}")

    @classmethod
    def parse(cls, text: str) -> Verifier:
        try:
            mechanism, params, keys = text.split("$")
            iterations, salt = params.split(":")
            stored, server = keys.split(":")
            if mechanism != MECHANISM:
                raise ValueError(mechanism)
            return cls(int(iterations), base64.b64decode(salt), base64.b64decode(stored),
                       base64.b64decode(server))
        except ValueError as exc:
            raise ValueError(f"not a {MECHANISM} verifier: {text[:30]!r}...; expected "
                             f"'{MECHANISM}$<iterations>:<salt>$<StoredKey>:<ServerKey>'") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def make_verifier(password: str, *, salt: bytes | None = None,
                  iterations: int = ITERATIONS) -> Verifier:
    salt = salt if salt is not None else secrets.token_bytes(16)
    # SASLprep is not applied: for ASCII passwords (what sqlml generates) it changes nothing.
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return Verifier(iterations, salt, hashlib.sha256(client_key).digest(),
                    _hmac(salted, b"Server Key"))


def _attributes(message: str) -> dict[str, str]:
    out = {}
    for part in message.split(","):
        if len(part) >= 2 and part[1] == "=":
            out[part[0]] = part[2:]
    return out


class ScramExchange:
    """One SCRAM conversation: ``first`` answers the client-first message, ``final`` the last."""

    def __init__(self, verifier: Verifier):
        self.verifier = verifier
        self._nonce = ""
        self._client_first_bare = ""
        self._server_first = ""

    def first(self, client_first: bytes) -> bytes:
        text = client_first.decode("utf-8")
        if text.startswith("p="):
            raise AuthFailed("channel binding was requested, but this server offers no TLS, so "
                             "none is possible; connect with channel_binding=disable or prefer")
        if not (text.startswith("n,") or text.startswith("y,")):
            raise AuthFailed("malformed SCRAM client-first message")
        self._gs2 = text[:text.index(",", 2) + 1]
        self._client_first_bare = text[len(self._gs2):]
        client_nonce = _attributes(self._client_first_bare).get("r")
        if not client_nonce:
            raise AuthFailed("SCRAM client-first message has no nonce")
        self._nonce = client_nonce + _b64(secrets.token_bytes(18))
        v = self.verifier
        self._server_first = f"r={self._nonce},s={_b64(v.salt)},i={v.iterations}"
        return self._server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        text = client_final.decode("utf-8")
        attrs = _attributes(text)
        if attrs.get("r") != self._nonce:
            raise AuthFailed("SCRAM nonce mismatch")
        if attrs.get("c") != _b64(self._gs2.encode()):
            raise AuthFailed("SCRAM channel binding data mismatch")
        proof = base64.b64decode(attrs.get("p", ""))
        without_proof = text[:text.rindex(",p=")]
        auth_message = ",".join([self._client_first_bare, self._server_first,
                                 without_proof]).encode()
        signature = _hmac(self.verifier.stored_key, auth_message)
        if len(proof) != len(signature):
            raise AuthFailed("password authentication failed")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.verifier.stored_key):
            raise AuthFailed("password authentication failed")
        return f"v={_b64(_hmac(self.verifier.server_key, auth_message))}".encode()
