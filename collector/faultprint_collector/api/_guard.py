"""What every request passes before a route sees it: authentication and load.

An ASGI middleware, so that every ``/v1/`` and ``/api/`` route (including
ones added later) is authenticated whether or not it declares the
``caller_project`` dependency, and so that an overloaded receiver answers
503 before it reads a body. Errors that escape a route become a JSON error,
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
from starlette.types import ASGIApp, Receive, Scope, Send

from faultprint_collector.api._auth import PROTECTED_PREFIXES, KeyRing, authenticate

log = logging.getLogger("faultprint.api")

INGEST_PATH = "/v1/traces"


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
