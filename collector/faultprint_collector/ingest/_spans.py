"""Flattening OTLP spans into plain Python values."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

#: attribute values longer than this are cut, so one absurd attribute cannot
#: blow up a row
MAX_ATTRIBUTE_CHARS = 8192
#: nesting of array / kvlist values beyond this is flattened to a marker
MAX_VALUE_DEPTH = 8

STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


@dataclass(slots=True)
class SpanEvent:
    """One span event (name and attributes)."""

    name: str
    attributes: dict[str, Any]


@dataclass(slots=True)
class SpanView:
    """A span with its resource, as plain values."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str = ""
    events: list[SpanEvent] = field(default_factory=list)


def any_value(value: AnyValue, depth: int = 0) -> Any:
    """Convert an OTLP AnyValue to a Python value (bounded in size and depth)."""
    # a non-empty string answers without WhichOneof (see ``attributes``)
    text = value.string_value
    if text:
        return text if len(text) <= MAX_ATTRIBUTE_CHARS else text[:MAX_ATTRIBUTE_CHARS]
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return text
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if depth >= MAX_VALUE_DEPTH:
        return "<too deep>"
    if kind == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values[:256]]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1) for kv in value.kvlist_value.values[:256]}
    if kind == "bytes_value":
        return value.bytes_value.hex()[:MAX_ATTRIBUTE_CHARS]
    return None


_SCALARS = frozenset({"int_value", "double_value", "bool_value"})


def attributes(kvs: Any, limit: int = 512) -> dict[str, Any]:
    """Flatten a repeated KeyValue field (at most LIMIT keys are kept).

    The hot path of decoding: scalars are read inline rather than through
    ``any_value``, and nothing is copied unless it is over a bound.
    """
    out: dict[str, Any] = {}
    if len(kvs) > limit:
        kvs = kvs[:limit]
    kv: KeyValue
    for kv in kvs:
        key = kv.key
        if len(key) > 256:
            key = key[:256]
        value = kv.value
        # Most values are non-empty strings: a oneof reads as "" unless it
        # holds a string, so a non-empty read answers without WhichOneof.
        text = value.string_value
        if text:
            out[key] = text if len(text) <= MAX_ATTRIBUTE_CHARS else text[:MAX_ATTRIBUTE_CHARS]
            continue
        kind = value.WhichOneof("value")
        if kind == "string_value":
            out[key] = text
        elif kind in _SCALARS:
            out[key] = getattr(value, kind)
        else:
            out[key] = any_value(value)
    return out


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[SpanView]:
    """Yield every span of REQUEST with its resource attributes."""
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                status = span.status
                events = span.events
                # positional: this runs once per span, keywords cost ~10%
                yield SpanView(
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    span.parent_span_id.hex(),
                    span.name,
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                    status.code,
                    status.message,
                    attributes(span.attributes),
                    resource,
                    scope,
                    [SpanEvent(ev.name, attributes(ev.attributes)) for ev in events[:64]]
                    if events
                    else [],
                )
