"""Reading a call's output: text, finish reasons, usage, refusals, tool calls.

``extract`` turns what a function returned (a string, an OpenAI chat
completion or Responses object, an Anthropic message, their dict forms) into
an ``Output``; ``analyze`` records it on the span and detects the failures
that do not raise. Provider objects are recognised by shape (duck typing),
so neither provider library is imported here.
"""

from __future__ import annotations

import inspect
import json
import logging
from types import AsyncGeneratorType, GeneratorType
from typing import TYPE_CHECKING, Any

from faultprint import attributes as A
from faultprint._capture import capture_enabled, captured
from faultprint._config import STATE
from faultprint.refusal import looks_like_refusal

if TYPE_CHECKING:
    from faultprint._checks import CheckError, CheckFailure

__all__ = [
    "FINAL_RESPONSE_EVENTS",
    "PENDING_STATUSES",
    "RESPONSE_STARTED_EVENTS",
    "STOPPED_SHORT",
    "Output",
    "analyze",
    "analyze_result",
    "collect_chunk",
    "extract",
    "finish_stream",
    "record",
    "record_partial_stream",
]

_log = logging.getLogger("faultprint")

# Finish / stop reasons of every dialect, lower-cased. Anthropic's
# model_context_window_exceeded stops the output where the context window
# ends: cut off, like max_tokens.
_TRUNCATION = frozenset(
    {"length", "max_tokens", "max_output_tokens", "model_length", "model_context_window_exceeded"}
)
_CONTENT_FILTER = frozenset(
    {"content_filter", "safety", "blocklist", "prohibited_content", "spii", "recitation"}
)
_REFUSAL_STOP = frozenset({"refusal"})
#: finish / stop reasons of an output cut short or refused: recorded as a
#: truncation or refusal whatever the text says
STOPPED_SHORT = _TRUNCATION | _REFUSAL_STOP
#: Anthropic content blocks that are the model's reasoning, not its output
_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
#: OpenAI Responses stream events that carry the response in its final state
FINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
#: OpenAI Responses stream events that announce the response being written
RESPONSE_STARTED_EVENTS = frozenset({"response.created", "response.queued", "response.in_progress"})
#: statuses of an OpenAI response that has not finished (background mode)
PENDING_STATUSES = frozenset({"queued", "in_progress"})


class Output:
    """What is known about a call's output."""

    __slots__ = (
        "error",
        "finish_reasons",
        "input_tokens",
        "other_output",
        "output_tokens",
        "provider_shape",
        "refusal",
        "refusal_source",
        "response_id",
        "response_model",
        "text",
        "tool_calls",
        "unfinished",
    )

    def __init__(self, text: str | None = None) -> None:
        self.text = text
        self.finish_reasons: list[str] | None = None
        self.refusal: str | None = None
        self.refusal_source = "provider_field"
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.tool_calls: list[dict[str, Any]] | None = None
        self.provider_shape = False
        #: (provider error code, message) of a response that failed on the
        #: provider's side and says so in an HTTP 200 (a failed background response)
        self.error: tuple[str, str] | None = None
        #: the response has no outcome to judge: a background response still
        #: queued or in progress, one the application cancelled, or a turn the
        #: provider paused (to be continued by the next request)
        self.unfinished = False
        #: the output holds something besides text and tool calls: audio, an
        #: image, a built-in tool's call or result, an action for the
        #: application (computer use, shell), an approval request
        self.other_output = False

    def set_usage(self, usage: Any) -> None:
        """Token counts from a usage object or dict of any provider dialect."""
        if usage is None:
            return
        fields = _fields(usage)
        for key in ("input_tokens", "prompt_tokens", "prompt_token_count"):
            value = fields.get(key)
            if type(value) is int:
                self.input_tokens = value
                break
        for key in ("output_tokens", "completion_tokens", "candidates_token_count"):
            value = fields.get(key)
            if type(value) is int:
                self.output_tokens = value
                break


class _Attributes:
    """``get`` over an object's attributes (objects without ``__dict__``)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self.obj, key, default)


#: per type: True when its instance ``__dict__`` holds its fields (pydantic
#: models, the providers' response types), False when attribute access must
#: go through the object (properties, slots, class attributes)
_FIELDS_IN_DICT: dict[type, bool] = {}


def _fields(obj: Any) -> Any:
    """A read-only ``get``-able view of a dict, pydantic model or plain object.

    pydantic models (the providers' response types) keep fields in the
    instance ``__dict__`` and unknown ones in ``__pydantic_extra__``; reading
    them there avoids pydantic's ``__getattr__``, which raises (slowly) for
    absent fields such as ``usage.input_tokens`` on an OpenAI usage object.
    """
    kind = type(obj)
    if kind is dict:
        return obj
    in_dict = _FIELDS_IN_DICT.get(kind)
    if in_dict is None:
        if isinstance(obj, dict):
            return obj
        in_dict = hasattr(kind, "__pydantic_fields__") and hasattr(obj, "__dict__")
        if len(_FIELDS_IN_DICT) < 4096:
            _FIELDS_IN_DICT[kind] = in_dict
    if not in_dict:
        return _Attributes(obj)
    extra = obj.__pydantic_extra__
    if extra:
        return {**extra, **obj.__dict__}
    return obj.__dict__


def _get(obj: Any, key: str) -> Any:
    return _fields(obj).get(key)


def _tool_call(name: Any, arguments: Any) -> dict[str, Any]:
    return {"name": name if isinstance(name, str) else None, "arguments": arguments}


# Provider bodies are read defensively: the libraries build their response
# objects without validating them, so a server speaking a provider's dialect
# (a proxy, a self-hosted model) can put any JSON value in any field.


def _seq(value: Any) -> Any:
    """``value`` when it is a list or tuple, else an empty tuple."""
    return value if isinstance(value, (list, tuple)) else ()


def _str(value: Any) -> str:
    """``value`` when it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def _index(value: Any) -> int:
    """A streamed item's index; 0 when it is not an integer."""
    return value if type(value) is int else 0


def _from_chat_completion(obj: Any, out: Output) -> None:
    texts: list[str] = []
    reasons: list[str] = []
    tools: list[dict[str, Any]] = []
    for choice in _seq(obj.get("choices")):
        choice = _fields(choice)
        reason = choice.get("finish_reason")
        if reason and isinstance(reason, str):
            reasons.append(reason)
        text = choice.get("text")  # a (legacy) text completion's choice
        if isinstance(text, str):
            texts.append(text)
        message = choice.get("message")
        if message is None:
            continue
        message = _fields(message)
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        refusal = message.get("refusal")
        if refusal:
            out.refusal = str(refusal)
        for tc in _seq(message.get("tool_calls")):
            fn = _get(tc, "function")
            if fn is not None:
                tools.append(_tool_call(_get(fn, "name"), _get(fn, "arguments")))
        legacy = message.get("function_call")  # the deprecated functions= API
        if legacy is not None:
            tools.append(_tool_call(_get(legacy, "name"), _get(legacy, "arguments")))
        if message.get("audio") is not None:
            out.other_output = True
    out.text = "".join(texts) if texts else None
    out.finish_reasons = reasons or None
    out.tool_calls = tools or None


def _from_response(obj: Any, out: Output) -> None:
    texts: list[str] = []
    tools: list[dict[str, Any]] = []
    for item in _seq(obj.get("output")):
        kind = _str(_get(item, "type"))
        if kind == "message":
            for part in _seq(_get(item, "content")):
                ptype = _get(part, "type")
                if ptype == "output_text":
                    texts.append(_str(_get(part, "text")))
                elif ptype == "refusal":
                    out.refusal = str(_get(part, "refusal") or "refused")
        elif kind == "function_call":
            tools.append(_tool_call(_get(item, "name"), _get(item, "arguments")))
        elif kind == "custom_tool_call":  # free-form input, not JSON: the name is checked
            tools.append(_tool_call(_get(item, "name"), None))
        elif kind != "reasoning":
            out.other_output = True  # a built-in tool's call, an image, an action
    out.text = "".join(texts) if texts else None
    out.tool_calls = tools or None
    status = _str(obj.get("status"))
    reasons: list[str] = []
    if status == "incomplete":
        reason = _str(_get(obj.get("incomplete_details") or {}, "reason")) or "incomplete"
        reasons.append(reason)
        if reason == "steered":
            # Stopped at a safe point for the input the application steered
            # it with; a successor response carries on: not the model's outcome.
            out.unfinished = True
    elif status in PENDING_STATUSES:
        out.unfinished = True  # background=True: the outcome comes later
    elif status:
        reasons.append(status)
        if status == "cancelled":
            out.unfinished = True
        elif status == "failed":
            error = obj.get("error")
            code = _get(error, "code")
            message = _get(error, "message")
            out.error = (str(code or "response_failed"), str(message or "response failed"))
    out.finish_reasons = reasons or None


def _from_anthropic(obj: Any, out: Output) -> None:
    texts: list[str] = []
    tools: list[dict[str, Any]] = []
    for block in _seq(obj.get("content")):
        kind = _str(_get(block, "type"))
        if kind == "text":
            texts.append(_str(_get(block, "text")))
        elif kind == "tool_use":
            tools.append(_tool_call(_get(block, "name"), _get(block, "input")))
        elif kind not in _THINKING_BLOCKS:
            out.other_output = True  # a server tool's use or result, an MCP call
    out.text = "".join(texts) if texts else None
    out.tool_calls = tools or None
    reason = _str(obj.get("stop_reason"))
    out.finish_reasons = [reason] if reason else None
    _anthropic_stop(reason, out)


def _anthropic_stop(reason: str, out: Output) -> None:
    """What an Anthropic stop reason says beyond being a finish reason."""
    if reason == "refusal":
        out.refusal = "refusal"
        out.refusal_source = "stop_reason"
    elif reason == "pause_turn":
        out.unfinished = True  # a long turn paused: the next request continues it


def _library_object(obj: Any) -> bool:
    """Whether ``obj`` is of one of the provider libraries' own types.

    Such an object's shape is the provider's whatever its fields hold; a
    dict, or an object of the application's, has to show it (see
    ``_provider_body``).
    """
    module = type(obj).__module__ or ""
    return module.partition(".")[0] in ("openai", "anthropic")


#: ``object`` of an OpenAI chat completion, its stream chunks and a text
#: completion (a tuple, not a set: the field may hold any JSON value)
_CHAT_OBJECTS = ("chat.completion", "chat.completion.chunk", "text_completion")
#: fields of a chat or text completion's choice, one of which it always holds
_CHOICE_FIELDS = ("message", "delta", "text", "finish_reason")


def _chat_body(fields: Any) -> bool:
    """Whether a body with ``choices`` is an OpenAI chat or text completion (or chunk).

    An application's own result may have ``choices`` too (the options it
    picked from); the provider's says what it is, or else holds choices
    that each have a message, a delta, a text or a finish reason.
    """
    if fields.get("object") in _CHAT_OBJECTS:
        return True
    choices = fields.get("choices")
    return (
        isinstance(choices, list)
        and bool(choices)
        and all(any(_get(choice, key) is not None for key in _CHOICE_FIELDS) for choice in choices)
    )


def _provider_body(body: dict[str, Any]) -> str | None:
    """Which provider response a dict is the JSON body of, if any.

    Dicts are read by shape, as an application calling a provider's HTTP API
    itself returns the body it got; but an application's own result may
    share a key or two with one (``{"status": "completed", "output": "..."}``)
    and must not be judged as a model's output. So the shape must be the
    provider's whole: a chat completion's list of choices, a Responses
    object (``"object": "response"``, or a status and a list of output items
    that each have a type), an Anthropic message (``"type": "message"`` and
    a list of content blocks).
    """
    if _chat_body(body):
        return "chat"
    if body.get("object") == "response":
        return "response"
    output = body.get("output")
    if (
        isinstance(output, list)
        and output
        and isinstance(body.get("status"), str)
        and all(isinstance(item, dict) and isinstance(item.get("type"), str) for item in output)
    ):
        return "response"
    if body.get("type") == "message" and isinstance(body.get("content"), list):
        return "anthropic"
    return None


def _library_body(fields: Any) -> str | None:
    """Which response a provider library's object is: its type says it is one."""
    get = fields.get
    if get("choices") is not None:
        return "chat"
    if get("object") == "response" or (get("output") is not None and get("status") is not None):
        return "response"
    if get("stop_reason") is not None or (get("type") == "message" and get("content") is not None):
        return "anthropic"
    return None


def extract(obj: Any) -> Output:
    """An ``Output`` for a string, provider response object or dict.

    A dict that is no provider's response body, and an object of no
    provider library, give an ``Output`` without ``provider_shape``: the
    application's own value, which only declared checks judge.
    """
    kind = type(obj)
    if kind in _CHAT_COMPLETION_TYPES:
        out = _plain_chat_completion(obj)
        if out is not None:
            return out
    if isinstance(obj, str):
        return Output(obj)
    if isinstance(obj, (bytes, bytearray)):
        return Output(bytes(obj).decode("utf-8", "replace"))
    if isinstance(obj, dict):
        return _read(obj, _provider_body(obj))
    if _library_object(obj):
        fields = _fields(obj)
        if kind.__name__ == "ChatCompletion" and len(_CHAT_COMPLETION_TYPES) < 16:
            _CHAT_COMPLETION_TYPES.add(kind)
        return _read(fields, _library_body(fields))
    return Output()


#: the OpenAI library's chat completion class (once one was read): read by
#: ``_plain_chat_completion`` first
_CHAT_COMPLETION_TYPES: set[type] = set()


def _plain_chat_completion(obj: Any) -> Output | None:
    """The ``Output`` of an OpenAI library chat completion holding one text
    answer and nothing else; None for any other shape, which ``_read`` reads.

    Most responses are this shape, and the export thread reads every one:
    here, straight from the pydantic models' fields, at a quarter of the
    general reader's work. Anything it does not check (an extra field, a
    second choice, tool calls, a refusal, audio, a value of another type)
    sends the response to the general reader, whose result this must equal
    (tests/sdk/test_output.py).
    """
    try:
        if obj.__pydantic_extra__:
            return None
        fields = obj.__dict__
        choices = fields["choices"]
        if type(choices) is not list or len(choices) != 1:
            return None
        choice = choices[0]
        if choice.__pydantic_extra__:
            return None
        message = choice.__dict__["message"]
        if message.__pydantic_extra__:
            return None
        answer = message.__dict__
        text = answer["content"]
        reason = choice.__dict__["finish_reason"]
        if (
            type(text) is not str
            or type(reason) is not str
            or not reason
            or answer["refusal"]
            or answer["tool_calls"] is not None
            or answer["function_call"] is not None
            or answer["audio"] is not None
        ):
            return None
        usage = fields["usage"]
        if usage is not None and (
            _FIELDS_IN_DICT.get(type(usage)) is not True or usage.__pydantic_extra__
        ):
            return None
        out = Output(text)
        out.finish_reasons = [reason]
        out.provider_shape = True
        if usage is not None:
            counts = usage.__dict__
            tokens = counts.get("prompt_tokens")
            out.input_tokens = tokens if type(tokens) is int else None
            tokens = counts.get("completion_tokens")
            out.output_tokens = tokens if type(tokens) is int else None
        model = fields["model"]
        out.response_model = model if isinstance(model, str) else None
        rid = fields["id"]
        out.response_id = rid if isinstance(rid, str) else None
        return out
    except (AttributeError, KeyError, TypeError):
        return None


def _read(fields: Any, kind: str | None) -> Output:
    """An ``Output`` for a provider's response of ``kind`` ("chat", "response", "anthropic")."""
    out = Output()
    if kind == "chat":
        _from_chat_completion(fields, out)
    elif kind == "response":
        _from_response(fields, out)
    elif kind == "anthropic":
        _from_anthropic(fields, out)
    else:
        return out
    out.provider_shape = True
    get = fields.get
    out.set_usage(get("usage"))
    model = get("model")
    out.response_model = model if isinstance(model, str) else None
    rid = get("id")
    out.response_id = rid if isinstance(rid, str) else None
    return out


#: a refusal text is cut to this many characters in a failure message (capture on)
_MAX_REFUSAL_CHARS = 200

#: how each refusal source is named when the refusal text may not be recorded
_REFUSAL_SOURCES = {
    "provider_field": "provider refusal field",
    "stop_reason": "stop reason",
    "text_detector": "text detector",
}


def _refusal_message(source: str, text: str | None, capture: bool) -> str:
    """The failure message of a refusal: its text only when capture is on."""
    if capture and text:
        return f"model refused: {captured(text, _MAX_REFUSAL_CHARS)}"
    return f"model refused ({_REFUSAL_SOURCES.get(source, source)})"


def _tool_failure(out: Output, tools: Any, capture: bool) -> tuple[dict[str, Any], str] | None:
    if not out.tool_calls:
        return None
    known = _tool_specs(tools)
    for tc in out.tool_calls:
        name = tc.get("name")
        if known is not None and name not in known:
            return (
                {"tool": name, "reason": "unknown_tool", "errors": []},
                f"model called unknown tool {name!r}",
            )
        args = tc.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                return (
                    {
                        "tool": name,
                        "reason": "invalid_arguments",
                        "errors": [{"kind": "json_decode", "path": "", "message": exc.msg}],
                    },
                    f"tool {name!r} arguments are not valid JSON: {exc.msg}",
                )
        schema = known.get(name) if known and isinstance(name, str) else None
        if schema:
            errors = _schema_errors(schema, args)
            if errors:
                from faultprint._checks import describe, error_dicts

                # Schema messages quote the argument values: see _checks.
                first = errors[0]
                where = f"{first.path}: " if first.path else ""
                return (
                    {
                        "tool": name,
                        "reason": "invalid_arguments",
                        "errors": error_dicts(errors, capture),
                    },
                    f"tool {name!r} arguments invalid: {where}{describe(first, capture)}",
                )
    return None


def _tool_specs(tools: Any) -> dict[str, Any] | None:
    """Tool name → parameter schema, from any provider's ``tools=`` list."""
    if not tools:
        return None
    specs: dict[str, Any] = {}
    for tool in tools:
        fn = _get(tool, "function")
        source = fn if fn is not None else tool
        name = _get(source, "name")
        if isinstance(name, str):
            specs[name] = _get(source, "parameters") or _get(source, "input_schema")
    return specs


_SCHEMA_CHECKS: dict[int, tuple[Any, Any]] = {}


def _schema_errors(schema: Any, value: Any) -> list[CheckError]:
    try:
        # Compiling a validator costs far more than running it: keep one per
        # schema object (the tools list is usually a module-level constant).
        cached = _SCHEMA_CHECKS.get(id(schema))
        if cached is None or cached[0] is not schema:
            from faultprint._checks import _schema_check

            cached = (schema, _schema_check(schema))
            if len(_SCHEMA_CHECKS) > 256:
                _SCHEMA_CHECKS.clear()
            _SCHEMA_CHECKS[id(schema)] = cached
        failure = cached[1](value)
    except Exception:  # jsonschema missing or an unusable schema: no verdict
        return []
    return list(failure.errors) if failure is not None else []


def analyze(call: Any, out: Output, raw: Any) -> None:
    """Record ``out`` on the call's span and detect non-raising failures."""
    capture = capture_enabled(call.spec)
    record(call, out, capture)
    _detect(call, out, raw, capture)


def record(call: Any, out: Output, capture: bool | None = None) -> None:
    """Record what ``out`` says (response model and id, usage, finish reasons) on the span.

    Alone, for a stream the application stopped reading: what arrived is
    recorded, but a partial output is not judged. ``capture``: whether the
    call records content (looked up when not given).
    """
    # One set_attributes call: each set_attribute takes the span's lock.
    # ``clean``: every value is of a type any span stores as given, known
    # here at a few checks' cost (an output read from a response always is;
    # one the application declared may hold anything), so faultprint's own
    # span class need not check them again.
    attrs: dict[str, Any] = {}
    clean = True
    value: Any = out.response_model
    if value:
        attrs[A.GEN_AI_RESPONSE_MODEL] = value
        clean = type(value) is str
    value = out.response_id
    if value:
        attrs[A.GEN_AI_RESPONSE_ID] = value
        clean = clean and type(value) is str
    value = out.finish_reasons
    if value:
        attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(value)
        clean = clean and len(value) == 1 and type(value[0]) is str
    # Token counts are ints: set_usage and every reader take nothing else.
    if out.input_tokens is not None:
        attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = out.input_tokens
    if out.output_tokens is not None:
        attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = out.output_tokens
    if out.text and (capture_enabled(call.spec) if capture is None else capture):
        attrs[A.FP_OUTPUT_TEXT] = captured(out.text)  # text (a redaction's str subclass too)
    if attrs:
        span = call.span
        if clean and getattr(type(span), "faultprint_model_call", False) is True:
            span.set_attributes(attrs, clean=True)  # faultprint._span.ModelCallSpan
        else:
            span.set_attributes(attrs)


#: the finish reasons of an output without any
_NO_REASONS: frozenset[str] = frozenset()


def _detect(call: Any, out: Output, raw: Any, capture: bool) -> None:
    error = out.error
    if error is not None:
        if call.failure is None:  # an explicit failure stands
            # Recorded as the same error raised by the client would be: its
            # provider code, no HTTP status (the response itself was a 200).
            code, message = error
            call.span.set_attribute(A.FP_ERROR_CODE, code)
            call.detected("api_error", {"error": {"code": code, "message": message}}, message)
        return
    if out.unfinished:
        return
    spec = call.spec
    finish_reasons = out.finish_reasons
    reasons = set(map(str.lower, finish_reasons)) if finish_reasons else _NO_REASONS
    if out.refusal:
        source = out.refusal_source
        call.detected("refusal", {"source": source}, _refusal_message(source, out.refusal, capture))
    elif reasons & _REFUSAL_STOP:
        call.detected("refusal", {"source": "stop_reason"}, "model refused (stop reason)")
    elif reasons & _CONTENT_FILTER:
        reason = sorted(reasons & _CONTENT_FILTER)[0]
        call.detected("content_filter", {"finish_reason": reason}, f"output blocked: {reason}")
    elif reasons & _TRUNCATION:
        reason = sorted(reasons & _TRUNCATION)[0]
        call.detected("truncation", {"finish_reason": reason}, f"output truncated: {reason}")
    if call.failure is not None:
        return
    tool_fail = _tool_failure(out, call.tools if call.tools is not None else spec.tools, capture)
    if tool_fail is not None:
        call.detected("tool_error", tool_fail[0], tool_fail[1])
        return
    text = out.text
    no_text = (text is None or not text.strip()) and not out.tool_calls and not out.other_output
    textual = out.provider_shape or raw is None or isinstance(raw, (str, bytes, bytearray))
    if no_text and textual:
        call.detected("empty_output", {"source": "no_text"}, "model returned no output")
        return
    if text and STATE.refusal_detector and looks_like_refusal(text):
        call.detected(
            "refusal",
            {"source": "text_detector"},
            _refusal_message("text_detector", text, capture),
        )
        return
    checks = spec.checks
    if checks:
        from faultprint._checks import run_checks

        value = text if out.provider_shape else raw
        if value is None:
            value = text
        failure = run_checks(checks, value)
        if failure is not None:
            _check_failed(call, failure, capture)


def _check_failed(call: Any, failure: CheckFailure, capture: bool) -> None:
    call.detected("invalid_output", failure.detail(capture), failure.message(capture))


def analyze_result(call: Any, result: Any) -> None:
    """Inspect what a decorated function returned.

    None is judged only by declared checks, which it fails (``no_output``):
    a function may return nothing because the model said nothing (a chat
    message's content is None for a refusal or a tool call) or because it
    keeps the output itself, and only a declared check says an output was
    due. A coroutine, generator or other awaitable is the work still to be
    done, not its output: it is not judged.
    """
    if isinstance(result, str):
        analyze(call, Output(result), result)
        return
    checks = call.spec.checks
    if result is None:
        if checks:
            from faultprint._checks import no_output

            _check_failed(call, no_output(checks), capture_enabled(call.spec))
        return
    out = extract(result)
    if out.provider_shape or isinstance(result, (bytes, bytearray)):
        analyze(call, out, result)
        return
    if _deferred(result):
        _warn_deferred(call.spec.call_site, result)
        return
    # Structured data of the application's own: only declared checks apply.
    if checks:
        from faultprint._checks import run_checks

        failure = run_checks(checks, result)
        if failure is not None:
            _check_failed(call, failure, capture_enabled(call.spec))


def _deferred(result: Any) -> bool:
    """A result that is work yet to run: a coroutine, generator or awaitable."""
    return isinstance(result, (GeneratorType, AsyncGeneratorType)) or inspect.isawaitable(result)


#: call sites already told that they returned deferred work (bounded)
_WARNED_DEFERRED: set[str] = set()


def _warn_deferred(call_site: str, result: Any) -> None:
    """Say once per call site that its calls are seen only until they return.

    The decorated function is synchronous but returns a coroutine or
    generator (a decorator between ``@observe`` and an ``async def`` or
    generator function made it so): the application gets that object as it
    is, and the span covers only the synchronous part.
    """
    if call_site in _WARNED_DEFERRED or len(_WARNED_DEFERRED) >= 1024:
        return
    _WARNED_DEFERRED.add(call_site)
    _log.warning(
        "faultprint: %s returned a %s, so its calls are recorded as they return, "
        "before that work runs; put @faultprint.observe directly on the async or "
        "generator function (below the decorator that wraps it) to observe the work",
        call_site,
        type(result).__name__,
    )


# --- streams -------------------------------------------------------------------
#: Anthropic Messages stream events. The Responses API's all begin with
#: "response."; an application's own event dicts (``{"type": "token"}``) are
#: neither.
_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)


def _stream_event(ctype: str, fields: Any) -> bool:
    """Whether a stream chunk of type ``ctype`` is a provider's stream event.

    An error event (both providers send one) is the provider's when it is
    shaped like theirs: Anthropic's holds an ``error`` object, OpenAI's a
    ``sequence_number``, as every Responses event does.
    """
    if ctype in _ANTHROPIC_EVENTS or ctype.startswith("response."):
        return True
    return ctype == "error" and (
        isinstance(fields.get("error"), dict) or fields.get("sequence_number") is not None
    )


def error_event(ev: Any) -> tuple[str, str]:
    """(provider error code, message) of a stream's error event.

    OpenAI's library yields a Responses stream's ``error`` event (its code
    and message at the top) instead of raising it; Anthropic's and the
    Realtime ones hold an ``error`` object. Recorded as the same error
    raised would be: its provider code, no HTTP status.
    """
    error = _get(ev, "error")
    if error is not None:
        code = _get(error, "code") or _get(error, "type")
        message = _get(error, "message")
    else:
        code, message = _get(ev, "code"), _get(ev, "message")
    code = code if isinstance(code, str) and code else "error"
    return code, message if isinstance(message, str) and message else code


class StreamState:
    """Accumulates a stream's chunks into one ``Output``."""

    __slots__ = ("items", "out", "saw_other", "texts", "tool_args", "tool_names")

    def __init__(self) -> None:
        self.out = Output()
        self.texts: list[str] = []
        #: a Responses stream's finished output items, in order
        self.items: list[Any] = []
        self.saw_other = False
        self.tool_names: dict[int, str | None] = {}
        self.tool_args: dict[int, list[str]] = {}

    def add(self, chunk: Any) -> None:
        """Fold one chunk (text, OpenAI chunk/event, Anthropic event) in.

        Any other chunk (a tuple, an event dict of the application's own
        such as ``{"type": "token", ...}``) is the application's own output,
        not the model's: it is not read.
        """
        if isinstance(chunk, str):
            self.texts.append(chunk)
            return
        out = self.out
        fields = _fields(chunk)
        ctype = fields.get("type")
        choices = fields.get("choices")
        if choices is not None and (_chat_body(fields) or _library_object(chunk)):
            # OpenAI chat.completion.chunk (or text_completion)
            out.provider_shape = True
            self._meta(chunk)
            for choice in _seq(choices):
                text = _get(choice, "text")  # a text completion's chunk
                if isinstance(text, str):
                    self.texts.append(text)
                delta = _get(choice, "delta")
                if delta is not None:
                    content = _get(delta, "content")
                    if isinstance(content, str):
                        self.texts.append(content)
                    refusal = _get(delta, "refusal")
                    if refusal:
                        out.refusal = (out.refusal or "") + str(refusal)
                    if _get(delta, "audio") is not None:
                        out.other_output = True
                    legacy = _get(delta, "function_call")  # the deprecated functions= API
                    if legacy is not None:
                        self._tool_delta(-1, _get(legacy, "name"), _get(legacy, "arguments"))
                    for tc in _seq(_get(delta, "tool_calls")):
                        fn = _get(tc, "function")
                        if fn is not None:
                            idx = _index(_get(tc, "index"))
                            self._tool_delta(idx, _get(fn, "name"), _get(fn, "arguments"))
                reason = _get(choice, "finish_reason")
                if reason and isinstance(reason, str):
                    out.finish_reasons = [reason]
            usage = _get(chunk, "usage")
            if usage is not None:
                out.set_usage(usage)
        elif isinstance(ctype, str) and _stream_event(ctype, fields):
            self._event(ctype, chunk)
        else:
            self.saw_other = True

    def _tool_delta(self, idx: int, name: Any, arguments: Any) -> None:
        """Fold a streamed piece of tool call ``idx`` (its name, or more arguments) in."""
        if name and isinstance(name, str):
            self.tool_names[idx] = name
        if arguments and isinstance(arguments, str):
            self.tool_args.setdefault(idx, []).append(arguments)
        else:
            self.tool_args.setdefault(idx, [])

    def _meta(self, obj: Any) -> None:
        model = _get(obj, "model")
        if isinstance(model, str):
            self.out.response_model = model
        rid = _get(obj, "id")
        if isinstance(rid, str):
            self.out.response_id = rid

    def _event(self, ctype: str, ev: Any) -> None:
        out = self.out
        out.provider_shape = True
        # Anthropic Messages stream events
        if ctype == "message_start":
            message = _get(ev, "message")
            self._meta(message)
            out.set_usage(_get(message, "usage"))
        elif ctype == "content_block_start":
            block = _get(ev, "content_block")
            kind = _str(_get(block, "type"))
            if kind == "tool_use":
                self._tool_delta(_index(_get(ev, "index")), _get(block, "name"), None)
            elif kind and kind != "text" and kind not in _THINKING_BLOCKS:
                out.other_output = True
        elif ctype == "content_block_delta":
            delta = _get(ev, "delta")
            dtype = _get(delta, "type")
            if dtype == "text_delta":
                self.texts.append(_str(_get(delta, "text")))
            elif dtype == "input_json_delta":
                self._tool_delta(_index(_get(ev, "index")), None, _get(delta, "partial_json"))
        elif ctype == "message_delta":
            delta = _get(ev, "delta")
            reason = _str(_get(delta, "stop_reason"))
            if reason:
                out.finish_reasons = [reason]
                _anthropic_stop(reason, out)
            usage = _get(ev, "usage")
            tokens = _get(usage, "output_tokens") if usage is not None else None
            if type(tokens) is int:
                out.output_tokens = tokens
        # OpenAI Responses stream events
        elif ctype == "response.output_text.delta":
            self.texts.append(_str(_get(ev, "delta")))
        elif ctype == "response.refusal.delta":
            out.refusal = (out.refusal or "") + _str(_get(ev, "delta"))
        elif ctype in RESPONSE_STARTED_EVENTS:
            # which response this is, should the stream end before its final event
            self._meta(_get(ev, "response"))
        elif ctype == "response.output_item.done":
            item = _get(ev, "item")
            if item is not None:
                self.items.append(item)
        elif ctype in FINAL_RESPONSE_EVENTS:
            response = _get(ev, "response")
            if response is not None:
                fields = _fields(response)
                if self.items and fields.get("output") is None and isinstance(fields, dict):
                    # Over a WebSocket the final event may leave the output
                    # out: it arrived item by item.
                    fields = {**fields, "output": self.items}
                # A response, whatever its fields say: the event says so.
                final = _read(fields, "response")
                final.text = "".join(self.texts) if self.texts else final.text
                if out.refusal and not final.refusal:
                    final.refusal = out.refusal
                if out.error and not final.error:
                    final.error = out.error
                self.out = final
                self.texts = []
        elif ctype == "error":
            out.error = error_event(ev)
        else:
            # message_stop, content_block_stop, ping, and the other
            # Responses events: a provider stream, with nothing to fold in.
            pass

    def result(self) -> Output:
        """The accumulated output."""
        out = self.out
        if self.texts:
            out.text = (out.text or "") + "".join(self.texts)
        if self.tool_names:
            calls = [
                _tool_call(self.tool_names.get(i), "".join(self.tool_args.get(i, [])))
                for i in sorted(self.tool_names)
            ]
            out.tool_calls = (out.tool_calls or []) + calls
        return out


def collect_chunk(call: Any, chunk: Any) -> None:
    """Fold one yielded chunk into the call's stream state."""
    state = call.stream_parts
    if state is None:
        state = call.stream_parts = StreamState()
    state.add(chunk)


def record_partial_stream(call: Any) -> None:
    """Record what a stream closed before its end delivered, without judging it."""
    state: StreamState | None = call.stream_parts
    if state is not None and not call.output_set and state.out.provider_shape:
        record(call, state.result())


def finish_stream(call: Any) -> None:
    """Analyse a finished stream's accumulated output."""
    if call.output_set:
        return
    state: StreamState | None = call.stream_parts
    if state is None:
        # A stream that yielded nothing produced no output.
        analyze(call, Output(""), "")
        return
    if state.saw_other and not state.texts and not state.out.provider_shape:
        return  # chunks of the application's own kind: nothing to judge
    out = state.result()
    if out.text is None and not out.provider_shape:
        out.text = ""
    analyze(call, out, out.text)
