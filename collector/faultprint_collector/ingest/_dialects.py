"""One view of a model-call span, whichever instrumentation sent it.

Teams instrument with different OpenTelemetry-based tools, and each speaks a
dialect of the same facts (which provider, which model, how the generation
ended, what went wrong):

- faultprint's SDK: the current OpenTelemetry GenAI conventions plus
  ``faultprint.*`` (``sdk/faultprint/attributes.py``);
- OpenTelemetry GenAI conventions, current (``gen_ai.provider.name``,
  ``gen_ai.usage.input_tokens``, ``gen_ai.output.messages``) and older
  (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``, the
  ``gen_ai.content.completion`` / ``gen_ai.choice`` events);
- OpenInference (``llm.model_name``, ``llm.provider``, ``llm.system``,
  ``llm.token_count.*``, ``openinference.span.kind``, ``output.value``,
  ``llm.output_messages.*``);
- OpenLLMetry (``traceloop.*``, ``llm.request.type``, ``llm.usage.*``,
  ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` and, older still,
  ``llm.request.model`` / ``llm.completions.N.*``).

:func:`read_call` reads all of them into one :class:`CallView`; classification
then works on the view only. Everything here is a pure function of the span,
so every collector replica reads a span the same way.

Two rules keep the fingerprints of one failure equal whatever instrumented it:

- the **call site** of a span without ``faultprint.call_site`` is the
  instrumented endpoint ``{provider}.{operation}`` (``openai.chat``), the
  same convention faultprint's client integrations use;
- a provider error's **code** is recovered from the exception message the
  way the SDK reads it from the exception object (the body's ``code``, else
  its ``type``), so an HTTP error seen from outside the client and from
  inside it has one identity.

Failures that the sender did not mark (a span with status OK and
``finish_reason=length``) are inferred defensively: only from positive
evidence (a finish reason, a refusal field, output that was captured and is
empty), never from the absence of captured content.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from faultprint.refusal import looks_like_refusal

from faultprint_collector.fingerprinting._category import FINISH_REASONS, normalise_finish_reason
from faultprint_collector.fingerprinting._provider import code_from_prose, parse_provider_error
from faultprint_collector.ingest._spans import STATUS_ERROR, SpanView

__all__ = [
    "FINISH_REASONS",
    "CallView",
    "Inferred",
    "call_identity",
    "canonical_finish_reason",
    "canonical_operation",
    "canonical_provider",
    "endpoint_call_site",
    "finish_category",
    "is_model_call",
    "read_call",
]

# --- vocabularies ---------------------------------------------------------------

# Priority when a response carries several choices: the SDK checks refusal,
# then content filter, then truncation; the collector must rank them the same
# or one failure would get two categories by path of arrival.
_PRIORITY = ("refusal", "content_filter", "truncation", "tool_error", "api_error")

#: provider names of every dialect -> the OpenTelemetry registry value
_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "azure.ai.openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "azure.ai.inference": "azure.ai.inference",
    "anthropic": "anthropic",
    "aws": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "aws.bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "google": "gcp.gen_ai",
    "gcp.gen_ai": "gcp.gen_ai",
    "gemini": "gcp.gemini",
    "gcp.gemini": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistral_ai": "mistral_ai",
    "xai": "x_ai",
    "x_ai": "x_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
    "ollama": "ollama",
    "watsonx": "ibm.watsonx.ai",
    "ibm.watsonx.ai": "ibm.watsonx.ai",
}

#: operation names of every dialect -> the GenAI conventions' value
_OPERATIONS: dict[str, str] = {
    "chat": "chat",
    "completion": "text_completion",
    "text_completion": "text_completion",
    "embedding": "embeddings",
    "embeddings": "embeddings",
    "generate_content": "generate_content",
    "rerank": "rerank",
    "image": "image_generation",
    "create_agent": "create_agent",
    "invoke_agent": "invoke_agent",
    "invoke_workflow": "invoke_workflow",
    "execute_tool": "execute_tool",
    "retrieval": "retrieval",
}

#: operations that are a request to a model: a span naming one is a model call
_MODEL_OPERATIONS = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "rerank", "image_generation"}
)
# Operations of the GenAI conventions that are not a request to a model:
# agents and workflows wrap model calls (an agent that failed because its
# chat call did would count that failure twice), tool executions and
# retrievals run the application's code. A span naming one is skipped even
# when it names the agent's model and provider.
_NON_MODEL_OPERATIONS = frozenset(
    {"create_agent", "invoke_agent", "invoke_workflow", "execute_tool", "retrieval"}
)
#: keys naming the model a call asked for or was answered by, in any dialect
_MODEL_KEYS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.request.model",
    "llm.response.model",
    "llm.model_name",
)
#: keys naming the provider (or older: the system) a call went to, in any dialect
_PROVIDER_KEYS = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
    "llm.vendor",
)

# OpenInference names spans after the client method; these are its names for
# the endpoints whose spans carry no operation attribute.
_OPENINFERENCE_SPAN_OPERATIONS = (
    ("chatcompletion", "chat"),
    ("response", "chat"),
    ("completion", "text_completion"),
    ("embedding", "embeddings"),
)

# OpenInference span kinds and traceloop span kinds that are not model calls:
# chains, tools, retrievers and workflows wrap model calls (or none) and would
# otherwise be counted as calls of their own.
_MODEL_SPAN_KINDS = frozenset({"LLM", "EMBEDDING"})
_TRACELOOP_WRAPPER_KINDS = frozenset({"workflow", "task", "agent", "tool"})

# Content that an instrumentation withheld is not empty output.
_REDACTED = frozenset({"__REDACTED__", "<redacted>", "[redacted]", "[REDACTED]"})

_TIMEOUT_TYPE = re.compile(r"time(?:d)?[ _]?out|deadline", re.I)
# Timeouts a sender gives only in its message, as the client libraries word
# them. Each is a library's own text, anchored where it can be, so that an
# ordinary message mentioning a timeout ("timeout must be positive", "retry
# after the timeout") is not taken for one. Combined into one expression.
_TIMEOUT_TEXTS = (
    # the OpenAI and Anthropic libraries' APITimeoutError (Python and Node):
    # a recorder that keeps only the status text has lost the exception's type
    r"^Request timed out\b",
    # Go: the text of context.DeadlineExceeded, which every Go client call
    # cut short by its context's deadline (or its http.Client.Timeout) ends in
    r"\bcontext deadline exceeded\b",
    # Go net/http: the client's own timeout, whichever phase it cut short
    r"\(Client\.Timeout exceeded while ",
    r"\bnet/http: (?:TLS handshake timeout|timeout awaiting response headers)\b",
    # Go net: a dial, read or write past its deadline ("dial tcp ...: i/o timeout")
    r": i/o timeout\b",
)
_TIMEOUT_TEXT = re.compile("|".join(_TIMEOUT_TEXTS))
# Error types that say only that something failed, not what: the
# conventions' "_OTHER", and Go's generic wrappers (net/http wraps every
# transport failure in *url.Error; *net.OpError, fmt's and errors' wrappers).
# Only under one of these (or no type at all) does the message decide.
_GENERIC_ERROR_TYPE = re.compile(r"^(?:_OTHER|\*?(?:url|net|fmt|errors)\.[A-Za-z]\w*)$")
_STATUS_IN_TEXT = re.compile(r"\b(?:Error code|status(?:[ _]code)?|HTTP)[:= ]\s*([45]\d\d)\b")


# --- small helpers --------------------------------------------------------------


def as_text(value: Any) -> str:
    """An attribute value as text (lists joined with commas, None as empty)."""
    if value is None:
        return ""
    if type(value) is str:  # the common case, before the slower tests
        return value
    # a tuple of types, not ``list | tuple``: that builds a union per call
    if isinstance(value, (list, tuple)):
        return ",".join(as_text(v) for v in value)
    return str(value)


def model_text(value: Any) -> str:
    """A model name or version as text; "" for a value that cannot be one.

    Text and integers are names; a finite number is kept as written. NaN,
    infinities, booleans, lists and maps name nothing (a NaN would otherwise
    become the version "nan"). NUL, which no query may hold, is dropped.
    """
    if isinstance(value, str):
        return value.replace("\x00", "").strip()
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    return ""


def as_count(value: Any) -> int:
    """An attribute value as a non-negative integer (0 when it is not one)."""
    # common cases first: an absent value would otherwise cost an exception
    if value is None:
        return 0
    if type(value) is int:
        return value if value > 0 else 0
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, "", [], ()):
            return value
    return None


def _json(value: Any) -> Any:
    """Parse JSON text (bounded); anything else is returned as is."""
    if isinstance(value, str) and value[:1] in "[{" and len(value) <= 1_000_000:
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


def _get(obj: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(obj, list) or len(obj) <= key:
                return None
            obj = obj[key]
        else:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(key)
    return obj


# --- names ----------------------------------------------------------------------


def canonical_provider(name: Any) -> str:
    """The OpenTelemetry registry name of a provider named in any dialect."""
    text = as_text(name).strip()
    if not text:
        return ""
    key = text.lower().replace(" ", "_").replace("-", "_")
    return _PROVIDERS.get(key, key)


def canonical_operation(name: Any) -> str:
    """The GenAI conventions' operation name for an operation in any dialect."""
    key = as_text(name).strip().lower().replace(" ", "_")
    return _OPERATIONS.get(key, key)


def canonical_finish_reason(reason: Any) -> str:
    """Lower-case, dialect-free finish reason: ``FinishReason.MAX_TOKENS`` -> ``max_tokens``."""
    return normalise_finish_reason(as_text(reason))


def finish_category(reasons: list[str]) -> tuple[str, str] | None:
    """(category, reason) for the failing finish reason with the highest priority."""
    found: dict[str, str] = {}
    for reason in reasons:
        category = FINISH_REASONS.get(reason)
        if category and category not in found:
            found[category] = reason
    for category in _PRIORITY:
        if category in found:
            return category, found[category]
    return None


def endpoint_call_site(provider: str, operation: str) -> str:
    """The call site of an instrumented endpoint: ``{provider}.{operation}``.

    faultprint's client integrations use the same convention, so a failure
    recorded by them and by another instrumentation of the same endpoint has
    one fingerprint.
    """
    return f"{provider or 'unknown'}.{operation or 'chat'}"


# --- the view -------------------------------------------------------------------


@dataclass(slots=True)
class Inferred:
    """A failure read from how the generation ended, not from an error."""

    category: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CallView:
    """What a model-call span says, in one vocabulary."""

    dialect: str
    provider: str = ""
    operation: str = ""
    request_model: str = ""
    response_model: str = ""
    call_site: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    #: every choice's finish reason, canonical (see canonical_finish_reason)
    finish_reasons: list[str] = field(default_factory=list)
    #: output text when the sender captured it, None when it did not
    output_text: str | None = None
    output_captured: bool = False
    has_tool_calls: bool = False
    refusal: str = ""
    #: the span says the call failed (status, error.type or an exception event)
    errored: bool = False
    error_type: str = ""
    message: str = ""
    stacktrace: str = ""
    #: path → module the SDK says each traceback file runs as (see frame_modules)
    frame_modules: dict[str, str] = field(default_factory=dict)
    http_status: int = 0
    error_code: str = ""
    #: a failure inferred from a span that was not marked as an error
    inferred: Inferred | None = None

    @property
    def finish_reason(self) -> str:
        """The finish reason that decided the outcome (else the first one)."""
        decided = finish_category(self.finish_reasons)
        if decided is not None:
            return decided[1]
        return self.finish_reasons[0] if self.finish_reasons else ""


#: set on every span faultprint's SDK records: one lookup identifies the
#: dialect, where the general test scans every key
_FAULTPRINT_MARKER = "faultprint.contract"


def _has_faultprint_key(attrs: dict[str, Any]) -> bool:
    """ATTRS hold a ``faultprint.*`` key (the marker first: the common case is O(1))."""
    return _FAULTPRINT_MARKER in attrs or any(k.startswith("faultprint.") for k in attrs)


def detect_dialect(attrs: dict[str, Any]) -> str:
    """Which instrumentation convention a span's attributes follow."""
    if _has_faultprint_key(attrs):
        return "faultprint"
    if (
        "openinference.span.kind" in attrs
        or "llm.model_name" in attrs
        or any(k.startswith(("llm.token_count.", "llm.output_messages.")) for k in attrs)
    ):
        return "openinference"
    if any(
        k.startswith(("traceloop.", "llm.usage.", "llm.completions.", "gen_ai.completion."))
        for k in attrs
    ) or any(k in attrs for k in ("llm.request.type", "llm.request.model", "llm.vendor")):
        return "openllmetry"
    return "otel_genai"


def _provider(attrs: dict[str, Any]) -> str:
    """The registry name of the provider a span names, in any dialect."""
    return canonical_provider(_first(attrs, *_PROVIDER_KEYS))


def call_identity(span: SpanView) -> tuple[str, str, bool]:
    """(canonical provider, operation, made by faultprint's SDK) of a model-call span."""
    attrs = span.attributes
    dialect = detect_dialect(attrs)
    provider = _provider(attrs)
    return provider, _operation(span, attrs, dialect), dialect == "faultprint"


def is_model_call(span: SpanView) -> bool:
    """True for spans that record a model call, in any dialect.

    A span is a model call when its sender says so (faultprint's SDK; an
    OpenInference ``LLM`` or ``EMBEDDING`` span), when it names a model-call
    operation (``chat``, ``text_completion``, ``generate_content``,
    ``embeddings``, ``rerank``, ``image_generation``; OpenLLMetry's
    ``llm.request.type`` too), or, naming no operation of the conventions,
    when it names a requested or responding model or a provider.

    Not model calls, and skipped: agent, workflow, tool-execution and
    retrieval operations even when they name a model; the wrapper spans of
    the other instrumentations (OpenInference chains, tools, agents;
    traceloop workflows and tasks); and spans whose GenAI keys only give
    context (``gen_ai.conversation.*``, ``gen_ai.agent.*``, ``gen_ai.tool.*``,
    ``gen_ai.data_source.*``): an HTTP span that carries the conversation id
    is no model call.
    """
    attrs = span.attributes
    if _has_faultprint_key(attrs):
        return True
    kind = attrs.get("openinference.span.kind")
    if kind is not None:
        return as_text(kind).upper() in _MODEL_SPAN_KINDS
    named = _first(attrs, "gen_ai.operation.name", "llm.request.type")
    operation = canonical_operation(named) if named is not None else ""
    if operation in _MODEL_OPERATIONS:
        return True
    if operation in _NON_MODEL_OPERATIONS:
        return False
    if as_text(attrs.get("traceloop.span.kind")).lower() in _TRACELOOP_WRAPPER_KINDS:
        # a workflow or task that names the model it ran is the call itself
        # (older OpenLLMetry); one that names none wraps calls
        return any(
            k in attrs for k in ("gen_ai.request.model", "gen_ai.system", "gen_ai.provider.name")
        )
    return any(k in attrs for k in _MODEL_KEYS) or any(k in attrs for k in _PROVIDER_KEYS)


def _operation(span: SpanView, attrs: dict[str, Any], dialect: str) -> str:
    op = _first(attrs, "gen_ai.operation.name", "llm.request.type")
    if op is not None:
        return canonical_operation(op)
    if dialect == "openinference":
        if as_text(attrs.get("openinference.span.kind")).upper() == "EMBEDDING":
            return "embeddings"
        name = span.name.lower().replace("_", "").replace(".", "")
        for marker, operation in _OPENINFERENCE_SPAN_OPERATIONS:
            if marker in name:
                return operation
    # OpenLLMetry names spans "openai.chat", "anthropic.completion", ...
    if "." in span.name:
        tail = span.name.rsplit(".", 1)[1]
        if canonical_operation(tail) in _OPERATIONS.values():
            return canonical_operation(tail)
    return "chat"


def _request_model(attrs: dict[str, Any]) -> str:
    model = _first(attrs, "gen_ai.request.model", "llm.request.model")
    if model is not None:
        return model_text(model)
    # OpenInference keeps the request in JSON invocation parameters
    params = _json(attrs.get("llm.invocation_parameters"))
    return model_text(_get(params, "model")) if isinstance(params, dict) else ""


def _finish_reasons(span: SpanView, attrs: dict[str, Any], response: Any) -> list[str]:
    raw: list[Any] = []
    listed = _json(_first(attrs, "gen_ai.response.finish_reasons", "gen_ai.response.finish_reason"))
    if isinstance(listed, (list, tuple)):
        raw.extend(listed)
    elif listed is not None:
        raw.extend(as_text(listed).split(","))
    for key in (
        "llm.finish_reason",
        "llm.response.finish_reason",
        "llm.response.stop_reason",
        "gen_ai.response.stop_reason",
        # the spans the Anthropic library makes of its own calls
        "anthropic.message.stop_reason",
    ):
        if key in attrs:
            raw.append(attrs[key])
    # OpenLLMetry legacy, one per choice: gen_ai.completion.0.finish_reason
    for key, value in attrs.items():
        if key.endswith(".finish_reason") and key.startswith(
            ("gen_ai.completion.", "llm.completions.")
        ):
            raw.append(value)
    # current conventions: finish_reason on each output message
    outputs = _json(attrs.get("gen_ai.output.messages"))
    if isinstance(outputs, list):
        raw.extend(m.get("finish_reason") for m in outputs if isinstance(m, dict))
    for event in span.events:
        if event.name == "gen_ai.choice" and "finish_reason" in event.attributes:
            raw.append(event.attributes["finish_reason"])
        if event.name == "gen_ai.client.inference.operation.details":
            listed = _json(event.attributes.get("gen_ai.response.finish_reasons"))
            if isinstance(listed, list):
                raw.extend(listed)
    raw.extend(_response_finish_reasons(response))
    out: list[str] = []
    for value in raw:
        reason = canonical_finish_reason(value)
        if reason and reason not in out:
            out.append(reason)
    return out


def _response_finish_reasons(response: Any) -> list[Any]:
    """Finish reasons inside a provider response body (OpenInference output.value)."""
    if not isinstance(response, dict):
        return []
    found: list[Any] = []
    for choice in response.get("choices") or []:  # OpenAI, Mistral
        if isinstance(choice, dict):
            found.append(choice.get("finish_reason"))
    for candidate in response.get("candidates") or []:  # Gemini
        if isinstance(candidate, dict):
            found.append(candidate.get("finishReason") or candidate.get("finish_reason"))
    for key in ("stop_reason", "stopReason", "finish_reason", "completionReason"):
        if response.get(key):  # Anthropic, Bedrock, Cohere
            found.append(response[key])
    if response.get("status") == "incomplete":  # OpenAI responses API
        found.append(_get(response, "incomplete_details", "reason") or "incomplete")
    return [f for f in found if f]


#: output parts, content blocks and items that are the model's reasoning, not its output
_REASONING = frozenset({"reasoning", "thinking", "redacted_thinking"})


@dataclass(slots=True)
class _Output:
    captured: bool = False
    texts: list[str] = field(default_factory=list)
    tool_calls: bool = False
    refusal: str = ""
    #: output other than text and tool calls (audio, an image, a built-in
    #: tool's call or result, an action for the application): not empty
    other: bool = False

    def add_text(self, value: Any) -> None:
        """Record one captured text (None: captured, and empty); withheld text is skipped."""
        if isinstance(value, str) and value.strip() in _REDACTED:
            return
        self.captured = True
        text = value if isinstance(value, str) else as_text(value)
        if text.strip():
            self.texts.append(text)


def _message_output(message: Any, out: _Output) -> None:
    """An output message in the current conventions' shape, or a provider's."""
    if not isinstance(message, dict):
        return
    parts = message.get("parts")
    if isinstance(parts, list):  # current GenAI conventions
        out.captured = True
        for part in parts:
            if not isinstance(part, dict):
                continue
            ptype = part.get("type")
            if ptype == "tool_call":
                out.tool_calls = True
            elif ptype == "refusal":
                out.refusal = as_text(part.get("content") or part.get("refusal") or "refused")
            elif ptype in ("text", None):
                out.add_text(part.get("content"))
            elif ptype not in _REASONING:
                out.other = True  # blob, file, uri, ...
        return
    nested = message.get("message")
    inner: dict[str, Any] = nested if isinstance(nested, dict) else message
    if inner.get("tool_calls") or inner.get("function_call"):
        out.tool_calls = True
    if inner.get("refusal"):
        out.refusal = as_text(inner["refusal"])
    if inner.get("audio"):
        out.other = True
    content = inner.get("content")
    if isinstance(content, list):  # Anthropic content blocks
        out.captured = True
        for block in content:
            if isinstance(block, dict):
                btype = block.get("type")
                if btype == "tool_use":
                    out.tool_calls = True
                elif btype == "text":
                    out.add_text(block.get("text"))
                elif btype not in _REASONING:
                    out.other = True  # a server tool's use or result
    elif "content" in inner:
        out.add_text(content)


def _response_output(response: Any, out: _Output) -> None:
    """Output of a provider response body (OpenInference ``output.value``)."""
    if not isinstance(response, dict):
        return
    for choice in response.get("choices") or []:
        if isinstance(choice, dict):
            if "message" in choice:
                _message_output(choice.get("message"), out)
            elif "text" in choice:
                out.add_text(choice.get("text"))
    if response.get("type") == "message" and isinstance(response.get("content"), list):
        _message_output(response, out)  # Anthropic
    for item in response.get("output") or []:  # OpenAI responses API
        if not isinstance(item, dict):
            continue
        itype = item.get("type")
        if itype in ("function_call", "custom_tool_call"):
            out.tool_calls = True
        elif itype not in ("message", *_REASONING):
            out.other = True  # a built-in tool's call, an image, an action
        for part in item.get("content") or []:
            if isinstance(part, dict):
                if part.get("type") == "refusal":
                    out.refusal = as_text(part.get("refusal") or "refused")
                elif part.get("type") == "output_text":
                    out.add_text(part.get("text"))


def _indexed_output(attrs: dict[str, Any], out: _Output) -> None:
    """Flattened per-choice attributes: OpenLLMetry and OpenInference."""
    for key, value in attrs.items():
        if key.startswith(("gen_ai.completion.", "llm.completions.")):
            rest = key.split(".", 3)[-1]
            if rest == "content":
                blocks = _json(value)
                if isinstance(blocks, list):  # Anthropic content blocks as JSON text
                    _message_output({"content": blocks}, out)
                else:
                    out.add_text(value)
            elif rest == "refusal" and value:
                out.refusal = as_text(value)
            elif rest.startswith(("tool_calls.", "function_call")):
                out.tool_calls = True
        elif key.startswith("llm.output_messages."):
            if key.endswith(".message.content"):
                out.add_text(value)
            elif ".message.tool_calls." in key:
                out.tool_calls = True
            elif ".message.contents." in key and key.endswith(".message_content.text"):
                out.add_text(value)


def _event_output(span: SpanView, out: _Output) -> None:
    for event in span.events:
        attrs = event.attributes
        if event.name == "gen_ai.content.completion":  # older conventions
            value = _json(attrs.get("gen_ai.completion"))
            messages = value if isinstance(value, list) else [value]
            for message in messages:
                if isinstance(message, dict):
                    _message_output(message, out)
                elif isinstance(message, str):
                    out.add_text(message)
        elif event.name == "gen_ai.choice":
            message = _json(attrs.get("message"))
            if isinstance(message, dict):
                _message_output(message, out)
            if attrs.get("tool_calls"):
                out.tool_calls = True
        elif event.name == "gen_ai.client.inference.operation.details":
            value = _json(attrs.get("gen_ai.output.messages"))
            for message in value if isinstance(value, list) else []:
                _message_output(message, out)


def _read_output(span: SpanView, attrs: dict[str, Any], response: Any) -> _Output:
    out = _Output()
    outputs = _json(attrs.get("gen_ai.output.messages"))
    if isinstance(outputs, list):
        for message in outputs:
            _message_output(message, out)
    _indexed_output(attrs, out)
    _event_output(span, out)
    _response_output(response, out)
    return out


# --- errors ---------------------------------------------------------------------


#: a dotted module name as the SDK reports it
_MODULE_NAME = re.compile(r"^[A-Za-z_][\w.]{0,255}$")
#: entries of ``faultprint.exception.modules`` read, and the longest path kept
_MAX_FRAME_MODULES = 64
_MAX_PATH_CHARS = 4096


def frame_modules(value: Any) -> dict[str, str]:
    """Path → module from the SDK's ``faultprint.exception.modules``.

    Each entry is ``"module path"``: the module the file's code runs as.
    Anything else (another sender's value, a malformed entry) is left out:
    the frames of those files are named by their path.
    """
    if not isinstance(value, (list, tuple)):
        return {}
    found: dict[str, str] = {}
    for entry in value[:_MAX_FRAME_MODULES]:
        if type(entry) is not str:
            continue
        name, sep, path = entry.partition(" ")
        if sep and path and len(path) <= _MAX_PATH_CHARS and _MODULE_NAME.match(name):
            found[path] = name
    return found


def _exception_event(span: SpanView) -> dict[str, Any]:
    for event in span.events:
        if event.name == "exception":
            return event.attributes
    return {}


def provider_error_code(message: str) -> tuple[int, str]:
    """(HTTP status, provider error code) read from an exception message.

    The code is the body's ``code``, else its ``type`` (what the SDK reads
    from the exception object), else one named by the message's prose.
    """
    pe = parse_provider_error(message) if message else None
    status = pe.status if pe is not None else 0
    if not status:
        m = _STATUS_IN_TEXT.search(message[:300])
        status = int(m.group(1)) if m else 0
    code = ""
    if pe is not None:
        code = pe.code or pe.error_type
        prose = pe.message
    else:
        prose = message
    if not code and prose:
        code = code_from_prose(prose)[0]
    return status, code


def _connection_error(error_type: str) -> bool:
    # The SDK reports a provider library's connection failure as api_error
    # with code connection_error; the same exception seen from outside must
    # land in the same mode.
    root = error_type.split(".", 1)[0]
    return "Connection" in error_type.rsplit(".", 1)[-1] and root in ("openai", "anthropic")


# --- reading a span -------------------------------------------------------------


def read_call(span: SpanView) -> CallView:
    """Read a model-call span of any dialect into a :class:`CallView`."""
    attrs = span.attributes
    dialect = detect_dialect(attrs)
    response = _json(attrs.get("output.value")) if dialect == "openinference" else None
    provider = _provider(attrs)
    operation = _operation(span, attrs, dialect)
    view = CallView(
        dialect=dialect,
        provider=provider,
        operation=operation,
        request_model=_request_model(attrs),
        response_model=model_text(
            _first(attrs, "gen_ai.response.model", "llm.response.model", "llm.model_name")
        ),
        input_tokens=as_count(
            _first(
                attrs,
                "gen_ai.usage.input_tokens",
                "gen_ai.usage.prompt_tokens",
                "llm.token_count.prompt",
                "llm.usage.prompt_tokens",
            )
        ),
        output_tokens=as_count(
            _first(
                attrs,
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.completion_tokens",
                "llm.token_count.completion",
                "llm.usage.completion_tokens",
            )
        ),
        finish_reasons=_finish_reasons(span, attrs, response),
    )
    explicit_site = as_text(attrs.get("faultprint.call_site"))
    view.call_site = explicit_site or endpoint_call_site(provider, operation)

    exc = _exception_event(span)
    view.error_type = as_text(attrs.get("error.type") or exc.get("exception.type"))
    if view.error_type == "_OTHER" and exc.get("exception.type"):
        view.error_type = as_text(exc["exception.type"])
    view.stacktrace = as_text(exc.get("exception.stacktrace"))
    view.frame_modules = frame_modules(exc.get("faultprint.exception.modules"))
    view.message = as_text(
        exc.get("exception.message")
        or attrs.get("faultprint.failure.message")
        or span.status_message
    )
    view.errored = span.status_code == STATUS_ERROR or bool(view.error_type) or bool(exc)
    view.http_status = as_count(_first(attrs, "http.response.status_code", "http.status_code"))
    view.error_code = as_text(attrs.get("faultprint.error.code"))

    if dialect != "faultprint":
        _read_foreign_outcome(span, attrs, response, view)
    return view


#: a provider's error type or code as error.type holds it: lower snake case
#: (not an exception class, not an HTTP status)
_PROVIDER_ERROR_TYPE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def _read_foreign_outcome(
    span: SpanView, attrs: dict[str, Any], response: Any, view: CallView
) -> None:
    """Error identity and inferred failures for spans of other instrumentations.

    faultprint's SDK already classified its own spans (and may have the
    refusal detector switched off on purpose), so this runs only for others.
    """
    if view.errored:
        status, code = provider_error_code(view.message)
        view.http_status = view.http_status or status
        view.error_code = view.error_code or code
        if not view.error_code and _connection_error(view.error_type):
            view.error_code = "connection_error"
        if not view.error_code and view.http_status >= 400:
            # The Anthropic library's own spans name an HTTP error by the
            # provider's error type (overloaded_error), with no message.
            named = as_text(attrs.get("error.type"))
            if _PROVIDER_ERROR_TYPE.match(named):
                view.error_code = named
        return
    out = _read_output(span, attrs, response)
    view.output_captured = out.captured
    view.has_tool_calls = out.tool_calls
    view.refusal = out.refusal
    if out.captured:
        view.output_text = "\n".join(out.texts)
    view.inferred = _infer(view, out)


def _infer(view: CallView, out: _Output) -> Inferred | None:
    """The failure a successful-looking span shows, in the SDK's order of checks."""
    if out.refusal:
        return Inferred(
            "refusal", f"model refused: {out.refusal}"[:300], {"source": "provider_field"}
        )
    decided = finish_category(view.finish_reasons)
    if decided is not None:
        category, reason = decided
        if category == "refusal":
            return Inferred("refusal", "model refused (stop reason)", {"source": "stop_reason"})
        if category == "content_filter":
            return Inferred(category, f"output blocked: {reason}", {"finish_reason": reason})
        if category == "truncation":
            return Inferred(category, f"output truncated: {reason}", {"finish_reason": reason})
        if category == "tool_error":
            return Inferred(category, f"tool call failed: {reason}", {"reason": reason})
        return Inferred(category, f"generation ended with {reason}", {"finish_reason": reason})
    if view.operation not in ("chat", "text_completion", "generate_content"):
        return None  # embeddings and the like have no text output to judge
    if out.captured and not out.texts and not out.tool_calls and not out.other:
        return Inferred("empty_output", "model returned no output", {"source": "no_text"})
    text = "\n".join(out.texts)
    if text and looks_like_refusal(text):
        return Inferred("refusal", f"model refused: {text[:200]}", {"source": "text_detector"})
    return None


def timeout_error(view: CallView) -> bool:
    """The failure is a client or server timeout.

    By the error type (``APITimeoutError``, ``ReadTimeout``,
    ``context.deadlineExceededError``) or the HTTP status (408, 504); by the
    message only when the span names no type, or a type that names no
    failure (Go's ``*url.Error``), and the call got no HTTP answer or
    provider error code: "Request timed out." as the only status text, Go's
    ``context deadline exceeded``.
    """
    short = view.error_type.rsplit(".", 1)[-1]
    if _TIMEOUT_TYPE.search(short) or view.http_status in (408, 504):
        return True
    if view.http_status or view.error_code:
        return False  # the provider answered: an API error, whatever its text says
    if view.error_type and not _GENERIC_ERROR_TYPE.match(view.error_type):
        return False
    return _TIMEOUT_TEXT.search(view.message[:500]) is not None
