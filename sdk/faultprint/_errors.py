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
    HTTP errors and connection failures; ``exception`` otherwise.
    """
    cls = type(exc)
    name = cls.__name__
    module = cls.__module__ or ""
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return "timeout", None, None
    status = getattr(exc, "status_code", None)
    root = module.split(".", 1)[0]
    if isinstance(status, int) and (
        root in ("openai", "anthropic", "httpx", "httpx2") or hasattr(exc, "response")
    ):
        if status in (408, 504):
            return "timeout", _provider_code(exc), status
        return "api_error", _provider_code(exc), status
    if root in ("openai", "anthropic") and "Connection" in name:
        return "api_error", "connection_error", None
    return "exception", None, None
