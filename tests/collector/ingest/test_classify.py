"""The stored model version: what DESIGN defines, bounded, and always queryable."""

from __future__ import annotations

import math
from typing import Any

import pytest
from faultprint_collector.ingest import classify
from faultprint_collector.ingest._records import MAX_VERSION_CHARS, UNKNOWN_VERSION
from faultprint_collector.ingest._spans import STATUS_ERROR
from hypothesis import given
from hypothesis import strategies as st

from tests.collector.ingest.test_dialects import span

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "acme"}


def _version(attrs: dict[str, Any]) -> str:
    return classify(span({**CHAT, **attrs}), "p").model_version


def test_the_tag_then_the_response_model_then_the_request_model() -> None:
    both = {"gen_ai.request.model": "m", "gen_ai.response.model": "m-2025"}
    assert _version({**both, "faultprint.model_version": "v7"}) == "v7"
    assert _version(both) == "m-2025"
    assert _version({"gen_ai.request.model": "m"}) == "m"


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, True, ["a", "b"], {"x": 1}, "", "   ", "\x00"]
)
def test_a_model_field_that_names_nothing_is_skipped(value: object) -> None:
    assert _version({"faultprint.model_version": value, "gen_ai.request.model": "m"}) == "m"
    assert _version({"gen_ai.response.model": value, "gen_ai.request.model": "m"}) == "m"
    record = classify(span({**CHAT, "gen_ai.request.model": value}), "p")
    assert record.model_version == UNKNOWN_VERSION
    assert record.request_model == ""  # never "nan", "True" or "['a', 'b']"


def test_a_call_without_any_model_has_the_unknown_version() -> None:
    assert _version({}) == UNKNOWN_VERSION


def test_numbers_are_versions_as_written() -> None:
    assert _version({"faultprint.model_version": 2}) == "2"
    assert _version({"faultprint.model_version": 2.5}) == "2.5"


def test_a_long_version_is_cut_to_what_queries_accept() -> None:
    assert _version({"faultprint.model_version": "v" * 5000}) == "v" * MAX_VERSION_CHARS


@given(st.one_of(st.text(), st.floats(), st.integers(), st.booleans(), st.none()))
def test_every_stored_version_is_a_queryable_name(value: object) -> None:
    version = _version({"faultprint.model_version": value})
    assert 1 <= len(version) <= MAX_VERSION_CHARS
    assert "\x00" not in version
    assert version == version.strip()
    if not isinstance(value, str):  # a text "nan" is the sender's choice
        assert version.lower() not in ("nan", "inf", "-inf", "true", "false", "none")


def test_the_placeholder_does_not_change_a_fingerprint() -> None:
    # the engine masks the model's name in messages; "unknown" must stay text
    failing = {**CHAT, "exception.type": "ValueError"}
    message = "unknown field 'x'"
    record = classify(span(failing, status=STATUS_ERROR, status_message=message), "p")
    assert record.model_version == UNKNOWN_VERSION
    assert "unknown" in record.template


def test_the_caller_of_an_integration_call_names_the_installed_application() -> None:
    """A client integration's span names the endpoint as its call site and the
    application function that called it as ``code.function.name``: with the
    application installed into site-packages, its frames still count."""
    from faultprint_collector.ingest._spans import SpanEvent

    site = "/usr/local/lib/python3.12/site-packages"
    stack = (
        "Traceback (most recent call last):\n"
        f'  File "{site}/shopapp/orders.py", line 40, in total\n'
        f'  File "{site}/openai/_base_client.py", line 1000, in request\n'
        "TypeError: bad argument"
    )
    event = SpanEvent(
        "exception",
        {
            "exception.type": "TypeError",
            "exception.message": "bad argument",
            "exception.stacktrace": stack,
        },
    )
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "faultprint.call_site": "openai.chat",
        "faultprint.failure.category": "exception",
        "error.type": "TypeError",
        "code.function.name": "shopapp.orders.total",
    }
    record = classify(span(attrs, events=[event], status=STATUS_ERROR), "p")
    assert '"frames": ["shopapp.orders.total"]' in record.components
