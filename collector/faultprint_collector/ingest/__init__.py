"""Ingest: OTLP body → spans → classified, fingerprinted call records."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from faultprint_collector.ingest._classify import (
    FINISH_REASONS,
    SpanRejected,
    classify,
    is_model_call,
)
from faultprint_collector.ingest._dialects import call_identity
from faultprint_collector.ingest._otlp import (
    JSON,
    MAX_DECOMPRESSED_BYTES,
    PROTOBUF,
    OTLPDecodeError,
    decompress,
    encode_response,
    parse_request,
)
from faultprint_collector.ingest._records import CALL_COLUMNS, CallRecord
from faultprint_collector.ingest._scrub import Scrubber
from faultprint_collector.ingest._spans import SpanView, iter_spans

__all__ = [
    "CALL_COLUMNS",
    "DEFAULT_RETENTION_DAYS",
    "FINISH_REASONS",
    "JSON",
    "LATEST_START",
    "MAX_CLOCK_SKEW",
    "PROTOBUF",
    "CallRecord",
    "DecodedBatch",
    "OTLPDecodeError",
    "Scrubber",
    "SpanRejected",
    "SpanView",
    "classify",
    "decode_body",
    "decompress",
    "encode_response",
    "is_model_call",
    "iter_spans",
    "parse_request",
    "records_from_request",
    "repeated_calls",
    "start_time_error",
]


_log = logging.getLogger("faultprint.ingest")
#: the store's retention when none is given (``FAULTPRINT_RETENTION_DAYS``'s
#: default, the store's ``DEFAULT_RETENTION_DAYS``)
DEFAULT_RETENTION_DAYS = 90
#: the first start time the store cannot hold: the hourly rollups' and the
#: catalogue's ``DateTime`` end on 2106-02-07, and times are promised up to
#: the end of 2105 (README)
LATEST_START = datetime(2106, 1, 1, tzinfo=UTC)
#: how far ahead of the collector's clock a span may start. Clocks drift by
#: seconds and a batch waits minutes; a span dated further ahead comes from a
#: wrong clock, and stored it would sit in every "last 24 h" and be its
#: fingerprint's last_seen until that date. Nothing faultprint sends (SDK,
#: demo) is dated ahead of its clock.
MAX_CLOCK_SKEW = timedelta(days=1)


@dataclass
class DecodedBatch:
    """What one OTLP request turned into."""

    records: list[CallRecord] = field(default_factory=list)
    rejected: int = 0
    #: spans that are not model calls
    skipped: int = 0
    #: model-call spans that record again a call another span records (see
    #: ``repeated_calls``)
    repeated: int = 0
    errors: list[str] = field(default_factory=list)


def repeated_calls(spans: list[SpanView]) -> set[int]:
    """Indexes of model-call spans that record a call another span of SPANS records.

    An instrumentation wrapping a provider's client and the client library
    tracing its own calls (the Anthropic library does, on the global
    provider) make two spans of one call; stored both, the call would count
    twice. When the instrumentation makes its span current (OpenInference
    does), the library's is its child: a model-call span whose parent, in
    the same request, is a model call of the same provider and operation is
    that call again. Spans of faultprint's SDK are never taken for repeats:
    its nested ``@observe`` calls are calls of their own, and it does not
    export the spans of others nested in its calls.

    Not seen: a child whose parent is in another request, and twins that are
    both roots (OpenLLMetry's span and the library's): nothing but timing
    links those, and two calls can share a response id when a test server
    answers them.
    """
    if len(spans) < 2:
        return set()
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    repeated: set[int] = set()
    for index, span in enumerate(spans):
        parent = by_id.get((span.trace_id, span.parent_span_id)) if span.parent_span_id else None
        if parent is None:
            continue
        provider, operation, ours = call_identity(span)
        if not ours and call_identity(parent)[:2] == (provider, operation):
            repeated.add(index)
    return repeated


def start_time_error(start: datetime, now: datetime, retention_days: int) -> str:
    """Why a call starting at START cannot be stored ("" when it can).

    The store keeps what started within the last RETENTION_DAYS (older rows
    are dropped by TTL, while the catalogue, which has none, would keep
    counting them: a first_seen in 1970 forever) and up to the end of 2105
    (``LATEST_START``); a start more than ``MAX_CLOCK_SKEW`` ahead of NOW is
    a wrong clock. Acknowledged, such a span would be lost or misplaced:
    rejecting it says so to the sender (OTLP partial success).
    """
    shown = f"{start:%Y-%m-%dT%H:%M:%SZ}"
    if start < now - timedelta(days=retention_days):
        return f"{shown} is older than the store's retention of {retention_days} days"
    if start >= LATEST_START:
        return f"{shown} is past 2105, the last year the store holds"
    if start > now + MAX_CLOCK_SKEW:
        return (
            f"{shown} is more than a day ahead of the collector's clock ({now:%Y-%m-%dT%H:%M:%SZ})"
        )
    return ""


def records_from_request(
    request: object,
    project: str,
    scrubber: Scrubber | None = None,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    now: datetime | None = None,
) -> DecodedBatch:
    """Classify and fingerprint every model-call span of a parsed request.

    SCRUBBER (when given) removes secrets from the span's text first, so
    neither the stored message nor the fingerprint's template holds them.
    A span whose start time the store cannot keep (see ``start_time_error``;
    RETENTION_DAYS is the store's retention, NOW the collector's clock,
    read once per request when not given) is rejected, with the reason.
    """
    now = now or datetime.now(UTC)
    batch = DecodedBatch()
    calls: list[SpanView] = []
    for span in iter_spans(request):  # type: ignore[arg-type]
        if is_model_call(span):
            calls.append(span)
        else:
            batch.skipped += 1
    repeated = repeated_calls(calls)
    batch.repeated = len(repeated)
    for index, span in enumerate(calls):
        if index in repeated:
            continue
        if scrubber is not None:
            scrubber.span(span)
        try:
            record = classify(span, project)
            why = start_time_error(record.time, now, retention_days)
            if why:
                raise SpanRejected(f"span {span.span_id} has a start time out of range: {why}")
            batch.records.append(record)
        except SpanRejected as exc:
            batch.rejected += 1
            if len(batch.errors) < 5:
                batch.errors.append(str(exc))
        except Exception as exc:
            # A span no rule foresaw must cost only itself, never the request.
            _log.warning("span %s could not be classified", span.span_id, exc_info=True)
            batch.rejected += 1
            if len(batch.errors) < 5:
                batch.errors.append(f"span {span.span_id} could not be classified: {exc!r:.200}")
    return batch


def decode_body(
    body: bytes,
    content_type: str,
    content_encoding: str,
    project: str,
    scrubber: Scrubber | None = None,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    now: datetime | None = None,
) -> DecodedBatch:
    """Decompress, parse and classify one OTLP/HTTP body (see ``records_from_request``)."""
    return records_from_request(
        parse_request(decompress(body, content_encoding, max_decompressed_bytes), content_type),
        project,
        scrubber,
        retention_days=retention_days,
        now=now,
    )
