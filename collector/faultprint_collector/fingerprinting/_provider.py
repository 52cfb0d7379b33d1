"""Provider error bodies serialised into exception messages.

Client libraries render an HTTP error as ``Error code: 429 - <body>`` where
``<body>`` is the JSON error body as a Python ``repr`` (anthropic, older
openai), the body's ``message`` only (current openai), or raw text. The
structure (status, error type, error code) identifies the failure mode; the
prose does not (it carries ids, limits, model names and retry hints).

Parsing is defensive and bounded: ``json.loads``, else a field reader for
Python reprs; any failure means "no structure" and the caller falls back to
the message template.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = ["ProviderError", "parse_provider_error"]

_MAX_BODY = 8192

_PREFIX = re.compile(
    r"^\s*(?:Error code|HTTP|status(?: code)?)[:= ]\s*(?P<status>[1-5]\d\d)\b[\s:-]*"
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
    """Parse ``Error code: NNN - ...`` style messages; None when not one."""
    m = _PREFIX.match(message)
    if m is None:
        body = _as_mapping(message) if message.lstrip().startswith("{") else None
        return from_body(body) if body is not None else None
    status = int(m.group("status"))
    rest = message[m.end() :].strip()
    body = _as_mapping(rest) if rest.startswith("{") else None
    if body is not None:
        return from_body(body, status)
    return ProviderError(status=status, message=rest)
