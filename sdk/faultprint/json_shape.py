"""What a text that should be JSON looks like, shared by the SDK and the collector.

A model asked for JSON fails it in a few recurring ways: it runs out of
tokens mid-document, wraps the document in prose or a Markdown fence, or
answers in prose. Each is a failure mode of its own. The parser's error
cannot tell them apart (prose and a fence both fail at ``line 1 column 1``);
the text's head and tail can. The SDK names the shape when an output check
finds no JSON, so the failure is grouped by it even when the output itself
is not captured; the collector names it from a captured output, with the
same function, so both sides agree.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["NOT_JSON", "NotJSONConstant", "OutputShape", "json_shape", "loads"]


class OutputShape:
    """Names for what a model output looks like."""

    EMPTY = "empty"
    #: only the collector names it (it has a refusal detector of its own)
    REFUSAL = "refusal"
    WRAPPED_JSON = "wrapped_json"
    TRUNCATED_JSON = "truncated_json"
    MALFORMED_JSON = "malformed_json"
    VALID_JSON = "valid_json"
    PROSE = "prose"


#: the shapes of an output that is not the JSON document it should be
NOT_JSON = frozenset(
    {
        OutputShape.WRAPPED_JSON,
        OutputShape.TRUNCATED_JSON,
        OutputShape.MALFORMED_JSON,
        OutputShape.PROSE,
    }
)

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n(?P<body>.*?)(?:\n```\s*(?P<rest>.*))?$", re.S)
_CUT_OFF_MSGS = ("Unterminated string",)
# Bracket scanning is linear in Python; beyond this the parser's position decides.
_SCAN_MAX = 50_000
#: longer outputs are judged by their first this many characters
_MAX_CHARS = 200_000


def _unclosed(text: str) -> bool:
    """True when a string or bracket is still open at the end of ``text``."""
    depth = 0
    in_string = escaped = False
    for ch in text[:_SCAN_MAX]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return in_string or depth > 0


class NotJSONConstant(ValueError):
    """A text holds NaN, Infinity or -Infinity: Python's json reads them, JSON has none."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not a JSON value")


def _no_constant(name: str) -> Any:
    raise NotJSONConstant(name)


def loads(text: str) -> Any:
    """``json.loads`` as strict JSON parsers read: NaN and the infinities refused.

    Raises ``json.JSONDecodeError`` or ``NotJSONConstant`` (both ValueErrors).
    """
    return json.loads(text, parse_constant=_no_constant)


def _json_state(text: str) -> str:
    try:
        loads(text)
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()) or e.msg.startswith(_CUT_OFF_MSGS) or _unclosed(text):
            return OutputShape.TRUNCATED_JSON
        if e.msg.startswith("Extra data"):
            return "extra"
        return OutputShape.MALFORMED_JSON
    except (ValueError, RecursionError):
        return OutputShape.MALFORMED_JSON
    return OutputShape.VALID_JSON


def json_shape(output: str) -> str:
    """What ``output`` looks like as JSON: one of the ``OutputShape`` names but REFUSAL.

    Only the head and tail matter, and JSON parsing is bounded, so large
    outputs stay cheap.
    """
    text = output.strip()
    if not text:
        return OutputShape.EMPTY
    if len(text) > _MAX_CHARS:
        text = text[:_MAX_CHARS]
    if text.startswith("```"):
        m = _FENCE.match(text)
        if m is None or m.group("rest") is None:
            # opened a fence and never closed it: ran out of tokens inside
            body = text.split("\n", 1)[1] if "\n" in text else ""
            return (
                OutputShape.TRUNCATED_JSON
                if _json_state(body) == OutputShape.TRUNCATED_JSON
                else OutputShape.WRAPPED_JSON
            )
        return OutputShape.WRAPPED_JSON
    if text[0] in "{[":
        state = _json_state(text)
        if state == "extra":
            return OutputShape.WRAPPED_JSON  # JSON followed by prose
        return state
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start > 0:
        state = _json_state(text[start:])
        if state in (OutputShape.VALID_JSON, "extra"):
            return OutputShape.WRAPPED_JSON  # prose around JSON
        if state == OutputShape.TRUNCATED_JSON:
            return OutputShape.TRUNCATED_JSON
    return OutputShape.PROSE
