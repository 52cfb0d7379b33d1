"""What an OpenTelemetry Collector's ``otlphttp`` exporter forwards is accepted.

The exporter configuration documented in docs/otel-collector.md is read
from the document itself; requests are built the way the collector's batch
processor and exporter build them: many resources (services) in one
request, several scopes, resource attributes, spans that are not model calls
mixed in, gzip compression, protobuf or JSON.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.collector.ingest.otlp_samples import to_otlp_json

DOC = Path(__file__).resolve().parents[2] / "docs" / "otel-collector.md"
USER_AGENT = "OpenTelemetry Collector Contrib/0.129.0 (linux/amd64)"


def documented_config() -> dict[str, Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/otel-collector.md has no yaml block"
    return yaml.safe_load(blocks[0])


def test_documented_configuration_is_a_complete_pipeline() -> None:
    config = documented_config()
    exporter = config["exporters"]["otlphttp/faultprint"]
    assert exporter["endpoint"].startswith("http") and "/v1/traces" not in exporter["endpoint"]
    assert exporter["compression"] == "gzip" and exporter["encoding"] in ("proto", "json")
    assert exporter["headers"]["Authorization"].startswith("Bearer ")
    pipeline = config["service"]["pipelines"]["traces/faultprint"]
    assert pipeline["exporters"] == ["otlphttp/faultprint"]
    for receiver in pipeline["receivers"]:
        assert receiver in config["receivers"]
    for processor in pipeline["processors"]:
        assert processor in config["processors"]


def forwarded_batch() -> Any:
    """One request as a collector's batch processor assembles it from three apps."""
    exporter = InMemorySpanExporter()

    def provider(attrs: dict[str, str]) -> TracerProvider:
        p = TracerProvider(resource=Resource.create(attrs))
        p.add_span_processor(SimpleSpanProcessor(exporter))
        return p

    shop = provider(
        {
            "service.name": "shop",
            "service.version": "1.4.2",
            "deployment.environment.name": "prod",
            "k8s.namespace.name": "ai",  # added by the collector's k8sattributes
        }
    )
    search = provider({"service.name": "search", "deployment.environment": "staging"})
    gateway = provider({"service.name": "gateway"})

    tracer = shop.get_tracer("faultprint")
    for i in range(3):
        with tracer.start_as_current_span("chat m", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "m",
                    "faultprint.call_site": "shop.answer",
                }
            )
            if i == 0:
                span.record_exception(KeyError("sku 123 missing"))
                span.set_status(Status(StatusCode.ERROR, "KeyError"))
                span.set_attribute("faultprint.failure.category", "exception")
    oi = search.get_tracer("openinference.instrumentation.openai")
    for finish in ("length", "stop"):
        with oi.start_as_current_span("ChatCompletion") as span:
            span.set_attributes(
                {
                    "openinference.span.kind": "LLM",
                    "llm.system": "openai",
                    "llm.model_name": "gpt-4o-mini",
                    "llm.output_messages.0.message.content": "Some text",
                    "llm.finish_reason": finish,
                }
            )
    http = gateway.get_tracer("opentelemetry.instrumentation.fastapi")
    for route in ("/a", "/b"):
        with http.start_as_current_span(f"GET {route}", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "GET")
    with gateway.get_tracer("traceloop.sdk").start_as_current_span("answer.workflow") as span:
        span.set_attributes({"traceloop.span.kind": "workflow", "traceloop.entity.name": "a"})
    for p in (shop, search, gateway):
        p.shutdown()
    request = encode_spans(exporter.get_finished_spans())
    assert len(request.resource_spans) == 3
    return request


#: per forwarded batch: 3 shop spans (1 failure), 2 search spans (1 truncation);
#: the gateway's HTTP and workflow spans are not model calls
MODEL_SPANS, FAILURES = 5, 2


def encoded(request: Any, encoding: str, compression: str) -> tuple[bytes, dict[str, str]]:
    if encoding == "proto":
        body = request.SerializeToString()
        content_type = "application/x-protobuf"
    else:
        body = json.dumps(to_otlp_json(request)).encode()
        content_type = "application/json"
    headers = {"Content-Type": content_type, "User-Agent": USER_AGENT}
    if compression == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return body, headers


@pytest.mark.slow
def test_batches_forwarded_by_an_otel_collector_are_stored_with_their_resources(
    start_collector: Callable[..., Any],
) -> None:
    exporter = documented_config()["exporters"]["otlphttp/faultprint"]
    collector = start_collector()
    variants = [
        (exporter["encoding"], exporter["compression"]),  # as documented
        ("json", "gzip"),
        ("proto", "none"),
    ]
    for encoding, compression in variants:
        body, headers = encoded(forwarded_batch(), encoding, compression)
        # the exporter appends /v1/traces to the configured base URL
        response = httpx.post(f"{collector.url}/v1/traces", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(headers["Content-Type"])
    stats = httpx.get(f"{collector.url}/api/stats", timeout=10).json()
    assert stats["accepted_spans"] == MODEL_SPANS * len(variants)
    collector.stop()

    from faultprint_collector.store import open_store

    store = open_store(collector.store)
    try:
        rows = store.query(
            "SELECT service, environment, release, count(), sum(is_failure), "
            "groupUniqArray(category) FROM calls FINAL GROUP BY service, environment, release "
            "ORDER BY service"
        ).result_rows
    finally:
        store.close()
    n = len(variants)
    assert [(r[0], r[1], r[2], r[3], r[4], sorted(r[5])) for r in rows] == [
        ("search", "staging", "", 2 * n, n, ["", "truncation"]),
        ("shop", "prod", "1.4.2", 3 * n, n, ["", "exception"]),
    ]
