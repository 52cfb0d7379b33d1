"""Spans of other GenAI instrumentations: one view, one classification.

Attribute sets below are what each instrumentation emits (names and value
shapes as they appear on the wire), fed through the collector's real
classification and fingerprint engine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from faultprint.refusal import looks_like_refusal
from faultprint_collector.ingest import classify, is_model_call
from faultprint_collector.ingest._dialects import (
    FINISH_REASONS,
    canonical_finish_reason,
    canonical_provider,
    detect_dialect,
    finish_category,
    provider_error_code,
    read_call,
)
from faultprint_collector.ingest._spans import STATUS_ERROR, STATUS_OK, SpanEvent, SpanView
from hypothesis import given
from hypothesis import strategies as st

RATE_LIMIT_MESSAGE = (
    "Error code: 429 - Rate limit reached for gpt-4o-mini in organization org-abc on "
    "tokens per min (TPM): Limit 200000, Used 199000, Requested 2000. Please try again in 300ms."
)


def span(
    attrs: dict[str, Any],
    *,
    name: str = "chat",
    events: list[SpanEvent] | None = None,
    status: int = 0,
    status_message: str = "",
) -> SpanView:
    return SpanView(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id="",
        name=name,
        start_ns=1_700_000_000_000_000_000,
        end_ns=1_700_000_000_500_000_000,
        status_code=status,
        status_message=status_message,
        attributes=attrs,
        resource={"service.name": "shop"},
        events=events or [],
    )


def exception(etype: str, message: str) -> SpanEvent:
    return SpanEvent(
        "exception",
        {
            "exception.type": etype,
            "exception.message": message,
            "exception.stacktrace": f"Traceback (most recent call last):\n{etype}: {message}",
        },
    )


# --- recognising model calls ------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"openinference.span.kind": "LLM", "llm.model_name": "m"}, True),
        ({"openinference.span.kind": "EMBEDDING"}, True),
        ({"openinference.span.kind": "CHAIN", "input.value": "q"}, False),
        ({"openinference.span.kind": "TOOL", "llm.tools": "x"}, False),
        ({"traceloop.span.kind": "workflow", "traceloop.entity.name": "answer"}, False),
        ({"traceloop.span.kind": "task", "traceloop.entity.path": "a.b"}, False),
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}, False),
        ({"gen_ai.system": "openai", "gen_ai.request.model": "m"}, True),
        ({"llm.request.type": "chat", "traceloop.workflow.name": "w"}, True),
        ({"faultprint.call_site": "shop.answer"}, True),
        ({"http.request.method": "POST", "url.full": "http://x"}, False),
    ],
)
def test_wrapper_spans_are_not_model_calls(attrs: dict[str, Any], expected: bool) -> None:
    assert is_model_call(span(attrs)) is expected


@pytest.mark.parametrize(
    ("attrs", "dialect"),
    [
        ({"faultprint.call_site": "a", "gen_ai.request.model": "m"}, "faultprint"),
        ({"llm.model_name": "m", "llm.system": "openai"}, "openinference"),
        ({"gen_ai.completion.0.finish_reason": "stop", "gen_ai.system": "OpenAI"}, "openllmetry"),
        ({"llm.request.model": "m", "llm.vendor": "OpenAI"}, "openllmetry"),
        ({"gen_ai.provider.name": "openai", "gen_ai.request.model": "m"}, "otel_genai"),
    ],
)
def test_dialect_detection(attrs: dict[str, Any], dialect: str) -> None:
    assert detect_dialect(attrs) == dialect


# --- names and usage --------------------------------------------------------------


def test_current_genai_conventions() -> None:
    view = read_call(
        span(
            {
                "gen_ai.provider.name": "anthropic",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-x",
                "gen_ai.response.model": "claude-x-20250101",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 40,
                "gen_ai.response.finish_reasons": ["max_tokens"],
            }
        )
    )
    assert (view.provider, view.operation, view.call_site) == (
        "anthropic",
        "chat",
        "anthropic.chat",
    )
    assert (view.input_tokens, view.output_tokens) == (12, 40)
    assert view.inferred is not None and view.inferred.category == "truncation"


#: what the Anthropic library's own span of a call holds (content not recorded)
ANTHROPIC_LIBRARY_SPAN = {
    "gen_ai.provider.name": "anthropic",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "claude-haiku-4-5",
    "gen_ai.response.model": "claude-haiku-4-5-20251001",
    "gen_ai.usage.input_tokens": 21,
    "gen_ai.usage.output_tokens": 9,
    "http.response.status_code": 200,
}


@pytest.mark.parametrize(
    ("stop_reason", "category"),
    [("max_tokens", "truncation"), ("refusal", "refusal"), ("end_turn", None)],
)
def test_the_anthropic_librarys_own_spans_say_how_a_turn_stopped(
    stop_reason: str, category: str | None
) -> None:
    view = read_call(
        span(
            {**ANTHROPIC_LIBRARY_SPAN, "anthropic.message.stop_reason": stop_reason},
            name="anthropic.messages.create",
        )
    )
    assert view.call_site == "anthropic.chat"
    assert (view.inferred.category if view.inferred else None) == category


def test_older_genai_names_and_completion_event() -> None:
    record = classify(
        span(
            {
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.prompt_tokens": 7,
                "gen_ai.usage.completion_tokens": 0,
            },
            name="chat gpt-4o-mini",
            events=[
                SpanEvent(
                    "gen_ai.content.completion",
                    {"gen_ai.completion": json.dumps([{"role": "assistant", "content": ""}])},
                )
            ],
        ),
        "p",
    )
    assert record.provider == "openai" and record.input_tokens == 7
    assert record.call_site == "openai.chat"
    assert record.category == "empty_output" and record.fingerprint != 0


def test_choice_event_finish_reason() -> None:
    record = classify(
        span(
            {"gen_ai.system": "az.ai.openai", "gen_ai.request.model": "gpt-4o"},
            events=[
                SpanEvent(
                    "gen_ai.choice",
                    {"finish_reason": "content_filter", "index": 0, "message": "{}"},
                )
            ],
        ),
        "p",
    )
    assert record.provider == "azure.ai.openai"
    assert (record.category, record.finish_reason) == ("content_filter", "content_filter")


def test_openinference_names_usage_and_request_model() -> None:
    record = classify(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.system": "openai",
                "llm.model_name": "gpt-4o-mini-2024-07-18",
                "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini"}),
                "llm.token_count.prompt": 5,
                "llm.token_count.completion": 9,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Paris.",
                "llm.finish_reason": "stop",
            },
            name="ChatCompletion",
            status=STATUS_OK,
        ),
        "p",
    )
    assert (record.operation, record.call_site) == ("chat", "openai.chat")
    assert record.request_model == "gpt-4o-mini"
    assert record.model_version == "gpt-4o-mini-2024-07-18"
    assert (record.input_tokens, record.output_tokens) == (5, 9)
    assert record.is_failure == 0 and record.output_text == "Paris."


def test_openinference_output_value_refusal() -> None:
    body = {
        "choices": [
            {
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": None, "refusal": "I can't do that."},
            }
        ]
    }
    record = classify(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.provider": "openai",
                "output.value": json.dumps(body),
                "output.mime_type": "application/json",
            },
            name="ChatCompletion",
        ),
        "p",
    )
    assert record.category == "refusal"
    assert "I can't do that." in record.message


def test_openllmetry_legacy_per_choice_attributes_take_the_worst_choice() -> None:
    record = classify(
        span(
            {
                "gen_ai.system": "Vertex_AI",
                "llm.request.type": "chat",
                "gen_ai.request.model": "gemini-pro",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "An answer.",
                "gen_ai.completion.0.finish_reason": "FinishReason.STOP",
                "gen_ai.completion.1.finish_reason": "FINISH_REASON_SAFETY",
                "llm.usage.total_tokens": 30,
            },
            name="vertexai.generate_content",
        ),
        "p",
    )
    assert record.provider == "gcp.vertex_ai"
    assert (record.category, record.finish_reason) == ("content_filter", "safety")


def test_oldest_traceloop_names() -> None:
    view = read_call(
        span(
            {
                "llm.vendor": "Anthropic",
                "llm.request.type": "completion",
                "llm.request.model": "claude-2",
                "llm.response.model": "claude-2.1",
                "llm.usage.prompt_tokens": 3,
                "llm.usage.completion_tokens": 4,
                "llm.completions.0.finish_reason": "max_tokens",
                "llm.completions.0.content": "Once upon",
            },
            name="anthropic.completion",
        )
    )
    assert (view.provider, view.operation) == ("anthropic", "text_completion")
    assert (view.request_model, view.response_model) == ("claude-2", "claude-2.1")
    assert (view.input_tokens, view.output_tokens) == (3, 4)
    assert view.inferred is not None and view.inferred.category == "truncation"
    assert view.output_text == "Once upon"


# --- finish reasons ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "category"),
    [
        ("stop", None),
        ("length", "truncation"),  # OpenAI
        ("content_filter", "content_filter"),
        ("tool_calls", None),
        ("end_turn", None),  # Anthropic
        ("max_tokens", "truncation"),
        ("refusal", "refusal"),
        ("model_context_window_exceeded", "truncation"),
        ("STOP", None),  # Gemini
        ("MAX_TOKENS", "truncation"),
        ("FinishReason.SAFETY", "content_filter"),
        ("FINISH_REASON_RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "tool_error"),
        ("guardrail_intervened", "content_filter"),  # Bedrock Converse
        ("CONTENT_FILTERED", "content_filter"),  # Bedrock Titan
        ("LENGTH", "truncation"),
        ("COMPLETE", None),  # Cohere
        ("ERROR_TOXIC", "content_filter"),
        ("ERROR_LIMIT", "truncation"),
        ("model_length", "truncation"),  # Mistral
        ("insufficient_system_resource", "api_error"),  # DeepSeek
        ("eos_token", None),  # TGI
        ("something_new", None),  # unknown: never a failure
    ],
)
def test_finish_reasons_of_every_dialect(raw: str, category: str | None) -> None:
    assert FINISH_REASONS.get(canonical_finish_reason(raw)) == category


def test_finish_reason_table_is_canonical() -> None:
    for reason in FINISH_REASONS:
        assert canonical_finish_reason(reason) == reason


def test_finish_priority_matches_the_sdk() -> None:
    assert finish_category(["length", "content_filter"]) == ("content_filter", "content_filter")
    assert finish_category(["max_tokens", "refusal"]) == ("refusal", "refusal")
    assert finish_category(["stop", "end_turn"]) is None


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("OpenAI", "openai"),
        ("az.ai.openai", "azure.ai.openai"),
        ("Bedrock", "aws.bedrock"),
        ("vertexai", "gcp.vertex_ai"),
        ("mistralai", "mistral_ai"),
        ("some-new-llm", "some_new_llm"),
    ],
)
def test_provider_names(name: str, canonical: str) -> None:
    assert canonical_provider(name) == canonical


# --- errors -----------------------------------------------------------------------


def test_openllmetry_error_span_reads_status_and_code_from_the_message() -> None:
    record = classify(
        span(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "error.type": "RateLimitError",
            },
            name="openai.chat",
            status=STATUS_ERROR,
            status_message=RATE_LIMIT_MESSAGE,
            events=[exception("openai.RateLimitError", RATE_LIMIT_MESSAGE)],
        ),
        "p",
    )
    assert (record.category, record.http_status, record.error_code) == (
        "api_error",
        429,
        "rate_limit_exceeded",
    )


@pytest.mark.parametrize(
    ("message", "status", "code"),
    [
        (RATE_LIMIT_MESSAGE, 429, "rate_limit_exceeded"),
        (
            "Error code: 429 - You exceeded your current quota, please check your plan.",
            429,
            "insufficient_quota",
        ),
        (
            "Error code: 400 - This model's maximum context length is 128000 tokens.",
            400,
            "context_length_exceeded",
        ),
        (
            "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', "
            "'message': 'Overloaded'}}",
            529,
            "overloaded_error",
        ),
        (
            "Error code: 400 - {'error': {'message': 'bad', 'type': 'invalid_request_error', "
            "'param': 'x', 'code': 'invalid_value'}}",
            400,
            "invalid_value",
        ),
        ("Error code: 503 - upstream connect error", 503, ""),
        ("something broke", 0, ""),
    ],
)
def test_provider_error_codes(message: str, status: int, code: str) -> None:
    assert provider_error_code(message) == (status, code)


def test_timeout_and_connection_errors() -> None:
    timeout = classify(
        span(
            {"gen_ai.system": "openai"},
            status=STATUS_ERROR,
            events=[exception("openai.APITimeoutError", "Request timed out.")],
        ),
        "p",
    )
    assert timeout.category == "timeout"
    conn = classify(
        span(
            {"llm.system": "openai", "openinference.span.kind": "LLM"},
            status=STATUS_ERROR,
            events=[exception("openai.APIConnectionError", "Connection error.")],
        ),
        "p",
    )
    assert (conn.category, conn.error_code) == ("api_error", "connection_error")


def test_an_error_beats_a_finish_reason() -> None:
    record = classify(
        span(
            {"gen_ai.system": "openai", "gen_ai.response.finish_reasons": ["length"]},
            status=STATUS_ERROR,
            events=[exception("ValueError", "could not parse")],
        ),
        "p",
    )
    assert record.category == "exception"


def test_error_type_other_falls_back_to_the_exception() -> None:
    view = read_call(
        span(
            {"gen_ai.system": "openai", "error.type": "_OTHER"},
            status=STATUS_ERROR,
            events=[exception("openai.InternalServerError", "Error code: 500 - boom")],
        )
    )
    assert view.error_type == "openai.InternalServerError" and view.http_status == 500


# --- defensive inference ------------------------------------------------------------


def test_no_captured_content_is_not_empty_output() -> None:
    record = classify(
        span({"gen_ai.provider.name": "openai", "gen_ai.response.finish_reasons": ["stop"]}),
        "p",
    )
    assert record.is_failure == 0


def test_redacted_content_is_not_empty_output() -> None:
    record = classify(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.system": "openai",
                "llm.output_messages.0.message.content": "__REDACTED__",
                "output.value": "__REDACTED__",
            },
            name="ChatCompletion",
        ),
        "p",
    )
    assert record.is_failure == 0


def test_tool_calls_without_text_are_not_empty() -> None:
    outputs = [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "search", "arguments": {}}],
            "finish_reason": "tool_calls",
        }
    ]
    record = classify(
        span({"gen_ai.provider.name": "openai", "gen_ai.output.messages": json.dumps(outputs)}),
        "p",
    )
    assert record.is_failure == 0


@pytest.mark.parametrize(
    ("parts", "empty"),
    [
        (
            [{"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "UklG"}],
            False,
        ),
        ([{"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"}], False),
        ([{"type": "reasoning", "content": "The user wants..."}], True),
    ],
    ids=["audio", "image", "reasoning only"],
)
def test_outputs_without_text_are_judged_on_what_they_hold(parts: list, empty: bool) -> None:
    outputs = [{"role": "assistant", "parts": parts, "finish_reason": "stop"}]
    record = classify(
        span({"gen_ai.provider.name": "openai", "gen_ai.output.messages": json.dumps(outputs)}),
        "p",
    )
    assert record.category == ("empty_output" if empty else "")


def test_anthropic_server_tool_blocks_are_output() -> None:
    # OpenInference's output.value of an Anthropic turn paused during a web search
    body = {
        "type": "message",
        "role": "assistant",
        "stop_reason": "pause_turn",
        "content": [
            {"type": "thinking", "thinking": "Searching first.", "signature": "sig"},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        ],
    }
    record = classify(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.provider": "anthropic",
                "output.value": json.dumps(body),
                "output.mime_type": "application/json",
            },
            name="Messages",
        ),
        "p",
    )
    assert record.is_failure == 0


def test_empty_output_messages_are_empty_output() -> None:
    outputs = [{"role": "assistant", "parts": [], "finish_reason": "stop"}]
    record = classify(
        span({"gen_ai.provider.name": "openai", "gen_ai.output.messages": json.dumps(outputs)}),
        "p",
    )
    assert record.category == "empty_output"


def test_embeddings_without_output_are_fine() -> None:
    record = classify(
        span(
            {"openinference.span.kind": "EMBEDDING", "llm.system": "openai"},
            name="CreateEmbeddings",
        ),
        "p",
    )
    assert record.operation == "embeddings" and record.is_failure == 0


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot assist with this request.", True),
        ("Sorry, I won't provide that.", True),
        ("Unfortunately, I am unable to comply.", True),
        ("I can't guarantee it, but the answer is 42.", False),
        ("Here is the summary you asked for.", False),
        ("I'm sorry, but I can't help with that. " + "Here is why. " * 40, False),
    ],
)
def test_refusal_text_from_other_instrumentations(text: str, refused: bool) -> None:
    # The collector runs the SDK's own detector (faultprint.refusal) on spans
    # whose instrumentation did not judge the output.
    record = classify(
        span({"llm.system": "openai", "llm.output_messages.0.message.content": text}), "p"
    )
    assert (record.category == "refusal") is refused
    assert (record.category == "refusal") is looks_like_refusal(text)


def test_sdk_spans_are_not_second_guessed() -> None:
    # faultprint's SDK already ran its checks (its refusal detector may be off
    # on purpose): a span it did not mark stays a success.
    record = classify(
        span(
            {
                "faultprint.call_site": "shop.answer",
                "gen_ai.provider.name": "openai",
                "faultprint.output": "I'm sorry, but I can't help with that.",
                "gen_ai.response.finish_reasons": ["stop"],
            }
        ),
        "p",
    )
    assert record.is_failure == 0 and record.call_site == "shop.answer"


# --- one failure, one fingerprint, whichever dialect ----------------------------------


def _sdk_rate_limit() -> SpanView:
    return span(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "faultprint.call_site": "openai.chat",
            "error.type": "openai.RateLimitError",
            "faultprint.error.code": "rate_limit_exceeded",
            "http.response.status_code": 429,
            "faultprint.failure.category": "api_error",
        },
        name="chat gpt-4o-mini",
        status=STATUS_ERROR,
        events=[exception("openai.RateLimitError", RATE_LIMIT_MESSAGE)],
    )


def _openllmetry_rate_limit() -> SpanView:
    return span(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "error.type": "RateLimitError",
        },
        name="openai.chat",
        status=STATUS_ERROR,
        status_message=RATE_LIMIT_MESSAGE,
        events=[exception("openai.RateLimitError", RATE_LIMIT_MESSAGE)],
    )


def _openinference_rate_limit() -> SpanView:
    return span(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini"}),
        },
        name="ChatCompletion",
        status=STATUS_ERROR,
        status_message=f"RateLimitError: {RATE_LIMIT_MESSAGE}",
        events=[exception("openai.RateLimitError", RATE_LIMIT_MESSAGE)],
    )


def _older_genai_rate_limit() -> SpanView:
    return span(
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"},
        name="chat gpt-4o-mini",
        status=STATUS_ERROR,
        events=[exception("openai.RateLimitError", RATE_LIMIT_MESSAGE)],
    )


def test_one_rate_limit_one_fingerprint_in_every_dialect() -> None:
    records = [
        classify(make(), "p")
        for make in (
            _sdk_rate_limit,
            _openllmetry_rate_limit,
            _openinference_rate_limit,
            _older_genai_rate_limit,
        )
    ]
    assert {r.fingerprint for r in records} == {records[0].fingerprint}
    assert {r.coarse_fingerprint for r in records} == {records[0].coarse_fingerprint}
    assert {(r.call_site, r.category, r.error_code) for r in records} == {
        ("openai.chat", "api_error", "rate_limit_exceeded")
    }


def test_truncation_in_every_dialect_has_one_fingerprint() -> None:
    sdk = span(
        {
            "faultprint.call_site": "anthropic.chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.response.finish_reasons": ["max_tokens"],
            "faultprint.failure.category": "truncation",
        }
    )
    foreign = [
        span({"gen_ai.system": "anthropic", "gen_ai.response.finish_reasons": "max_tokens"}),
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.provider": "anthropic",
                "output.value": json.dumps(
                    {
                        "type": "message",
                        "content": [{"type": "text", "text": "Once"}],
                        "stop_reason": "max_tokens",
                    }
                ),
            },
            name="Messages",
        ),
        span(
            {
                "gen_ai.system": "Anthropic",
                "llm.request.type": "chat",
                "gen_ai.completion.0.finish_reason": "max_tokens",
            },
            name="anthropic.chat",
        ),
    ]
    fingerprints = {classify(s, "p").fingerprint for s in [sdk, *foreign]}
    assert len(fingerprints) == 1 and 0 not in fingerprints


# --- what is a model call ------------------------------------------------------------


@pytest.mark.parametrize(
    "attrs",
    [
        # an agent failed because its chat call did: counting it would count
        # that failure twice
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "openai",
            "gen_ai.agent.name": "planner",
            "error.type": "openai.RateLimitError",
        },
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o"},
        {"gen_ai.operation.name": "create_agent", "gen_ai.system": "az.ai.agents"},
        {"gen_ai.operation.name": "invoke_workflow", "gen_ai.provider.name": "openai"},
        {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb-1"},
        # a tool span without an operation name
        {"gen_ai.tool.name": "lookup", "gen_ai.tool.call.id": "call_1"},
        # an HTTP span carrying the conversation it belongs to
        {"http.request.method": "GET", "gen_ai.conversation.id": "conv-123"},
        {"gen_ai.agent.name": "planner", "gen_ai.agent.id": "asst_1"},
        {"gen_ai.data_source.id": "kb-1"},
    ],
    ids=[
        "invoke_agent",
        "invoke_agent naming its model",
        "create_agent",
        "invoke_workflow",
        "retrieval",
        "tool keys only",
        "conversation id only",
        "agent keys only",
        "data source only",
    ],
)
def test_context_keys_and_agent_operations_make_no_model_call(attrs: dict[str, Any]) -> None:
    assert is_model_call(span(attrs)) is False


@pytest.mark.parametrize(
    "attrs",
    [
        {"gen_ai.operation.name": "chat"},
        {"gen_ai.operation.name": "embeddings", "gen_ai.conversation.id": "c"},
        {"gen_ai.operation.name": "generate_content"},
        {"gen_ai.operation.name": "text_completion"},
        {"llm.request.type": "completion"},
        {"llm.request.type": "rerank", "gen_ai.system": "Cohere"},
        {"gen_ai.request.model": "gpt-4o", "gen_ai.conversation.id": "c"},
        {"gen_ai.response.model": "gpt-4o-2024-08-06"},
        {"llm.model_name": "gpt-4o"},
        {"gen_ai.provider.name": "anthropic"},
        {"gen_ai.system": "openai", "gen_ai.operation.name": "a_name_of_its_own"},
        {"llm.vendor": "OpenAI", "llm.request.model": "gpt-3.5-turbo"},
    ],
)
def test_a_model_call_names_its_operation_model_or_provider(attrs: dict[str, Any]) -> None:
    assert is_model_call(span(attrs)) is True


# --- one failure, one category, whichever library raised it ---------------------------

#: openai-go's text of a 429 (``*openai.Error``: method, URL, status, raw body)
GO_RATE_LIMIT = (
    'POST "https://api.openai.com/v1/chat/completions": 429 Too Many Requests '
    '{"message":"Rate limit reached for gpt-4o-mini in organization org-abc on tokens per '
    'min (TPM): Limit 200000, Used 199000, Requested 2000. Please try again in 300ms.",'
    '"type":"tokens","param":null,"code":"rate_limit_exceeded"}'
)


def test_a_go_librarys_rate_limit_is_the_python_librarys() -> None:
    go = classify(
        span(
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "error.type": "*openai.Error",
            },
            name="chat gpt-4o-mini",
            status=STATUS_ERROR,
            status_message=GO_RATE_LIMIT,
        ),
        "p",
    )
    python = classify(_older_genai_rate_limit(), "p")
    assert (go.category, go.error_code, go.http_status) == ("api_error", "rate_limit_exceeded", 429)
    assert (go.fingerprint, go.coarse_fingerprint) == (
        python.fingerprint,
        python.coarse_fingerprint,
    )


def test_a_go_librarys_overload_without_a_reason_phrase_is_the_python_librarys() -> None:
    def recorded(message: str) -> object:
        return classify(
            span({"gen_ai.system": "anthropic"}, status=STATUS_ERROR, status_message=message),
            "p",
        )

    go = recorded(
        'POST "https://api.anthropic.com/v1/messages": 529  '
        '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )
    python = recorded(
        "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', "
        "'message': 'Overloaded'}}"
    )
    assert (go.category, go.error_code, go.http_status) == ("api_error", "overloaded_error", 529)
    assert go.fingerprint == python.fingerprint


GO_DEADLINE = (
    'Post "https://api.openai.com/v1/chat/completions": context deadline exceeded '
    "(Client.Timeout exceeded while awaiting headers)"
)


@pytest.mark.parametrize(
    ("error_type", "message", "category"),
    [
        # the OpenAI / Anthropic libraries' APITimeoutError, its type lost
        ("", "Request timed out.", "timeout"),
        ("_OTHER", "Request timed out.", "timeout"),
        # Go: net/http wraps every transport failure in *url.Error
        ("*url.Error", GO_DEADLINE, "timeout"),
        ("", GO_DEADLINE, "timeout"),
        (
            "*url.Error",
            'Post "https://api.openai.com/v1/chat/completions": net/http: request canceled '
            "(Client.Timeout exceeded while awaiting headers)",
            "timeout",
        ),
        ("*net.OpError", "dial tcp 10.0.0.7:443: i/o timeout", "timeout"),
        # a type that names another failure decides, whatever the text says
        ("ValueError", "Request timed out.", "exception"),
        ("RuntimeError", "context deadline exceeded", "exception"),
        # ordinary messages that mention a timeout are no timeout
        ("", "timeout must be a positive number of seconds", "exception"),
        ("", "Retry after the timeout: Request timed out.", "exception"),
        ("", "config: Client.Timeout is not set", "exception"),
        (
            "*url.Error",
            'Get "https://x.test/v1": dial tcp: lookup x.test: no such host',
            "exception",
        ),
        # a provider's answer is an API error, even when it speaks of deadlines
        (
            "*openai.Error",
            'POST "https://api.openai.com/v1/chat/completions": 500 Internal Server Error '
            '{"message":"context deadline exceeded","type":"server_error","param":null,'
            '"code":null}',
            "api_error",
        ),
    ],
)
def test_timeouts_given_only_in_the_text(error_type: str, message: str, category: str) -> None:
    attrs: dict[str, Any] = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}
    if error_type:
        attrs["error.type"] = error_type
    record = classify(span(attrs, status=STATUS_ERROR, status_message=message), "p")
    assert record.category == category


# Ordinary messages made of the words timeouts and HTTP errors are told in,
# never in a library's own wording ("Request timed out" is capitalised, Go's
# texts need "context" or "i/o"), nor a Go library's quoted URL.
_PROSE = st.lists(
    st.sampled_from(
        [
            "request",
            "timed",
            "out",
            "timeout",
            "deadline",
            "exceeded",
            "while",
            "awaiting",
            "headers",
            "the",
            "order",
            "429",
            "500",
            "failed",
            ":",
            "POST",
            "https://api.openai.com/v1/chat/completions",
        ]
    ),
    max_size=12,
).map(" ".join)


@given(
    st.sampled_from(["ValueError", "KeyError", "shop.OrderError", "openai.BadRequestError"]),
    st.one_of(st.text(max_size=200), _PROSE),
)
def test_a_type_that_names_a_failure_is_never_taken_for_a_timeout(
    error_type: str, message: str
) -> None:
    attrs = {"gen_ai.system": "openai", "error.type": error_type}
    record = classify(span(attrs, status=STATUS_ERROR, status_message=message), "p")
    assert record.category != "timeout"


@given(_PROSE)
def test_ordinary_prose_without_a_type_is_no_timeout(message: str) -> None:
    record = classify(
        span({"gen_ai.system": "openai"}, status=STATUS_ERROR, status_message=message), "p"
    )
    assert record.category in ("exception", "api_error"), message


def test_frame_modules_are_read_from_the_sdks_entries_only() -> None:
    from faultprint_collector.ingest._dialects import frame_modules

    assert frame_modules(["worker /app/worker.py", "shop.orders /srv/a b/shop/orders.py"]) == {
        "/app/worker.py": "worker",
        "/srv/a b/shop/orders.py": "shop.orders",
    }
    for junk in (None, "worker /app/worker.py", 7, [7, "no-path", " /x.py", "not-a-module! /x.py"]):
        assert frame_modules(junk) == {}


@given(st.lists(st.one_of(st.text(), st.integers(), st.none())) | st.text() | st.none())
def test_frame_modules_never_raise_and_keep_only_module_names(value: Any) -> None:
    from faultprint_collector.ingest._dialects import frame_modules

    for path, module in frame_modules(value).items():
        assert path and module.replace(".", "").replace("_", "").isalnum()
