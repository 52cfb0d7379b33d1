"""The same Anthropic failures through faultprint's SDK, OpenLLMetry and OpenInference.

Each instrumentation wraps a real Anthropic client (the provider library on a
mock HTTP transport answering with Anthropic's real message and error bodies)
in its own process and exports over OTLP/HTTP to one real collector. Under
OpenInference the library also traces its own calls, so each call arrives as
two spans, and must be stored once. Every
failure must get one fingerprint whichever instrumentation recorded it: the
collector then holds each failure mode once, counted once per instrumentation
that records it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.interop_runs import accepted_spans, incidents, run_app

pytest.importorskip("opentelemetry.instrumentation.anthropic")
pytest.importorskip("openinference.instrumentation.anthropic")

APP = "anthropic_app.py"
MODES = ("faultprint", "openllmetry", "openinference")
#: scenario -> failure category (None: a successful call)
EXPECTED = {
    "ok": None,
    "truncated": "truncation",
    "refused": "refusal",
    "empty": "empty_output",
    "overloaded": "api_error",
    "rate_limited": "api_error",
    "prompt_too_long": "api_error",
    "server_error": "api_error",
}
#: OpenLLMetry records no output message for an answer with no content, so
#: its span cannot be told from one whose content was not captured
RECORDED_BY = {"empty": ("faultprint", "openinference")}
RAISES = {
    "overloaded": "OverloadedError",
    "rate_limited": "RateLimitError",
    "prompt_too_long": "BadRequestError",
    "server_error": "InternalServerError",
}


@pytest.mark.slow
def test_each_failure_has_one_fingerprint_whichever_instrumentation_recorded_it(
    start_collector: Callable[..., Any],
) -> None:
    collector = start_collector()
    for mode in MODES:
        ran = run_app(APP, mode, collector.url)
        assert ran == {name: RAISES.get(name, "") for name in EXPECTED}
    # one row per call: OpenInference's second span of each call is not one
    assert accepted_spans(collector.url) == len(MODES) * len(EXPECTED)
    stats = httpx.get(f"{collector.url}/api/stats", timeout=10).json()
    assert stats["repeated_spans"] == len(EXPECTED)
    collector.wait_stored()  # acknowledged means spooled; reads see what is stored
    stored = httpx.post(
        f"{collector.url}/api/sql",
        json={"sql": "SELECT service, count() FROM calls FINAL GROUP BY service ORDER BY service"},
        timeout=30,
    ).json()["rows"]
    # each call once: the library's span of it is not a second call
    assert stored == [[f"shop-{mode}", len(EXPECTED)] for mode in sorted(MODES)]

    found = incidents(collector.url)
    failures = [c for c in EXPECTED.values() if c]
    # One fingerprint per failure mode, each recorded once per instrumentation:
    # a fingerprint that differed by instrumentation would split a count of 3.
    summary = sorted((i["category"], i["failures"], i["error_type"]) for i in found)
    assert sorted(i["category"] for i in found) == sorted(failures), summary
    counts = {i["category"]: i["failures"] for i in found if i["category"] != "api_error"}
    assert counts == {
        category: len(RECORDED_BY.get(name, MODES))
        for name, category in EXPECTED.items()
        if category not in (None, "api_error")
    }
    assert [i["failures"] for i in found if i["category"] == "api_error"] == [len(MODES)] * len(
        RAISES
    ), summary
    assert {i["call_site"] for i in found} == {"anthropic.chat"}
    api_errors = {i["error_type"].rsplit(".", 1)[-1] for i in found if i["category"] == "api_error"}
    assert api_errors == set(RAISES.values())
