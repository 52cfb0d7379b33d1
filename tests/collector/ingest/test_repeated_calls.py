"""A call recorded by two spans of one request is stored once (``repeated_calls``)."""

from __future__ import annotations

from typing import Any

from faultprint_collector.ingest import repeated_calls
from faultprint_collector.ingest._spans import SpanView

TRACE = "ab" * 16
CHAT = {"gen_ai.provider.name": "anthropic", "gen_ai.operation.name": "chat"}


def span(span_id: str, parent: str = "", attrs: dict[str, Any] | None = None) -> SpanView:
    return SpanView(
        trace_id=TRACE,
        span_id=span_id * 8,
        parent_span_id=parent * 8 if parent else "",
        name="anthropic.messages.create",
        start_ns=1_700_000_000_000_000_000,
        end_ns=1_700_000_000_500_000_000,
        status_code=0,
        status_message="",
        attributes=dict(CHAT if attrs is None else attrs),
        resource={"service.name": "shop"},
    )


#: an OpenInference LLM span (the instrumentation's) of the same call
OPENINFERENCE = {"llm.provider": "anthropic", "openinference.span.kind": "LLM"}


def test_the_librarys_span_under_an_instrumentations_span_is_a_repeat() -> None:
    outer = span("01", attrs=OPENINFERENCE)
    inner = span("02", parent="01")
    assert repeated_calls([outer, inner]) == {1}
    assert repeated_calls([inner, outer]) == {0}  # whatever the order in the request


def test_calls_that_are_not_the_same_call_are_kept() -> None:
    agent = span("01", attrs={**CHAT, "gen_ai.operation.name": "invoke_agent"})
    other_provider = span("03", attrs={**CHAT, "gen_ai.provider.name": "openai"})
    assert repeated_calls([agent, span("02", parent="01")]) == set()
    assert repeated_calls([other_provider, span("04", parent="03")]) == set()
    # two roots, or a parent in another request, are not linked
    assert repeated_calls([span("05"), span("06")]) == set()
    assert repeated_calls([span("07", parent="99")]) == set()


def test_a_faultprint_call_nested_in_another_is_a_call_of_its_own() -> None:
    ours = {**CHAT, "faultprint.call_site": "shop.answer"}
    outer = span("01", attrs=ours)
    inner = span("02", parent="01", attrs={**ours, "faultprint.call_site": "shop.retry"})
    assert repeated_calls([outer, inner]) == set()
    # a span of another instrumentation under faultprint's is a repeat
    assert repeated_calls([outer, span("03", parent="01")]) == {1}
