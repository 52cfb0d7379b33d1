"""On a tracer provider shared with the application, one model call is one span.

The Anthropic library traces its own API calls (a ``CLIENT`` span with the
GenAI attributes, on the global provider or the one it is given). When
faultprint shares that provider, it would receive both its own span of a call
and the library's span of the same API call, and the collector would count
the call twice. Real Anthropic clients on mock transports, no network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import faultprint
import pytest
from faultprint import attributes as A
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.sdk.providers import ANTHROPIC_KW, MESSAGE, mock_http, responder

anthropic = pytest.importorskip("anthropic")

LIBRARY_SCOPE = "com.anthropic.sdk.python"

RATE_LIMITED = {
    "type": "error",
    "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded"},
}


class Shared:
    """faultprint configured on an application's provider, which the library traces on."""

    def __init__(self, sdk_spans: bool) -> None:
        self.provider = TracerProvider()
        self.exporter = InMemorySpanExporter()
        faultprint.configure(
            tracer_provider=self.provider,
            exporter=self.exporter,
            handle_sigterm=False,
            sdk_spans=sdk_spans,
        )

    def client(self, handler: Any, is_async: bool = False) -> Any:
        """A real Anthropic client whose own spans go to the shared provider."""
        return (anthropic.AsyncAnthropic if is_async else anthropic.Anthropic)(
            api_key="sk-ant-test",
            max_retries=0,
            http_client=mock_http(handler, is_async),
            open_telemetry={"tracer_provider": self.provider},
        )

    def exported(self) -> list[tuple[str, str]]:
        """(instrumentation scope, call site or span name) of every exported span."""
        assert faultprint.flush(5.0)
        return [
            (s.instrumentation_scope.name, s.attributes.get(A.FP_CALL_SITE, s.name))
            for s in self.exporter.get_finished_spans()
        ]


@pytest.fixture(params=["faultprint-spans", "sdk-spans"])
def shared(request: pytest.FixtureRequest) -> Iterator[Shared]:
    yield Shared(sdk_spans=request.param == "sdk-spans")
    faultprint.shutdown(timeout=2.0)


def test_the_library_traces_its_calls_on_the_shared_provider(shared):
    # The premise: an uninstrumented client's call is one span, the library's,
    # and faultprint passes it on (the collector classifies such spans).
    shared.client(responder(200, MESSAGE)).messages.create(**ANTHROPIC_KW)
    assert [scope for scope, _ in shared.exported()] == [LIBRARY_SCOPE]


def test_an_instrumented_call_is_one_span(shared):
    client = faultprint.instrument_anthropic(shared.client(responder(200, MESSAGE)))
    client.messages.create(**ANTHROPIC_KW)
    assert shared.exported() == [("faultprint", "anthropic.chat")]
    assert faultprint.stats()["duplicates_dropped"] == 1


def test_a_failed_instrumented_call_is_one_failure(shared):
    client = faultprint.instrument_anthropic(shared.client(responder(429, RATE_LIMITED)))
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**ANTHROPIC_KW)
    assert shared.exported() == [("faultprint", "anthropic.chat")]
    span = shared.exporter.get_finished_spans()[0]
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "api_error"


def test_streamed_and_async_calls_are_one_span_each(shared):
    events = anthropic_events()
    client = faultprint.instrument_anthropic(shared.client(responder(200, events)))
    for _ in client.messages.create(**ANTHROPIC_KW, stream=True):
        pass
    with client.messages.stream(**ANTHROPIC_KW) as stream:
        stream.until_done()
    aclient = faultprint.instrument_anthropic(shared.client(responder(200, MESSAGE), is_async=True))
    asyncio.run(aclient.messages.create(**ANTHROPIC_KW))
    assert shared.exported() == [("faultprint", "anthropic.chat")] * 3


def test_a_decorated_call_around_a_client_is_one_span(shared):
    instrumented = faultprint.instrument_anthropic(shared.client(responder(200, MESSAGE)))
    plain = shared.client(responder(200, MESSAGE))

    @faultprint.observe(model="claude-haiku-4-5", call_site="shop.answer")
    def answer(client: Any) -> Any:
        return client.messages.create(**ANTHROPIC_KW)

    answer(instrumented)
    answer(plain)
    assert shared.exported() == [("faultprint", "shop.answer")] * 2


def test_a_model_span_under_a_span_of_the_application_is_kept(shared):
    # Only the spans right inside a faultprint call are its API calls; one
    # under a span of the application's own is that span's business.
    tracer = shared.provider.get_tracer("shop")
    plain = shared.client(responder(200, MESSAGE))

    @faultprint.observe(model="claude-haiku-4-5", call_site="shop.answer")
    def answer() -> str:
        with tracer.start_as_current_span("retrieve and answer"):
            plain.messages.create(**ANTHROPIC_KW)
        return "Paris."

    answer()
    assert sorted(shared.exported()) == sorted(
        [("faultprint", "shop.answer"), (LIBRARY_SCOPE, "anthropic.messages.create")]
    )


def anthropic_events() -> bytes:
    """A streamed message, as Anthropic's server-sent events."""
    from tests.sdk.test_integrations import ANTHROPIC_SSE

    return ANTHROPIC_SSE
