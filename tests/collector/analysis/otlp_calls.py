"""OTLP/JSON bodies of model-call spans, for tests that go through a real collector."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping

import httpx

#: failure modes as (error type, message pattern); numbers vary per call but
#: are normalised away, so each mode is one fingerprint
MODES: dict[str, tuple[str, str]] = {
    "parse": ("ValueError", "could not parse field 'price' in item {n}"),
    "keyerror": ("KeyError", "missing key 'choices' in response {n}"),
    "timeout": ("ReadTimeout", "read timed out after {n} seconds"),
    "ratelimit": ("RateLimitError", "rate limit reached for requests, retry in {n} ms"),
    "schema": ("ValidationError", "field required: summary (document {n})"),
}


def _attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def span(
    version: str,
    mode: str | None,
    *,
    rng: random.Random,
    call_site: str = "shop.summarise",
    weight: float = 1.0,
    ago_s: float = 600.0,
) -> dict:
    """One model-call span; MODE None is a success."""
    start = int((time.time() - ago_s) * 1e9)
    attrs = [
        _attr("gen_ai.operation.name", "chat"),
        _attr("gen_ai.request.model", "gpt-test"),
        _attr("faultprint.model_version", version),
        _attr("faultprint.call_site", call_site),
        _attr("faultprint.input_hash", f"{rng.randrange(1, 50):x}"),
    ]
    out: dict = {
        "traceId": f"{rng.getrandbits(128):032x}",
        "spanId": f"{rng.getrandbits(64) | 1:016x}",
        "name": "chat gpt-test",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 250_000_000),
        "attributes": attrs,
    }
    if mode is None:
        if weight != 1.0:
            attrs.append(_attr("faultprint.sample_weight", weight))
        out["status"] = {"code": 1}
        return out
    error_type, pattern = MODES[mode]
    message = pattern.format(n=rng.randrange(1, 10_000))
    out["status"] = {"code": 2, "message": message}
    out["events"] = [
        {
            "name": "exception",
            "timeUnixNano": str(start + 200_000_000),
            "attributes": [
                _attr("exception.type", error_type),
                _attr("exception.message", message),
            ],
        }
    ]
    return out


def body(spans: list[dict]) -> bytes:
    """An ExportTraceServiceRequest in OTLP/JSON."""
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [_attr("service.name", "shop")]},
                    "scopeSpans": [{"scope": {"name": "faultprint"}, "spans": spans}],
                }
            ]
        }
    ).encode()


def version_spans(version: str, n: int, mix: Mapping[str, int], seed: int) -> list[dict]:
    """N spans of VERSION: MIX gives how many fail in each mode, the rest succeed."""
    rng = random.Random(seed)
    spans = [span(version, mode, rng=rng) for mode, k in mix.items() for _ in range(k)]
    spans += [span(version, None, rng=rng) for _ in range(n - len(spans))]
    return spans


def send(url: str, spans: list[dict], api_key: str | None = None, batch: int = 500) -> None:
    """POST SPANS to the collector at URL in batches and wait until all are readable."""
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    for i in range(0, len(spans), batch):
        response = httpx.post(
            f"{url}/v1/traces", content=body(spans[i : i + batch]), headers=headers, timeout=60
        )
        assert response.status_code == 200, response.text


def wait_for_calls(url: str, expected: float, api_key: str | None = None) -> None:
    """Poll /api/versions until the collector has stored EXPECTED calls."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + 60
    seen = None
    while time.monotonic() < deadline:
        rows = httpx.get(f"{url}/api/versions", headers=headers, timeout=30).json()["versions"]
        seen = sum(v["calls"] for v in rows)
        if seen >= expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"collector stored {seen} calls, expected {expected}")
