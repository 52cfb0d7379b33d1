"""What every request passes before a route sees it: authentication, load, body size.

An ASGI middleware, so that every ``/v1/`` and ``/api/`` route (including
ones added later) is authenticated whether or not it declares the
``caller_project`` dependency, and so that an overloaded receiver answers
503 before it reads a body. A second one bounds the body of every request
but OTLP ingest (which bounds its own): a route never reads more than its
limit, whoever sends it. Errors that escape a route become a JSON error,
never a traceback: a store that does not answer (or a server that cannot
be reached) is 503, a bad query
parameter 400, anything else 500 without internals.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultprint_collector.api._auth import PROTECTED_PREFIXES, KeyRing, authenticate

log = logging.getLogger("faultprint.api")

INGEST_PATH = "/v1/traces"
#: the largest body each route that reads one accepts, in bytes. ``/v1/traces``
#: has its own (``FAULTPRINT_MAX_BODY_BYTES``). The UI's key form holds one
#: key (about 50 characters); an SQL request at most 20 000 characters of
#: SQL, each at most 12 bytes in JSON (a ``\uXXXX\uXXXX`` pair), which
#: 256 KiB holds with room to spare.
BODY_LIMITS = {"/ui/key": 4 * 1024, "/api/sql": 256 * 1024}
#: the limit of every other route: none reads a body, so whatever one sends
#: is refused before a route added later could read it whole
DEFAULT_BODY_LIMIT = 16 * 1024


class Guard:
    """Authenticates protected paths and bounds concurrent ingest requests."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        state = getattr(self.fastapi_app.state, "faultprint", None)
        if state is None or not path.startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        ring: KeyRing = state.keys
        try:
            project = authenticate(ring, Request(scope))
        except HTTPException as exc:
            await _send_json(send, exc.status_code, {"detail": exc.detail}, dict(exc.headers or {}))
            return
        scope.setdefault("state", {})["faultprint_project"] = project
        if path != INGEST_PATH:
            await self.app(scope, receive, send)
            return
        if self.inflight >= state.settings.max_inflight_requests:
            state.stats["busy_responses"] += 1
            await _send_json(
                send,
                503,
                {"detail": "collector busy: too many requests in flight, retry later"},
                {"Retry-After": "1"},
            )
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


class BodyLimit:
    """Refuses (413) a request body larger than its route's limit (``BODY_LIMITS``).

    A declared Content-Length over the limit is refused before any of the
    body is read; a chunked body is counted as it arrives and refused once
    it passes the limit. So at most the limit is ever held: the route gets
    the body, once whole, from what was counted (a route reading
    ``request.body()`` or a pydantic model would otherwise hold any size).
    ``/v1/traces`` bounds its own body, with an OTLP error body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path == INGEST_PATH:
            await self.app(scope, receive, send)
            return
        limit = BODY_LIMITS.get(path, DEFAULT_BODY_LIMIT)
        declared = Request(scope).headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _too_large(send, path, limit, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was whole: no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, path, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()  # after the body: a disconnect, as before

        await self.app(scope, replay, send)


async def _too_large(send: Send, path: str, limit: int, declared: int | None = None) -> None:
    size = f"of {declared} bytes " if declared is not None else ""
    detail = f"request body {size}too large: {path} accepts at most {limit} bytes"
    await _send_json(send, 413, {"detail": detail})


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def install(app: FastAPI) -> None:
    """Add the guard middleware and the error handlers to APP."""
    from clickhouse_connect.driver.exceptions import OperationalError

    from faultprint_collector.queries import QueryError
    from faultprint_collector.store import StoreError

    # the last added runs first: a request is authenticated before its body is read
    app.add_middleware(BodyLimit)
    app.add_middleware(Guard, fastapi_app=app)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:200]}
            for e in exc.errors()[:10]
        ]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(QueryError)
    async def bad_query(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StoreError)
    @app.exception_handler(OperationalError)
    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store error on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"detail": "the store is not answering, retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)
