"""The REST prediction endpoint: FastAPI routes over one sqlml connection, served by uvicorn.

``build_app(con, token=...)`` gives the ASGI app; ``start_in_thread(app, host, port)`` serves it
from a background thread (``sqlml serve`` starts it beside the Postgres server). Every request
runs on its own cursor of the shared connection, in FastAPI's thread pool (the endpoints are
plain ``def``), so DuckDB work never blocks the event loop and requests run side by side.

Token and body size are checked by an ASGI layer in front of FastAPI, before any byte of the body
is parsed: an unauthenticated or oversized request costs the server nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import duckdb
import uvicorn
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from sqlml import api as sqlml_api
from sqlml import errors
from sqlml.connection import serve_from_python
from sqlml.errors import ModelNotFoundError, RequestError
from sqlml.server.rest import scoring as rest_scoring
from sqlml.server.rest.schema import (
    ErrorResponse,
    ModelDetail,
    ModelList,
    PredictRequest,
    PredictResponse,
    RecommendRequest,
    RecommendResponse,
)

PREFIX = "/v1"
_DRAIN_LIMIT = 64 * 1024 * 1024
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 401, 403, 404, 413, 422, 500)}


def build_app(con: duckdb.DuckDBPyConnection, *, token: str | None, max_rows: int = 10_000,
              max_body_bytes: int = 10_000_000, read_only: bool = False,
              token_sha256: str | None = None):
    """The ASGI app serving sqlml's models over HTTP.

    ``token``: the bearer token every /v1 route requires (None: no authentication, for tests
    and trusted loopback use only). ``max_rows``: rows (or users) per request. ``max_body_bytes``:
    request body size. ``read_only`` is informational: every endpoint only reads.
    ``token_sha256``: instead of ``token``, its SHA-256 in hex (what ``sqlml serve`` stores).
    """
    if max_rows < 1 or max_body_bytes < 1:
        raise ValueError(f"build_app: max_rows and max_body_bytes must be positive, got "
                         f"max_rows={max_rows}, max_body_bytes={max_body_bytes}.")
    authenticated = bool(token or token_sha256)
    api = FastAPI(
        title="sqlml REST endpoint",
        version="1",
        description="Predictions and recommendations from the models stored in a DuckDB "
                    "database, equal to the generated SQL functions' answers. Errors are "
                    "{\"error\": {\"type\", \"message\"}} with sqlml's message."
                    + (" Every /v1 route needs `Authorization: Bearer <token>`."
                       if authenticated else "")
                    + f" Limits: {max_rows} rows and {max_body_bytes} bytes per request."
                    + (" The database is open read-only." if read_only else ""),
    )
    api.state.read_only = read_only
    # Documents the scheme in /openapi.json; the check itself is the ASGI guard below.
    auth = [Security(HTTPBearer(auto_error=False))] if authenticated else []
    _add_routes(api, _Cursors(con), auth, max_rows)
    _add_error_handlers(api)
    return _Guard(api, token=token, max_body_bytes=max_body_bytes, token_sha256=token_sha256)


def _add_routes(api: FastAPI, cursors: _Cursors, auth: list, max_rows: int) -> None:
    """The /v1 routes: list and show models, their reports, predict, recommend."""

    @api.get(f"{PREFIX}/models", response_model=ModelList, dependencies=auth, responses=ERRORS,
             summary="Every model and its active version (FROM ml_models())")
    def list_models() -> dict:
        with cursors.get() as cur:
            rel = cur.execute("FROM ml_models()")
            names = [d[0] for d in rel.description]
            models = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
        for m in models:
            m["metrics"] = json.loads(m["metrics"]) if m["metrics"] else None
        return {"models": models}

    @api.get(f"{PREFIX}/models/{{name}}", response_model=ModelDetail, dependencies=auth,
             responses=ERRORS, summary="One model: ml_show_model and its request schema")
    def show_model(name: str) -> dict:
        route = f"GET {PREFIX}/models/{name}"
        with cursors.get() as cur:
            row = rest_scoring.model_version(cur, name, None, route)
            props = cur.execute("SELECT property, value FROM ml_show_model(?)", [name]).fetchall()
        features = json.loads(row["features"])
        return {"model": name, "version": row["version"], "problem_type": row["problem_type"],
                "function": row["function_name"], "properties": dict(props),
                "features": [{k: f[k] for k in ("name", "type", "kind")} for f in features]}

    @api.get(f"{PREFIX}/models/{{name}}/report", response_class=HTMLResponse,
             dependencies=auth, responses=ERRORS,
             summary="The model's report: one self-contained HTML page (SELECT ml_report)")
    def report(name: str, drift: str | None = None) -> HTMLResponse:
        """``drift``: a query whose rows the report's drift section compares with the training
        data; it runs under the reader role's rules (sqlml/server/policy.py)."""
        route = f"GET {PREFIX}/models/{name}/report"
        with cursors.get() as cur:
            rest_scoring.model_version(cur, name, None, route)   # 404 naming the models
            serve_from_python(cur)   # a cursor does not see the connection's ml_report dispatch
            if drift is not None:    # (nor, before that line, which macros write)
                rest_scoring.check_reader_query(cur, drift, route)
            html = sqlml_api.report(cur, name, drift=drift)
        return HTMLResponse(html)

    @api.post(f"{PREFIX}/models/{{name}}/predict", response_model=PredictResponse,
              response_model_exclude_unset=True, dependencies=auth, responses=ERRORS,
              summary="Labels and probabilities for rows, as the SQL functions give them")
    def predict(name: str, body: PredictRequest) -> dict:
        route = f"POST {PREFIX}/models/{name}/predict"
        with cursors.get() as cur:
            return rest_scoring.predict(cur, name, body.version, body.rows, body.columns,
                                        max_rows, route)

    @api.post(f"{PREFIX}/models/{{name}}/recommend", response_model=RecommendResponse,
              dependencies=auth, responses=ERRORS,
              summary="Top-k items per user from a recommendation model")
    def recommend(name: str, body: RecommendRequest) -> dict:
        route = f"POST {PREFIX}/models/{name}/recommend"
        with cursors.get() as cur:
            return rest_scoring.recommend(cur, name, body.version, body.user, body.users,
                                          body.k, body.exclude_seen, max_rows, route)


class _Cursors:
    """One cursor of the shared connection per request, closed when the request ends."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._lock = threading.Lock()   # cursor() on one connection from many threads at once

    @contextlib.contextmanager
    def get(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()


def _error(status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status,
                        headers=headers)


def error_of(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, error type, message) of an exception a request handler let through: the
    body is {"error": {"type", "message"}}, the message the one SQL gives."""
    out = errors.describe(exc)
    return (out.http_status, out.cls_name,
            f"internal error: {out.message}" if out.internal else out.message)


def _add_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            f" (got {_short(e.get('input'))})" for e in exc.errors()[:5])
        return _error(422, "InvalidRequest",
                      f"{request.method} {request.url.path}: the request body does not match "
                      f"the schema: {problems}. See /openapi.json for the expected body.")

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return _error(exc.status_code, "HTTPError",
                      f"{request.method} {request.url.path}: {detail}. The routes are listed "
                      f"in /openapi.json.")

    @api.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        return _error(*error_of(exc))

    # Starlette routes Exception subclasses by the nearest registered class: sqlml's errors and
    # DuckDB's must not fall through to the 500 handler's generic wording.
    for cls in (RequestError, ModelNotFoundError, ValueError, duckdb.Error):
        api.add_exception_handler(cls, failed)


def _short(value, limit: int = 80) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


class _Guard:
    """Bearer token on /v1 routes, then the body size limit, before FastAPI sees the request."""

    def __init__(self, app, *, token: str | None, max_body_bytes: int,
                 token_sha256: str | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Compared as digests: equal length, so the comparison time says nothing about it.
        self._digest = None if token is None else hashlib.sha256(token.encode()).digest()
        if token_sha256 is not None and token is None:
            self._digest = bytes.fromhex(token_sha256)

    def __getattr__(self, name):   # app.openapi(), app.routes ... of the FastAPI app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._authenticate(scope)
        if refusal is not None:
            await self._drain(scope, receive)
            await refusal(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._drain(scope, receive)
            await self._too_large(scope, declared.decode())(scope, receive, send)
            return
        body, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                if message.get("more_body", False):
                    await self._drain(scope, receive, size)
                await self._too_large(scope, f"more than {self.max_body_bytes}")(
                    scope, receive, send)
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(body), receive), send)

    async def _drain(self, scope, receive, received: int = 0) -> None:
        """Read and drop the rest of a refused body, so the refusal reaches the client.

        Closing a connection with unread bytes makes the kernel reset it, and the client then
        sees "connection reset" instead of the 401 or 413. A client that sent
        ``Expect: 100-continue`` has sent nothing yet and is answered at once; past
        ``_DRAIN_LIMIT`` bytes the connection is closed anyway.
        """
        if dict(scope["headers"]).get(b"expect", b"").lower() == b"100-continue":
            return
        limit = max(4 * self.max_body_bytes, _DRAIN_LIMIT)
        while received <= limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _authenticate(self, scope):
        if self._digest is None or not scope["path"].startswith(PREFIX + "/"):
            return None
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        path = f"{scope['method']} {scope['path']}"
        if not header:
            message = (f"{path}: missing Authorization header. Every /v1 route needs "
                       f"'Authorization: Bearer <token>' with the token sqlml serve printed on "
                       f"first start (or set with --token / SQLML_TOKEN).")
        elif scheme.lower() != "bearer" or not given.strip():
            message = (f"{path}: the Authorization header must be 'Bearer <token>', got "
                       f"scheme {scheme!r}. Send 'Authorization: Bearer <token>'.")
        elif not hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                                     self._digest):
            message = (f"{path}: the bearer token is wrong. Use the token sqlml serve printed "
                       f"on first start (or set with --token / SQLML_TOKEN).")
        else:
            return None
        return _error(401, "Unauthorized", message, {"WWW-Authenticate": "Bearer"})

    def _too_large(self, scope, size: str) -> JSONResponse:
        return _error(413, "RequestTooLarge",
                      f"{scope['method']} {scope['path']}: the request body has {size} bytes; "
                      f"this server accepts at most {self.max_body_bytes} (max_body_bytes). "
                      f"Send fewer rows per request.", {"Connection": "close"})


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()   # http.disconnect, when the client goes away
    return replay


# -- serving from a thread ------------------------------------------------------------------------
class ServerHandle:
    """A uvicorn server running in a background thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str,
                 port: int) -> None:
        self.server, self.thread, self.host, self.port = server, thread, host, port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(app, host: str = "127.0.0.1", port: int = 0, *,
                    tls_cert: str | None = None, tls_key: str | None = None) -> ServerHandle:
    """Serve ``app`` on host:port (0 picks a free port); returns once the socket listens.
    With ``tls_cert`` and ``tls_key`` (PEM files) it serves HTTPS."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"sqlml REST endpoint: cannot listen on {host}:{port}: "
                                 f"{exc.strerror}. Choose another port, or stop what uses it."
                      ) from None
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            loop="asyncio", http="h11", timeout_graceful_shutdown=5,
                            ssl_certfile=tls_cert, ssl_keyfile=tls_key)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:   # reported to the starting thread
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"sqlml-rest-{sock.getsockname()[1]}",
                              daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"sqlml REST endpoint on {host}:{port} failed to start: "
                               f"{failure[0] if failure else 'unknown error'}")
        thread.join(0.01)
    return ServerHandle(server, thread, host, sock.getsockname()[1])
