"""The built-in web UI, served by the collector at ``/``.

Server-rendered pages (Jinja2 templates, SVG charts drawn in Python) so it
works offline with nothing but the collector: no CDN, no JavaScript bundle.
"""

from __future__ import annotations

import inspect
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from faultprint_collector.ui._pages import HERE, NeedsKey, router, safe_next, templates

__all__ = ["register", "router"]


def register(app: FastAPI) -> None:
    """Add the UI's pages, its static files and its error pages to APP."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")

    @app.exception_handler(NeedsKey)
    async def needs_key(request: Request, exc: NeedsKey) -> Response:
        # the page asked for comes back once a key is given (a deep link from
        # an alert must not land on the overview)
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"code": exc.code, "next": safe_next(wanted)})
        return RedirectResponse(f"/ui/key?{query}", status_code=303)

    api_invalid = app.exception_handlers.get(
        RequestValidationError, request_validation_exception_handler
    )

    @app.exception_handler(RequestValidationError)
    async def validation_errors(request: Request, exc: RequestValidationError) -> Response:
        # the API keeps FastAPI's 422 with its JSON; a page's bad parameter
        # (say an over-long ?window=) is a 400 with a reason, like every other
        if _is_api(request):
            answer = api_invalid(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return await html_errors(request, StarletteHTTPException(400, _reason(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def html_errors(request: Request, exc: StarletteHTTPException) -> Response:
        # API clients keep JSON errors; people in a browser get a page.
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and not _is_api(request):
            return templates.TemplateResponse(
                request,
                "error.html",
                {"status": exc.status_code, "detail": exc.detail, "project": None},
                status_code=exc.status_code,
            )
        return await http_exception_handler(request, exc)


def _is_api(request: Request) -> bool:
    """Whether REQUEST is for the API or the OTLP receiver (not a page)."""
    return request.url.path.startswith(("/api/", "/v1/"))


def _reason(exc: RequestValidationError) -> str:
    """What was wrong with a page's parameters, in words: ``window: String should
    have at most 16 characters``."""
    reasons = []
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ()) if part not in ("query", "path")]
        reasons.append(f"{'.'.join(where) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(reasons) or "invalid request"
