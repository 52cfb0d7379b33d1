"""The same OpenAI failures through faultprint's SDK, OpenLLMetry and OpenInference.

Each instrumentation wraps a real OpenAI client (the provider library on a
mock HTTP transport answering with OpenAI's real response and error bodies)
in its own process and exports over OTLP/HTTP to one real collector. Every
failure must get one fingerprint whichever instrumentation recorded it: the
collector then holds each failure mode once, counted three times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.interop_runs import accepted_spans, incidents, run_app

pytest.importorskip("opentelemetry.instrumentation.openai")
pytest.importorskip("openinference.instrumentation.openai")

APP = "openai_app.py"
MODES = ("faultprint", "openllmetry", "openinference")
#: scenario -> failure category (None: a successful call)
EXPECTED = {
    "ok": None,
    "truncated": "truncation",
    "filtered": "content_filter",
    "refused": "refusal",
    "empty": "empty_output",
    "rate_limited": "api_error",
    "context_too_long": "api_error",
    "server_error": "api_error",
}
RAISES = {
    "rate_limited": "RateLimitError",
    "context_too_long": "BadRequestError",
    "server_error": "InternalServerError",
}


#: target -> the call site every instrumentation's spans get: the provider
#: each names (for Azure OpenAI: from the client's class or host) and the operation
CALL_SITES = {"openai": "openai.chat", "azure": "azure.ai.openai.chat"}


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(CALL_SITES))
def test_each_failure_has_one_fingerprint_whichever_instrumentation_recorded_it(
    start_collector: Callable[..., Any], target: str
) -> None:
    collector = start_collector()
    for mode in MODES:
        ran = run_app(APP, mode, collector.url, target)
        assert ran == {name: RAISES.get(name, "") for name in EXPECTED}
    assert accepted_spans(collector.url) == len(MODES) * len(EXPECTED)
    collector.wait_stored()  # acknowledged means spooled; reads see what is stored

    found = incidents(collector.url)
    failures = [c for c in EXPECTED.values() if c]
    # One fingerprint per failure mode, each recorded once per instrumentation:
    # a fingerprint that differed by instrumentation would split a count of 3.
    assert sorted(i["category"] for i in found) == sorted(failures)
    assert [i["failures"] for i in found] == [len(MODES)] * len(failures)
    assert {i["call_site"] for i in found} == {CALL_SITES[target]}
    api_errors = {i["error_type"].rsplit(".", 1)[-1] for i in found if i["category"] == "api_error"}
    assert api_errors == set(RAISES.values())
