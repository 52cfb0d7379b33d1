"""faultprint's own span class against the OpenTelemetry SDK's.

Every scenario runs once with ``ModelCallSpan`` and once with the SDK's span
(``sdk_spans=True``) on the same kind of pipeline; what reaches the exporter
must be the same, field by field (ids and times aside). The provider's
sampler, span limits and processors must apply to both.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import faultprint
import pytest
from faultprint._config import STATE
from faultprint._span import ModelCallSpan, SpanStarter
from opentelemetry import context, trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
    sampling,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanContext, SpanKind, StatusCode


class Recorder(SpanProcessor):
    """Records what a processor sees: the span at start, the span at end."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.ended: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.started.append(span)
        # Processors may enrich a span as it starts (a common pattern).
        span.set_attribute("app.processor", "seen")

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


class Pipeline:
    """An application TracerProvider with faultprint configured on it."""

    def __init__(self, sdk_spans: bool, **provider_args: Any) -> None:
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "span-tests"}), **provider_args
        )
        self.app_exporter = InMemorySpanExporter()
        self.provider.add_span_processor(SimpleSpanProcessor(self.app_exporter))
        self.recorder = Recorder()
        self.provider.add_span_processor(self.recorder)
        self.fp_exporter = InMemorySpanExporter()
        faultprint.configure(
            tracer_provider=self.provider,
            exporter=self.fp_exporter,
            handle_sigterm=False,
            schedule_delay=0.05,
            sdk_spans=sdk_spans,
        )
        self.tracer = self.provider.get_tracer("app")

    def spans(self) -> list[ReadableSpan]:
        """Every span the application's own exporter received."""
        assert faultprint.flush(5.0)
        return list(self.app_exporter.get_finished_spans())


@pytest.fixture
def pipelines() -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(sdk_spans: bool, **provider_args: Any) -> Pipeline:
        faultprint.shutdown(timeout=1.0)
        pipeline = Pipeline(sdk_spans, **provider_args)
        made.append(pipeline)
        return pipeline

    yield make
    faultprint.shutdown(timeout=1.0)


def _value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def normalise(spans: list[ReadableSpan]) -> list[dict[str, Any]]:
    """Spans as comparable dicts: parents by name, no ids or times."""
    by_id = {s.context.span_id: s.name for s in spans}
    out = []
    for s in sorted(spans, key=lambda s: (s.name, s.start_time or 0)):
        events = []
        for event in s.events:
            attrs = {k: _value(v) for k, v in (event.attributes or {}).items()}
            if "exception.stacktrace" in attrs:
                # Tracebacks name the frames that raised: the same last line.
                attrs["exception.stacktrace"] = (
                    attrs["exception.stacktrace"].strip().splitlines()[-1]
                )
            events.append({"name": event.name, "attributes": attrs})
        out.append(
            {
                "name": s.name,
                "kind": s.kind,
                "parent": by_id.get(s.parent.span_id) if s.parent else None,
                "remote_parent": bool(s.parent and s.parent.is_remote),
                "attributes": {k: _value(v) for k, v in (s.attributes or {}).items()},
                "status": (s.status.status_code, s.status.description),
                "events": events,
                "links": [dict(link.attributes or {}) for link in s.links],
                "resource": dict(s.resource.attributes),
                "scope": (s.instrumentation_scope.name, s.instrumentation_scope.version)
                if s.instrumentation_scope
                else None,
                "dropped": (s.dropped_attributes, s.dropped_events, s.dropped_links),
                "trace_shared": s.parent is None or s.parent.trace_id == s.context.trace_id,
                "sampled": s.context.trace_flags.sampled,
                "flags": (int(s.context.trace_flags), type(s.context.trace_flags)),
                "ended_after_start": (s.end_time or 0) >= (s.start_time or 0) > 0,
            }
        )
    return out


def scenario(pipeline: Pipeline) -> None:
    """Calls of every outcome, nested in and around the application's spans."""

    @faultprint.observe(model="m-1", provider="openai", version="v1", json=True)
    def answer(question: str) -> str:
        # The application's own span inside the call, and the call's span
        # enriched through the OpenTelemetry API.
        with pipeline.tracer.start_as_current_span("app.inner") as inner:
            inner.set_attribute("app.step", 1)
        current = trace.get_current_span()
        current.set_attribute("app.tags", ["a", "b"])
        current.add_event("app.retry", {"attempt": 2})
        current.add_link(inner.get_span_context(), {"app.link": True})
        return '{"ok": true}' if question == "good" else "not json"

    @faultprint.observe(model="m-1", provider="openai", version="v1")
    def broken() -> str:
        raise ValueError("upstream said no")

    with pipeline.tracer.start_as_current_span("app.request"):
        answer("good")
        answer("bad")
        with pytest.raises(ValueError):
            broken()
        with faultprint.call(model="m-2", input={"q": 1}) as call:
            call.set_output("I'm sorry, but I can't help with that.", finish_reason="stop")


@pytest.mark.parametrize("provider_args", [{}, {"span_limits": SpanLimits(max_span_attributes=6)}])
def test_same_spans_as_the_sdk(
    pipelines: Callable[..., Pipeline], provider_args: dict[str, Any]
) -> None:
    """Names, kinds, parents, attributes, status, events, links, resource, scope, limits."""
    results = {}
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans, **provider_args)
        scenario(pipeline)
        spans = pipeline.spans()
        kinds = {type(s).__name__ for s in spans if s.instrumentation_scope.name == "faultprint"}
        assert kinds == ({"ReadableSpan"} if sdk_spans else {"ModelCallSpan"})
        results[sdk_spans] = normalise(spans)
    assert results[False] == results[True]
    # and the scenario did record what it claims
    names = [s["name"] for s in results[False]]
    assert names.count("chat m-1") == 3
    assert any(s["status"][0] is StatusCode.ERROR for s in results[False])


def test_processors_see_start_and_end(pipelines: Callable[..., Pipeline]) -> None:
    pipeline = pipelines(False)

    @faultprint.observe(model="m")
    def call() -> str:
        return "fine"

    call()
    assert faultprint.flush(5.0)
    started = [s for s in pipeline.recorder.started if isinstance(s, ModelCallSpan)]
    assert len(started) == 1
    ended = pipeline.recorder.ended[-1]
    assert ended is started[0]  # ended spans are frozen and passed as they are
    assert ended.attributes["app.processor"] == "seen"
    assert not ended.is_recording()
    ended_attrs = dict(ended.attributes)
    ended.set_attribute("late", 1)  # ignored, as on the SDK's spans
    ended.set_status(StatusCode.ERROR)
    ended.add_event("late")
    assert dict(ended.attributes) == ended_attrs
    assert ended.status.status_code is StatusCode.UNSET
    assert not ended.events
    # the faultprint export queue received it too
    assert [s.name for s in pipeline.fp_exporter.get_finished_spans()] == ["chat m"]


@pytest.mark.parametrize(
    ("sampler", "exported"),
    [
        (sampling.ALWAYS_OFF, 0),
        (sampling.DEFAULT_OFF, 0),
        (sampling.TraceIdRatioBased(0.0), 0),
        (sampling.ALWAYS_ON, 5),
        (sampling.ParentBased(sampling.TraceIdRatioBased(1.0)), 5),
    ],
)
def test_the_providers_sampler_decides(
    pipelines: Callable[..., Pipeline], sampler: sampling.Sampler, exported: int
) -> None:
    results = []
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans, sampler=sampler)

        @faultprint.observe(model="m")
        def call(i: int) -> str:
            return f"answer {i}"

        assert [call(i) for i in range(5)] == [f"answer {i}" for i in range(5)]
        results.append(len(pipeline.spans()))
    assert results == [exported, exported]


def test_a_parents_sampling_decision_is_followed(pipelines: Callable[..., Pipeline]) -> None:
    """Default sampler: an unsampled remote parent means no span; the trace state is kept."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans)

        @faultprint.observe(model="m")
        def call() -> Any:
            return trace.get_current_span().get_span_context()

        state = TraceState([("vendor", "x1")])
        for flags, expect_spans in ((TraceFlags.DEFAULT, 0), (TraceFlags.SAMPLED, 1)):
            parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(flags))
            parent = SpanContext(
                parent.trace_id, parent.span_id, True, parent.trace_flags, trace_state=state
            )
            ctx = trace.set_span_in_context(NonRecordingSpan(parent))
            token = context.attach(ctx)
            try:
                inner = call()
            finally:
                context.detach(token)
            assert inner.trace_id == 0xABC
            assert inner.trace_state == state
            assert inner.trace_flags.sampled == bool(expect_spans)
        spans = pipeline.spans()
        assert len(spans) == 1
        assert spans[0].parent.span_id == 0xDEF and spans[0].parent.is_remote


def test_a_sampler_adding_attributes(pipelines: Callable[..., Pipeline]) -> None:
    class Tagging(sampling.Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> sampling.SamplingResult:
            return sampling.SamplingResult(
                sampling.Decision.RECORD_AND_SAMPLE, {**(attributes or {}), "sampler.tag": "t"}
            )

        def get_description(self) -> str:
            return "Tagging"

    results = []
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans, sampler=Tagging())

        @faultprint.observe(model="m")
        def call() -> str:
            return "x"

        call()
        results.append(dict(pipeline.spans()[0].attributes))
    assert results[0] == results[1]
    assert results[0]["sampler.tag"] == "t"


def test_limits_and_odd_values_like_the_sdk(pipelines: Callable[..., Pipeline]) -> None:
    """Length limits, invalid keys and values, sequences, dropped counts."""
    results = []
    limits = SpanLimits(max_span_attribute_length=8, max_events=1, max_span_attributes=20)
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans, span_limits=limits)

        @faultprint.observe(model="m")
        def call() -> str:
            span = trace.get_current_span()
            span.set_attribute("long", "x" * 50)
            span.set_attributes({"seq": ["abcdefghijk", "b"], "nums": (1, 2), "obj": object()})
            # tuples of str as finish reasons are written: within, over the length limit
            span.set_attributes({"reasons": ("stop", "length"), "none_yet": ()})
            span.set_attributes({"tags": ("abcdefghijk", "b"), "n": 1})
            span.set_attributes({"mixed": ("a", 1), "m": "ok"})
            span.set_attribute("", "empty key")
            span.set_attribute("none", None)
            span.add_event("one")
            span.add_event("two")
            return "ok"

        call()
        (span,) = pipeline.spans()
        results.append(
            (
                {k: _value(v) for k, v in span.attributes.items() if k != "obj"},
                span.dropped_attributes,
                [e.name for e in span.events],
                span.dropped_events,
            )
        )
    assert results[0] == results[1]
    attrs = results[0][0]
    assert attrs["long"] == "x" * 8
    assert attrs["seq"] == ["abcdefgh", "b"]
    assert attrs["reasons"] == ["stop", "length"] and attrs["none_yet"] == []
    assert attrs["tags"] == ["abcdefgh", "b"]  # "mixed": whatever the installed SDK does


@pytest.mark.parametrize("max_length", [None, 8])
def test_declared_outputs_recorded_like_the_sdk(
    pipelines: Callable[..., Pipeline], max_length: int | None
) -> None:
    """An output's attributes skip the span's own check only when they need none.

    A declared output may hold anything: values the SDK drops or converts
    must be dropped or converted by faultprint's span too, and a length
    limit applies to every value.
    """
    odd: list[dict[str, Any]] = [
        {"response_model": {"not": "text"}, "response_id": "resp_1"},
        {"response_model": "model-with-a-long-name", "response_id": ["a", "b"]},
        {"finish_reason": [object()], "response_id": "resp_3"},
        {"finish_reason": ["stop", "end_turn"], "response_model": "m"},
        {"usage": {"input_tokens": 3, "output_tokens": 4}, "response_model": "m" * 20},
        {"response_model": object()},
    ]
    limits = SpanLimits(max_span_attribute_length=max_length)
    results = []
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans, span_limits=limits)

        @faultprint.observe(model="m")
        def call(declared: dict[str, Any]) -> None:
            faultprint.current_call().set_output("an answer", **declared)

        for declared in odd:
            call(declared)
        # As stored, not normalised: a list the SDK makes a tuple must be one.
        results.append([dict(s.attributes) for s in pipeline.spans()])
    assert results[0] == results[1]
    second, fifth = results[0][1], results[0][4]
    assert second["gen_ai.response.id"] == ("a", "b")
    assert fifth["gen_ai.usage.input_tokens"] == 3
    if max_length is not None:
        assert second["gen_ai.response.model"] == "model-wi"
        assert fifth["gen_ai.response.model"] == "m" * 8


def test_exported_over_otlp_encoding(pipelines: Callable[..., Pipeline]) -> None:
    """The OTLP encoder reads a ModelCallSpan like any ReadableSpan."""
    pipeline = pipelines(False)

    @faultprint.observe(model="m", provider="openai")
    def call() -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        call()
    (span,) = pipeline.spans()
    assert isinstance(span, ModelCallSpan)
    request = encode_spans([span])
    (otlp,) = request.resource_spans[0].scope_spans[0].spans
    assert otlp.name == "chat m"
    assert otlp.kind == SpanKind.CLIENT.value + 1  # OTLP numbers kinds from 1
    attrs = {kv.key: kv.value for kv in otlp.attributes}
    assert attrs["faultprint.failure.category"].string_value == "exception"
    assert otlp.events[0].name == "exception"
    assert otlp.status.code == 2  # ERROR
    assert request.resource_spans[0].scope_spans[0].scope.name == "faultprint"
    json.loads(span.to_json())  # ReadableSpan's own serialisation works too


def test_only_an_sdk_tracer_gets_faultprint_spans() -> None:
    provider = TracerProvider()
    assert isinstance(SpanStarter.for_tracer(provider.get_tracer("x")), SpanStarter)
    assert SpanStarter.for_tracer(trace.NoOpTracer()) is None
    assert SpanStarter.for_tracer(trace.ProxyTracer("x")) is None


def test_environment_switches_to_sdk_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTPRINT_SDK_SPANS", "1")
    try:
        faultprint.configure(
            exporter=InMemorySpanExporter(), handle_sigterm=False, use_global_provider=False
        )
        assert STATE.starter is None
        monkeypatch.delenv("FAULTPRINT_SDK_SPANS")
        faultprint.configure(
            exporter=InMemorySpanExporter(), handle_sigterm=False, use_global_provider=False
        )
        assert isinstance(STATE.starter, SpanStarter)
    finally:
        faultprint.shutdown(timeout=1.0)


def test_ending_twice_warns_like_the_sdk(
    pipelines: Callable[..., Pipeline], caplog: pytest.LogCaptureFixture
) -> None:
    pipelines(False)
    span = STATE.starter.start("x", {"a": 1})  # type: ignore[union-attr]
    span.end()
    with caplog.at_level(logging.WARNING):
        span.end()
    assert "ended span" in caplog.text


def test_as_a_context_manager_like_the_sdk(pipelines: Callable[..., Pipeline]) -> None:
    results = []
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans)

        @faultprint.observe(model="m")
        def call() -> None:
            # An application ending the current span itself, as `with span:`.
            with pytest.raises(KeyError), trace.get_current_span():
                raise KeyError("k")

        call()
        results.append(normalise(pipeline.spans()))
    assert results[0] == results[1]
    (span,) = results[0]
    assert span["status"][0] is StatusCode.ERROR
    assert [e["name"] for e in span["events"]] == ["exception"]


def test_overwriting_and_eviction_order_like_the_sdk(pipelines: Callable[..., Pipeline]) -> None:
    """An overwritten key moves to the newest place, so the limit evicts an older one first."""
    results = []
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans, span_limits=SpanLimits(max_span_attributes=20))

        @faultprint.observe(model="m")
        def call() -> str:
            span = trace.get_current_span()
            span.set_attributes({"app.a": 1, "app.b": 2})
            span.set_attributes({"app.a": 3})  # room left: the fast path
            for i in range(40):
                if "app.b" not in span.attributes:  # type: ignore[attr-defined]
                    break
                span.set_attributes({f"app.fill{i}": i})
            return "ok"

        call()
        (span,) = pipeline.spans()
        results.append((list(span.attributes.items()), span.dropped_attributes))
    assert results[0] == results[1]
    assert dict(results[0][0])["app.a"] == 3
    assert "app.b" not in dict(results[0][0])


class CountingIds(IdGenerator):
    """An id generator of the application's: ids counted up from 1."""

    def __init__(self) -> None:
        self.next = 0

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return 0xABC000 + self.next


def test_ids_drawn_as_the_sdks_generator_draws_them(pipelines: Callable[..., Pipeline]) -> None:
    """The default generator's ids are drawn inline from the same random
    stream: the same seed gives both span classes the same ids, and the span
    context is the one the SDK builds. Another generator is asked for its ids."""
    contexts = []
    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans)

        @faultprint.observe(model="m")
        def call() -> str:
            return "ok"

        random.seed(1234)
        call()
        (span,) = pipeline.spans()
        contexts.append(span.context)
    ours, sdks = contexts
    assert ours == sdks
    assert (ours.trace_id, ours.span_id) == (sdks.trace_id, sdks.span_id)
    assert ours.is_valid and not ours.is_remote and ours.trace_state == sdks.trace_state
    rebuilt = SpanContext(ours.trace_id, ours.span_id, False, ours.trace_flags, ours.trace_state)
    assert tuple(ours) == tuple(rebuilt)

    for sdk_spans in (False, True):
        pipeline = pipelines(sdk_spans, id_generator=CountingIds())

        @faultprint.observe(model="m")
        def outer() -> str:
            return inner()

        @faultprint.observe(model="m")
        def inner() -> str:
            return "ok"

        outer()
        spans = sorted(pipeline.spans(), key=lambda s: s.context.span_id)
        assert [(s.context.trace_id, s.context.span_id) for s in spans] == [
            (0xABC001, 2),
            (0xABC001, 3),
        ]
        assert spans[1].parent.span_id == 2


@pytest.fixture
def own_processors_only() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A provider holding faultprint's processors alone, and faultprint's exporter."""
    faultprint.shutdown(timeout=1.0)
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    faultprint.configure(
        tracer_provider=provider, exporter=exporter, handle_sigterm=False, schedule_delay=0.05
    )
    yield provider, exporter
    faultprint.shutdown(timeout=1.0)


def test_a_processor_added_later_sees_spans_start(
    own_processors_only: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """With only faultprint's processors on the provider, their on_start (which
    does nothing for faultprint's spans) is skipped; a processor the
    application adds afterwards is called from the next span on."""
    provider, exporter = own_processors_only

    @faultprint.observe(model="m")
    def call(i: int) -> int:
        return i

    recorder = Recorder()

    @faultprint.observe(model="m")
    def adding() -> str:
        provider.add_span_processor(recorder)  # while a span is open
        return "added"

    call(1)
    adding()
    call(2)
    call(3)
    assert faultprint.flush(5.0)
    assert len(recorder.started) == 2
    # the span open when it was added ends through it too
    assert len(recorder.ended) == 3
    assert [s.attributes.get("app.processor") for s in recorder.ended] == [None, "seen", "seen"]
    assert len(exporter.get_finished_spans()) == 4


class OtherRuntime(ContextVarsRuntimeContext):
    """A runtime context of another kind (as ``OTEL_PYTHON_CONTEXT`` would choose)."""


def test_another_runtime_context_is_used_through_the_api(
    pipelines: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default runtime context's variable is set directly; any other is
    used through the API, with the same parents and the context restored."""
    results = []
    for runtime in (None, OtherRuntime()):
        if runtime is not None:
            monkeypatch.setattr(context, "_RUNTIME_CONTEXT", runtime)
        pipeline = pipelines(False)
        tracer = pipeline.tracer

        @faultprint.observe(model="m")
        def call() -> str:
            with tracer.start_as_current_span("app inside"):  # noqa: B023 (called at once)
                return "ok"

        with pipeline.tracer.start_as_current_span("app outside") as outside:
            call()
            assert trace.get_current_span() is outside
        assert trace.get_current_span() is trace.INVALID_SPAN
        if runtime is not None:
            assert runtime.get_current() == {}  # what the calls set, it reset
        results.append(normalise(pipeline.spans()))
    assert results[0] == results[1]
    parents = {s["name"]: s["parent"] for s in results[0]}
    assert parents == {"app outside": None, "chat m": "app outside", "app inside": "chat m"}


def test_a_tracer_disabled_and_enabled_again(
    own_processors_only: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A tracer the SDK's tracer configurator disables records no call (each
    is counted as not recorded); enabled again, it records the next one."""
    from opentelemetry.sdk import trace as sdk_trace

    configurator = getattr(sdk_trace, "_disable_tracer_configurator", None)
    if configurator is None:
        pytest.skip("this OpenTelemetry SDK has no tracer configurator")
    provider, exporter = own_processors_only

    @faultprint.observe(model="m")
    def call(i: int) -> int:
        return i

    call(1)
    provider._set_tracer_configurator(tracer_configurator=configurator)
    assert [call(i) for i in (2, 3)] == [2, 3]
    provider._set_tracer_configurator(
        tracer_configurator=lambda scope: sdk_trace._TracerConfig(is_enabled=True)
    )
    call(4)
    assert faultprint.flush(5.0)
    assert len(exporter.get_finished_spans()) == 2
    assert faultprint.stats()["not_recorded"] == 2
