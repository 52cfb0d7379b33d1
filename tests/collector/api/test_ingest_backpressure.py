"""OTLP backpressure of a real collector: 503 / 429 with Retry-After, retries once."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from faultprint_collector.api._decoder import DecodeResult
from faultprint_collector.api._ingest import RateLimiter, _spool_request
from faultprint_collector.settings import Settings
from faultprint_collector.spool import RecordTooLarge, SpoolError, SpoolFull
from faultprint_collector.store import open_store
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess


def post(collector: CollectorProcess, body: bytes) -> httpx.Response:
    return httpx.post(f"{collector.url}/v1/traces", content=body, headers=PROTOBUF, timeout=30)


def _stored_after_stop(collector: CollectorProcess, store_dir: str) -> tuple[int, int]:
    """Stop the collector; (rows in calls, occurrences in the catalogue) of its store."""
    assert collector.stop() in (0, -signal.SIGTERM)
    store = open_store(store_dir)
    try:
        rows = store.query("SELECT count() FROM calls").result_rows[0][0]
        occurrences = store.query("SELECT sum(occurrences) FROM fingerprint_catalog").result_rows
    finally:
        store.close()
    return rows, occurrences[0][0]


def test_a_request_larger_than_the_whole_spool_gets_413(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    collector = start_collector(env={"FAULTPRINT_SPOOL_MAX_BYTES": "30000"})
    big = post(collector, request(300)[0].SerializeToString())
    # no retry can make it fit: not backpressure (503), which exporters retry forever
    assert big.status_code == 413
    assert "retry-after" not in big.headers
    assert "FAULTPRINT_SPOOL_MAX_BYTES" in Status.FromString(big.content).message
    assert post(collector, request(5)[0].SerializeToString()).status_code == 200


def test_spans_refused_as_too_large_leave_the_rate_limit_unspent(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    # 0.01 spans/s: a budget spent here would not refill while the test runs
    collector = start_collector(
        env={"FAULTPRINT_SPOOL_MAX_BYTES": "30000", "FAULTPRINT_RATE_LIMIT_SPANS_PER_S": "0.01"}
    )
    assert post(collector, request(300)[0].SerializeToString()).status_code == 413
    # nothing was accepted, so the next request within the limit is
    accepted = post(collector, request(5)[0].SerializeToString())
    assert accepted.status_code == 200, Status.FromString(accepted.content).message
    assert post(collector, request(5)[0].SerializeToString()).status_code == 429


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (RecordTooLarge("larger than the whole spool"), 413),
        (SpoolFull("spool full"), 503),
        (SpoolError("disk failed"), 503),
    ],
)
def test_spans_the_spool_refuses_are_not_charged_to_the_rate_limit(
    refusal: SpoolError, status: int
) -> None:
    """Refused by the spool (too large, full, failing), the spans were not
    accepted: the project's budget is as before, so the retry passes."""

    class Decoder:
        async def decode(self, *_: object) -> DecodeResult:
            return DecodeResult(payload=b"encoded rows", rows=10)

    def write_encoded(payload: bytes, rows: int) -> int:
        raise refusal

    limiter = RateLimiter(0.001)  # a burst of 10 spans, refilled after hours
    state = SimpleNamespace(
        stats=Counter(),
        settings=Settings(),
        limiter=limiter,
        decoder=Decoder(),
        writer=SimpleNamespace(write_encoded=write_encoded),
    )
    request_ = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(faultprint=state)), headers={}
    )
    answer, acknowledged = asyncio.run(
        _spool_request(request_, "shop", b"body", PROTOBUF["content-type"], b"digest")  # type: ignore[arg-type]
    )
    assert (answer.status_code, acknowledged) == (status, False)
    assert limiter.take("shop", 10) == 0
    assert limiter.take("shop", 10) > 0  # and then it is spent


def test_a_refund_never_raises_the_budget_past_its_burst() -> None:
    limiter = RateLimiter(0.001)
    limiter.refund("shop", 10)  # nothing taken: the bucket is full already
    assert limiter.take("shop", 10) == 0
    assert limiter.take("shop", 10) > 0


def test_too_many_requests_in_flight_answers_503(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    collector = start_collector(env={"FAULTPRINT_MAX_INFLIGHT_REQUESTS": "1"})
    body = request(5)[0].SerializeToString()
    # A slow client holds the only slot: headers and half of its body sent.
    slow = socket.create_connection(("127.0.0.1", collector.port))
    slow.sendall(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    try:
        busy = post(collector, body)
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        slow.sendall(body[len(body) // 2 :])
        assert b" 200 " in slow.recv(4096).split(b"\r\n", 1)[0] + b" "
    finally:
        slow.close()
    assert post(collector, body).status_code == 200


def test_project_over_its_rate_limit_gets_429(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    collector = start_collector(env={"FAULTPRINT_RATE_LIMIT_SPANS_PER_S": "20"})
    assert post(collector, request(40)[0].SerializeToString()).status_code == 200
    limited = post(collector, request(40)[0].SerializeToString())
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


def test_a_retried_request_is_stored_once(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    store_dir = str(tmp_path / "store")
    collector = start_collector(store_dir)
    req, ids = request(50, failures_every=5)
    body = req.SerializeToString()
    first, retry = post(collector, body), post(collector, body)
    assert first.status_code == retry.status_code == 200
    assert ExportTraceServiceResponse.FromString(retry.content).partial_success.rejected_spans == 0
    rows, occurrences = _stored_after_stop(collector, store_dir)
    assert rows == len(ids)
    assert occurrences == 10


def _rollup_counts(store_dir: str) -> tuple[int, int, int]:
    """(calls in the hourly rollup, in calls FINAL, catalogue occurrences) of a stopped store."""
    store = open_store(store_dir)
    try:
        hourly = store.query("SELECT sum(calls) FROM version_hourly_v").result_rows[0][0]
        final = store.query("SELECT count() FROM calls FINAL").result_rows[0][0]
        catalog = store.query("SELECT sum(occurrences) FROM fingerprint_catalog").result_rows
    finally:
        store.close()
    return int(hourly), final, catalog[0][0]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_request_retried_after_a_restart_is_counted_once(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path, stop: int
) -> None:
    """The acknowledgement is lost as the collector stops (or crashes); the
    exporter retries the same body once it is back. Rows in ``calls`` would
    merge under their span ids, but the rollups and the catalogue would
    count every call of the retry again."""
    store_dir = str(tmp_path / "store")
    first = start_collector(store_dir)
    req, ids = request(60, failures_every=5)
    body = req.SerializeToString()
    assert post(first, body).status_code == 200
    first.stop(stop)
    again = start_collector(store_dir)
    retry = post(again, body)
    assert retry.status_code == 200
    assert ExportTraceServiceResponse.FromString(retry.content).partial_success.rejected_spans == 0
    stats = httpx.get(f"{again.url}/api/stats", timeout=10).json()
    assert stats["duplicate_requests"] == 1 and stats["accepted_spans"] == 0
    # a new body still counts, and is remembered across the next restart too
    other = request(10, failures_every=5)[0].SerializeToString()
    assert post(again, other).status_code == 200
    again.stop()
    third = start_collector(store_dir)
    assert post(third, other).status_code == post(third, body).status_code == 200
    assert httpx.get(f"{third.url}/api/stats", timeout=10).json()["duplicate_requests"] == 2
    third.stop()
    assert _rollup_counts(store_dir) == (len(ids) + 10, len(ids) + 10, (len(ids) + 10) // 5)


def test_identical_requests_arriving_together_are_stored_and_counted_once(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    store_dir = str(tmp_path / "store")
    collector = start_collector(store_dir)
    # An exporter that gave up waiting sends the same body again while the
    # first is still being decoded and spooled.
    req, ids = request(3000, failures_every=5)
    body = req.SerializeToString()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(collector, body), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    stats = httpx.get(f"{collector.url}/api/stats", timeout=10).json()
    assert stats["accepted_spans"] == len(ids)
    assert stats["duplicate_requests"] == 3
    rows, occurrences = _stored_after_stop(collector, store_dir)
    assert rows == len(ids)
    assert occurrences == len(ids) // 5


def test_identical_requests_refused_together_are_all_refused(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    collector = start_collector(env={"FAULTPRINT_RATE_LIMIT_SPANS_PER_S": "5"})
    assert post(collector, request(40)[0].SerializeToString()).status_code == 200
    # The project's budget is spent: the first copy is refused (429), and so
    # must be the copies that waited for it, never acknowledged on its behalf.
    body = request(40)[0].SerializeToString()
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: post(collector, body), range(3)))
    assert [a.status_code for a in answers] == [429] * 3
    stats = httpx.get(f"{collector.url}/api/stats", timeout=10).json()
    assert stats["accepted_spans"] == 40
    assert stats.get("duplicate_requests", 0) == 0
