"""A provider error reported inside an HTTP 200 is one failure mode however it came.

OpenAI reports an error without an HTTP error status in three ways: an error
object inside a chat completion stream (the client raises it), a background
response whose status is ``failed`` (the client returns it), and a Responses
stream ending with ``response.failed`` (the client yields it). The real SDK
records each from the real OpenAI client on a mock transport; the spans go
through OTLP encoding and the collector's real classification: one category,
one error code, one fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import faultprint
import pytest
from faultprint_collector.ingest import records_from_request
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")
anthropic = pytest.importorskip("anthropic")

from tests.sdk.providers import (  # noqa: E402  (after the libraries it needs)
    ANTHROPIC_KW,
    OPENAI_KW,
    anthropic_client,
    mock_http,
    openai_client,
    responder,
)
from tests.sdk.providers import sse as sse_events  # noqa: E402

ERROR = {"code": "rate_limit_exceeded", "message": "Rate limit reached for gpt-4.1 on tokens."}
RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1741476542,
    "status": "failed",
    "error": ERROR,
    "incomplete_details": None,
    "model": "gpt-4.1-2025-04-14",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}
CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1741569952,
    "model": "gpt-4.1-2025-04-14",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}],
}


def sse(*events: dict[str, Any], named: bool = False) -> bytes:
    lines = []
    for event in events:
        head = f"event: {event['type']}\n" if named else ""
        lines.append(f"{head}data: {json.dumps(event)}\n\n")
    return "".join(lines).encode()


def client(body: bytes) -> Any:
    """A real OpenAI client, instrumented, answering every request with ``body``."""
    stream = body.startswith((b"data:", b"event:"))
    headers = {"content-type": "text/event-stream" if stream else "application/json"}
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, content=body, headers=headers)
    )
    raw = openai.OpenAI(
        api_key="sk-test", max_retries=0, http_client=httpx2.Client(transport=transport)
    )
    return faultprint.instrument_openai(raw)


def stored(spans: Any) -> list[Any]:
    """The calls the collector stores for SPANS, in the order they started."""
    ordered = sorted(spans, key=lambda s: s.start_time or 0)
    return records_from_request(encode_spans(ordered), "p").records


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=exporter, use_global_provider=False, handle_sigterm=False, schedule_delay=0.05
    )
    yield exporter
    faultprint.shutdown(timeout=2.0)


def test_an_error_in_a_200_is_one_failure_mode_however_it_came(exporter) -> None:
    with pytest.raises(openai.APIError):
        list(
            client(sse(CHUNK, {"error": ERROR})).chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert (
        client(json.dumps(RESPONSE).encode())
        .responses.create(model="gpt-4.1", input="Hi", background=True)
        .status
        == "failed"
    )
    failed = {"type": "response.failed", "sequence_number": 0, "response": RESPONSE}
    assert list(
        client(sse(failed, named=True)).responses.create(model="gpt-4.1", input="Hi", stream=True)
    )
    assert faultprint.flush(5.0)
    records = records_from_request(encode_spans(exporter.get_finished_spans()), "p").records
    assert len(records) == 3
    assert {(r.category, r.error_code, r.http_status) for r in records} == {
        ("api_error", "rate_limit_exceeded", 0)
    }
    assert len({r.fingerprint for r in records}) == 1
    assert len({r.coarse_fingerprint for r in records}) == 1


def test_an_error_the_websocket_reports_is_the_failure_mode_of_the_same_http_error(
    exporter,
) -> None:
    """A rate limit met over ``responses.connect()`` (an ``error`` event with the
    HTTP status it stands for) and over HTTP (a 429): one failure mode."""
    pytest.importorskip("websockets")
    from tests.sdk.socket_server import ResponsesServer, answer

    body = {"error": {**ERROR, "type": "tokens", "param": None}}
    transport = httpx2.MockTransport(lambda request: httpx2.Response(429, json=body))
    server = ResponsesServer()
    try:
        server.script = answer([{"type": "error", "status": 429, **body}])
        c = faultprint.instrument_openai(
            openai.OpenAI(
                api_key="sk-test",
                max_retries=0,
                http_client=httpx2.Client(transport=transport),
                websocket_base_url=f"ws://127.0.0.1:{server.port}/v1",
            )
        )
        with pytest.raises(openai.RateLimitError):
            c.responses.create(model="gpt-4.1", input="Hi")
        with c.responses.connect() as connection:
            connection.response.create(model="gpt-4.1", input="Hi")
            assert connection.recv().type == "error"
    finally:
        server.close()
    assert faultprint.flush(5.0)
    records = records_from_request(encode_spans(exporter.get_finished_spans()), "p").records
    assert len(records) == 2
    assert {(r.category, r.error_code, r.http_status) for r in records} == {
        ("api_error", "rate_limit_exceeded", 429)
    }
    assert len({r.fingerprint for r in records}) == 1


def anthropic_error(message: str) -> dict[str, Any]:
    """Anthropic's error body: a type, no code."""
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def openai_error(message: str, param: str | None) -> dict[str, Any]:
    """OpenAI's error body for a 400 that has no code (many have none)."""
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    }


MAX_TOKENS = (
    "max_tokens: {} > 64000, which is the maximum allowed number of output tokens "
    "for claude-sonnet-4-5-20250929"
)
JSON_MODE = (
    "'messages' must contain the word 'json' in some form, to use 'response_format' "
    "of type 'json_object'."
)
TOOL_ROLE = (
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
    "message with 'tool_calls'."
)
TOO_LONG = "prompt is too long: {} tokens > 200000 maximum"
#: (library, mode, HTTP 400 body): two failures of each mode, with different
#: numbers; every mode has the provider's generic error type
GENERIC_400S = [
    ("anthropic", "prompt too long", anthropic_error(TOO_LONG.format(224593))),
    ("anthropic", "prompt too long", anthropic_error(TOO_LONG.format(215766))),
    ("anthropic", "max_tokens too large", anthropic_error(MAX_TOKENS.format(100000))),
    ("anthropic", "max_tokens too large", anthropic_error(MAX_TOKENS.format(70000))),
    ("openai", "json mode without json", openai_error(JSON_MODE, "messages")),
    ("openai", "json mode without json", openai_error(JSON_MODE, "messages")),
    ("openai", "tool message without tool call", openai_error(TOOL_ROLE, "messages.[2].role")),
    ("openai", "tool message without tool call", openai_error(TOOL_ROLE, "messages.[4].role")),
]


def test_distinct_problems_under_a_generic_error_type_are_distinct_failure_modes(
    exporter,
) -> None:
    """Anthropic's ``invalid_request_error`` (it has no codes) and OpenAI's 400s
    without a code name a class of problems: recorded by the SDK, each problem
    is its own failure mode, and recurrences of one problem are one."""
    for library, _, body in GENERIC_400S:
        if library == "anthropic":
            with pytest.raises(anthropic.BadRequestError):
                faultprint.instrument_anthropic(
                    anthropic_client(responder(400, body))
                ).messages.create(**ANTHROPIC_KW)
        else:
            with pytest.raises(openai.BadRequestError):
                faultprint.instrument_openai(
                    openai_client(responder(400, body))
                ).chat.completions.create(**OPENAI_KW)
    assert faultprint.flush(5.0)
    records = stored(exporter.get_finished_spans())
    assert len(records) == len(GENERIC_400S)
    assert {(r.category, r.error_code, r.http_status) for r in records} == {
        ("api_error", "invalid_request_error", 400)
    }
    modes: dict[str, set[int]] = {}
    for (library, mode, _), record in zip(GENERIC_400S, records, strict=True):
        modes.setdefault(f"{library}/{mode}", set()).add(record.fingerprint)
    assert all(len(fingerprints) == 1 for fingerprints in modes.values()), modes
    assert len(set().union(*modes.values())) == len(modes)  # no two modes share one


def test_an_error_met_while_streaming_is_the_mode_of_the_same_http_error(exporter) -> None:
    """Anthropic's overloaded error and OpenAI's rate limit, each once as an HTTP
    error and once inside a stream that had begun (an HTTP 200): one failure
    mode per provider error, as the SDK records them."""
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    started = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        },
    }
    rate_limit = {"error": {**ERROR, "type": "tokens", "param": None}}
    for handler in (
        responder(529, overloaded),
        responder(200, sse_events([started, overloaded], named=True)),
    ):
        with pytest.raises(anthropic.APIStatusError):
            list(
                faultprint.instrument_anthropic(anthropic_client(handler)).messages.create(
                    **ANTHROPIC_KW, stream=True
                )
            )
    for handler in (responder(429, rate_limit), responder(200, sse_events([CHUNK, rate_limit]))):
        with pytest.raises(openai.APIError):
            list(
                faultprint.instrument_openai(openai_client(handler)).chat.completions.create(
                    **OPENAI_KW, stream=True
                )
            )
    assert faultprint.flush(5.0)
    records = stored(exporter.get_finished_spans())
    assert [(r.error_code, r.http_status) for r in records] == [
        ("overloaded_error", 529),
        ("overloaded_error", 0),
        ("rate_limit_exceeded", 429),
        ("rate_limit_exceeded", 0),
    ]
    assert records[0].fingerprint == records[1].fingerprint
    assert records[2].fingerprint == records[3].fingerprint
    assert records[0].fingerprint != records[2].fingerprint


def test_the_anthropic_librarys_own_error_spans_are_the_sdks_failure_modes(exporter) -> None:
    """The Anthropic library traces its own calls: an HTTP error's span names the
    provider's error type in error.type, with no message. A specific type is
    the failure mode the SDK records for the same error; a generic one (no
    prose to tell its problems apart) is its status and type."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    library_spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(library_spans))
    errors = [
        (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        (429, {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}),
        (400, anthropic_error(TOO_LONG.format(224593))),
    ]
    for status, body in errors:
        for traced_by_library in (True, False):
            client = anthropic.Anthropic(
                api_key="sk-ant-test",
                max_retries=0,
                http_client=mock_http(responder(status, body)),
                open_telemetry={"tracer_provider": tracer_provider} if traced_by_library else False,
            )
            if not traced_by_library:
                faultprint.instrument_anthropic(client)
            with pytest.raises(anthropic.APIStatusError):
                client.messages.create(**ANTHROPIC_KW)
    assert faultprint.flush(5.0)

    by_library = stored(library_spans.get_finished_spans())
    by_sdk = stored(exporter.get_finished_spans())
    assert [(r.category, r.error_code, r.http_status) for r in by_library] == [
        ("api_error", "overloaded_error", 529),
        ("api_error", "rate_limit_error", 429),
        ("api_error", "invalid_request_error", 400),
    ]
    assert [r.call_site for r in by_library] == [r.call_site for r in by_sdk]
    assert by_library[0].fingerprint == by_sdk[0].fingerprint
    assert by_library[1].fingerprint == by_sdk[1].fingerprint
    # without the prose, a generic type cannot be told apart from its kin
    assert by_library[2].coarse_fingerprint == by_sdk[2].coarse_fingerprint
    assert len({r.fingerprint for r in by_library}) == 3
