"""``faultprint.stats()`` adds up at any moment (the batch being exported
included), a forked child counts its own calls, and every key is documented."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import threading

import faultprint
import pytest
from faultprint._export import ExportQueue
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

#: the counters every call is counted in once, when it has returned
ONCE = (
    "exported",
    "export_failed",
    "dropped",
    "sampled_out",
    "not_recorded",
    "queued",
    "exporting",
    "finishing",
)


@pytest.fixture(autouse=True)
def _shut_down():
    yield
    faultprint.shutdown(timeout=2.0)


class HeldExporter(SpanExporter):
    """Holds its first export until released, as a slow collector does."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def export(self, spans) -> SpanExportResult:
        self.started.set()
        self.release.wait(60)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_the_batch_being_exported_is_counted():
    exporter = HeldExporter()
    queue = ExportQueue(lambda: exporter, max_export_batch_size=3, schedule_delay=30)
    tracer = TracerProvider().get_tracer("t")
    for _ in range(5):
        queue.on_end(tracer.start_span("s"))
    assert exporter.started.wait(10)
    try:
        stats = queue.stats()
        assert stats["exporting"] == 3 and stats["queued"] == 2
        assert sum(stats[key] for key in ONCE) == 5
    finally:
        exporter.release.set()
    assert queue.flush(10)
    stats = queue.stats()
    assert stats["exporting"] == 0 and stats["exported"] == 5
    queue.shutdown()


def test_every_call_is_counted_once():
    # Sampled out by faultprint, left out by the application's sampler,
    # exported: together, every call.
    class EveryThird(sampling.Sampler):
        def __init__(self) -> None:
            self.n = 0

        def should_sample(
            self, parent_context, trace_id, name, kind=None, attributes=None, links=None
        ) -> sampling.SamplingResult:
            self.n += 1
            if self.n % 3 == 0:
                return sampling.SamplingResult(sampling.Decision.DROP)
            return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE, attributes)

        def get_description(self) -> str:
            return "every third dropped"

    faultprint.configure(
        tracer_provider=TracerProvider(sampler=EveryThird()),
        exporter=InMemorySpanExporter(),
        sample_rate=0.5,
        handle_sigterm=False,
    )

    @faultprint.observe(model="m")
    def work(i: int) -> int:
        if i % 4 == 0:
            raise ValueError("failed")
        return i

    random.seed(7)
    for i in range(120):
        with contextlib.suppress(ValueError):
            work(i)
    assert faultprint.flush(5)
    stats = faultprint.stats()
    assert stats["not_recorded"] == 40
    assert stats["sampled_out"] > 0 and stats["exported"] > 0
    assert sum(stats[key] for key in ONCE) == 120


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_counts_only_its_own_calls():
    exporter = InMemorySpanExporter()
    faultprint.configure(exporter=exporter, use_global_provider=False, handle_sigterm=False)

    @faultprint.observe(model="m")
    def work() -> str:
        return "done"

    for _ in range(3):
        work()
    assert faultprint.flush(5)
    parent = faultprint.stats()
    assert parent["exported"] == 3 and parent["export_batches"] >= 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(read)
            at_start = faultprint.stats()
            work()
            faultprint.flush(5)
            after = faultprint.stats()
            os.write(write, json.dumps([at_start, after["exported"]]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    at_start, exported = json.loads(report)
    assert set(at_start) == set(parent)  # no key of its own
    assert all(at_start[key] == 0 for key in at_start if key not in ("endpoint", "sample_rate"))
    assert exported == 1
    assert faultprint.stats()["exported"] == 3  # the parent's are the parent's


def test_every_key_is_documented():
    faultprint.configure(exporter=InMemorySpanExporter(), handle_sigterm=False)
    documented = set(re.findall(r"^\s*- ``(\w+)``", faultprint.stats.__doc__ or "", re.M))
    assert documented == set(faultprint.stats())
