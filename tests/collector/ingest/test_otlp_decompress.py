"""Content-Encoding: every gzip member is decoded, the size limit spans them all,
and bytes after the compressed data are refused rather than dropped."""

from __future__ import annotations

import gzip
import zlib

import pytest
from faultprint_collector.ingest import OTLPDecodeError, decode_body, decompress
from faultprint_collector.ingest._otlp import MAX_GZIP_MEMBERS
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.collector.api._otlp import request

PB = "application/x-protobuf"


def test_every_gzip_member_is_decoded() -> None:
    first, first_ids = request(3, model="first")
    second, second_ids = request(2, model="second")
    body = gzip.compress(first.SerializeToString()) + gzip.compress(second.SerializeToString())
    batch = decode_body(body, PB, "gzip", "p")
    assert sorted(r.span_id for r in batch.records) == sorted(first_ids + second_ids)
    assert {r.model_version for r in batch.records} == {"first", "second"}


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=3000), min_size=1, max_size=12),
    level=st.integers(0, 9),
    padding=st.integers(0, 64),
)
def test_members_concatenate_to_their_payloads(
    parts: list[bytes], level: int, padding: int
) -> None:
    body = b"".join(gzip.compress(part, level) for part in parts) + b"\0" * padding
    assert decompress(body, "gzip") == b"".join(parts)
    assert decompress(body, "x-gzip") == b"".join(parts)


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(min_size=1, max_size=5000), garbage=st.binary(min_size=1, max_size=64))
def test_trailing_garbage_is_refused(payload: bytes, garbage: bytes) -> None:
    if not garbage.strip(b"\0"):
        garbage += b"!"
    for body, encoding in (
        (gzip.compress(payload) + garbage, "gzip"),
        (zlib.compress(payload) + garbage, "deflate"),
    ):
        with pytest.raises(OTLPDecodeError) as info:
            decompress(body, encoding)
        assert info.value.status == 400
        # garbage that starts like a gzip member is read as a broken one
        assert any(word in info.value.reason for word in ("after", "truncated", "not valid"))


@pytest.mark.parametrize(
    "tail",
    [
        gzip.compress(b"second", mtime=0)[:-3],
        b"\x1f\x8b\x08garbage",
    ],
    ids=["truncated second member", "a member header, then nonsense"],
)
def test_a_broken_later_member_is_refused(tail: bytes) -> None:
    with pytest.raises(OTLPDecodeError) as info:
        decompress(gzip.compress(b"first") + tail, "gzip")
    assert info.value.status == 400


def test_the_size_limit_applies_to_all_members_together() -> None:
    member = gzip.compress(b"\0" * 1000)
    assert len(decompress(member * 4, "gzip", limit=4000)) == 4000
    with pytest.raises(OTLPDecodeError) as info:
        decompress(member * 5, "gzip", limit=4000)
    assert info.value.status == 413


def test_a_bomb_of_many_members_is_refused() -> None:
    member = gzip.compress(b"\0" * (1 << 20), 9)
    with pytest.raises(OTLPDecodeError) as info:
        decompress(member * 100, "gzip", limit=64 << 20)
    assert info.value.status == 413


def test_too_many_members_is_refused() -> None:
    with pytest.raises(OTLPDecodeError) as info:
        decompress(gzip.compress(b"") * (MAX_GZIP_MEMBERS + 1), "gzip")
    assert info.value.status == 400
    assert "members" in info.value.reason


def test_an_empty_gzip_body_is_truncated() -> None:
    with pytest.raises(OTLPDecodeError) as info:
        decompress(b"", "gzip")
    assert "truncated" in info.value.reason
