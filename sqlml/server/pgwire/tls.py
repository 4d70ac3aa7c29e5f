"""TLS for ``sqlml serve``: one server-side context from a certificate and its key.

A client asks with an SSLRequest; the server answers ``S`` and the session goes on inside TLS
(Python's ssl module), as Postgres with ``ssl = on`` does. A server that has a certificate
refuses sessions in plain text: credentials and results then never cross the network in clear.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from sqlml.errors import ServeError


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context; ServeError names the file and what is wrong with it."""
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise ServeError(f"{option} {path}: no such file. Give the PEM file of the server's "
                             f"certificate (--tls-cert) and of its private key (--tls-key), e.g. "
                             f"made with: openssl req -x509 -newkey rsa:2048 -nodes -subj "
                             f"/CN=localhost -keyout key.pem -out cert.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise ServeError(f"--tls-cert {cert} / --tls-key {key}: cannot load them ({exc}). Both "
                         f"must be PEM files, the key unencrypted and matching the "
                         f"certificate.") from None
    return context
