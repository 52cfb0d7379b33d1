"""What an exception says about a failed model call: category, code, status."""

from __future__ import annotations

from typing import Any

__all__ = ["InvalidOutputError", "classify_exception", "exception_type_name"]


class InvalidOutputError(ValueError):
    """Raised by ``@observe(..., raise_on_invalid=True)`` when an output check fails.

    ``detail`` holds the structured check result (validator, error kinds and
    generalised paths), the same JSON the span carries.
    """

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


def exception_type_name(exc: BaseException) -> str:
    """Module-qualified class name; builtins by bare name (``ValueError``)."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins" or not module:
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _provider_code(exc: BaseException) -> str | None:
    # OpenAI: body.code ("rate_limit_exceeded", "context_length_exceeded"),
    # else body.type. Anthropic: error.details.error_code when present, else
    # error.type ("overloaded_error", "rate_limit_error").
    for attr in ("code", "error_code", "type"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            for key in ("code", "type"):
                value = err.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


def classify_exception(exc: BaseException) -> tuple[str, str | None, int | None]:
    """(category, provider error code, HTTP status) for a raised exception.

    ``timeout`` for client timeouts (``TimeoutError`` and the providers' and
    HTTP clients' timeout classes) and HTTP 408/504; ``api_error`` for provider
    HTTP errors, provider errors sent inside a stream, and connection
    failures; ``exception`` otherwise.

    An error event inside a stream arrives in an HTTP 200 response: it keeps
    its provider code but gets no HTTP status (OpenAI raises it without one,
    Anthropic with the stream's 200), since no HTTP error was returned.
    """
    cls = type(exc)
    name = cls.__name__
    module = cls.__module__ or ""
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return "timeout", None, None
    status = getattr(exc, "status_code", None)
    root = module.split(".", 1)[0]
    provider = root in ("openai", "anthropic")
    if (
        isinstance(status, int)
        and status >= 400
        and (provider or root in ("httpx", "httpx2") or hasattr(exc, "response"))
    ):
        if status in (408, 504):
            return "timeout", _provider_code(exc), status
        return "api_error", _provider_code(exc), status
    if provider:
        if "Connection" in name:
            return "api_error", "connection_error", None
        code = _error_event_code(exc)
        if code is not None:
            return "api_error", code, None
    return "exception", None, None


def _error_event_code(exc: BaseException) -> str | None:
    # A provider error event: OpenAI's APIError carries the event's error
    # object as its body (and code/type from it); Anthropic's carries the
    # whole event ({"type": "error", "error": {...}}). A body without an
    # error object (a response that failed validation) is no provider error.
    body = getattr(exc, "body", None)
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), dict):
        return _provider_code(exc)
    for attr in ("code", "type"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    return None
