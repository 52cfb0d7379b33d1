"""Invalid output: validator error kinds, generalised paths, and the output itself.

The identity of an invalid-output failure is *what* failed validation
(``missing`` at ``items.*.price``), never the values the model produced. The
kinds and paths come from the SDK's structured detail when there is one,
otherwise from the text of pydantic / jsonschema / json errors. List indices
are generalised (``items.3.price`` -> ``items.*.price``) and the set of
errors is sorted, so neither the number of broken items nor the order the
validator reports them in changes the fingerprint.

When JSON did not parse, the error alone cannot tell a fenced answer from a
refusal (both fail at ``line 1 column 1``); the output can, so it is looked
at when available (``inspect_output``).
"""

from __future__ import annotations

import re
from typing import Any

from faultprint.json_shape import OutputShape, json_shape

from ._template import template_of

__all__ = [
    "OutputShape",
    "ValidationSummary",
    "error_items",
    "errors_from_detail",
    "generalise_path",
    "inspect_output",
    "json_error_mode",
    "kind_family",
    "looks_like_refusal",
    "parse_validation_message",
]

#: at most this many distinct (kind, path) pairs identify a mode; a model that
#: breaks every field at once is one mode, not one per combination
MAX_ERRORS = 8

ValidationSummary = tuple[str, tuple[str, ...]]  # (validator, sorted "kind@path" items)


_PATH_SPLIT = re.compile(r"\[['\"]?|['\"]?\]\.?|\.|/")
_SEGMENT_ID = re.compile(r"^\d+$|^[0-9a-fA-F-]{16,}$")


def generalise_path(path: Any) -> str:
    """Dotted path with list indices (and id-like keys) replaced by ``*``.

    Accepts ``items.0.price``, ``items[0].price``, ``/items/0/price``,
    ``['items'][0]['price']`` or a sequence of keys.
    """
    if isinstance(path, list | tuple):
        parts = [str(p) for p in path]
    else:
        parts = _PATH_SPLIT.split(str(path))
    out = []
    for p in parts:
        p = p.strip()
        if not p or p in ("$", "instance", "#"):
            continue
        out.append("*" if _SEGMENT_ID.match(p) else p)
    return ".".join(out)


_KIND_FAMILY_SUFFIXES = ("_type", "_parsing", "_from_float", "_parsing_size", "_from_str")


def kind_family(kind: str) -> str:
    """The family of a validator error kind: ``int_parsing``, ``int_from_float``
    and ``int_type`` are all ``int`` (a non-integer where one is expected);
    whether the model wrote ``"two"`` or ``2.5`` is the value, not the mode.
    """
    if kind.endswith(_KIND_FAMILY_SUFFIXES) and "_" in kind:
        return kind.split("_", 1)[0]
    return kind


def error_items(errs: list[tuple[str, str, str]]) -> list[str]:
    """Sorted, de-duplicated ``kind@path`` items; JSON syntax errors by mode."""
    items = set()
    for kind, path, msg in errs:
        if kind in ("json_invalid", "json_decode", "json_type"):
            kind = "json:" + (json_error_mode(msg) or "malformed_json")
        else:
            kind = kind_family(kind)
        items.add(f"{kind}@{path}" if path else kind)
    return sorted(items)[:MAX_ERRORS]


def _summary(validator: str, pairs: list[tuple[str, str]]) -> ValidationSummary:
    items = sorted({f"{kind_family(k)}@{p}" if p else kind_family(k) for k, p in pairs})
    return validator, tuple(items[:MAX_ERRORS])


def errors_from_detail(detail: Any) -> ValidationSummary | None:
    """Read the SDK's ``faultprint.failure.detail`` for invalid output / tool errors.

    ``{"validator": "pydantic", "errors": [{"kind": "missing", "path": "items.*.price"}]}``
    """
    if not isinstance(detail, dict):
        return None
    errors = detail.get("errors")
    if not isinstance(errors, list) or not errors:
        return None
    pairs: list[tuple[str, str]] = []
    for e in errors[:64]:
        if not isinstance(e, dict):
            continue
        kind = e.get("kind") or e.get("type") or e.get("validator")
        if not isinstance(kind, str) or not kind:
            msg = e.get("message")
            kind = template_of(msg) if isinstance(msg, str) else "error"
        path = e.get("path", e.get("loc", ""))
        pairs.append((kind, generalise_path(path) if path not in (None, "") else ""))
    if not pairs:
        return None
    validator = detail.get("validator")
    return _summary(validator if isinstance(validator, str) else "", pairs)


# --- pydantic -------------------------------------------------------------------

_PYD_HEAD = re.compile(r"\b\d+ validation errors? for (?P<model>\S+)")
_PYD_MSG = re.compile(r"^(?P<indent>[ \t]+)(?P<msg>.*?) \[type=(?P<kind>[\w.]+)", re.M)


def _parse_pydantic(message: str) -> list[tuple[str, str, str]] | None:
    head = _PYD_HEAD.search(message)
    if head is None:
        return None
    lines = message[head.end() : head.end() + 32768].splitlines()
    out: list[tuple[str, str, str]] = []
    loc = ""
    for line in lines:
        if not line.strip():
            continue
        if not line[0].isspace():
            loc = line.strip()
            continue
        m = _PYD_MSG.match(line)
        if m is not None and len(m.group("indent")) <= 2:
            out.append((m.group("kind"), generalise_path(loc), m.group("msg")))
            loc = ""
    return out


# --- jsonschema -----------------------------------------------------------------

_JS_FAILED = re.compile(r"Failed validating '(?P<kw>\w+)' in ")
_JS_INSTANCE = re.compile(r"On instance(?P<path>(?:\[[^\]\n]*\])*):")
_JS_REQUIRED = re.compile(r"^'(?P<prop>[^'\n]+)' is a required property")
_JS_KINDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rx), kw)
    for rx, kw in (
        (r"is a required property$", "required"),
        (r"is not of type ", "type"),
        (r"is not one of ", "enum"),
        (r"was expected$", "const"),
        (r"is not valid under any of the given schemas$", "anyOf"),
        (r"is valid under each of ", "oneOf"),
        (r"is less than (?:or equal to )?the minimum of ", "minimum"),
        (r"is greater than (?:or equal to )?the maximum of ", "maximum"),
        (r"^Additional properties are not allowed", "additionalProperties"),
        (r"(?:is too short|should be non-empty)$", "minItems"),
        (r"(?:is too long|is expected to be empty)$", "maxItems"),
        (r"does not match ", "pattern"),
        (r"is not a '[\w-]+'$", "format"),
        (r"has non-unique elements$", "uniqueItems"),
    )
)


def _jsonschema_kind(first: str) -> str | None:
    for rx, kw in _JS_KINDS:
        if rx.search(first):
            return kw
    return None


def _parse_jsonschema(message: str) -> list[tuple[str, str, str]] | None:
    first = message.split("\n", 1)[0].strip()
    # find() first: the expressions then run at one known line, not over the
    # schema dump that jsonschema appends to its message
    at = message.find("\nFailed validating '")
    failed = _JS_FAILED.match(message, at + 1) if at >= 0 else None
    kind = failed.group("kw") if failed else _jsonschema_kind(first)
    if kind is None:
        return None
    at = message.find("\nOn instance")
    inst = _JS_INSTANCE.match(message, at + 1) if at >= 0 else None
    path = generalise_path(inst.group("path")) if inst else ""
    req = _JS_REQUIRED.match(first)
    if kind == "required" and req is not None:
        # the missing property is schema structure, not data
        path = f"{path}.{req.group('prop')}" if path else req.group("prop")
    return [(kind, path, first)]


# --- json -----------------------------------------------------------------------

_JSON_ERROR = re.compile(
    r"^(?:Invalid JSON: )?(?P<what>Expecting value|Expecting '[^']+' delimiter"
    r"|Expecting property name"
    r"|Unterminated string|Extra data|Invalid control character|Invalid \\escape|Invalid \\uXXXX"
    r"|EOF while parsing|expected value|trailing characters|key must be a string|trailing comma"
    r"|invalid escape|control character|expected `[^`]+`|expected ident|invalid number"
    r"|invalid type|Illegal trailing comma)",
    re.I,
)


def json_error_mode(message: str) -> str | None:
    """Mode of a JSON decode error message, or None when it is not one.

    ``truncated_json`` (the parser ran out of input), ``not_json`` (failed at
    the very first character: prose, a refusal, a fenced block, or nothing),
    ``trailing_data``, else ``malformed_json``.
    """
    text = message.strip()
    if text.startswith("Invalid JSON: "):
        text = text[14:]
    m = _JSON_ERROR.match(text)
    if m is None:
        return None
    what = m.group("what").lower()
    if what.startswith(("eof while parsing", "unterminated string")):
        return "truncated_json"
    if what in ("expecting value", "expected value") and re.search(
        r"line 1 column 1\b(?: \(char 0\))?", text
    ):
        return "not_json"
    if what in ("extra data", "trailing characters"):
        return "trailing_data"
    return "malformed_json"


def parse_validation_message(message: str) -> tuple[str, list[tuple[str, str, str]]] | None:
    """(validator, [(kind, path, msg)]) parsed from a validator's error text."""
    if "validation error" in message:
        errs = _parse_pydantic(message)
        if errs:
            return "pydantic", errs
    errs = _parse_jsonschema(message)
    if errs:
        return "jsonschema", errs
    mode = json_error_mode(message)
    if mode is not None:
        return "json", [(mode, "", message)]
    return None


# --- the output -----------------------------------------------------------------

_REFUSAL = re.compile(
    r"^\W{0,3}(?:I['’]?m (?:sorry|afraid|unable|not able)|I am (?:sorry|afraid|unable|not able)"
    r"|Sorry\b|I apologi[sz]e|Unfortunately,? I\b"
    r"|I (?:can(?:no|['’])t|won['’]t|will not|must decline"
    r"|do not feel comfortable|don['’]t feel comfortable)|As an AI\b|I['’]m not comfortable"
    r"|My apologies)",
    re.I,
)


def looks_like_refusal(text: str) -> bool:
    """The text opens like a refusal ("I'm sorry, but I can't ...")."""
    return _REFUSAL.match(text[:200].lstrip()) is not None


def inspect_output(output: str) -> str:
    """What the model output looks like, for a JSON-expecting call site.

    One of the ``OutputShape`` names: a refusal (an opening this module's
    detector knows, the output being no JSON) or what ``json_shape`` says.
    """
    text = output.strip()
    if text and not text.startswith("```") and text[0] not in "{[" and looks_like_refusal(text):
        return OutputShape.REFUSAL
    return json_shape(output)
