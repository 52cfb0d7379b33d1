"""Provider error bodies serialised into exception messages.

Client libraries render an HTTP error as ``Error code: 429 - <body>`` where
``<body>`` is the JSON error body as a Python ``repr`` (anthropic, older
openai), the body's ``message`` only (current openai), or raw text; the Go
libraries (openai-go, anthropic-sdk-go) as ``POST "<url>": 429 Too Many
Requests <body>`` with the body as raw JSON. The structure (status, error
type, error code) identifies the failure mode; the prose does not (it
carries ids, limits, model names and retry hints).

Parsing is defensive and bounded: ``json.loads``, else a field reader for
Python reprs; any failure means "no structure" and the caller falls back to
the message template.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = ["ProviderError", "code_from_prose", "parse_provider_error"]

_MAX_BODY = 8192

_PREFIX = re.compile(
    r"^\s*(?:Error code|HTTP|status(?: code)?)[:= ]\s*(?P<status>[1-5]\d\d)\b[\s:-]*"
)
# The Go libraries Stainless generates (openai-go, anthropic-sdk-go) format an
# HTTP error as ``%s %q: %d %s %s``: the request's method, its quoted URL, the
# status, the status's reason phrase (capitalised words, but for 418's "I'm a
# teapot"; empty for a code Go
# does not name, such as 529) and the error body as raw JSON. Anchored on an
# upper-case method and a quoted URL followed by ": " and a 4xx/5xx status, a
# shape no prose takes; Go's own transport errors (``Post "<url>": context
# deadline exceeded``) name the method in title case and carry no status, so
# they do not match.
_GO_PREFIX = re.compile(
    r'^\s*(?:GET|POST|PUT|PATCH|DELETE) "(?:[^"\\\n]|\\.){1,2048}": '
    r"(?P<status>[45]\d\d)\b(?: I'm a [Tt]eapot| [A-Z][\w'-]*)* *"
)


class ProviderError(NamedTuple):
    """What a provider error message says, structurally."""

    status: int = 0
    error_type: str = ""
    code: str = ""
    param: str = ""
    #: the prose of the body (``error.message``) or the text after the status
    message: str = ""
    #: True when a structured body (dict) was found
    structured: bool = False


# A field of a Python-repr (or JSON) error body: 'type': 'overloaded_error',
# "code": null, 'code': 429, 'message': 'it\'s ...'. Used instead of
# ast.literal_eval, which compiles the text and costs far more per message.
_FIELD = re.compile(
    r"""['"](?P<key>type|code|message|param|status)['"]\s*:\s*(?:"""
    # string bodies unrolled ([^'\\]*(\\.[^'\\]*)*): no alternation per character
    r"""'(?P<s1>[^'\\\n]*(?:\\.[^'\\\n]*)*)'"""
    r'|"(?P<s2>[^"\\\n]*(?:\\.[^"\\\n]*)*)"'
    r"|(?P<num>-?\d+)|(?P<null>None|null))"
)
_INNER = re.compile(r"""['"]error['"]\s*:\s*\{""")


def _as_mapping(text: str) -> dict[str, Any] | None:
    """The error body as a dict: JSON, else the fields of a Python repr."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")) or len(text) > _MAX_BODY:
        return None
    if '"' in text[:3]:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
    inner = _INNER.search(text)
    scope = text[inner.end() :] if inner else text
    fields: dict[str, Any] = {}
    for m in _FIELD.finditer(scope):
        key = m.group("key")
        if key in fields:
            continue
        if m.group("num") is not None:
            fields[key] = int(m.group("num"))
        elif m.group("null") is not None:
            fields[key] = None
        else:
            raw = m.group("s1") if m.group("s1") is not None else m.group("s2")
            fields[key] = raw.replace("\\'", "'").replace('\\"', '"')
    if not fields:
        return None
    return {"error": fields} if inner else fields


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def from_body(body: dict[str, Any], status: int = 0) -> ProviderError:
    """Read status/type/code/param/message from a decoded provider error body.

    Shapes: openai ``{"error": {"message", "type", "param", "code"}}``,
    anthropic ``{"type": "error", "error": {"type", "message"}}``, google
    ``{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message"}}``.
    """
    err = body.get("error")
    if not isinstance(err, dict):
        err = body
    etype = _text(err.get("type"))
    code = err.get("code")
    gstatus = _text(err.get("status"))
    if isinstance(code, int) and not isinstance(code, bool):
        # google style: numeric code is the HTTP status, `status` is the code
        status = status or code
        code = gstatus
    elif not etype and gstatus:
        etype = gstatus
    return ProviderError(
        status=status,
        error_type=etype if etype != "error" else "",
        code=_text(code),
        param=_text(err.get("param")),
        message=_text(err.get("message")),
        structured=True,
    )


@lru_cache(maxsize=8192)
def parse_provider_error(message: str) -> ProviderError | None:
    """Parse ``Error code: NNN - ...`` style messages (and the Go libraries'
    ``POST "<url>": NNN <reason> <body>``); None when not one."""
    m = _PREFIX.match(message) or _GO_PREFIX.match(message)
    if m is None:
        body = _as_mapping(message) if message.lstrip().startswith("{") else None
        return from_body(body) if body is not None else None
    status = int(m.group("status"))
    rest = message[m.end() :].strip()
    body = _as_mapping(rest) if rest.startswith("{") else None
    if body is not None:
        return from_body(body, status)
    return ProviderError(status=status, message=rest)


# Provider error bodies named by the prose of well-known error messages. The
# current OpenAI library renders an HTTP error as ``Error code: 429 - <the
# body's message>``, dropping the body's ``code`` and ``type``; a recorder
# that only sees the exception text would otherwise group by prose while the
# SDK (which reads them from the exception) groups by code. Each entry is
# (pattern, code, type); a ``type`` group in the pattern gives the type where
# the prose says it. Each pattern is anchored at the start of the body's
# message, so a quoted phrase inside another error does not match.
_CODE_BY_PROSE: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # OpenAI 429, per-minute or per-day limits on tokens or on requests (the
    # body's type says which); the prose carries org ids and numbers
    (
        re.compile(r"Rate limit reached for .*? on (?P<type>tokens|requests)\b"),
        "rate_limit_exceeded",
        "",
    ),
    (re.compile(r"Rate limit reached for "), "rate_limit_exceeded", ""),
    # OpenAI 429, billing quota: same status as rate limits, a different mode
    (re.compile(r"You exceeded your current quota"), "insufficient_quota", "insufficient_quota"),
    # OpenAI 400, prompt too long
    (
        re.compile(r"This model's maximum context length is "),
        "context_length_exceeded",
        "invalid_request_error",
    ),
    # OpenAI 401
    (re.compile(r"Incorrect API key provided"), "invalid_api_key", "invalid_request_error"),
    # OpenAI 404, unknown or inaccessible model
    (
        re.compile(r"The model `[^`]*` does not exist"),
        "model_not_found",
        "invalid_request_error",
    ),
    # OpenAI 500; the body has code null and type server_error
    (
        re.compile(r"The server had an error (?:while )?processing your request"),
        "server_error",
        "server_error",
    ),
)


def code_from_prose(prose: str) -> tuple[str, str]:
    """(code, type) of the provider error body a well-known error message
    comes from, or ("", "")."""
    head = prose.strip()[:200]
    for pattern, code, error_type in _CODE_BY_PROSE:
        match = pattern.match(head)
        if match:
            return code, match.groupdict().get("type") or error_type
    return "", ""
