"""From a span to a classified model-call record.

Data flows one way: the span is read, the call classified (is it a failure,
of which category), then fingerprinted by the pure engine. Nothing here does
I/O.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from faultprint_collector.fingerprinting import FailureRecord, fingerprint
from faultprint_collector.ingest._records import MAX_CONTENT_CHARS, MAX_MESSAGE_CHARS, CallRecord
from faultprint_collector.ingest._spans import STATUS_ERROR, SpanView


class SpanRejected(ValueError):
    """The span cannot be stored; the message says why (partial success)."""


#: finish / stop reasons of every dialect mapped to a failure category
#: (None: a normal end)
FINISH_REASONS: dict[str, str | None] = {
    "stop": None,
    "end_turn": None,
    "stop_sequence": None,
    "tool_calls": None,
    "tool_use": None,
    "function_call": None,
    "completed": None,
    "pause_turn": None,
    "length": "truncation",
    "max_tokens": "truncation",
    "max_output_tokens": "truncation",
    "model_context_window_exceeded": "truncation",
    "content_filter": "content_filter",
    "safety": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "recitation": "content_filter",
    "refusal": "refusal",
}

_MODEL_MARKERS = ("gen_ai.", "faultprint.", "llm.", "traceloop.")


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(_str(v) for v in value)
    return str(value)


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def is_model_call(span: SpanView) -> bool:
    """A span is a model call when it carries GenAI or faultprint attributes."""
    return any(key.startswith(_MODEL_MARKERS) for key in span.attributes)


def _exception_event(span: SpanView) -> dict[str, Any]:
    for event in span.events:
        if event.name == "exception":
            return event.attributes
    return {}


def _finish_reason(attrs: dict[str, Any]) -> str:
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, list):
        reasons = reasons[0] if reasons else ""
    return _str(reasons).strip().lower()


def classify(span: SpanView, project: str) -> CallRecord:
    """Build the call record for one model-call span."""
    if len(span.trace_id) != 32 or span.trace_id == "0" * 32:
        raise SpanRejected(f"span {span.span_id or '?'} has an invalid trace id")
    if len(span.span_id) != 16 or span.span_id == "0" * 16:
        raise SpanRejected(f"span in trace {span.trace_id} has an invalid span id")
    if span.start_ns <= 0:
        raise SpanRejected(f"span {span.span_id} has no start time")
    attrs = span.attributes
    res = span.resource
    request_model = _str(attrs.get("gen_ai.request.model"))
    response_model = _str(attrs.get("gen_ai.response.model"))
    exc = _exception_event(span)
    finish_reason = _finish_reason(attrs)
    error_type = _str(attrs.get("error.type") or exc.get("exception.type"))
    error_code = _str(attrs.get("faultprint.error.code"))
    http_status = _int(attrs.get("http.response.status_code"))
    message = _str(
        exc.get("exception.message")
        or attrs.get("faultprint.failure.message")
        or span.status_message
    )

    category = _str(attrs.get("faultprint.failure.category"))
    if not category:
        if span.status_code == STATUS_ERROR or error_type or exc:
            if "timeout" in error_type.lower():
                category = "timeout"
            elif http_status >= 400 or error_code:
                category = "api_error"
            else:
                category = "exception"
        else:
            category = FINISH_REASONS.get(finish_reason) or ""

    record = CallRecord(
        project=project,
        time=datetime.fromtimestamp(span.start_ns / 1e9, tz=UTC),
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        service=_str(res.get("service.name")),
        environment=_str(
            res.get("deployment.environment.name") or res.get("deployment.environment")
        ),
        release=_str(res.get("service.version")),
        operation=_str(attrs.get("gen_ai.operation.name")),
        span_name=span.name[:256],
        provider=_str(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")),
        request_model=request_model,
        response_model=response_model,
        model_version=_str(attrs.get("faultprint.model_version"))
        or response_model
        or request_model,
        call_site=_str(attrs.get("faultprint.call_site")) or span.name[:256],
        latency_ms=max(0.0, (span.end_ns - span.start_ns) / 1e6),
        input_tokens=_int(attrs.get("gen_ai.usage.input_tokens")),
        output_tokens=_int(attrs.get("gen_ai.usage.output_tokens")),
        finish_reason=finish_reason,
        input_hash=_hash_value(attrs.get("faultprint.input_hash")),
        sample_weight=_weight(attrs.get("faultprint.sample_weight")),
        input_text=_str(attrs.get("faultprint.input"))[:MAX_CONTENT_CHARS],
        output_text=_str(attrs.get("faultprint.output"))[:MAX_CONTENT_CHARS],
    )
    if category:
        detail = _detail(attrs.get("faultprint.failure.detail"))
        fp = fingerprint(
            FailureRecord(
                category=category,
                error_type=error_type,
                message=message,
                stacktrace=_str(exc.get("exception.stacktrace")),
                finish_reason=finish_reason,
                output=record.output_text,
                call_site=record.call_site,
                provider=record.provider,
                model=record.model_version,
                status_code=http_status,
                error_code=error_code,
                detail=detail,
            )
        )
        record.status = "error"
        record.is_failure = 1
        record.category = getattr(fp, "category", category) or category
        record.error_type = error_type
        record.error_code = error_code
        record.http_status = http_status
        record.message = message[:MAX_MESSAGE_CHARS]
        record.template = fp.template
        record.fingerprint = fp.fine
        record.coarse_fingerprint = fp.coarse
        record.strategy = fp.strategy
        record.sample_weight = 1.0  # failures are never sampled
    return record


def _hash_value(value: Any) -> int:
    if isinstance(value, int):
        return value & 0xFFFFFFFFFFFFFFFF
    try:
        return int(_str(value), 16) & 0xFFFFFFFFFFFFFFFF
    except ValueError:
        return 0


def _weight(value: Any) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        return 1.0
    return weight if 1.0 <= weight <= 1e6 else 1.0


def _detail(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
