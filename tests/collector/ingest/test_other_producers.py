"""Spans of other producers through a real collector: one row per model call,
one category and fingerprint per failure whichever library raised it.

Built with the real OpenTelemetry SDK and its OTLP encoder, sent to a real
collector on 127.0.0.1 with its embedded store, read back with SQL.
"""

from __future__ import annotations

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.collector.api._otlp import PROTOBUF
from tests.collector.ingest.test_dialects import GO_DEADLINE, GO_RATE_LIMIT, RATE_LIMIT_MESSAGE

OLD_GENAI = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"}


def _spans() -> bytes:
    """An agent whose chat call hit a rate limit, a tool and an HTTP span of the
    same conversation, and model calls of a Go service that failed."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agents"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("other-producers")
    agent_attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "openai",
        "gen_ai.agent.name": "planner",
        "error.type": "openai.RateLimitError",
    }
    with tracer.start_as_current_span("invoke_agent planner", attributes=agent_attrs) as agent:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=OLD_GENAI
        ) as chat:
            chat.set_attribute("error.type", "openai.RateLimitError")
            chat.set_status(Status(StatusCode.ERROR, RATE_LIMIT_MESSAGE))
        agent.set_status(Status(StatusCode.ERROR, RATE_LIMIT_MESSAGE))
        with tracer.start_as_current_span(
            "running tool: lookup",
            attributes={"gen_ai.tool.name": "lookup", "gen_ai.tool.call.id": "call_1"},
        ) as tool:
            tool.set_status(Status(StatusCode.ERROR, "lookup failed"))
        with tracer.start_as_current_span(
            "GET /v1/models",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "GET", "gen_ai.conversation.id": "conv-123"},
        ):
            pass
    for message, error_type in (
        (GO_RATE_LIMIT, "*openai.Error"),
        (GO_DEADLINE, "*url.Error"),
        ("Request timed out.", ""),
    ):
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=OLD_GENAI) as span:
            if error_type:
                span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, message))
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def test_each_model_call_is_one_row_and_each_failure_one_mode(collector) -> None:
    response = httpx.post(
        f"{collector.url}/v1/traces", content=_spans(), headers=PROTOBUF, timeout=30
    )
    assert response.status_code == 200
    collector.wait_stored()
    rows = httpx.post(
        f"{collector.url}/api/sql",
        json={
            "sql": "SELECT span_name, category, error_code, http_status, hex(fingerprint) "
            "FROM calls FINAL ORDER BY category, error_type"
        },
        timeout=30,
    ).json()["rows"]
    # the agent, the tool and the HTTP span are no model calls: four rows
    assert [row[:4] for row in rows] == [
        ["chat gpt-4o-mini", "api_error", "rate_limit_exceeded", 429],
        ["chat gpt-4o-mini", "api_error", "rate_limit_exceeded", 429],
        ["chat gpt-4o-mini", "timeout", "", 0],
        ["chat gpt-4o-mini", "timeout", "", 0],
    ]
    # the Python library's 429 and the Go library's are one failure mode
    assert rows[0][4] == rows[1][4]
