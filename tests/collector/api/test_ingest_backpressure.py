"""OTLP backpressure of a real collector: 503 / 429 with Retry-After, retries once."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
from faultprint_collector.store import open_store
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess


def post(collector: CollectorProcess, body: bytes) -> httpx.Response:
    return httpx.post(f"{collector.url}/v1/traces", content=body, headers=PROTOBUF, timeout=30)


def test_full_spool_answers_503_with_retry_after(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    collector = start_collector(env={"FAULTPRINT_SPOOL_MAX_BYTES": "30000"})
    big = post(collector, request(300)[0].SerializeToString())
    assert big.status_code == 503
    assert int(big.headers["retry-after"]) >= 1
    assert post(collector, request(5)[0].SerializeToString()).status_code == 200


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
    assert collector.stop() in (0, -signal.SIGTERM)
    store = open_store(store_dir)
    try:
        rows = store.query("SELECT count() FROM calls").result_rows[0][0]
        occurrences = store.query("SELECT sum(occurrences) FROM fingerprint_catalog").result_rows[
            0
        ][0]
    finally:
        store.close()
    assert rows == len(ids)
    assert occurrences == 10
