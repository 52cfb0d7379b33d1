"""Checks of the arguments an application gives faultprint's setup functions.

``configure()``, ``@observe`` and ``instrument_openai`` / ``instrument_anthropic``
run once, at start-up. A mistake in their arguments must fail there, naming
the argument and what it takes, rather than later and silently: a string
``"false"`` for ``capture_content`` would turn content capture *on* (any
non-empty string is true), a version given as a number would not be read as
the version under comparison, and an invalid option of a client integration
would leave every call of that client unrecorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ConfigurationError",
    "Hidden",
    "check_call_options",
    "check_count",
    "check_flag",
    "check_headers",
    "check_name",
    "check_rate",
    "check_seconds",
    "check_text",
    "is_token",
    "refused",
    "refused_variable",
    "url_problem",
]


class ConfigurationError(ValueError):
    """An argument of a faultprint setup function has a value faultprint cannot use."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Hidden:
    """A secret (an API key, header values) shown in an error without its text:
    its length and the first character that makes it unusable."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        text = self.text
        size = f"{len(text)} character{'' if len(text) == 1 else 's'}"
        for i, ch in enumerate(text):
            if ord(ch) < 32 or ord(ch) == 127:
                return f"<hidden: {size}, a control character at position {i}>"
            if ch.isspace():
                return f"<hidden: {size}, a space at position {i}>"
            if not ch.isascii():
                return f"<hidden: {size}, a character outside ASCII at position {i}>"
        return f"<hidden: {size}>"


def _because(why: str | None) -> str:
    return f" ({why})" if why else ""


def refused(
    where: str, name: str, takes: str, value: Any, why: str | None = None
) -> ConfigurationError:
    """The error for argument ``name`` of ``where``, which takes ``takes``, given ``value``."""
    return ConfigurationError(f"{where}: {name}= takes {takes}, got {_shown(value)}{_because(why)}")


def refused_variable(
    where: str, variable: str, takes: str, value: Any, why: str | None = None
) -> ConfigurationError:
    """The error for environment variable ``variable`` that ``where`` read."""
    got = f"{_shown(value)}{_because(why)}"
    return ConfigurationError(f"{where}: environment variable {variable} takes {takes}, got {got}")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _has_space_or_control(text: str) -> bool:
    return _has_control(text) or any(ch.isspace() for ch in text)


def is_token(text: str) -> bool:
    """``text`` is non-empty printable ASCII without spaces (an API key).

    A key is sent in an HTTP header, which holds no line break and, in the
    exporter's HTTP client, nothing beyond Latin-1: a key with a control
    character or a letter outside ASCII would fail every export.
    """
    return bool(text) and text.isascii() and text.isprintable() and " " not in text


def url_problem(url: str, *, full: bool) -> str | None:
    """What makes ``url`` unusable as a collector URL (None: nothing).

    ``full``: a URL used as is (its query is sent); otherwise a base URL the
    traces path is appended to, which therefore takes no query or fragment.
    Each problem here is one the HTTP client would only meet at the first
    export, and every export after it would fail the same way.
    """
    if not url:
        return "empty"
    if _has_space_or_control(url):
        return "it contains a space or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed on access: raises for a non-number or out of range
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it does not start with http:// or https://"
    host = parts.hostname
    if not host:
        return "it has no host"
    if not host.isascii():
        try:
            host.encode("idna")
        except UnicodeError:
            return "its host is not a valid domain name"
    if port == 0:
        return "port 0, which no server listens on"
    if not full and (parts.query or parts.fragment or url.endswith(("?", "#"))):
        return "a query or fragment, which the traces path cannot follow"
    return None


def _is_number(value: Any) -> bool:
    # bool is an int to Python, never a number to a person writing a setting
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_text(where: str, **values: Any) -> None:
    """Each of ``values`` is a string or None."""
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise refused(where, name, "a string", value)


def check_name(where: str, name: str, value: Any) -> None:
    """``value`` is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise refused(where, name, "a non-empty string", value)


def check_flag(where: str, optional: bool = False, **values: Any) -> None:
    """Each of ``values`` is True or False (or None, when ``optional``)."""
    for name, value in values.items():
        if not isinstance(value, bool) and not (optional and value is None):
            takes = "True, False or None" if optional else "True or False"
            raise refused(where, name, takes, value)


def check_rate(where: str, name: str, value: Any) -> None:
    """``value`` is None or a number in (0, 1]."""
    if value is not None and not (_is_number(value) and 0.0 < value <= 1.0):
        raise refused(where, name, "a number in (0, 1]", value)


def check_count(where: str, name: str, value: Any, minimum: int) -> None:
    """``value`` is an integer of at least ``minimum``."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise refused(where, name, f"an integer >= {minimum}", value)


def check_seconds(where: str, name: str, value: Any) -> None:
    """``value`` is a finite number of seconds above zero."""
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise refused(where, name, "a number of seconds > 0", value)


def check_headers(where: str, value: Any) -> None:
    """``value`` is None or a mapping of header names to values, all strings
    that HTTP allows: a name without spaces, control characters or colons, a
    value without control characters (a line break would end the header) or
    surrounding whitespace. The HTTP client refuses the worst of these at
    every request, and a server answers the rest with 400: every export would
    fail."""
    if value is None:
        return
    takes = "a mapping of strings to strings"
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise refused(where, "headers", takes, _names_only(value))
    for name, text in value.items():
        if not name or _has_space_or_control(name) or ":" in name:
            raise refused(
                where, "headers", takes, _names_only(value), f"header name {name!r} cannot be sent"
            )
        if text != text.strip() or _has_control(text.replace("\t", " ")):
            raise refused(
                where,
                "headers",
                takes,
                _names_only(value),
                f"the value of header {name!r}, {Hidden(text)!r}, cannot be sent",
            )


def _names_only(value: Any) -> Any:
    """Headers as an error shows them: their values (credentials, often) hidden."""
    if not isinstance(value, Mapping):
        return value
    return {k: Hidden(v) if isinstance(v, str) else v for k, v in value.items()}


def check_call_options(
    where: str,
    *,
    model: Any = None,
    provider: Any = None,
    version: Any = None,
    call_site: Any = None,
    server_address: Any = None,
    operation: Any = "chat",
    json: Any = False,
    raise_on_invalid: Any = False,
    capture_content: Any = None,
    sample_rate: Any = None,
) -> None:
    """The options of a model call's recording, as ``@observe`` and the client
    integrations take them (``expect=`` is checked by building its check)."""
    check_text(
        where,
        model=model,
        provider=provider,
        version=version,
        call_site=call_site,
        server_address=server_address,
    )
    check_name(where, "operation", operation)
    check_flag(where, json=json, raise_on_invalid=raise_on_invalid)
    check_flag(where, optional=True, capture_content=capture_content)
    check_rate(where, "sample_rate", sample_rate)
