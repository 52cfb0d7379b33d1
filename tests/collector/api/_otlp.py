"""OTLP request builders for the collector's reliability and security tests."""

from __future__ import annotations

import os
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

PROTOBUF = {"content-type": "application/x-protobuf"}


def kv(key: str, value: object) -> KeyValue:
    """One OTLP attribute."""
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def request(
    spans: int,
    *,
    failures_every: int = 10,
    model: str = "gpt-4o-mini",
    call_site: str = "app.answer",
    message: str = "upstream said no to order {i}",
    resource: dict[str, object] | None = None,
) -> tuple[ExportTraceServiceRequest, list[str]]:
    """A request with SPANS model-call spans; returns it and the span ids (hex).

    Every FAILURES_EVERY-th span fails (0: none) with MESSAGE as its message.
    """
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        kv(k, v) for k, v in {"service.name": "svc", **(resource or {})}.items()
    )
    ss = rs.scope_spans.add()
    now = time.time_ns()
    ids = []
    for i in range(spans):
        span = ss.spans.add()
        span.trace_id = os.urandom(16)
        span.span_id = os.urandom(8)
        span.name = f"chat {model}"
        span.start_time_unix_nano = now - 1_000_000_000 + i
        span.end_time_unix_nano = now
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "faultprint.call_site": call_site,
            "faultprint.input_hash": f"{i % 5 + 1:016x}",
        }
        if failures_every and i % failures_every == 0:
            attrs["error.type"] = "RuntimeError"
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=message.format(i=i)))
        span.attributes.extend(kv(k, v) for k, v in attrs.items())
        ids.append(span.span_id.hex())
    return req, ids
