"""Ingest: OTLP body → spans → classified, fingerprinted call records."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from faultprint_collector.ingest._classify import (
    FINISH_REASONS,
    SpanRejected,
    classify,
    is_model_call,
)
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
    "FINISH_REASONS",
    "JSON",
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
]


_log = logging.getLogger("faultprint.ingest")
#: the range the ``calls.time`` column (DateTime64) holds
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2262, 1, 1, tzinfo=UTC)


@dataclass
class DecodedBatch:
    """What one OTLP request turned into."""

    records: list[CallRecord] = field(default_factory=list)
    rejected: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def records_from_request(
    request: object, project: str, scrubber: Scrubber | None = None
) -> DecodedBatch:
    """Classify and fingerprint every model-call span of a parsed request.

    SCRUBBER (when given) removes secrets from the span's text first, so
    neither the stored message nor the fingerprint's template holds them.
    """
    batch = DecodedBatch()
    for span in iter_spans(request):  # type: ignore[arg-type]
        if not is_model_call(span):
            batch.skipped += 1
            continue
        if scrubber is not None:
            scrubber.span(span)
        try:
            record = classify(span, project)
            if not _EARLIEST <= record.time < _LATEST:
                raise SpanRejected(f"span {span.span_id} has a start time out of range")
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
) -> DecodedBatch:
    """Decompress, parse and classify one OTLP/HTTP body."""
    return records_from_request(
        parse_request(decompress(body, content_encoding, max_decompressed_bytes), content_type),
        project,
        scrubber,
    )
