"""The listener: accepts connections and runs each session in its own thread."""

from __future__ import annotations

import itertools
import os
import selectors
import socket
import threading
from typing import TYPE_CHECKING

import duckdb

from sqlml.server.pgwire import codec
from sqlml.server.pgwire.auth import Verifier, make_verifier
from sqlml.server.pgwire.session import Session, SessionConfig

if TYPE_CHECKING:
    from sqlml.server.policy import Policy

MAX_CONNECTIONS = 64


class PgServer:
    """A Postgres wire protocol server on one DuckDB connection; ``start`` returns once listening.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, host: str = "127.0.0.1", port: int = 0,
                 password: str | None = None, verifier: Verifier | str | None = None,
                 read_only: bool = False, max_connections: int = MAX_CONNECTIONS,
                 policy: Policy | None = None):
        if password is not None and verifier is not None:
            raise ValueError("PgServer: give password or verifier, not both")
        if isinstance(verifier, str):
            verifier = Verifier.parse(verifier)
        if password is not None:
            verifier = make_verifier(password)
        self.con = con
        self.config = SessionConfig(verifier=verifier, read_only=read_only, policy=policy)
        self.max_connections = max_connections
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._stop = threading.Event()
        self._sessions: dict[int, tuple[socket.socket, threading.Thread, Session]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(os.getpid() * 1000 % 2_000_000_000 + 1)
        self._thread: threading.Thread | None = None

    def start(self) -> PgServer:
        self._thread = threading.Thread(target=self._accept_loop, name="sqlml-pg-listener",
                                        daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not sel.select(timeout=0.2):
                    continue
                try:
                    sock, _ = self._listener.accept()
                except (BlockingIOError, OSError):
                    continue
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._sessions) >= self.max_connections:
                sock.sendall(codec.error_response(
                    "53300", f"sorry, too many clients already: this server accepts "
                             f"{self.max_connections} connections at once", severity="FATAL"))
                sock.close()
                return
            pid = next(self._ids)
            session = Session(sock, self.con, self.config, pid, cancel=self._cancel)
            thread = threading.Thread(target=self._run_session, args=(session,),
                                      name=f"sqlml-pg-{pid}", daemon=True)
            self._sessions[pid] = (sock, thread, session)
        thread.start()

    def _run_session(self, session: Session) -> None:
        try:
            session.serve()
        finally:
            with self._lock:
                self._sessions.pop(session.pid, None)

    def _cancel(self, pid: int, key: int) -> None:
        with self._lock:
            entry = self._sessions.get(pid)
        if entry is not None and entry[2].key == key:
            entry[2].interrupt()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._sessions)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, end every session (open transactions roll back), wait for them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._listener.close()
        with self._lock:
            sessions = list(self._sessions.values())
        for sock, _, session in sessions:
            session.interrupt()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread, _ in sessions:
            thread.join(timeout)


def start_in_thread(con: duckdb.DuckDBPyConnection, *, host: str = "127.0.0.1", port: int = 0,
                    password: str | None, read_only: bool = False,
                    verifier: Verifier | str | None = None,
                    policy: Policy | None = None) -> PgServer:
    """Serve ``con`` over the Postgres wire protocol from background threads.

    Returns once listening; ``handle.port`` is the port (``port=0`` picks a free one),
    ``handle.stop()`` ends it. ``password=None`` and no ``verifier`` turns authentication off
    (for tests); ``verifier`` is a stored SCRAM-SHA-256 verifier instead of a password.
    ``policy`` (``sqlml.server.policy.Policy``): what sessions may run (file access, read-only,
    per-user roles); None runs everything, as an embedding program that owns ``con`` may want.
    ``sqlml serve`` passes a locked-down one, after ``policy.lock_down(con)``.
    """
    return PgServer(con, host=host, port=port, password=password, verifier=verifier,
                    read_only=read_only, policy=policy).start()
