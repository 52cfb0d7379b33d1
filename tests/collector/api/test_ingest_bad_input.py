"""Hostile and malformed bodies against a real collector: a 4xx with a reason.

Never a 5xx, a hang or a crash: after every case the collector still
answers and still stores a good batch.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess, free_port

MAX_BODY = 1 << 20
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    tmp: Path = tmp_path_factory.mktemp("bad_input")
    proc = CollectorProcess(
        store=str(tmp / "store"),
        port=free_port(),
        env={
            "FAULTPRINT_MAX_BODY_BYTES": str(MAX_BODY),
            "FAULTPRINT_MAX_DECOMPRESSED_BYTES": str(4 * MAX_BODY),
        },
        log_path=tmp / "collector.log",
    )
    proc.start()
    yield proc
    proc.stop()


def post(collector: CollectorProcess, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{collector.url}/v1/traces", content=body, headers=headers, timeout=60)


def reason(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("application/json"):
        data = response.json()
        return str(data.get("message") or data.get("detail"))
    return status_pb2.Status.FromString(response.content).message


def nested_value(depth: int) -> AnyValue:
    value = AnyValue(string_value="leaf")
    for _ in range(depth):
        outer = AnyValue()
        outer.array_value.values.append(value)
        value = outer
    return value


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def json_spans(**span: object) -> bytes:
    base = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "chat",
        "startTimeUnixNano": "1700000000000000000",
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m"}}],
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{**base, **span}]}]}]}).encode()


def good_body() -> bytes:
    return request(3)[0].SerializeToString()


CASES: dict[str, tuple[bytes | None, dict[str, str], int, str]] = {
    # name: (body, headers, expected status, a word the reason must contain)
    "garbage protobuf": (os.urandom(4096), PROTOBUF, 400, "protobuf"),
    "truncated protobuf": (None, PROTOBUF, 400, "protobuf"),
    "invalid JSON": (b'{"resourceSpans": [', JSON, 400, "JSON"),
    "JSON not an object": (b"[1, 2, 3]", JSON, 400, "object"),
    "JSON wrong type": (b'{"resourceSpans": "many"}', JSON, 400, "OTLP"),
    "JSON wrong field type": (json_spans(startTimeUnixNano="soon"), JSON, 400, "OTLP"),
    # (an id of bad hex costs only its span, as in protobuf: test_otlp_decode)
    "JSON trace id not text": (json_spans(traceId=12), JSON, 400, "traceId"),
    "JSON invalid UTF-8": (b'{"resourceSpans": ["\xff\xfe"]}', JSON, 400, "UTF-8"),
    "JSON deeply nested": (b"[" * 100_000 + b"]" * 100_000, JSON, 400, "deep"),
    "JSON nested values": (None, JSON, 400, "OTLP"),
    "JSON integer of 5000 digits": (None, JSON, 400, "digits"),
    "wrong content type": (b"hello", {"content-type": "text/plain"}, 415, "Content-Type"),
    "no content type": (b"hello", {}, 415, "Content-Type"),
    "bad gzip": (os.urandom(512), {**PROTOBUF, "content-encoding": "gzip"}, 400, "gzip"),
    "truncated gzip": (None, {**PROTOBUF, "content-encoding": "gzip"}, 400, "truncated"),
    "unknown encoding": (b"x", {**PROTOBUF, "content-encoding": "br"}, 415, "Encoding"),
    "decompression bomb": (
        gzip.compress(b"\0" * (64 * MAX_BODY), 9),
        {**PROTOBUF, "content-encoding": "gzip"},
        413,
        "limit",
    ),
    "deflate bomb": (
        zlib.compress(b"\0" * (64 * MAX_BODY), 9),
        {**PROTOBUF, "content-encoding": "deflate"},
        413,
        "limit",
    ),
    "oversized body": (os.urandom(MAX_BODY + 1), PROTOBUF, 413, "limit"),
    "protobuf nested too deep": (None, PROTOBUF, 400, "protobuf"),
    "protobuf invalid UTF-8": (None, PROTOBUF, 400, "protobuf"),
}


def _special(name: str) -> bytes:
    if name == "truncated protobuf":
        return good_body()[:-7]
    if name == "truncated gzip":
        return gzip.compress(good_body())[:-10]
    if name == "JSON nested values":
        value: dict[str, object] = {"stringValue": "x"}
        for _ in range(200):
            value = {"arrayValue": {"values": [value]}}
        return json_spans(attributes=[{"key": "gen_ai.x", "value": value}])
    if name == "JSON integer of 5000 digits":
        # beyond Python's int-string limit: json.loads itself raises ValueError
        return json_spans(endTimeUnixNano=1).replace(
            b'"endTimeUnixNano": 1', b'"endTimeUnixNano": ' + b"9" * 5000
        )
    if name == "protobuf nested too deep":
        # Built by hand: the protobuf library itself refuses to nest this deep.
        req, _ = request(1)
        value = AnyValue(string_value="leaf").SerializeToString()
        for _ in range(150):
            value = _field(5, _field(1, value))  # AnyValue.array_value.values
        attribute = _field(1, b"gen_ai.deep") + _field(2, value)  # KeyValue
        span = req.resource_spans[0].scope_spans[0].spans[0].SerializeToString()
        span += _field(9, attribute)  # Span.attributes
        return _field(1, _field(2, _field(2, span)))
    if name == "protobuf invalid UTF-8":
        req, _ = request(1, call_site="SITE-MARKER")
        return req.SerializeToString().replace(b"SITE-MARKER", b"SITE-\xff\xfeRKER")
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_body_gets_a_4xx_with_a_reason(collector: CollectorProcess, name: str) -> None:
    body, headers, status, word = CASES[name]
    response = post(collector, body if body is not None else _special(name), headers)
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert word.lower() in reason(response).lower()
    assert post(collector, good_body(), PROTOBUF).status_code == 200


def test_chunked_oversized_body_is_refused_while_streaming(collector: CollectorProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\0" * 65536

    response = httpx.post(
        f"{collector.url}/v1/traces", content=chunks(), headers=PROTOBUF, timeout=60
    )
    assert response.status_code == 413


def test_absurd_but_well_formed_spans_are_stored_bounded(collector: CollectorProcess) -> None:
    req, _ = request(2)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[0].attributes.extend(
        KeyValue(key=f"gen_ai.extra.{i}", value=AnyValue(int_value=i)) for i in range(20_000)
    )
    spans[1].attributes.append(
        KeyValue(key="faultprint.output", value=AnyValue(string_value="x" * 300_000))
    )
    spans[1].attributes.append(KeyValue(key="gen_ai.nested", value=nested_value(40)))
    response = post(collector, req.SerializeToString(), PROTOBUF)
    assert response.status_code == 200
    assert (
        ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    )


def test_spans_with_bad_ids_or_times_are_rejected_partially(collector: CollectorProcess) -> None:
    req, _ = request(4, failures_every=0)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\x01" * 5
    spans[1].span_id = b"\0" * 8
    spans[2].start_time_unix_nano = 2**64 - 1
    response = post(collector, req.SerializeToString(), PROTOBUF)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 3
    assert "trace id" in partial.error_message


def test_too_many_spans_in_one_request_is_413(collector: CollectorProcess) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add().scope_spans.add()
    for _ in range(100_001):
        scope.spans.add()
    body = gzip.compress(req.SerializeToString())
    response = post(collector, body, {**PROTOBUF, "content-encoding": "gzip"})
    assert response.status_code == 413
    assert "spans" in reason(response)


def test_collector_survived_everything(collector: CollectorProcess) -> None:
    assert collector.proc is not None and collector.proc.poll() is None
    assert httpx.get(f"{collector.url}/healthz", timeout=10).status_code == 200
