"""``sqlml serve``: the Postgres wire protocol server and the REST endpoint on one database.

Both bind 127.0.0.1 unless told otherwise, and both authenticate. A password or token not given
is generated on first start, printed once, and stored only as a hash in ``DB.sqlml-serve.json``
(mode 0600) beside the database, so later starts accept the same one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlml.errors import ServeError
from sqlml.server import policy as serve_policy
from sqlml.server.pgwire.auth import Verifier, make_verifier

if TYPE_CHECKING:  # both are imported when serving starts (the REST one pulls in FastAPI)
    from sqlml.server.pgwire.server import PgServer
    from sqlml.server.rest.app import ServerHandle

STATE_SUFFIX = ".sqlml-serve.json"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass
class Credentials:
    verifier: Verifier
    token: str | None             # the plain token, when known (given, or generated now)
    token_sha256: str | None      # its SHA-256 (hex), always set when the REST endpoint runs
    announcements: list[str]      # what to print: generated secrets, where they are kept
    path: Path | None = None
    state: dict | None = None     # to write once the servers listen, when something was generated
    users: dict[str, serve_policy.User] | None = None   # --user logins with their roles

    def save(self) -> None:
        """Store the hashes of what was generated; done only once the servers listen, so a
        start that fails never leaves behind a password nobody was shown."""
        if self.state is None or self.path is None:
            return
        try:
            _write_state(self.path, self.state)
        except OSError as exc:
            raise ServeError(f"cannot write {self.path}: {exc.strerror}. sqlml serve keeps the "
                             f"hashes of generated secrets there; make its folder writable, or "
                             f"give --password and --token.") from None


def state_path(database: str) -> Path | None:
    if database in ("", ":memory:"):
        return None
    return Path(database + STATE_SUFFIX)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    if not is_loopback(host) and not allow_remote:
        raise ServeError(
            f"--host {host} would accept connections from other machines, which needs "
            f"--allow-remote to confirm. Add --allow-remote (password and token authentication "
            f"stay on), or keep the default --host 127.0.0.1.")


def _read_state(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ServeError(f"cannot read {path}: {exc}. It holds the hashes of the generated "
                         f"password and token; delete it to generate new ones.") from None
    if not isinstance(state, dict):
        raise ServeError(f"{path} is not a JSON object; delete it to generate a new password "
                         f"and token.")
    return state


def _write_state(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def parse_user(spec: str) -> tuple[str, str, str | None]:
    """``NAME:ROLE[:PASSWORD]`` (a --user value) as (name, role, password or None)."""
    name, _, rest = spec.partition(":")
    role, _, password = rest.partition(":")
    if not name or role not in serve_policy.ROLES or (not password and rest.endswith(":")):
        raise ServeError(
            f"--user {spec.split(':')[0]}:{role or '?'}...: expected NAME:ROLE[:PASSWORD] with "
            f"ROLE one of {', '.join(serve_policy.ROLES)}, e.g. --user analyst:reader (a "
            f"password is then generated, printed once and stored hashed).")
    return name, role, password or None


def _users(specs: tuple[str, ...] | list[str], state: dict, where: str,
           notes: list[str]) -> tuple[dict[str, serve_policy.User], bool]:
    """The --user logins: a given password, else the verifier stored at an earlier start, else
    a generated password (printed once, stored hashed under "users" in the state file)."""
    stored = state.setdefault("users", {}) if specs else state.get("users", {})
    users, changed = {}, False
    for spec in specs:
        name, role, password = parse_user(spec)
        if name in users:
            raise ServeError(f"--user {name}: given twice; give each user once.")
        if password:
            verifier = make_verifier(password)
        elif name in stored and "pg_scram_verifier" in stored[name]:
            verifier = Verifier.parse(stored[name]["pg_scram_verifier"])
            notes.append(f"Postgres user {name} ({role}): the password printed at first start.")
        else:
            generated = secrets.token_urlsafe(18)
            verifier = make_verifier(generated)
            stored[name] = {"pg_scram_verifier": str(verifier)}
            changed = True
            notes.append(f"Postgres user {name} ({role}) password (generated, shown once, "
                         f"{where}): {generated}")
        users[name] = serve_policy.User(name, role, verifier)
    return users, changed


def credentials(database: str, *, password: str | None, token: str | None,
                http: bool, users: tuple[str, ...] | list[str] = ()) -> Credentials:
    """The password verifier and the REST token, from the arguments or the state file, and
    the --user logins."""
    path = state_path(database)
    state = _read_state(path)
    notes: list[str] = []
    where = f"stored hashed in {path}" if path else "not stored: the database is in memory"
    logins, changed = _users(users, state, where, notes)
    if password:
        verifier = make_verifier(password)
    elif "pg_scram_verifier" in state:
        try:
            verifier = Verifier.parse(state["pg_scram_verifier"])
        except ValueError as exc:
            raise ServeError(f"{path}: {exc}. Delete the file to generate a new password.") \
                from None
        notes.append(f"Postgres password: the one printed at first start ({where}).")
    else:
        generated = secrets.token_urlsafe(18)
        verifier = make_verifier(generated)
        state["pg_scram_verifier"] = str(verifier)
        changed = True
        notes.append(f"Postgres password (generated, shown once, {where}): {generated}")
    digest = None
    if http:
        if token:
            digest = hashlib.sha256(token.encode()).hexdigest()
        elif "rest_token_sha256" in state:
            digest = state["rest_token_sha256"]
            notes.append(f"REST token: the one printed at first start ({where}).")
        else:
            token = secrets.token_urlsafe(32)
            digest = hashlib.sha256(token.encode()).hexdigest()
            state["rest_token_sha256"] = digest
            changed = True
            notes.append(f"REST token (generated, shown once, {where}): {token}")
    return Credentials(verifier, token, digest, notes, path, state if changed else None,
                       logins)


def _listen_error(what: str, host: str, port: int, exc: OSError, option: str) -> ServeError:
    return ServeError(f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc}. "
                      f"Choose another {option}, or stop what uses that port.")


def run(database: str, *, host: str = "127.0.0.1", port: int = 5433,
        http_port: int | None = 8080, password: str | None = None, token: str | None = None,
        read_only: bool = False, allow_remote: bool = False, allow_file_access: bool = False,
        users: tuple[str, ...] | list[str] = (),
        echo: Callable[[str], None] = print, stop: threading.Event | None = None) -> None:
    """Serve ``database`` until SIGINT/SIGTERM (or ``stop`` is set); raises ServeError.

    Locked down unless ``allow_file_access``: sessions cannot reach the server's files or
    network nor change its configuration (``sqlml.server.policy``). ``users``: --user values,
    ``NAME:ROLE[:PASSWORD]``."""
    import sqlml
    from sqlml.server import pgwire

    check_host(host, allow_remote)
    if read_only and database != ":memory:" and not os.path.exists(database):
        raise ServeError(f"--read-only: database file {database!r} does not exist. Check the "
                         f"path, or serve it once without --read-only to create it.")
    creds = credentials(database, password=password, token=token, http=http_port is not None,
                        users=users)
    con = sqlml.connect(database, read_only=read_only)
    handles: list[PgServer | ServerHandle] = []
    try:
        if not allow_file_access:
            serve_policy.lock_down(con)
        rules = serve_policy.Policy(file_access=allow_file_access, read_only=read_only,
                                    users=creds.users or {})
        try:
            pg = pgwire.start_in_thread(con, host=host, port=port, password=None,
                                        verifier=creds.verifier, read_only=read_only,
                                        policy=rules)
        except OSError as exc:
            raise _listen_error("Postgres clients", host, port, exc, "--port") from None
        handles.append(pg)
        name = Path(database).stem if database != ":memory:" else "memory"
        echo(f"sqlml serve: Postgres wire protocol on {host}:{pg.port}"
             f"{' (read-only)' if read_only else ''}: "
             f"psql -h {host} -p {pg.port} -U sqlml -d {name}")
        echo("sqlml serve: " + _access_line(allow_file_access, creds.users or {}))
        if http_port is not None:
            from sqlml.server.rest import app as rest

            # A token generated at an earlier start is known only by its digest.
            app = rest.build_app(con, token=creds.token, read_only=read_only,
                                 token_sha256=None if creds.token else creds.token_sha256)
            try:
                web = rest.start_in_thread(app, host, http_port)
            except OSError as exc:
                raise _listen_error("HTTP", host, http_port, exc, "--http-port") from None
            handles.append(web)
            echo(f"sqlml serve: REST endpoint on http://{_url_host(host)}:{web.port}/v1/models "
                 f"(OpenAPI at /openapi.json)")
        creds.save()
        for note in creds.announcements:
            echo(f"sqlml serve: {note}")
        echo("sqlml serve: Ctrl-C or SIGTERM stops it.")
        _wait(stop)
    finally:
        for handle in reversed(handles):
            handle.stop()
        con.close()


def _access_line(allow_file_access: bool, users: dict[str, serve_policy.User]) -> str:
    roles = "".join(f", user {u.name}: {u.role}" for u in users.values())
    if allow_file_access:
        return (f"--allow-file-access: sessions may read and write this machine's files and "
                f"network as the user running sqlml serve{roles}.")
    return (f"locked down: no server files, network, extensions or ATTACH for sessions "
            f"(--allow-file-access lifts it){roles}.")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _wait(stop: threading.Event | None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    else:
        stop.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for tests and examples that start the command)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
