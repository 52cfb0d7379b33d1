"""Failure category from whatever fields a record has.

Used when a record does not carry its category (offline JSONL records, spans
from other instrumentations) and to normalise the many dialects of finish
reasons. A pure function of the fields, so every replica agrees.
"""

from __future__ import annotations

import re

from faultprint import attributes

from ._provider import parse_provider_error
from ._validation import json_error_mode, looks_like_refusal

__all__ = [
    "CATEGORIES",
    "FINISH_REASONS",
    "category_from_fields",
    "normalise_category",
    "normalise_finish_reason",
]

# the categories are part of the span contract the SDK defines
CATEGORIES = attributes.CATEGORIES
_CATEGORY_SET = frozenset(CATEGORIES)

_ALIASES = {
    "error": "exception",
    "api": "api_error",
    "http_error": "api_error",
    "provider_error": "api_error",
    "timed_out": "timeout",
    "validation": "invalid_output",
    "validation_error": "invalid_output",
    "invalid_json": "invalid_output",
    "parse_error": "invalid_output",
    "truncated": "truncation",
    "length": "truncation",
    "empty": "empty_output",
    "safety": "content_filter",
    "filtered": "content_filter",
    "tool": "tool_error",
    "tool_call_error": "tool_error",
}

#: Finish / stop reasons of every provider dialect, after
#: :func:`normalise_finish_reason`, mapped to a failure category (None: the
#: generation ended normally). Reasons not listed are not failures: an
#: unknown reason must never invent a failure mode.
FINISH_REASONS: dict[str, str | None] = {
    # OpenAI chat completions / Azure OpenAI / xAI / Groq / Together
    "stop": None,
    "length": "truncation",
    "content_filter": "content_filter",
    "tool_calls": None,
    "function_call": None,
    # OpenAI responses API (status / incomplete_details.reason)
    "completed": None,
    "max_output_tokens": "truncation",
    # Anthropic (also on Bedrock and Vertex)
    "end_turn": None,
    "stop_sequence": None,
    "tool_use": None,
    "pause_turn": None,
    "max_tokens": "truncation",
    "model_context_window_exceeded": "truncation",
    "refusal": "refusal",
    # Gemini / Vertex AI (FinishReason enum; FINISH_REASON_ prefix stripped)
    "unspecified": None,
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "image_safety": "content_filter",
    "malformed_function_call": "tool_error",
    "unexpected_tool_call": "tool_error",
    # Bedrock Converse stopReason, Titan completionReason
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "finish": None,
    # Cohere (v1 and v2)
    "complete": None,
    "tool_call": None,
    "error_toxic": "content_filter",
    "error_limit": "truncation",
    "error": "api_error",
    # Mistral
    "model_length": "truncation",
    # DeepSeek: generation cut off by the provider's capacity
    "insufficient_system_resource": "api_error",
    # Hugging Face TGI / vLLM / Ollama
    "eos_token": None,
    "eos": None,
    "abort": "api_error",
}

_TIMEOUT_TYPE = re.compile(r"time(?:d)?[ _]?out|deadline", re.I)
# matched against a lower-cased head of the message
_TIMEOUT_MSG = re.compile(r"\btimed? ?out\b|\btimeout\b|deadline exceeded|took too long")
_VALIDATION_TYPES = frozenset(
    {"ValidationError", "JSONDecodeError", "DecodeError", "SchemaError", "OutputParserException"}
)
_TOOL_MSG = re.compile(
    r"\b(?:unknown|unexpected|invalid|undefined|unsupported) (?:tool|function)\b"
    r"|\btool[ _](?:call|arguments?)\b|\barguments for (?:tool|function)\b"
)


def normalise_finish_reason(reason: str) -> str:
    """Lower-case, dialect-free finish reason (``MAX_TOKENS`` -> ``max_tokens``)."""
    r = reason.strip().lower()
    if "." in r and r.startswith(("finishreason.", "stopreason.", "finish_reason.")):
        r = r.split(".", 1)[1]
    if r.startswith("finish_reason_"):
        r = r[len("finish_reason_") :]
    return r.replace("-", "_").replace(" ", "_")


_EXACT = {c: c for c in CATEGORIES}


def normalise_category(category: str) -> str:
    """A known category name, or "" when ``category`` is not one."""
    exact = _EXACT.get(category)
    if exact is not None:
        return exact
    c = category.strip().lower().replace("-", "_")
    if c in _CATEGORY_SET:
        return c
    return _ALIASES.get(c, "")


def category_from_fields(
    *,
    category: str = "",
    error_type: str = "",
    message: str = "",
    finish_reason: str = "",
    status_code: int = 0,
    output: str | None = None,
    has_stacktrace: bool = False,
) -> str:
    """The failure category implied by a record's fields.

    An explicit, known ``category`` wins. Otherwise, in order: the finish
    reason (length -> truncation, content_filter/safety -> content_filter),
    an HTTP status >= 400 or a provider error message -> api_error, a timeout
    type or message -> timeout, validation / JSON errors -> invalid_output,
    tool-call errors -> tool_error, any other error -> exception, an empty
    output -> empty_output.
    """
    c = normalise_category(category) if category else ""
    if c:
        return c
    if finish_reason:
        by_finish = FINISH_REASONS.get(normalise_finish_reason(finish_reason))
        if by_finish is not None:
            return by_finish
    short_type = error_type.rsplit(".", 1)[-1]
    if _TIMEOUT_TYPE.search(short_type):
        return "timeout"
    if status_code in (408, 504) and not message.lstrip().startswith("{"):
        return "timeout"
    if status_code >= 400:
        return "api_error"
    # first letters of the messages parse_provider_error reads ("Error code",
    # "HTTP", "status", a body; a Go library's GET / POST / PUT / PATCH / DELETE)
    if message and message[:1] in "E{HhSsGPD" and parse_provider_error(message) is not None:
        return "api_error"
    # one lower-cased head, then cheap substring tests gate the expressions
    head = message[:300].lower() if message else ""
    if (
        ("time" in head or "deadline" in head or "too long" in head)
        and _TIMEOUT_MSG.search(head)
        and not short_type.endswith("ValidationError")
    ):
        return "timeout"
    if "Tool" in short_type or (("tool" in head or "function" in head) and _TOOL_MSG.search(head)):
        return "tool_error"
    if short_type in _VALIDATION_TYPES or "validation error" in head:
        return "invalid_output"
    if message and json_error_mode(message) is not None:
        return "invalid_output"
    if error_type or message or has_stacktrace:
        return "exception"
    if output is not None:
        if not output.strip():
            return "empty_output"
        if looks_like_refusal(output):
            return "refusal"
    return "exception"
