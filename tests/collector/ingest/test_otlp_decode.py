"""OTLP/HTTP bodies: protobuf and JSON decode to the same records; bad bodies get 4xx."""

from __future__ import annotations

import gzip
import json
import time

import httpx
import pytest
from faultprint_collector.ingest import OTLPDecodeError, decode_body
from hypothesis import given
from hypothesis import strategies as st

from tests.collector.api._otlp import kv
from tests.collector.api._otlp import request as api_request
from tests.collector.ingest.otlp_samples import sample_request, to_otlp_json

PB = "application/x-protobuf"
JS = "application/json"


def _rows(batch):
    return [r.row() for r in batch.records]


def test_protobuf_and_json_decode_to_the_same_records() -> None:
    request = sample_request()
    from_pb = decode_body(request.SerializeToString(), PB, "", "p")
    from_json = decode_body(json.dumps(to_otlp_json(request)).encode(), JS, "", "p")
    assert len(from_pb.records) == 6
    assert _rows(from_pb) == _rows(from_json)
    # hex ids survive exactly (a base64 misreading would change them)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert from_json.records[0].span_id == span.span_id.hex()
    assert from_json.records[0].trace_id == span.trace_id.hex()
    failed = [r for r in from_pb.records if r.is_failure]
    assert len(failed) == 2 and {r.category for r in failed} == {"exception"}
    assert failed[0].fingerprint == failed[1].fingerprint  # numbers and quoted ids masked


def test_gzip_bodies_decode_like_plain_ones() -> None:
    body = sample_request().SerializeToString()
    plain = decode_body(body, PB, "", "p")
    zipped = decode_body(gzip.compress(body), PB, "gzip", "p")
    assert _rows(plain) == _rows(zipped)


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "status"),
    [
        (b"\xff\xfe garbage \x00\x01", PB, "", 400),
        (None, PB, "truncate", 400),
        (b"{not json", JS, "", 400),
        (b'{"resourceSpans": 5}', JS, "", 400),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}', JS, "", 400),
        (b"{}", "text/plain", "", 415),
        (b"not gzip at all", PB, "gzip", 400),
        (b"{}", JS, "br", 415),
        (b"\xc3\x28", JS, "", 400),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(body, content_type, encoding, status) -> None:
    if encoding == "truncate":
        body, encoding = sample_request().SerializeToString()[:-7], ""
    with pytest.raises(OTLPDecodeError) as info:
        decode_body(body, content_type, encoding, "p")
    assert info.value.status == status
    assert info.value.reason


def test_the_collector_answers_bad_bodies_with_4xx_and_keeps_serving(collector) -> None:
    url = f"{collector.url}/v1/traces"
    cases = [
        (b"\xff\xfe garbage", {"content-type": PB}, 400),
        (sample_request().SerializeToString()[:-7], {"content-type": PB}, 400),
        (b"{oops", {"content-type": JS}, 400),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": 12}]}]}]}',
            {"content-type": JS},
            400,
        ),
        (b"\x1f\x8b\x08 broken", {"content-type": PB, "content-encoding": "gzip"}, 400),
        (b"{}", {"content-type": "text/csv"}, 415),
    ]
    for body, headers, status in cases:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == status, (body, response.text)
        assert response.content  # a reason, encoded as the request was
    # the server still accepts a good request afterwards
    good = sample_request()
    response = httpx.post(
        url,
        content=gzip.compress(good.SerializeToString()),
        headers={"content-type": PB, "content-encoding": "gzip"},
        timeout=30,
    )
    assert response.status_code == 200
    response = httpx.post(url, json=to_otlp_json(sample_request()), timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JS)
    assert _stored_calls(collector.url, 12) == 12


def _stored_calls(url: str, expected: int) -> int:
    """Calls stored so far, waiting (bounded) for the spool to reach ClickHouse."""
    deadline = time.monotonic() + 30
    while True:
        versions = httpx.get(f"{url}/api/versions", timeout=30).json()["versions"]
        stored = sum(v["calls"] for v in versions)
        if stored >= expected or time.monotonic() > deadline:
            return stored
        time.sleep(0.1)


def test_spans_with_bad_ids_are_rejected_as_partial_success(collector) -> None:
    data = to_otlp_json(sample_request(3))
    data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "0" * 32
    response = httpx.post(f"{collector.url}/v1/traces", json=data, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["partialSuccess"]["rejectedSpans"] == "1"
    assert "trace id" in body["partialSuccess"]["errorMessage"]


def test_the_collector_stores_the_spans_of_every_gzip_member(collector) -> None:
    first, _ = api_request(3, model="gzip-member-one", failures_every=0)
    second, _ = api_request(2, model="gzip-member-two", failures_every=0)
    body = gzip.compress(first.SerializeToString()) + gzip.compress(second.SerializeToString())
    headers = {"content-type": PB, "content-encoding": "gzip"}
    url = f"{collector.url}/v1/traces"
    response = httpx.post(url, content=body, headers=headers, timeout=30)
    assert response.status_code == 200
    collector.wait_stored()
    versions = httpx.get(f"{collector.url}/api/versions", timeout=30).json()["versions"]
    calls = {v["model_version"]: v["calls"] for v in versions}
    assert calls.get("gzip-member-one") == 3
    assert calls.get("gzip-member-two") == 2
    # bytes after the last member: refused, not silently dropped
    response = httpx.post(url, content=body + b"garbage", headers=headers, timeout=30)
    assert response.status_code == 400


@pytest.mark.parametrize("digits", [22, 4301, 100_000])
def test_an_integer_longer_than_any_otlp_field_is_a_400(digits: int) -> None:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "startTimeUnixNano": 0}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
    body = body.replace(b'"startTimeUnixNano": 0', b'"startTimeUnixNano": ' + b"9" * digits)
    with pytest.raises(OTLPDecodeError) as info:
        decode_body(body, JS, "", "p")
    assert info.value.status == 400
    assert f"{digits} digits" in info.value.reason


def test_the_longest_64_bit_integers_still_decode() -> None:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "startTimeUnixNano": 0}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
    body = body.replace(b'"startTimeUnixNano": 0', b'"startTimeUnixNano": 18446744073709551615')
    decode_body(body, JS, "", "p")  # in range: no error


def test_any_value_error_of_the_json_parser_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise ValueError("a value the parser cannot convert")

    monkeypatch.setattr(json, "loads", refuse)
    with pytest.raises(OTLPDecodeError) as info:
        decode_body(b"{}", JS, "", "p")
    assert info.value.status == 400
    assert "cannot convert" in info.value.reason


def _json_with_bytes(value: str) -> bytes:
    attributes = [
        {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
        {"key": "gen_ai.blob", "value": {"bytesValue": value}},
    ]
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "chat m",
        "startTimeUnixNano": str(time.time_ns()),
        "attributes": attributes,
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


@pytest.mark.parametrize("value", ["!!!", "a", "aGVsbG8=x", "YQ==YQ==", "YQ=", " ", "aGVs bG8="])
def test_invalid_base64_in_a_bytes_value_is_a_400(value: str) -> None:
    with pytest.raises(OTLPDecodeError) as info:
        decode_body(_json_with_bytes(value), JS, "", "p")
    assert info.value.status == 400
    assert "bytesValue" in info.value.reason


@pytest.mark.parametrize("value", ["", "aGVsbG8=", "aGVsbG8", "a-_b", "a+/b"])
def test_valid_base64_in_a_bytes_value_decodes(value: str) -> None:
    batch = decode_body(_json_with_bytes(value), JS, "", "p")
    assert len(batch.records) == 1


def test_every_stored_version_can_be_queried_and_compared(collector) -> None:
    long_version = "v" * 5000
    req, _ = api_request(2, model="unused", failures_every=1)
    for span in req.resource_spans[0].scope_spans[0].spans:
        span.attributes.append(kv("faultprint.model_version", long_version))
    nameless, _ = api_request(2, model="unused", failures_every=1)
    for span in nameless.resource_spans[0].scope_spans[0].spans:
        for attribute in span.attributes:
            if attribute.key == "gen_ai.request.model":
                attribute.value.double_value = float("nan")
    url = f"{collector.url}/v1/traces"
    for body in (req, nameless):
        response = httpx.post(
            url, content=body.SerializeToString(), headers={"content-type": PB}, timeout=30
        )
        assert response.status_code == 200
    collector.wait_stored()
    versions = httpx.get(f"{collector.url}/api/versions", timeout=30).json()["versions"]
    names = {v["model_version"] for v in versions}
    assert "nan" not in names and "" not in names
    stored = [n for n in names if n.startswith("vvv")]
    assert stored and "unknown" in names
    for version in [*stored, "unknown"]:
        response = httpx.get(
            f"{collector.url}/api/fingerprints", params={"version": version}, timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["fingerprints"]
    response = httpx.get(
        f"{collector.url}/api/compare",
        params={"baseline": "unknown", "candidate": stored[0]},
        timeout=30,
    )
    assert response.status_code == 200, response.text


# --- a bad id costs its span only, whichever the encoding ----------------------------

_ID_BYTES = {"traceId": 16, "spanId": 8}


def _with_json_id(field: str, value: str) -> tuple[dict, dict]:
    """A sample request as OTLP/JSON with FIELD of its first span set to VALUE;
    the request and that span."""
    data = to_otlp_json(sample_request(3))
    data["resourceSpans"][0]["scopeSpans"][0]["spans"][0][field] = value
    return data, data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]


@pytest.mark.parametrize("field", ["traceId", "spanId"])
@pytest.mark.parametrize("value", ["abc", "zz" * 16, "ab" * 5, "0af7-6519", "é" * 16])
def test_a_json_span_with_a_bad_id_is_rejected_alone_as_in_protobuf(field: str, value: str) -> None:
    data, _ = _with_json_id(field, value)
    from_json = decode_body(json.dumps(data).encode(), JS, "", "p")
    # the same span sent as protobuf, its id five bytes long
    request = sample_request(3)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    if field == "traceId":
        span.trace_id = b"\x01" * 5
    else:
        span.span_id = b"\x01" * 5
    from_pb = decode_body(request.SerializeToString(), PB, "", "p")
    assert (len(from_json.records), from_json.rejected) == (2, 1)
    assert (len(from_pb.records), from_pb.rejected) == (2, 1)
    reason = "invalid trace id" if field == "traceId" else "invalid span id"
    assert len(from_json.errors) == 1 and reason in from_json.errors[0]
    if field == "traceId":  # the reason names the span, whose id both requests share
        span_id = data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]
        assert from_json.errors == [f"span {span_id} has an invalid trace id"]
        assert from_pb.errors == [f"span {span.span_id.hex()} has an invalid trace id"]


def test_a_json_parent_id_that_is_no_hex_leaves_its_span_without_a_parent() -> None:
    data, span = _with_json_id("parentSpanId", "not-hex!")
    batch = decode_body(json.dumps(data).encode(), JS, "", "p")
    assert (len(batch.records), batch.rejected) == (3, 0)
    assert batch.records[0].span_id == span["spanId"] and batch.records[0].parent_span_id == ""


def test_a_json_id_of_the_wrong_length_reads_as_the_same_bytes_in_protobuf() -> None:
    data, _ = _with_json_id("parentSpanId", "abcd")
    request = sample_request(3)
    request.resource_spans[0].scope_spans[0].spans[0].parent_span_id = b"\xab\xcd"
    from_json = decode_body(json.dumps(data).encode(), JS, "", "p")
    from_pb = decode_body(request.SerializeToString(), PB, "", "p")
    assert from_json.records[0].parent_span_id == from_pb.records[0].parent_span_id == "abcd"


@given(
    st.sampled_from(["traceId", "spanId", "parentSpanId"]),
    st.one_of(st.text(max_size=40), st.text("0123456789abcdefABCDEF", max_size=40)),
)
def test_no_id_makes_a_json_request_fail(field: str, value: str) -> None:
    data, _ = _with_json_id(field, value)
    batch = decode_body(json.dumps(data).encode(), JS, "", "p")
    # the two other spans are stored whatever the id holds; the first one is
    # stored exactly when its id is one protobuf would carry and accept
    ok = field == "parentSpanId" or (
        len(value) == 2 * _ID_BYTES[field]
        and all(c in "0123456789abcdefABCDEF" for c in value)
        and value.strip("0") != ""
    )
    expected = (3, 0) if ok else (2, 1)
    assert (len(batch.records), batch.rejected) == expected
    if ok and field != "parentSpanId":
        assert getattr(batch.records[0], "trace_id" if field == "traceId" else "span_id") == (
            value.lower()
        )


def test_the_collector_rejects_only_the_json_span_with_a_bad_id(collector) -> None:
    data, _ = _with_json_id("traceId", "abc")
    response = httpx.post(f"{collector.url}/v1/traces", json=data, timeout=30)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "invalid trace id" in partial["errorMessage"]
    assert _stored_calls(collector.url, 2) == 2
