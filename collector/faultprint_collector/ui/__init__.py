"""The built-in web UI, served by the collector at ``/``.

Server-rendered pages (Jinja2 templates, SVG charts drawn in Python) so it
works offline with nothing but the collector: no CDN, no JavaScript bundle.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from faultprint_collector.ui._pages import HERE, NeedsKey, router, templates

__all__ = ["register", "router"]


def register(app: FastAPI) -> None:
    """Add the UI's pages, its static files and its error pages to APP."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")

    @app.exception_handler(NeedsKey)
    async def needs_key(request: Request, exc: NeedsKey) -> Response:
        return RedirectResponse(f"/ui/key?message={quote(exc.message)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def html_errors(request: Request, exc: StarletteHTTPException) -> Response:
        # API clients keep JSON errors; people in a browser get a page.
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and not request.url.path.startswith(("/api/", "/v1/")):
            return templates.TemplateResponse(
                request,
                "error.html",
                {"status": exc.status_code, "detail": exc.detail, "project": None},
                status_code=exc.status_code,
            )
        return await http_exception_handler(request, exc)
