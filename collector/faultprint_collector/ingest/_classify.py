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
from faultprint_collector.fingerprinting._category import FINISH_REASONS
from faultprint_collector.ingest._dialects import (
    as_text,
    is_model_call,
    model_text,
    read_call,
    timeout_error,
)
from faultprint_collector.ingest._records import (
    MAX_CALL_SITE_CHARS,
    MAX_CONTENT_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_VERSION_CHARS,
    UNKNOWN_VERSION,
    CallRecord,
)
from faultprint_collector.ingest._spans import SpanView


class SpanRejected(ValueError):
    """The span cannot be stored; the message says why (partial success)."""


__all__ = ["FINISH_REASONS", "SpanRejected", "classify", "is_model_call"]


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
    # Every dialect (faultprint, OTel GenAI old and new, OpenInference,
    # OpenLLMetry) is read into one view; classification uses only the view.
    view = read_call(span)
    request_model = view.request_model
    response_model = view.response_model
    finish_reason = view.finish_reason
    error_type = view.error_type
    error_code = view.error_code
    http_status = view.http_status
    message = view.message
    detail_value = attrs.get("faultprint.failure.detail")
    # DESIGN: the version is the explicit tag, else the response model, else
    # the request model
    model = model_text(attrs.get("faultprint.model_version")) or response_model or request_model

    category = as_text(attrs.get("faultprint.failure.category"))
    if not category:
        if view.errored:
            if timeout_error(view):
                category = "timeout"
            elif http_status >= 400 or error_code:
                category = "api_error"
            else:
                category = "exception"
        elif view.inferred is not None:
            category = view.inferred.category
            message = message or view.inferred.message
            detail_value = view.inferred.detail
        else:
            category = FINISH_REASONS.get(finish_reason) or ""

    record = CallRecord(
        project=project,
        time=datetime.fromtimestamp(span.start_ns / 1e9, tz=UTC),
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        # the resource's, unless the span names its own: an SDK recording on
        # the application's provider puts the service, environment and
        # release it was configured with on each span when that provider's
        # resource does not carry them
        service=as_text(attrs.get("service.name") or res.get("service.name")),
        environment=as_text(
            attrs.get("deployment.environment.name")
            or res.get("deployment.environment.name")
            or res.get("deployment.environment")
        ),
        release=as_text(attrs.get("service.version") or res.get("service.version")),
        operation=view.operation,
        span_name=span.name[:256],
        provider=view.provider,
        request_model=request_model,
        response_model=response_model,
        model_version=model[:MAX_VERSION_CHARS].rstrip() or UNKNOWN_VERSION,
        call_site=view.call_site[:MAX_CALL_SITE_CHARS],
        latency_ms=max(0.0, (span.end_ns - span.start_ns) / 1e6),
        input_tokens=view.input_tokens,
        output_tokens=view.output_tokens,
        finish_reason=finish_reason,
        input_hash=_hash_value(attrs.get("faultprint.input_hash")),
        sample_weight=_weight(attrs.get("faultprint.sample_weight")),
        input_text=as_text(attrs.get("faultprint.input"))[:MAX_CONTENT_CHARS],
        output_text=as_text(attrs.get("faultprint.output") or view.output_text)[:MAX_CONTENT_CHARS],
        attributes=_kept_attributes(attrs),
    )
    if category:
        detail = _detail(detail_value)
        fp = fingerprint(
            FailureRecord(
                category=category,
                error_type=error_type,
                message=message,
                stacktrace=view.stacktrace,
                modules=view.frame_modules,
                finish_reason=finish_reason,
                output=record.output_text,
                call_site=record.call_site,
                provider=record.provider,
                # the name itself (possibly ""), never the placeholder: the
                # engine masks the model's name in messages
                model=model,
                status_code=http_status,
                error_code=error_code,
                detail=detail,
                caller=as_text(attrs.get("code.function.name")),
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
        record.components = json.dumps(fp.components, default=str, ensure_ascii=False)
        record.sample_weight = 1.0  # failures are never sampled
    return record


#: span attributes kept in ``calls.attributes``: what a call carries that no
#: column holds and an incident review reads (a stream's chunks, its time to
#: first chunk and whether the consumer closed it early; what cancelled a call
#: the caller abandoned, which, like an early close, is no failure; the
#: caller of an integration call; the provider's response id and host)
KEPT_ATTRIBUTES = (
    "faultprint.stream.chunks",
    "faultprint.stream.time_to_first_chunk_ms",
    "faultprint.stream.closed_early",
    "faultprint.cancelled",
    "code.function.name",
    "gen_ai.response.id",
    "server.address",
)
#: bound on each kept value
MAX_ATTRIBUTE_CHARS = 256


def _kept_attributes(attrs: dict[str, Any]) -> dict[str, str]:
    kept = {}
    for key in KEPT_ATTRIBUTES:
        value = attrs.get(key)
        if value is None or value == "":
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else as_text(value)
        if text:
            kept[key] = text[:MAX_ATTRIBUTE_CHARS]
    return kept


def _hash_value(value: Any) -> int:
    if isinstance(value, int):
        return value & 0xFFFFFFFFFFFFFFFF
    try:
        return int(as_text(value), 16) & 0xFFFFFFFFFFFFFFFF
    except ValueError:
        return 0


def _weight(value: Any) -> float:
    if value is None:  # the common case; float(None) would raise
        return 1.0
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
