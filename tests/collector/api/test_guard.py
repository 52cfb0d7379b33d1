"""Request bodies beyond ``/v1/traces`` are bounded: a body larger than its route's
limit gets a 413 saying so, without the collector reading it whole, and the
route answers as before afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from faultprint_collector.api._guard import BODY_LIMITS, DEFAULT_BODY_LIMIT

from tests.conftest import CollectorProcess, free_port

KEY = "key-for-project-a-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
#: far past every limit, small enough for a test to send
OVERSIZED = 4 << 20


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    tmp = tmp_path_factory.mktemp("guard")
    collector = CollectorProcess(
        store=str(tmp / "store"),
        port=free_port(),
        env={"FAULTPRINT_API_KEYS": f"alpha:{KEY}"},
        log_path=tmp / "collector.log",
    ).start()
    try:
        yield collector
    finally:
        collector.stop()


def _streamed(size: int, prefix: bytes = b"") -> Iterator[bytes]:
    """SIZE bytes in 64 KiB chunks, sent chunked (no Content-Length)."""
    yield prefix
    sent = len(prefix)
    while sent < size:
        chunk = b"a" * min(65536, size - sent)
        sent += len(chunk)
        yield chunk


def _detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def test_an_oversized_key_form_is_refused_while_streaming(guarded: CollectorProcess) -> None:
    # no key needed to post the form: anyone can send this
    response = httpx.post(
        f"{guarded.url}/ui/key", content=_streamed(OVERSIZED, b"key="), headers=FORM, timeout=120
    )
    assert response.status_code == 413
    assert f"at most {BODY_LIMITS['/ui/key']} bytes" in _detail(response)
    key = httpx.post(f"{guarded.url}/ui/key", content=f"key={KEY}", headers=FORM, timeout=30)
    assert key.status_code == 303 and "faultprint_key=" in key.headers["set-cookie"]


def test_an_oversized_sql_request_is_refused_by_its_length(guarded: CollectorProcess) -> None:
    body = json.dumps({"sql": "SELECT 1 -- " + "a" * OVERSIZED}).encode()
    response = httpx.post(
        f"{guarded.url}/api/sql",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 413
    assert f"of {len(body)} bytes" in _detail(response)
    assert f"at most {BODY_LIMITS['/api/sql']} bytes" in _detail(response)
    # the largest valid request still fits: 20 000 characters of SQL, each
    # escaped in JSON as a surrogate pair (12 bytes)
    sql = "SELECT '" + "\U0001f600" * (20_000 - 14) + "' AS s"
    largest = json.dumps({"sql": sql, "max_rows": 1}).encode()
    assert len(largest) > 200_000
    ok = httpx.post(
        f"{guarded.url}/api/sql",
        content=largest,
        headers={**AUTH, "content-type": "application/json"},
        timeout=60,
    )
    assert ok.status_code == 200, ok.text[:300]
    assert ok.json()["rows"] == [["\U0001f600" * (20_000 - 14)]]


def test_an_oversized_sql_request_is_refused_while_streaming(guarded: CollectorProcess) -> None:
    response = httpx.post(
        f"{guarded.url}/api/sql",
        content=_streamed(OVERSIZED, b'{"sql": "SELECT 1 -- '),
        headers={**AUTH, "content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 413
    assert f"at most {BODY_LIMITS['/api/sql']} bytes" in _detail(response)


def test_a_body_sent_to_a_route_that_reads_none_is_bounded_too(
    guarded: CollectorProcess,
) -> None:
    response = httpx.request(
        "GET",
        f"{guarded.url}/api/versions",
        content=_streamed(OVERSIZED),
        headers=AUTH,
        timeout=120,
    )
    assert response.status_code == 413
    assert f"at most {DEFAULT_BODY_LIMIT} bytes" in _detail(response)
    assert httpx.get(f"{guarded.url}/api/versions", headers=AUTH).status_code == 200
