"""Collectors are stateless: which replica receives a span changes nothing.

Three real collector processes, each with its own store: one receives all
the traffic, the other two receive interleaved halves of it (one of them in
reverse order). The union of the two halves must hold exactly the
fingerprints, per-fingerprint counts, categories and rollups of the one
that saw everything.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

SITES = ("shop.answer", "shop.summarise", "shop.extract")
VERSIONS = ("v1", "v2")


def _failure(rng: random.Random, span: Any, site: str) -> None:
    kind = rng.choice(("exception", "api", "truncation", "foreign_rate_limit", "validation"))
    if kind == "exception":
        order = rng.randint(1000, 99999)
        exc = KeyError(f"order {order} not found for user u-{rng.randint(1, 500)}")
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
        span.set_attribute("error.type", "KeyError")
        span.set_attribute("faultprint.failure.category", "exception")
    elif kind == "api":
        span.set_attribute("faultprint.failure.category", "api_error")
        span.set_attribute("faultprint.error.code", rng.choice(("overloaded_error", "rate_limit")))
        span.set_attribute("http.response.status_code", rng.choice((429, 529)))
        span.set_attribute("error.type", "anthropic.APIStatusError")
        span.set_status(Status(StatusCode.ERROR, "provider error"))
    elif kind == "truncation":
        span.set_attribute("faultprint.failure.category", "truncation")
        span.set_attribute("gen_ai.response.finish_reasons", ["length"])
        span.set_status(Status(StatusCode.ERROR, "truncation"))
    elif kind == "validation":
        span.set_attribute("faultprint.failure.category", "invalid_output")
        span.set_attribute(
            "faultprint.failure.detail",
            '{"validator": "pydantic", "errors": [{"kind": "missing", "path": "items.*.price"}]}',
        )
        span.set_attribute("faultprint.failure.message", f"{rng.randint(1, 9)} validation errors")
        span.set_status(Status(StatusCode.ERROR, "invalid_output"))


def traffic(requests: int = 24, spans_per_request: int = 25) -> list[bytes]:
    """Deterministic OTLP protobuf bodies: faultprint and foreign spans, successes
    (some sampled, with weights) and failures of several modes."""
    rng = random.Random(20240601)
    bodies = []
    for r in range(requests):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": f"shop-{r % 3}"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("scale-out")
        for _ in range(spans_per_request):
            version = rng.choice(VERSIONS)
            foreign = rng.random() < 0.25
            with tracer.start_as_current_span("chat", kind=SpanKind.CLIENT) as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("gen_ai.request.model", f"model-{version}")
                if foreign:  # an OpenLLMetry span: its call site is the endpoint
                    span.set_attribute("gen_ai.system", "OpenAI")
                    span.set_attribute("llm.request.type", "chat")
                    if rng.random() < 0.5:
                        span.set_attribute("gen_ai.completion.0.finish_reason", "length")
                    continue
                site = rng.choice(SITES)
                span.set_attribute("gen_ai.provider.name", "anthropic")
                span.set_attribute("faultprint.call_site", site)
                span.set_attribute("faultprint.model_version", version)
                span.set_attribute("faultprint.input_hash", f"{rng.randint(1, 40):016x}")
                if rng.random() < 0.35:
                    _failure(rng, span, site)
                elif rng.random() < 0.5:
                    span.set_attribute("faultprint.sample_weight", 4.0)
        provider.shutdown()
        bodies.append(encode_spans(exporter.get_finished_spans()).SerializeToString())
    return bodies


def post(url: str, body: bytes) -> None:
    response = httpx.post(
        f"{url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def snapshot(url: str) -> dict[str, Any]:
    """What a collector stores: per-fingerprint counts (raw calls and rollups), per
    version calls and failures."""
    incidents = httpx.get(
        f"{url}/api/incidents", params={"since": "30d", "limit": 1000}, timeout=30
    ).json()["incidents"]
    fingerprints = httpx.get(
        f"{url}/api/fingerprints", params={"since": "30d", "limit": 1000}, timeout=30
    ).json()["fingerprints"]
    versions = httpx.get(f"{url}/api/versions", params={"since": "30d"}, timeout=30).json()[
        "versions"
    ]
    return {
        "incidents": {
            i["fingerprint"]: (i["failures"], i["category"], i["call_site"]) for i in incidents
        },
        "rollups": {str(f["fingerprint"]): f["failures"] for f in fingerprints},
        "versions": {v["model_version"]: (v["calls"], v["failures"]) for v in versions},
    }


def merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The union of two stores' snapshots (counts add up)."""
    incidents: dict[str, tuple[int, str, str]] = dict(a["incidents"])
    for fp, (count, category, site) in b["incidents"].items():
        if fp in incidents:
            prev = incidents[fp]
            assert prev[1:] == (category, site), fp  # same fingerprint, same mode
            incidents[fp] = (prev[0] + count, category, site)
        else:
            incidents[fp] = (count, category, site)
    rollups = Counter(a["rollups"])
    rollups.update(b["rollups"])
    versions: dict[str, tuple[float, float]] = {}
    for snap in (a, b):
        for v, (calls, failures) in snap["versions"].items():
            c0, f0 = versions.get(v, (0, 0))
            versions[v] = (c0 + calls, f0 + failures)
    return {"incidents": incidents, "rollups": dict(rollups), "versions": versions}


@pytest.mark.slow
def test_two_collectors_with_half_the_traffic_each_store_what_one_stores(
    start_collector: Callable[..., Any],
) -> None:
    bodies = traffic()
    whole = start_collector()
    left = start_collector()
    right = start_collector()
    for body in bodies:
        post(whole.url, body)
    for body in bodies[0::2]:
        post(left.url, body)
    for body in reversed(bodies[1::2]):  # arrival order must not matter either
        post(right.url, body)
    for collector in (whole, left, right):
        collector.wait_stored()

    one = snapshot(whole.url)
    halves = [snapshot(left.url), snapshot(right.url)]
    assert len(one["incidents"]) >= 8  # the traffic really has many modes
    assert all(h["incidents"] for h in halves)  # and each half saw some
    assert len(one["rollups"]) == len(one["incidents"])
    assert sum(c for c, _, _ in one["incidents"].values()) > sum(
        c for c, _, _ in halves[0]["incidents"].values()
    )
    union = merged(*halves)
    assert union["incidents"] == one["incidents"]
    assert union["rollups"] == one["rollups"]
    assert {v: (round(c, 6), round(f, 6)) for v, (c, f) in union["versions"].items()} == {
        v: (round(c, 6), round(f, 6)) for v, (c, f) in one["versions"].items()
    }
