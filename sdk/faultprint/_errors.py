"""What an exception says about a failed model call: category, code, status."""

from __future__ import annotations

import os
import sys
import traceback
from collections import deque
from typing import Any

from faultprint._naming import code_module

__all__ = [
    "InvalidOutputError",
    "classify_exception",
    "content_free_exception",
    "exception_chain",
    "exception_type_name",
    "interrupts_call",
]


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
    return f"{code_module(module)}.{cls.__qualname__}"


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


#: the HTTP clients (and their transports) the providers' libraries use
_HTTP_CLIENTS = frozenset({"httpx", "httpx2", "httpcore", "httpcore2"})
#: their errors for a connection that failed or broke (not timeouts)
_TRANSPORT_ERRORS = frozenset(
    {
        "ConnectError",
        "ReadError",
        "WriteError",
        "CloseError",
        "NetworkError",
        "ProtocolError",
        "RemoteProtocolError",
        "LocalProtocolError",
    }
)


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
    if isinstance(exc, BaseExceptionGroup):
        return _classify_group(exc)
    cls = type(exc)
    name = cls.__name__
    module = cls.__module__ or ""
    status = getattr(exc, "status_code", None)
    root = module.split(".", 1)[0]
    provider = root in ("openai", "anthropic")
    if (
        isinstance(status, int)
        and status >= 400
        and (provider or root in _HTTP_CLIENTS or hasattr(exc, "response"))
    ):
        # before the name: a provider's GatewayTimeoutError keeps its status
        if status in (408, 504):
            return "timeout", _provider_code(exc), status
        return "api_error", _provider_code(exc), status
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return "timeout", None, None
    if root in _HTTP_CLIENTS and name in _TRANSPORT_ERRORS:
        # The connection failed under the provider's client: raised as the
        # library's APIConnectionError before a response, as the HTTP
        # client's own error while a stream is read. One failure mode.
        return "api_error", "connection_error", None
    if provider:
        if "Connection" in name:
            return "api_error", "connection_error", None
        code = _error_event_code(exc)
        if code is not None:
            return "api_error", code, None
    return "exception", None, None


def _classify_group(group: BaseExceptionGroup[Any]) -> tuple[str, str | None, int | None]:
    """An exception group's classification: its members', when they agree.

    A group is how ``asyncio.TaskGroup`` (and trio's nurseries) pass on what
    their tasks raised, not a failure mode of its own: a rate limit (or a
    fan-out of them) is an ``api_error`` however it arrived. Members that
    disagree (a rate limit and a bug) make the group an ``exception``.
    """
    found: tuple[str, str | None, int | None] | None = None
    for member in _group_members(group):
        kind = classify_exception(member)
        if found is None:
            found = kind
        elif kind != found:
            return "exception", None, None
    return found or ("exception", None, None)


#: files named by ``frame_modules``: the innermost frames, more than the
#: collector reads
_MAX_NAMED_FRAMES = 32


def frame_modules(exc: BaseException) -> tuple[str, ...]:
    """``"module path"`` for each file of ``exc``'s traceback, innermost last.

    The module is the one the file's code runs as: ``shop.orders`` for
    ``/srv/app/shop/orders.py``, ``worker`` for a ``worker.py`` run as a
    script (``__main__``; under ``python -m`` the name it was run by). A
    traceback names files by path only, and a path says less: whether
    ``/home/ci/shop/worker.py`` is module ``shop.worker`` or a script beside
    others in a checkout named ``shop`` depends on ``sys.path``, which the
    collector cannot see.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    found: dict[str, str] = {}
    for frame in frames[-_MAX_NAMED_FRAMES:]:
        path = frame.f_code.co_filename
        if path in found:
            continue
        names = frame.f_globals
        name = names.get("__name__")
        if name == "__main__":
            spec = names.get("__spec__")
            name = getattr(spec, "name", None) or os.path.splitext(os.path.basename(path))[0]
        if isinstance(name, str) and name:
            found[path] = name
    return tuple(f"{name} {path}" for path, name in found.items())


def failure_subject(exc: BaseException) -> BaseException:
    """The exception a failure is described by: ``exc``, or the one exception
    an exception group holds (through groups of one).

    A task group passing on its one failed task's rate limit or timeout is
    that failure, with that error type and message: the same failure mode,
    one fingerprint, as when the call raised it directly.
    """
    if isinstance(exc, BaseExceptionGroup):
        members = _group_members(exc)
        if len(members) == 1:
            return members[0]
    return exc


def _group_members(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """The exceptions ``group`` holds, through the groups it holds (bounded)."""
    members: list[BaseException] = []
    pending: deque[BaseException] = deque(group.exceptions[:_MAX_EXCEPTIONS])
    visited = 0
    while pending and visited < _MAX_EXCEPTIONS:
        visited += 1
        member = pending.popleft()
        if isinstance(member, BaseExceptionGroup):
            pending.extend(member.exceptions[:_MAX_EXCEPTIONS])
        else:
            members.append(member)
    return members


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


def interrupts_call(exc: BaseException) -> bool:
    """Whether ``exc`` ended the call without saying anything about the model.

    Exceptions that are not ``Exception`` subclasses are how Python stops
    work rather than report an error: asyncio's ``CancelledError`` (a task
    cancelled, a caller's timeout around the call), ``KeyboardInterrupt``,
    ``SystemExit``, ``GeneratorExit``, trio's ``Cancelled``. The caller
    abandoned the call; OpenTelemetry, for the same reason, records none of
    them as an error.
    """
    return not isinstance(exc, Exception)


# --- exceptions that quote the model's output ------------------------------------

#: pydantic error kinds whose message can quote the input: a custom
#: validator's own words, the tag a discriminated union found, an attribute
#: or a character of the value. Without content capture the fixed part of
#: the kind's wording stands in for the message.
_QUOTING_PYDANTIC_KINDS = {
    "value_error": "Value error",
    "assertion_error": "Assertion failed",
    "union_tag_invalid": "Input tag does not match any of the expected tags",
    "no_such_attribute": "Object has no such attribute",
    "get_attribute_error": "Error extracting attribute",
    "iteration_error": "Error iterating over object",
    "mapping_type": "Input should be a valid mapping",
    "bytes_invalid_encoding": "Data should be valid in its encoding",
    "datetime_object_invalid": "Invalid datetime object",
    "timezone_offset": "Timezone offset is not the one required",
    "uuid_parsing": "Input should be a valid UUID",
}
#: pydantic's own error kinds (read once): any other kind is a
#: ``PydanticCustomError`` whose message the application wrote
_pydantic_kinds: frozenset[str] | None = None

#: chained exceptions followed when a traceback is written without content
_MAX_CHAIN = 16
#: exceptions followed through exception groups: each failed task of a
#: task group (a fan-out of model calls, all rate limited) is one
_MAX_EXCEPTIONS = 256


def _validation_error_class() -> Any:
    # pydantic (v2) raises pydantic_core's ValidationError. Looked up, not
    # imported: when pydantic_core was never imported, none can exist.
    core = sys.modules.get("pydantic_core")
    return getattr(core, "ValidationError", None) if core is not None else None


def _builtin_pydantic_kinds() -> frozenset[str]:
    global _pydantic_kinds
    if _pydantic_kinds is None:
        try:
            import typing

            from pydantic_core.core_schema import ErrorType

            _pydantic_kinds = frozenset(typing.get_args(ErrorType))
        except Exception:
            _pydantic_kinds = frozenset()
    return _pydantic_kinds


def _validation_message(exc: Any) -> str:
    """A pydantic ``ValidationError``'s text as pydantic writes it, without the input.

    Same layout (``N validation errors for Title``, each error's location,
    then its message and ``[type=kind]``), so that what reads pydantic's
    messages (the collector's fingerprinting) reads this one alike; no
    ``input_value``, no documentation URL, and messages that can quote the
    input replaced by their kind's fixed wording.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    count = exc.error_count()
    lines = [f"{count} validation error{'' if count == 1 else 's'} for {exc.title}"]
    builtin = _builtin_pydantic_kinds()
    for err in errors:
        kind = str(err.get("type", "invalid"))
        loc = ".".join(str(part) for part in err.get("loc", ()))
        if kind in _QUOTING_PYDANTIC_KINDS:
            msg = _QUOTING_PYDANTIC_KINDS[kind]
        elif builtin and kind not in builtin:
            msg = kind  # a custom error: its message is the application's
        else:
            msg = str(err.get("msg", ""))
        if loc:
            lines.append(loc)
        lines.append(f"  {msg} [type={kind}]")
    return "\n".join(lines)


def _schema_error_class() -> Any:
    # jsonschema's ValidationError, looked up as pydantic's is: when
    # jsonschema.exceptions was never imported, none can exist.
    module = sys.modules.get("jsonschema.exceptions")
    return getattr(module, "ValidationError", None) if module is not None else None


#: what a jsonschema message says in place of the instance it rejected
_VALUE = "<value>"


def _schema_only_messages(keyword: str, value: Any) -> set[str]:
    """Messages jsonschema writes for ``keyword`` from the schema alone.

    ``value`` is the keyword's value in the schema. A message found here
    quotes the schema (a required property's name, the constant expected),
    never the instance.
    """
    if keyword == "required" and isinstance(value, list):
        return {f"{prop!r} is a required property" for prop in value}
    if keyword in ("dependentRequired", "dependencies") and isinstance(value, dict):
        # a property's dependencies: a list of names (draft 3: one name);
        # a schema instead is validated as such, with its own messages
        names = {p: [d] if isinstance(d, str) else d for p, d in value.items()}
        return {
            f"{each!r} is a dependency of {prop!r}"
            for prop, deps in names.items()
            if isinstance(deps, list)
            for each in deps
        }
    if keyword == "const":
        return {f"{value!r} was expected"}
    if keyword == "maxContains":
        return {f"Too many items match the given schema (expected at most {value})"}
    return set()


def _schema_suffixes(keyword: str, value: Any, schema: Any) -> tuple[str, ...]:
    """What jsonschema writes after ``{instance!r} `` for ``keyword``, from the schema.

    Each keyword's possible wordings (jsonschema's, every draft's): the
    message is rewritten only when it ends with one of them, so a wording
    not known here (a custom keyword, another jsonschema version) falls back
    to naming the keyword, never to the message.
    """
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        return ("is not of type " + ", ".join(repr(t) for t in types),)
    if keyword in ("minimum", "exclusiveMinimum"):
        return (
            f"is less than the minimum of {value!r}",
            f"is less than or equal to the minimum of {value!r}",
        )
    if keyword in ("maximum", "exclusiveMaximum"):
        return (
            f"is greater than the maximum of {value!r}",
            f"is greater than or equal to the maximum of {value!r}",
        )
    if keyword == "additionalProperties" and isinstance(schema, dict):
        patterns = ", ".join(repr(p) for p in sorted(schema.get("patternProperties") or ()))
        return (
            f"does not match any of the regexes: {patterns}",
            f"do not match any of the regexes: {patterns}",
        )
    fixed: dict[str, tuple[str, ...]] = {
        "enum": (f"is not one of {value!r}",),
        "pattern": (f"does not match {value!r}",),
        "format": (f"is not a {value!r}",),
        "multipleOf": (f"is not a multiple of {value}",),
        "minLength": ("should be non-empty", "is too short"),
        "minItems": ("should be non-empty", "is too short"),
        "maxLength": ("is expected to be empty", "is too long"),
        "maxItems": ("is expected to be empty", "is too long"),
        "minProperties": ("should be non-empty", "does not have enough properties"),
        "maxProperties": ("is expected to be empty", "has too many properties"),
        "uniqueItems": ("has non-unique elements",),
        "anyOf": ("is not valid under any of the given schemas",),
        "oneOf": ("is not valid under any of the given schemas",),
        "contains": ("does not contain items matching the given schema",),
        "not": (f"should not be valid under {value!r}",),
    }
    return fixed.get(keyword, ())


def _schema_error_line(err: Any, keyword: str) -> str | None:
    """jsonschema's message for ``err`` without the instance; None when unknown."""
    message = err.message
    if not isinstance(message, str):
        return None
    if message in _schema_only_messages(keyword, err.validator_value):
        return message
    if keyword == "additionalProperties" and message.startswith(
        "Additional properties are not allowed ("
    ):
        # the properties it names are the output's keys
        return f"Additional properties are not allowed ({_VALUE} unexpected)"
    for suffix in _schema_suffixes(keyword, err.validator_value, err.schema):
        if message.endswith(f" {suffix}"):
            return f"{_VALUE} {suffix}"
    return None


def _schema_message(err: Any) -> str:
    """A jsonschema ``ValidationError``'s text as jsonschema writes it, without the instance.

    Same layout (the message, ``Failed validating 'keyword' in schema[...]``
    with the schema, ``On instance[...]``), so that what reads jsonschema's
    messages (the collector's fingerprinting) reads this one alike; the
    message with ``<value>`` where the instance was (``<value> is not of
    type 'integer'``), or naming only the keyword and the path when its
    wording is not known; the instance itself in no form. In the path, list
    indices and the keys the schema does not name become ``*``.
    """
    # Imported here: rarely needed, and ``import faultprint`` loads neither.
    import pprint

    from faultprint._checks import generalise_path, schema_named_path

    keyword = err.validator
    false_schema = keyword is None and err.schema is False  # "items": false
    if not isinstance(keyword, str) and not false_schema:
        # Made by hand (ValidationError("...")): the words are the application's.
        return "validation failed"
    path = schema_named_path(err.relative_path, err.relative_schema_path)
    if false_schema:
        line = f"False schema does not allow {_VALUE}"
    else:
        line = _schema_error_line(err, keyword) or (
            f"{keyword} validation failed" + (f" at {generalise_path(path)}" if path else "")
        )
    schema_path = list(err.relative_schema_path)[:-1]
    in_schema = "schema" + "".join(f"[{p!r}]" for p in schema_path)
    on_instance = "instance" + "".join("[*]" if p == "*" else f"[{p!r}]" for p in path)
    schema = pprint.pformat(err.schema, width=72, sort_dicts=False)
    return (
        f"{line}\n\n"
        f"Failed validating {keyword!r} in {in_schema}:\n"
        + "".join(f"    {row}\n" for row in schema.splitlines())
        + f"\nOn {on_instance}:\n    {_VALUE}"
    )


def _messages(chain: list[BaseException], pydantic_error: Any, schema_error: Any) -> list[str]:
    """The text to write for each exception of ``chain``, none quoting the output."""
    # A format check's own exception ("Invalid isoformat string: '...'") is
    # the cause of jsonschema's error, and quotes the instance as well.
    quoted_causes = {
        id(e.cause)
        for e in chain
        if schema_error is not None
        and isinstance(e, schema_error)
        and isinstance(e.cause, BaseException)
    }
    texts = []
    for e in chain:
        if pydantic_error is not None and isinstance(e, pydantic_error):
            texts.append(_validation_message(e))
        elif schema_error is not None and isinstance(e, schema_error):
            texts.append(_schema_message(e))
        elif id(e) in quoted_causes:
            texts.append("")
        else:
            try:
                texts.append(str(e))
            except Exception:
                texts.append(f"<unprintable {type(e).__name__}>")
    return texts


def exception_chain(exc: BaseException | None, *, suppressed: bool = False) -> list[BaseException]:
    """``exc``, the exceptions it was raised from or while handling, and the
    members of the exception groups among them, with theirs (bounded).

    ``exc``'s own chain comes first, raised last first, then the members of
    groups, level by level: a provider error that ended a call through an
    ``asyncio.TaskGroup`` (an ``ExceptionGroup`` holding it) is part of
    what ended it, as one the application raised ``from`` it is. A context
    hidden by ``raise … from None`` is left out, as ``traceback`` leaves it
    out, unless ``suppressed``: it still caused ``exc``.
    """
    found: list[BaseException] = []
    seen: set[int] = set()
    pending: deque[BaseException] = deque()
    if exc is not None:
        pending.append(exc)
    while pending and len(found) < _MAX_EXCEPTIONS:
        for current in _raised_chain(pending.popleft(), suppressed):
            if id(current) in seen or len(found) >= _MAX_EXCEPTIONS:
                break
            found.append(current)
            seen.add(id(current))
            if isinstance(current, BaseExceptionGroup):
                pending.extend(current.exceptions[:_MAX_EXCEPTIONS])
    return found


def _raised_chain(exc: BaseException, suppressed: bool = False) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling: what
    ``traceback`` writes as one report, without the members of a group."""
    found: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and len(found) < _MAX_CHAIN and id(current) not in seen:
        found.append(current)
        seen.add(id(current))
        if current.__cause__ is not None:
            current = current.__cause__
        elif suppressed or not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return found


def content_free_exception(exc: BaseException) -> tuple[str, str] | None:
    """(message, stack trace) to record for ``exc`` with content capture off.

    None when ``str(exc)`` and the usual trace may be recorded as they are:
    no exception of the chain (an exception group's members included) is a
    validator's that quotes the value it rejected. A pydantic
    ``ValidationError`` does (``input_value='Jane Doe, 12 Main St'``): its
    message is rewritten without the input (its errors' kinds, locations
    and messages). So does a jsonschema ``ValidationError``
    (``'Jane Doe, 12 Main St' is not of type 'integer'``, then ``On
    instance``: the whole instance): its message keeps the keyword, the
    generalised path and the schema, with ``<value>`` for the instance. The
    trace, which otherwise repeats them, is rewritten too; its frames are
    those ``traceback`` writes, without the members of an exception group
    (the group's own frames and message stay). Should writing them fail,
    the exception's type alone is recorded, never its text.
    """
    pydantic_error, schema_error = _validation_error_class(), _schema_error_class()
    quoting = tuple(c for c in (pydantic_error, schema_error) if c is not None)
    if not quoting:
        return None
    if not any(isinstance(e, quoting) for e in exception_chain(exc)):
        return None
    # Written without the members of exception groups: the trace keeps the
    # group's own frames and message, the members' may quote the value.
    chain = _raised_chain(exc)
    try:
        texts = _messages(chain, pydantic_error, schema_error)
        return texts[0], _trace(chain, texts)
    except Exception:
        return exception_type_name(exc), ""


def _trace(chain: list[BaseException], texts: list[str]) -> str:
    """The stack trace of ``chain`` (raised last first), as ``traceback`` writes it.

    Each exception's text is the one of ``texts`` at its position in ``chain``.
    """
    parts: list[str] = []
    for i, (e, text) in enumerate(reversed(list(zip(chain, texts, strict=True)))):
        if i:
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if e.__cause__ is not None
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        if e.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(e.__traceback__))
        name = exception_type_name(e)
        parts.append(f"{name}: {text}\n" if text else f"{name}\n")
    return "".join(parts)
