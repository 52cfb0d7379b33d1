"""First-cut behaviour of configure / observe / flush."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import faultprint
import pytest
from faultprint import attributes as A
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind, StatusCode


@faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
def summarise(text: str) -> str:
    return "summary of " + text


@faultprint.observe(model="claude-x", provider="anthropic", operation="chat")
def parse(text: str) -> object:
    return json.loads(text)


@faultprint.observe
def bare(x: int) -> int:
    return x + 1


@faultprint.observe(model="m", provider="openai")
async def asummarise(text: str) -> str:
    await asyncio.sleep(0)
    return "async " + text


@faultprint.observe(model="m", provider="openai")
async def afail() -> None:
    await asyncio.sleep(0)
    raise KeyError("missing")


def test_sync_call_span_carries_genai_and_faultprint_attributes(spans):
    assert summarise("abc") == "summary of abc"
    span = spans.one()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == SpanKind.CLIENT
    attrs = span.attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[A.FP_CALL_SITE] == f"{__name__}.summarise"
    assert attrs[A.FP_MODEL_VERSION] == "v1"
    assert len(attrs[A.FP_INPUT_HASH]) == 16
    assert span.status.status_code == StatusCode.UNSET
    res = span.resource.attributes
    assert res["service.name"] == "sdk-tests"
    assert res["deployment.environment.name"] == "test"
    assert res["service.version"] == "1.2.3"


def test_input_hash_repeats_for_same_input_and_differs_otherwise(spans):
    summarise("same")
    summarise("same")
    summarise("other")
    hashes = [s.attributes[A.FP_INPUT_HASH] for s in spans.all()]
    assert hashes[0] == hashes[1] != hashes[2]


def test_exception_is_recorded_and_reraised_unchanged(spans):
    with pytest.raises(json.JSONDecodeError) as info:
        parse('{"a": ')
    span = spans.one()
    assert span.attributes[A.ERROR_TYPE] == "json.decoder.JSONDecodeError"
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "exception"
    assert span.status.status_code == StatusCode.ERROR
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "json.decoder.JSONDecodeError"
    assert event.attributes["exception.message"] == str(info.value)
    assert "json.loads(text)" in event.attributes["exception.stacktrace"]


def test_decorator_without_parentheses(spans):
    assert bare(1) == 2
    span = spans.one()
    assert span.name == "chat"
    assert span.attributes[A.FP_CALL_SITE] == f"{__name__}.bare"


def test_async_functions(spans):
    assert asyncio.run(asummarise("x")) == "async x"
    with pytest.raises(KeyError):
        asyncio.run(afail())
    ok, failed = spans.all()
    assert ok.name == "chat m" and ok.status.status_code == StatusCode.UNSET
    assert failed.attributes[A.ERROR_TYPE] == "KeyError"
    assert failed.status.status_code == StatusCode.ERROR


def test_reconfigure_switches_exporter(spans):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    summarise("first")
    first = spans.exporter
    second = InMemorySpanExporter()
    faultprint.configure(exporter=second, service="again", use_global_provider=False)
    summarise("second")
    assert faultprint.flush(5.0)
    assert [s.resource.attributes["service.name"] for s in first.get_finished_spans()] == [
        "sdk-tests"
    ]
    assert [s.resource.attributes["service.name"] for s in second.get_finished_spans()] == ["again"]


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.bodies.append(
            (self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: object) -> None:
        pass


def test_exports_otlp_protobuf_over_http_with_bearer_key():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.bodies = []
    try:
        faultprint.configure(
            endpoint=f"http://127.0.0.1:{server.server_port}",
            service="wire",
            api_key="k-123",
            use_global_provider=False,
            handle_sigterm=False,
        )
        summarise("over the wire")
        assert faultprint.flush(10.0)
    finally:
        faultprint.shutdown()
        server.shutdown()
    (path, headers, body) = _Receiver.bodies[0]
    assert path == "/v1/traces"
    assert headers["authorization"] == "Bearer k-123"
    request = ExportTraceServiceRequest.FromString(body)
    rs = request.resource_spans[0]
    res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
    assert res["service.name"] == "wire"
    span = rs.scope_spans[0].spans[0]
    assert span.name == "chat gpt-4o-mini"
    attrs = {kv.key: kv.value.string_value for kv in span.attributes}
    assert attrs[A.FP_CALL_SITE] == f"{__name__}.summarise"
    assert faultprint.stats()["exported"] == 1  # after shutdown: the last pipeline's count


def test_endpoint_from_environment(monkeypatch):
    from faultprint._config import resolve_traces_url

    monkeypatch.delenv("FAULTPRINT_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1/")
    assert resolve_traces_url(None) == "http://h:1/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:2/custom")
    assert resolve_traces_url(None) == "http://t:2/custom"
    monkeypatch.setenv("FAULTPRINT_ENDPOINT", "http://f:3")
    assert resolve_traces_url(None) == "http://f:3/v1/traces"
    assert resolve_traces_url("http://x:4/v1/traces") == "http://x:4/v1/traces"
    with pytest.raises(faultprint.ConfigurationError):
        resolve_traces_url("localhost:4318")


def test_a_failure_whose_detail_json_cannot_hold_is_still_recorded(spans):
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    @faultprint.observe(model="m")
    def f() -> str:
        detail: dict = {"tool": "search", "arg": Opaque(), 3: "int key", (1, 2): "tuple key"}
        detail["self"] = detail
        detail["items"] = [detail, {"ok": 1}]
        assert faultprint.record_failure("tool_error", detail)
        return "ok"

    assert f() == "ok"
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "tool_error"
    assert span.attributes[A.ERROR_TYPE] == "tool_error"
    assert span.status.status_code == StatusCode.ERROR
    assert json.loads(span.attributes[A.FP_FAILURE_DETAIL]) == {
        "tool": "search",
        "arg": "opaque",
        "3": "int key",
        "(1, 2)": "tuple key",
        "self": "[circular]",
        "items": ["[circular]", {"ok": 1}],
    }


def test_a_detail_json_can_hold_is_recorded_as_given(spans):
    @faultprint.observe(model="m")
    def f() -> str:
        shared = {"x": 1}
        faultprint.record_failure("tool_error", {"a": shared, "b": shared, "n": 2.5})
        return "ok"

    f()
    detail = json.loads(spans.one().attributes[A.FP_FAILURE_DETAIL])
    assert detail == {"a": {"x": 1}, "b": {"x": 1}, "n": 2.5}


def test_set_output_declares_refusal_model_id_and_tool_calls(spans):
    tools = [{"name": "search", "input_schema": {"type": "object"}}]
    with faultprint.call(model="m") as c:
        c.set_output("", refusal=True)
    with faultprint.call(model="m") as c:
        c.set_output("answer", response_model="m-2024-06-01", response_id="resp_42")
    with faultprint.call(model="m", tools=tools) as c:
        c.set_output(None, tool_calls=[{"name": "browse", "arguments": "{}"}])
    with faultprint.call(model="m", tools=tools) as c:
        c.set_output(None, tool_calls=[{"name": "search", "arguments": "{}"}])
    refused, answered, unknown_tool, tool_ok = spans.all()
    assert refused.attributes[A.FP_FAILURE_CATEGORY] == "refusal"
    assert json.loads(refused.attributes[A.FP_FAILURE_DETAIL]) == {"source": "provider_field"}
    assert answered.attributes[A.GEN_AI_RESPONSE_MODEL] == "m-2024-06-01"
    assert answered.attributes[A.GEN_AI_RESPONSE_ID] == "resp_42"
    assert A.FP_FAILURE_CATEGORY not in answered.attributes
    assert unknown_tool.attributes[A.FP_FAILURE_CATEGORY] == "tool_error"
    assert json.loads(unknown_tool.attributes[A.FP_FAILURE_DETAIL])["reason"] == "unknown_tool"
    # a declared tool call is output: not an empty one
    assert A.FP_FAILURE_CATEGORY not in tool_ok.attributes


def detected_failures() -> None:
    """One call per failure detected from the output (nothing raises)."""
    faultprint.observe(model="m")(lambda: "I'm sorry, but I can't help with that.")()
    with faultprint.call(model="m") as c:
        c.set_output("Once upon a", finish_reason="length")
    faultprint.observe(model="m", json=True)(lambda: '{"a": ')()
    faultprint.observe(model="m")(lambda: "fine")()


@pytest.mark.parametrize("sample_rate", [1.0, 0.5])
def test_failures_detected_from_the_output_are_never_sampled_away(monkeypatch, sample_rate):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=exporter,
        sample_rate=sample_rate,
        use_global_provider=False,
        handle_sigterm=False,
    )
    # every draw misses the sample: only failures may be exported
    monkeypatch.setattr("faultprint._observe._random", lambda: 0.99)
    detected_failures()
    assert faultprint.flush(5.0)
    spans = exporter.get_finished_spans()
    faultprint.shutdown(timeout=2.0)
    categories = [s.attributes.get(A.FP_FAILURE_CATEGORY) for s in spans]
    expected = ["refusal", "truncation", "invalid_output"]
    assert categories == expected + ([None] if sample_rate == 1.0 else [])
    for span, category in zip(spans, expected, strict=False):
        assert span.attributes[A.ERROR_TYPE] == category
        assert span.attributes[A.FP_SAMPLE_WEIGHT] == 1.0
        assert span.status.status_code == StatusCode.ERROR


def test_sample_rate_per_decorator_overrides_configure(spans, monkeypatch):
    @faultprint.observe(model="m", sample_rate=0.25)
    def sampled() -> str:
        return "ok"

    monkeypatch.setattr("faultprint._observe._random", lambda: 0.1)
    sampled()
    summarise("kept: configure() samples everything")
    monkeypatch.setattr("faultprint._observe._random", lambda: 0.5)
    sampled()
    summarise("kept: configure() samples everything")
    kept, other, other_again = spans.all()
    assert kept.attributes[A.FP_SAMPLE_WEIGHT] == 4.0
    assert A.FP_SAMPLE_WEIGHT not in other.attributes
    assert other_again.attributes[A.FP_CALL_SITE].endswith("summarise")


_UNCONFIGURED_APP = """
import faultprint
{setup}

@faultprint.observe(model="m")
def answer() -> str:
    return "Paris."

assert answer() == "Paris." and answer() == "Paris."
"""
_NOT_RECORDED = "model calls are not recorded: faultprint.configure() has not been called"


@pytest.mark.parametrize(
    ("setup", "warned"),
    [
        ("", True),  # nothing set up: the calls go nowhere, and the log says so, once
        (
            "from opentelemetry import trace\n"
            "from opentelemetry.sdk.trace import TracerProvider\n"
            "trace.set_tracer_provider(TracerProvider())",
            False,  # the application's own provider records them
        ),
        (
            "faultprint.configure(endpoint='http://127.0.0.1:9', handle_sigterm=False)",
            False,
        ),
    ],
    ids=["nothing", "global-provider", "configured"],
)
def test_calls_before_any_setup_are_said_to_go_unrecorded(setup, warned):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _UNCONFIGURED_APP.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(_NOT_RECORDED) == (1 if warned else 0), done.stderr
