"""Real OTLP requests built with the OpenTelemetry SDK's own encoder."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode


def sample_request(n: int = 6) -> Any:
    """An ExportTraceServiceRequest with N model-call spans, every third failing."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sample")
    for i in range(n):
        with tracer.start_as_current_span(f"chat m{i % 2}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "acme")
            span.set_attribute("gen_ai.request.model", f"m{i % 2}")
            span.set_attribute("gen_ai.usage.input_tokens", 10 + i)
            span.set_attribute("gen_ai.response.finish_reasons", ["stop"])
            span.set_attribute("faultprint.call_site", "shop.answer")
            if i % 3 == 0:
                try:
                    raise ValueError(f"bad value {i} for 'item-{i}'")
                except ValueError as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def to_otlp_json(request: Any) -> dict[str, Any]:
    """OTLP/JSON as the specification writes it: ids in hex, not base64."""
    data = json_format.MessageToDict(request)

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(data)
    return data
