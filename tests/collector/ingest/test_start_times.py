"""Start times the store cannot keep are rejected, each span alone, with a reason.

The calls table drops rows older than the retention by TTL while the
catalogue (no TTL) would count them forever; the hourly rollups' ``DateTime``
ends in 2106; a span dated far ahead would sit in every "last 24 h". Such a
span is answered through OTLP partial success instead of being acknowledged
and then lost or misplaced.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from faultprint_collector.ingest import (
    DEFAULT_RETENTION_DAYS,
    LATEST_START,
    MAX_CLOCK_SKEW,
    decode_body,
    records_from_request,
    start_time_error,
)
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.collector.api._otlp import PROTOBUF, request

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def _request_starting_at(*starts: datetime, failures_every: int = 1) -> ExportTraceServiceRequest:
    """A request with one model-call span per start, the model named after its year."""
    req, _ = request(len(starts), failures_every=failures_every)
    for span, start in zip(req.resource_spans[0].scope_spans[0].spans, starts, strict=True):
        span.start_time_unix_nano = _ns(start)
        span.end_time_unix_nano = _ns(start) + 250_000_000
        for attribute in span.attributes:
            if attribute.key == "gen_ai.request.model":
                attribute.value.string_value = f"ts-{start:%Y%m%d}"
    return req


@pytest.mark.parametrize(
    ("start", "kept"),
    [
        (NOW, True),
        (NOW - timedelta(days=DEFAULT_RETENTION_DAYS) + timedelta(minutes=1), True),
        (NOW - timedelta(days=DEFAULT_RETENTION_DAYS) - timedelta(minutes=1), False),
        (datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), False),
        (NOW + MAX_CLOCK_SKEW - timedelta(minutes=1), True),
        (NOW + MAX_CLOCK_SKEW + timedelta(minutes=1), False),
        (datetime(2100, 1, 1, tzinfo=UTC), False),
        (datetime(2200, 1, 1, tzinfo=UTC), False),
    ],
    ids=[
        "now",
        "just within retention",
        "just past retention",
        "1970",
        "within the clock skew",
        "more than a day ahead",
        "2100",
        "2200",
    ],
)
def test_a_start_is_kept_within_retention_and_the_clock_skew(start: datetime, kept: bool) -> None:
    reason = start_time_error(start, NOW, DEFAULT_RETENTION_DAYS)
    assert (reason == "") is kept
    req = _request_starting_at(start)
    batch = records_from_request(req, "p", now=NOW)
    assert (len(batch.records), batch.rejected) == ((1, 0) if kept else (0, 1))
    if not kept:
        span_id = req.resource_spans[0].scope_spans[0].spans[0].span_id.hex()
        assert batch.errors == [f"span {span_id} has a start time out of range: {reason}"]


def test_reasons_say_what_the_store_keeps() -> None:
    assert "older than the store's retention of 90 days" in start_time_error(
        datetime(1970, 1, 1, tzinfo=UTC), NOW, 90
    )
    assert "more than a day ahead of the collector's clock" in start_time_error(
        NOW + 2 * DAY, NOW, 90
    )
    # the rollups' DateTime holds no later time, whatever the clock says
    late_clock = datetime(2105, 12, 31, 23, 0, tzinfo=UTC)
    assert "past 2105" in start_time_error(LATEST_START, late_clock, 90)
    assert start_time_error(LATEST_START - timedelta(minutes=1), late_clock, 90) == ""


def test_the_retention_is_the_stores() -> None:
    hundred_days_ago = NOW - timedelta(days=100)
    req = _request_starting_at(hundred_days_ago)
    assert records_from_request(req, "p", now=NOW).rejected == 1
    kept = records_from_request(req, "p", now=NOW, retention_days=365)
    assert (len(kept.records), kept.rejected) == (1, 0)


def test_only_the_span_out_of_range_is_rejected() -> None:
    req = _request_starting_at(NOW, datetime(1970, 1, 1, tzinfo=UTC), NOW - DAY, NOW + 3 * DAY)
    batch = records_from_request(req, "p", now=NOW)
    assert sorted(r.model_version for r in batch.records) == ["ts-20260531", "ts-20260601"]
    assert batch.rejected == 2 and len(batch.errors) == 2


@given(st.integers(min_value=1, max_value=2**64 - 1))
def test_every_stored_start_is_one_the_store_keeps(start_ns: int) -> None:
    req, _ = request(1)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.start_time_unix_nano = start_ns
    span.end_time_unix_nano = start_ns
    batch = records_from_request(req, "p", now=NOW)
    assert len(batch.records) + batch.rejected == 1
    for record in batch.records:
        assert NOW - timedelta(days=DEFAULT_RETENTION_DAYS) <= record.time
        assert record.time <= NOW + MAX_CLOCK_SKEW < LATEST_START
    for error in batch.errors:
        assert "start time out of range" in error


def test_decode_body_reads_the_collectors_clock() -> None:
    req = _request_starting_at(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    batch = decode_body(req.SerializeToString(), PROTOBUF["content-type"], "", "p")
    assert (batch.records, batch.rejected) == ([], 1)


def _sent(collector, req: ExportTraceServiceRequest) -> Any:
    """Post ``req`` to the collector; the partial success of its 200 answer."""
    response = httpx.post(
        f"{collector.url}/v1/traces", content=req.SerializeToString(), headers=PROTOBUF, timeout=60
    )
    assert response.status_code == 200
    return ExportTraceServiceResponse.FromString(response.content).partial_success


def test_the_collector_rejects_times_it_cannot_keep_and_stores_the_rest(collector) -> None:
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    starts = (
        now - timedelta(seconds=30),
        datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
        now + 3 * DAY,
    )
    partial = _sent(collector, _request_starting_at(*starts))
    assert partial.rejected_spans == 3
    assert "start time out of range" in partial.error_message
    collector.wait_stored()
    # neither the calls nor the catalogue and rollups hold the rejected spans:
    # no first_seen in 1970, no hour clamped to 2106
    for view in ("calls FINAL", "fingerprint_catalog_v", "version_hourly_v"):
        rows = httpx.post(
            f"{collector.url}/api/sql",
            json={"sql": f"SELECT DISTINCT model_version FROM {view} ORDER BY model_version"},
            timeout=30,
        ).json()["rows"]
        assert rows == [[f"ts-{starts[0]:%Y%m%d}"]], view


@pytest.mark.parametrize("workers", ["0", "1"], ids=["in threads", "in worker processes"])
def test_the_collector_keeps_what_its_configured_retention_keeps(start_collector, workers) -> None:
    """A store that keeps a year takes a span from 200 days ago, in every decoder."""
    collector = start_collector(
        env={"FAULTPRINT_RETENTION_DAYS": "365", "FAULTPRINT_DECODE_WORKERS": workers}
    )
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    partial = _sent(collector, _request_starting_at(now - 200 * DAY, now - 400 * DAY))
    assert partial.rejected_spans == 1
    assert "retention of 365 days" in partial.error_message
