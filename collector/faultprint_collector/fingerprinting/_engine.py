"""Grouping strategies per failure category, and the hashes.

A fingerprint is xxh3-64 over a canonical encoding of *components*: named
values, each a string or a list of strings, in a fixed order, prefixed by the
strategy version (see ``_hashes``). The coarse fingerprint uses the call site, the category and
the ``kind`` (error type, provider error code, validator, tool reason); the
fine one adds what tells failure modes of the same kind apart (template,
validation errors and paths, in-app frames). What is never a component:
model, model version, release, line numbers, ids, numbers, user content.

Changing what any strategy produces changes ``STRATEGY``, so stored
fingerprints keep their meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import xxhash

from ._category import category_from_fields, normalise_category
from ._frames import in_app_frames
from ._provider import ProviderError, code_from_prose, from_body, parse_provider_error
from ._template import template_of
from ._validation import (
    OutputShape,
    error_items,
    errors_from_detail,
    inspect_output,
    json_error_mode,
    parse_validation_message,
)

__all__ = ["STRATEGY", "FailureRecord", "Fingerprint", "explain", "fingerprint", "line_fingerprint"]

#: name of the grouping strategy; a change of algorithm is a new strategy
STRATEGY = "v7"

Components = dict[str, Any]


@dataclass(slots=True)
class FailureRecord:
    """Everything the engine may look at for one failed call.

    ``output`` is None or ``""`` when the output was not captured (an empty
    output is its own category, ``empty_output``). ``category`` may be empty:
    it is then inferred from the other fields.
    """

    category: str = "exception"
    error_type: str = ""
    message: str = ""
    stacktrace: str = ""
    #: path → module each traceback file runs as, when the SDK says (else
    #: frames are named by their path, see ``module_of``)
    modules: dict[str, str] = field(default_factory=dict)
    finish_reason: str = ""
    output: str | None = None
    call_site: str = ""
    provider: str = ""
    model: str = ""
    status_code: int = 0
    error_code: str = ""
    #: structured detail from the SDK (``faultprint.failure.detail``), parsed JSON
    detail: Any = None
    #: the application function that made the call (``code.function.name``),
    #: when the call site names the provider's endpoint
    caller: str = ""


@dataclass(slots=True)
class Fingerprint:
    """The result: fine and coarse hashes, the template, and why."""

    fine: int
    coarse: int
    template: str
    strategy: str = STRATEGY
    components: dict[str, Any] = field(default_factory=dict)
    #: the category after refinement (a JSON error whose output is a refusal is a refusal)
    category: str = ""
    #: the error type without its module (``RateLimitError``)
    error_type: str = ""

    @property
    def hex(self) -> str:
        """The fine fingerprint as 16 lowercase hex digits."""
        return f"{self.fine:016x}"

    @property
    def coarse_hex(self) -> str:
        """The coarse fingerprint as 16 lowercase hex digits."""
        return f"{self.coarse:016x}"


# --- hashing --------------------------------------------------------------------

_COARSE_KEYS = ("call_site", "category", "kind")


US = "\x1f"


def _list_part(key: str, values: list[str]) -> str:
    return US.join([key, f"[{len(values)}]", *[f"{len(x)}:{x}" for x in values]])


#: memoised hashes of components made only of strings (the message path):
#: the same mode recurs, so most records meet their hashes here
_HASH_CACHE_MAX = 16384
_hash_cache: dict[tuple[tuple[str, Any], ...], tuple[int, int]] = {}


def clear_caches() -> None:
    """Forget memoised hashes, error types and provider errors (benchmarks, tests)."""
    _hash_cache.clear()
    _short_type.cache_clear()
    parse_provider_error.cache_clear()


def _hashes(c: Components) -> tuple[int, int]:
    # Components with a list value (frames, errors) are unhashable and skip the
    # cache; the result is the same either way.
    try:
        key = tuple(c.items())
        hit = _hash_cache.get(key)
    except TypeError:
        return _encode_and_hash(c)
    if hit is None:
        if len(_hash_cache) >= _HASH_CACHE_MAX:
            _hash_cache.clear()  # bounded; dropped whole, cheaper than eviction
        hit = _hash_cache[key] = _encode_and_hash(c)
    return hit


def _encode_and_hash(c: Components) -> tuple[int, int]:
    # Canonical encoding: the strategy, then per component its key, the length
    # of its value and the value (a list: its count in brackets, then
    # "length:item" per item), all joined by the unit separator. Keys are
    # constants in the strategy's fixed order and every value is
    # length-prefixed, so the encoding is unambiguous for any text without
    # escaping. The coarse level hashes the first three components
    # (call_site, category, kind) under its own prefix.
    parts = [
        f"{k}\x1f{len(v)}\x1f{v}" if v.__class__ is str else _list_part(k, v) for k, v in c.items()
    ]
    fine = f"{STRATEGY}\x1f{US.join(parts)}".encode("utf-8", "surrogatepass")
    coarse = f"coarse\x1f{STRATEGY}\x1f{US.join(parts[:3])}".encode("utf-8", "surrogatepass")
    return xxhash.xxh3_64_intdigest(fine), xxhash.xxh3_64_intdigest(coarse)


# --- helpers --------------------------------------------------------------------

_EXC_LINE = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|"
    r"Timeout|Failure|[A-Z]\w*))(?::[ \t]*(?P<msg>.*))?$"
)


@lru_cache(maxsize=4096)
def _short_type(error_type: str) -> str:
    # `openai.RateLimitError` and `RateLimitError` are one type; `<class 'x.Y'>` too
    t = error_type.strip().strip("<>'\"")
    if t.startswith("class "):
        t = t[6:].strip("'\" ")
    return t.rsplit(".", 1)[-1]


def _from_traceback_tail(stacktrace: str) -> tuple[str, str]:
    """(type, message) from the last line of traceback text."""
    for line in reversed(stacktrace[-4000:].rstrip().splitlines()[-20:]):
        line = line.strip()
        if not line or line.startswith(("File ", "^", "~")):
            continue
        m = _EXC_LINE.match(line)
        if m is not None:
            return m.group("type"), m.group("msg") or ""
        return "", ""
    return "", ""


def _without_model(message: str, model: str) -> str:
    # The model name can be a plain word ("sonnet"); never let it into a
    # template. A name holding a digit (gpt-4o) is masked by the token rules
    # anyway; the rest are masked here, whole tokens only, so model "sonnet"
    # leaves "sonnets" alone.
    if model not in message:  # the common case, decided without a cache lookup
        return message
    pattern = _model_pattern(model)
    return pattern.sub("<*>", message) if pattern is not None else message


@lru_cache(maxsize=1024)
def _model_pattern(model: str) -> re.Pattern[str] | None:
    if len(model) < 3 or any(c.isdigit() for c in model):
        return None
    return re.compile(rf"(?<![\w.:/@+#-]){re.escape(model)}(?![\w/@+#-]|[.:]\w)")


# --- strategies -----------------------------------------------------------------


# error types that name a class of problems rather than one problem
_GENERIC_PROVIDER_TYPES = frozenset(
    {
        "",
        "error",
        "api_error",
        "invalid_request_error",
        "server_error",
        "bad_request",
        "invalid_argument",
        "failed_precondition",
        "internal",
        "unknown",
    }
)


def _api_error(r: FailureRecord, msg: str, comps: Components) -> str:
    pe: ProviderError | None = None
    if isinstance(r.detail, dict) and isinstance(r.detail.get("error"), dict):
        pe = from_body(r.detail, r.status_code)
    if pe is None and msg:
        pe = parse_provider_error(msg)
    status = r.status_code or (pe.status if pe else 0)
    code = r.error_code or (pe.code if pe else "")
    etype = pe.error_type if pe else ""
    prose = pe.message if pe is not None else msg
    if prose and not (code and etype):
        # A body the library dropped, leaving its message: a well-known one
        # names the body's code and type, which the SDK (reading the
        # exception) records.
        known_code, known_type = code_from_prose(prose)
        if known_code and code in ("", known_code):
            code, etype = known_code, etype or known_type
    if not code or code == etype:
        # One fact, stored in one place: a provider without codes (anthropic),
        # or an error without one, is named by its type, which recorders put
        # in either place (the SDK and other instrumentations as the code,
        # the body alone as the type).
        code, etype = code or etype, ""
    # A specific error code or type names the mode (overloaded_error,
    # rate_limit_exceeded), whatever the HTTP status said or whether there was
    # one: the same error sent inside a stream (an HTTP 200) is the same mode.
    # Only a generic one (anthropic's invalid_request_error covers many
    # distinct problems) needs the status and lets the prose decide, whether
    # it came as the type or as the code: a provider without codes
    # (anthropic), or an error without one (many of openai's 400s), is
    # recorded with its type as the code.
    generic = code in _GENERIC_PROVIDER_TYPES and etype in _GENERIC_PROVIDER_TYPES
    if status and generic:
        comps["kind"] = f"http_{status}:{code}" if code else f"http_{status}"
    else:
        comps["kind"] = code
    comps["status"] = str(status) if status and generic else ""
    comps["error_code"] = code
    comps["provider_type"] = etype
    if generic:
        comps["template"] = template_of(prose) if prose else ""
    return str(comps.get("template", ""))


def _timeout(r: FailureRecord, msg: str, comps: Components, etype: str) -> str:
    comps["kind"] = etype or "timeout"
    template = template_of(msg) if msg else ""
    comps["template"] = template
    return template


_CHAR_POS = re.compile(r"\(char (\d+)\)")
#: an error this close to the end of the output means the parser ran out of input
_NEAR_END = 3


def _json_exception_kind(msg: str, output: str | None) -> str:
    """The mode of a JSON decode error raised by application code, from its output.

    Python words a cut-off document differently depending on where the cut
    falls ("Unterminated string", "Expecting ',' delimiter", "Expecting
    value", ...), and words prose-wrapped JSON like one of those cuts
    ("Expecting value: line 1 column 1"). The output tells them apart, so the
    identity is the output's shape, not the message. "" when the message is
    not a JSON decode error, the output was not captured, or the output does
    not decide (malformed JSON keeps the message template).
    """
    if not output or not msg:
        return ""
    mode = json_error_mode(msg)
    if mode is None:
        return ""
    if mode == "trailing_data":
        return "json_extra_data"
    shape = inspect_output(output)
    if shape in (OutputShape.REFUSAL, OutputShape.EMPTY):
        return shape  # re-categorised by the caller
    if shape == OutputShape.TRUNCATED_JSON:
        return "json_truncated"
    if shape == OutputShape.WRAPPED_JSON:
        return "json_wrapped"
    text = output.rstrip()
    m = _CHAR_POS.search(msg)
    if m is not None and text[:1] in ("{", "[") and int(m.group(1)) >= len(text) - _NEAR_END:
        return "json_truncated"
    if shape == OutputShape.PROSE:
        return "json_prose"
    return ""


def _exception(r: FailureRecord, msg: str, comps: Components, etype: str) -> str:
    comps["kind"] = etype
    json_kind = _json_exception_kind(msg, r.output)
    if json_kind in (OutputShape.REFUSAL, OutputShape.EMPTY):
        return json_kind  # re-categorised by the caller
    if json_kind:
        comps["kind"] = json_kind
        comps["frames"] = _frames_of(r)
        return ""
    parsed = parse_validation_message(msg) if msg and _maybe_validation(msg) else None
    template = ""
    if parsed is not None and parsed[0] != "json":
        validator, errs = parsed
        comps["validator"] = validator
        comps["errors"] = error_items(errs)
    else:
        template = template_of(msg) if msg else ""
        comps["template"] = template
    comps["frames"] = _frames_of(r)
    return template


# Top-level packages that are never the application's, whatever the call site says.
_NOT_APP = frozenset({"faultprint", "openai", "anthropic"})


def _app_package(r: FailureRecord) -> str:
    """The application's top-level package, from a call site that is a module
    path (``shopapp.extract.extract_order``, as ``@observe`` names it), or for
    a provider endpoint (``openai.chat``, what client integrations and other
    instrumentations name) from the caller the SDK records; "" for a name the
    application chose."""
    site = r.call_site
    provider = r.provider
    if provider and (site == provider or site.startswith(provider + ".")):
        site = r.caller
    top, dot, _ = site.partition(".")
    if not dot or not top.isidentifier() or top in _NOT_APP:
        return ""
    return top


def _frames_of(r: FailureRecord) -> list[str]:
    if not r.stacktrace:
        return []
    return in_app_frames(r.stacktrace, app_package=_app_package(r), modules=r.modules)


def _maybe_validation(msg: str) -> bool:
    return (
        "validation error" in msg
        or "Failed validating" in msg
        or "is a required property" in msg
        or "is not of type" in msg
    )


def _json_mode_from_output(r: FailureRecord) -> str:
    # "" is treated as "not captured": ingest cannot tell the two apart, and a
    # genuinely empty output is classified empty_output before validation.
    return inspect_output(r.output) if r.output else ""


def _invalid_output(r: FailureRecord, msg: str, comps: Components, etype: str) -> str:
    summary = errors_from_detail(r.detail)
    validator = ""
    errors: list[str] = []
    json_mode = ""
    template = ""
    if summary is not None:
        validator, items = summary
        errors = list(items)
    elif msg:
        parsed = parse_validation_message(msg)
        if parsed is not None:
            validator, errs = parsed
            if validator == "json":
                json_mode = errs[0][0]
            else:
                for item in error_items(errs):
                    if item.startswith("json:"):
                        json_mode = item[5:]
                    else:
                        errors.append(item)
        else:
            template = template_of(msg)
    if isinstance(r.detail, dict) and isinstance(r.detail.get("validator"), str) and not validator:
        validator = r.detail["validator"]
    # Did the output break JSON, and how? The error alone cannot tell a fenced
    # answer from a refusal; the output can.
    if not errors:
        shape = _json_mode_from_output(r)
        if shape and shape != OutputShape.VALID_JSON:
            if shape in (OutputShape.REFUSAL, OutputShape.EMPTY):
                return shape  # re-categorised by the caller
            json_mode = shape
            template = ""
    comps["kind"] = validator or ("json" if json_mode else etype)
    comps["validator"] = validator
    comps["errors"] = sorted(set(errors))
    comps["json_mode"] = json_mode
    if template:
        comps["template"] = template
    return template


_TOOL_NAME = re.compile(
    r"\b(?:tool|function)[ :]+['\"`]?(?P<name>[A-Za-z_][\w.-]{0,63})['\"`]?", re.I
)
_UNKNOWN_TOOL = re.compile(
    r"\b(?:unknown|unexpected|undefined|unsupported|no such|not found|does not exist|"
    r"not a valid|hallucinated)\b",
    re.I,
)


def _tool_error(r: FailureRecord, msg: str, comps: Components) -> str:
    detail = r.detail if isinstance(r.detail, dict) else {}
    reason = detail.get("reason") if isinstance(detail.get("reason"), str) else ""
    tool = detail.get("tool") if isinstance(detail.get("tool"), str) else ""
    if not reason:
        reason = "unknown_tool" if _UNKNOWN_TOOL.search(msg[:300]) else "invalid_arguments"
    if not tool and msg:
        m = _TOOL_NAME.search(msg[:300])
        tool = m.group("name") if m else ""
    comps["kind"] = reason
    # An unknown tool's name is invented by the model: unbounded, not identity.
    # A declared tool with bad arguments is identified by the tool and the errors.
    comps["tool"] = tool if reason != "unknown_tool" else ""
    errors: list[str] = []
    summary = errors_from_detail(detail)
    if summary is not None:
        errors = list(summary[1])
    elif msg and reason != "unknown_tool":
        parsed = parse_validation_message(msg)
        if parsed is not None:
            errors = error_items(parsed[1])
    comps["errors"] = errors
    return ""


#: what a mode whose message is not its identity is shown as
_DESCRIPTIONS = {
    "json_truncated": "JSON output cut off before its end",
    "json_wrapped": "JSON output wrapped in other text",
    "json_prose": "prose where JSON was expected",
    "json_extra_data": "JSON output followed by other text",
    "refusal": "the model refused",
    "empty_output": "empty output",
    "truncation": "output cut off at the length limit",
    "content_filter": "output blocked by the content filter",
    "unknown_tool": "call of a tool that does not exist",
    "invalid_arguments": "tool called with invalid arguments",
}


#: what an output that is no JSON document looks like (``faultprint.json_shape``)
_SHAPES = {
    OutputShape.TRUNCATED_JSON: _DESCRIPTIONS["json_truncated"],
    OutputShape.WRAPPED_JSON: _DESCRIPTIONS["json_wrapped"],
    OutputShape.PROSE: _DESCRIPTIONS["json_prose"],
    OutputShape.MALFORMED_JSON: "malformed JSON output",
}


def _described(comps: Components) -> str:
    """A readable line for a mode that has no message template (not hashed:
    what the engine shows where a template would be).

    A provider error named by its code, a JSON output of a known shape, a
    refusal: their messages vary or say nothing, and are not their identity.
    """
    category, kind = str(comps.get("category", "")), str(comps.get("kind", ""))
    if category == "api_error" and kind:
        return f"provider error {kind}"
    text = _DESCRIPTIONS.get(kind) or _DESCRIPTIONS.get(category) or ""
    # an output that is no JSON, by its shape: seen in the captured output,
    # or named by the SDK's check (its one error)
    errors = comps.get("errors")
    shape = comps.get("json_mode") or (
        errors[0] if isinstance(errors, list) and len(errors) == 1 else ""
    )
    text = text or _SHAPES.get(str(shape), "")
    if category == "tool_error" and comps.get("tool"):
        text = f"{text or 'tool error'}: {comps['tool']}"
    if text:
        return text
    if isinstance(errors, list) and errors:
        shown = ", ".join(str(e) for e in errors[:3])
        return f"{kind or category}: {shown}{' …' if len(errors) > 3 else ''}"
    return f"{category}: {kind}" if kind and category else kind or category


def fingerprint(record: FailureRecord) -> Fingerprint:
    """Compute the fingerprint of one failed call (pure, deterministic)."""
    r = record
    msg = r.message
    etype = r.error_type
    if r.stacktrace and not (etype and msg):
        tb_type, tb_msg = _from_traceback_tail(r.stacktrace)
        etype = etype or tb_type
        msg = msg or tb_msg
    etype = _short_type(etype) if etype else ""
    if r.model and msg:
        msg = _without_model(msg, r.model)
    category = normalise_category(r.category) if r.category else ""
    if not category:
        category = category_from_fields(
            error_type=etype,
            message=msg,
            finish_reason=r.finish_reason,
            status_code=r.status_code,
            output=r.output,
            has_stacktrace=bool(r.stacktrace),
        )
    # An "exception" that is a provider HTTP error is an API error, whoever
    # classified it: one mode must not get two fingerprints by path of arrival.
    # (the Go libraries' HTTP errors open with the request's method: G, P, D)
    if category == "exception" and msg[:1] in ("E", "H", "{", "G", "P", "D"):
        pe = parse_provider_error(msg)
        if pe is not None and pe.status >= 400:
            category = "api_error"
    comps: Components = {"call_site": r.call_site.strip(), "category": category, "kind": ""}
    template = ""
    if category == "api_error":
        template = _api_error(r, msg, comps)
    elif category == "exception":
        template = _exception(r, msg, comps, etype)
        if template in (OutputShape.REFUSAL, OutputShape.EMPTY):
            category = "refusal" if template == OutputShape.REFUSAL else "empty_output"
            comps = {"call_site": comps["call_site"], "category": category, "kind": ""}
            template = ""
    elif category == "timeout":
        template = _timeout(r, msg, comps, etype)
    elif category == "invalid_output":
        template = _invalid_output(r, msg, comps, etype)
        if template in (OutputShape.REFUSAL, OutputShape.EMPTY):
            category = "refusal" if template == OutputShape.REFUSAL else "empty_output"
            comps = {"call_site": comps["call_site"], "category": category, "kind": ""}
            template = ""
    elif category == "tool_error":
        template = _tool_error(r, msg, comps)
    # refusal / truncation / empty_output / content_filter: the call site and
    # the category are the identity; the wording of a refusal is not.
    fine, coarse = _hashes(comps)
    return Fingerprint(
        fine=fine,
        coarse=coarse,
        template=template or _described(comps),
        components=comps,
        category=category,
        error_type=etype,
    )


def line_fingerprint(line: str) -> Fingerprint:
    """Fingerprint a plain log line by its template (general log grouping)."""
    template = template_of(line)
    comps: Components = {"call_site": "", "category": "log_line", "kind": "", "template": template}
    fine, coarse = _hashes(comps)
    return Fingerprint(fine=fine, coarse=coarse, template=template, components=comps)


def explain(fp: Fingerprint) -> str:
    """Grouping information: why calls share this fingerprint, one component a line."""
    lines = [
        f"fingerprint {fp.hex}  (coarse {fp.coarse_hex}, strategy {fp.strategy})",
    ]
    for key, value in fp.components.items():
        level = "coarse" if key in _COARSE_KEYS else "fine"
        if isinstance(value, list | tuple):
            shown = ", ".join(value) if value else "(none)"
        else:
            shown = value if value != "" else "(none)"
        lines.append(f"  {key:<14} {shown}  [{level}]")
    return "\n".join(lines)
