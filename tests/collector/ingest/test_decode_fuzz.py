"""Property-based fuzzing of the OTLP decoder and the spool encoding.

Whatever the body, decoding either yields a batch or raises OTLPDecodeError
with a 4xx status; nothing else escapes (an escape would be a 500 or a
crashed worker). Every batch it yields encodes into the spool's Native
blocks for the real ``calls`` column types.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

import pytest
from faultprint_collector.ingest import CALL_COLUMNS, OTLPDecodeError, Scrubber, decode_body
from faultprint_collector.store import apply_migrations, open_store
from faultprint_collector.store._writer import RowEncoder, split_columns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.api._otlp import request
from tests.strategies import json_values

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTENT_TYPES = st.sampled_from(
    ["application/x-protobuf", "application/json", "application/json; charset=utf-8", "text/x"]
)
ENCODINGS = st.sampled_from(["", "identity", "gzip", "deflate", "br"])
SCRUBBER = Scrubber()
VALID = request(6, failures_every=2)[0].SerializeToString()


@pytest.fixture(scope="module", autouse=True)
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The spool encoder for the real ``calls`` table (types asked from the engine)."""
    store = open_store(str(tmp_path_factory.mktemp("fuzz") / "store"))
    try:
        apply_migrations(store)
        ENCODER.append(RowEncoder.for_store(store))
    finally:
        store.close()
    yield
    ENCODER.clear()


ENCODER: list[RowEncoder] = []


def check(body: bytes, content_type: str, encoding: str = "") -> None:
    try:
        batch = decode_body(body, content_type, encoding, "p", SCRUBBER, 1 << 20)
    except OTLPDecodeError as exc:
        assert 400 <= exc.status < 500
        assert exc.reason
        return
    if not batch.records:
        return
    payload = ENCODER[0].encode(batch.records)  # raises EncodeError if a value does not fit
    head, data = split_columns(payload)
    assert set(json.loads(head)) <= set(CALL_COLUMNS)
    assert data


@FUZZ
@given(st.binary(max_size=2048), CONTENT_TYPES, ENCODINGS)
def test_arbitrary_bytes(body: bytes, content_type: str, encoding: str) -> None:
    check(body, content_type, encoding)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8),
    st.integers(0, len(VALID)),
)
def test_mutated_protobuf(flips: list[tuple[int, int]], cut: int) -> None:
    body = bytearray(VALID)
    for index, value in flips:
        body[index] = value
    check(bytes(body[:cut] if cut else body), "application/x-protobuf")


@FUZZ
@given(st.binary(max_size=512), st.sampled_from(["gzip", "deflate"]), st.integers(0, 64))
def test_compressed_garbage_and_truncation(body: bytes, encoding: str, cut: int) -> None:
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    check(packed[: len(packed) - cut], "application/x-protobuf", encoding)


JSON_VALUES = json_values(nan=False)
SPAN_FIELDS = st.sampled_from(
    [
        "traceId",
        "spanId",
        "parentSpanId",
        "name",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "attributes",
        "events",
        "status",
        "kind",
    ]
)
ANY_VALUE = st.recursive(
    st.builds(lambda s: {"stringValue": s}, st.text(max_size=30))
    | st.builds(lambda i: {"intValue": str(i)}, st.integers(-(2**63), 2**63 - 1))
    | st.builds(lambda b: {"boolValue": b}, st.booleans())
    | st.builds(lambda d: {"doubleValue": d}, st.floats(allow_nan=False, allow_infinity=False)),
    lambda children: (
        st.builds(lambda v: {"arrayValue": {"values": v}}, st.lists(children, max_size=3))
        | st.builds(
            lambda kv: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kv.items()]}},
            st.dictionaries(st.text(max_size=8), children, max_size=3),
        )
    ),
    max_leaves=12,
)


@FUZZ
@given(st.dictionaries(SPAN_FIELDS, JSON_VALUES, max_size=6))
def test_json_spans_of_wrong_shapes(span: dict[str, object]) -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    check(json.dumps(body).encode(), "application/json")


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "gen_ai.request.model",
                "gen_ai.response.finish_reasons",
                "error.type",
                "faultprint.failure.category",
                "faultprint.failure.detail",
                "faultprint.output",
                "faultprint.input_hash",
                "faultprint.sample_weight",
                "gen_ai.usage.input_tokens",
                "http.response.status_code",
                "faultprint.call_site",
                "faultprint.error.code",
            ]
        ),
        ANY_VALUE,
        min_size=1,
    ),
    st.text(max_size=60),
    st.integers(0, 2**64 - 1),
)
def test_well_formed_spans_with_any_attribute_values(
    attrs: dict[str, object], status_message: str, start: int
) -> None:
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "chat",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start),
        "status": {"code": 2, "message": status_message},
        "attributes": [{"key": k, "value": v} for k, v in attrs.items()],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    check(json.dumps(body).encode(), "application/json")
