"""The same OpenAI failures through faultprint's SDK, OpenLLMetry and OpenInference.

Each instrumentation wraps a real OpenAI client (the provider library on a
mock HTTP transport answering with OpenAI's real response and error bodies)
in its own process and exports over OTLP/HTTP to one real collector. Every
failure must get one fingerprint whichever instrumentation recorded it: the
collector then holds each failure mode once, counted three times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.instrumentation.openai")
pytest.importorskip("openinference.instrumentation.openai")

APP = Path(__file__).parent / "interop" / "openai_app.py"
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


def run_app(mode: str, endpoint: str, target: str = "openai") -> list[dict[str, Any]]:
    """Run the instrumented application once in a fresh process."""
    done = subprocess.run(
        [sys.executable, str(APP), mode, endpoint, target],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{mode} app failed:\n{done.stdout}\n{done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


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
        ran = run_app(mode, collector.url, target)
        assert {r["scenario"]: r["raised"] for r in ran} == {
            name: RAISES.get(name, "") for name in EXPECTED
        }
    stats = httpx.get(f"{collector.url}/api/stats", timeout=10).json()
    assert stats["accepted_spans"] == len(MODES) * len(EXPECTED)
    collector.wait_stored()  # acknowledged means spooled; reads see what is stored

    incidents = httpx.get(
        f"{collector.url}/api/incidents", params={"since": "7d", "limit": 100}, timeout=10
    ).json()["incidents"]
    failures = [c for c in EXPECTED.values() if c]
    # One fingerprint per failure mode, each recorded once per instrumentation:
    # a fingerprint that differed by instrumentation would split a count of 3.
    assert sorted(i["category"] for i in incidents) == sorted(failures)
    assert [i["failures"] for i in incidents] == [len(MODES)] * len(failures)
    assert {i["call_site"] for i in incidents} == {CALL_SITES[target]}
    api_errors = {
        i["error_type"].rsplit(".", 1)[-1] for i in incidents if i["category"] == "api_error"
    }
    assert api_errors == set(RAISES.values())
