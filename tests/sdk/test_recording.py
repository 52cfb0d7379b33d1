"""Which calls are recorded: every one on faultprint's own provider, whatever
the environment's sampler or an upstream "not sampled"; on the application's
provider, what its sampler records, the rest counted in ``not_recorded``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import faultprint
import pytest
from faultprint import _span
from faultprint import attributes as A
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SPAN_MODES = ["faultprint-spans", "sdk-spans"]
STATE = TraceState([("vendor", "x1")])


@pytest.fixture(autouse=True)
def _shut_down() -> Iterator[None]:
    yield
    faultprint.shutdown(timeout=2.0)


@contextlib.contextmanager
def under_parent(flags: int, *, remote: bool = True) -> Iterator[None]:
    """Run under a parent span context with the given trace flags and a trace state."""
    parent = SpanContext(
        0xABC, 0xDEF, is_remote=remote, trace_flags=TraceFlags(flags), trace_state=STATE
    )
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        yield
    finally:
        context.detach(token)


@faultprint.observe(model="m")
def propagating(fail: bool = False) -> dict[str, str]:
    """Returns the headers this call would send downstream."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    if fail:
        raise ValueError("failed call")
    return carrier


def sampled(headers: dict[str, str]) -> bool:
    """The sampled flag of a traceparent header (other flags, random ids, may be set)."""
    return bool(int(headers["traceparent"][-2:], 16) & 1)


def own_provider(mode: str, **options: Any) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=exporter,
        use_global_provider=False,
        handle_sigterm=False,
        sdk_spans=mode == "sdk-spans",
        **options,
    )
    return exporter


@pytest.mark.parametrize("mode", SPAN_MODES)
def test_own_provider_records_calls_under_a_parent_that_is_not_sampled(mode):
    exporter = own_provider(mode)
    with under_parent(TraceFlags.DEFAULT):
        unsampled = propagating()
        with pytest.raises(ValueError):
            propagating(fail=True)
    with under_parent(TraceFlags.SAMPLED):
        under_sampled = propagating()
    root = propagating()
    assert faultprint.flush(5)
    spans = exporter.get_finished_spans()
    # every call exported, the failure included ...
    assert len(spans) == 4
    assert sum(A.FP_FAILURE_CATEGORY in s.attributes for s in spans) == 1
    # ... while what each propagates downstream is the trace's own decision
    assert unsampled["traceparent"].startswith("00-" + f"{0xABC:032x}")
    assert not sampled(unsampled)
    assert unsampled["tracestate"] == "vendor=x1"
    assert sampled(under_sampled) and under_sampled["tracestate"] == "vendor=x1"
    assert sampled(root) and "tracestate" not in root
    flags = [s.context.trace_flags.sampled for s in spans]
    assert flags == [False, False, True, True]
    assert all(s.context.trace_state == STATE for s in spans[:3])
    assert [s.parent.span_id if s.parent else None for s in spans] == [0xDEF] * 3 + [None]
    assert faultprint.stats()["not_recorded"] == 0


@pytest.mark.parametrize("mode", SPAN_MODES)
def test_own_provider_records_under_a_local_parent_that_is_not_sampled(mode):
    exporter = own_provider(mode)
    with under_parent(TraceFlags.DEFAULT, remote=False):
        assert not sampled(propagating())
    assert faultprint.flush(5)
    assert len(exporter.get_finished_spans()) == 1


@pytest.mark.parametrize("mode", SPAN_MODES)
@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_TRACES_SAMPLER": "always_off"},
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
        {"OTEL_TRACES_SAMPLER": "parentbased_always_off"},
    ],
)
def test_own_provider_ignores_the_environments_sampler(monkeypatch, mode, variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    exporter = own_provider(mode)
    for i in range(10):
        with contextlib.suppress(ValueError):
            propagating(fail=i % 5 == 0)
    assert faultprint.flush(5)
    spans = exporter.get_finished_spans()
    assert len(spans) == 10
    assert sum(A.FP_FAILURE_CATEGORY in s.attributes for s in spans) == 2


@pytest.mark.parametrize("mode", SPAN_MODES)
def test_otel_sdk_disabled_turns_recording_off_and_counts_the_calls(monkeypatch, mode):
    # OpenTelemetry's switch for its whole SDK: faultprint's provider obeys
    # it too, and says what it left out instead of dropping calls unseen.
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    exporter = own_provider(mode)
    for i in range(3):
        with contextlib.suppress(ValueError):
            propagating(fail=i == 0)
    assert faultprint.flush(5)
    assert exporter.get_finished_spans() == ()
    assert faultprint.stats()["not_recorded"] == 3


def test_own_providers_sampler_is_evaluated_inline_on_the_fast_path(monkeypatch):
    # The per-call path of faultprint's span class decides without calling
    # the sampler, with the decision the sampler itself makes.
    def not_called(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("should_sample called on the fast path")

    exporter = own_provider("faultprint-spans")
    monkeypatch.setattr(_span.RECORD_EVERY_CALL, "should_sample", not_called)
    with under_parent(TraceFlags.DEFAULT):
        assert not sampled(propagating())
    propagating()
    assert faultprint.flush(5)
    assert [s.context.trace_flags.sampled for s in exporter.get_finished_spans()] == [False, True]


@pytest.mark.parametrize(
    ("flags", "decision"),
    [
        (None, sampling.Decision.RECORD_AND_SAMPLE),
        (TraceFlags.SAMPLED, sampling.Decision.RECORD_AND_SAMPLE),
        (TraceFlags.DEFAULT, sampling.Decision.RECORD_ONLY),
    ],
)
def test_record_every_call_keeps_the_parents_decision_and_trace_state(flags, decision):
    parent_context = None
    if flags is not None:
        parent = SpanContext(0xABC, 0xDEF, True, TraceFlags(flags), trace_state=STATE)
        parent_context = trace.set_span_in_context(NonRecordingSpan(parent))
    result = _span.RECORD_EVERY_CALL.should_sample(
        parent_context, 0xABC, "chat m", attributes={"a": 1}
    )
    assert result.decision is decision
    assert result.trace_state == (None if flags is None else STATE)
    assert dict(result.attributes) == {"a": 1}


def app_provider(mode: str, **provider_args: Any) -> tuple[InMemorySpanExporter, ...]:
    provider = TracerProvider(**provider_args)
    app_exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    fp_exporter = InMemorySpanExporter()
    faultprint.configure(
        tracer_provider=provider,
        exporter=fp_exporter,
        handle_sigterm=False,
        sdk_spans=mode == "sdk-spans",
    )
    return app_exporter, fp_exporter


@pytest.mark.parametrize("mode", SPAN_MODES)
def test_the_applications_sampler_decides_and_what_it_leaves_out_is_counted(mode):
    app_exporter, fp_exporter = app_provider(mode)  # ParentBased(ALWAYS_ON)
    with under_parent(TraceFlags.DEFAULT):
        assert not sampled(propagating())
        with pytest.raises(ValueError):
            propagating(fail=True)
    propagating()
    assert faultprint.flush(5)
    assert len(fp_exporter.get_finished_spans()) == 1
    # the application's own processor behaves as it would without faultprint
    assert len(app_exporter.get_finished_spans()) == 1
    stats = faultprint.stats()
    assert stats["not_recorded"] == 2 and stats["exported"] == 1


@pytest.mark.parametrize("mode", SPAN_MODES)
def test_not_recorded_counts_every_call_an_application_sampler_drops(mode):
    _, fp_exporter = app_provider(mode, sampler=sampling.ALWAYS_OFF)
    for _ in range(5):
        propagating()
    assert faultprint.flush(5)
    assert fp_exporter.get_finished_spans() == ()
    stats = faultprint.stats()
    assert stats["not_recorded"] == 5
    assert stats["exported"] + stats["queued"] + stats["exporting"] == 0


def test_a_call_under_an_unsampled_parent_reaches_a_real_otlp_receiver(receiver):
    faultprint.configure(endpoint=receiver.url, use_global_provider=False, handle_sigterm=False)
    incoming = {"traceparent": f"00-{0x1234:032x}-{0x5678:016x}-00"}
    token = context.attach(TraceContextTextMapPropagator().extract(incoming))
    try:
        with pytest.raises(ValueError):
            propagating(fail=True)
    finally:
        context.detach(token)
    assert faultprint.flush(10)
    assert [s["attributes"][A.FP_FAILURE_CATEGORY] for s in receiver.received] == ["exception"]
