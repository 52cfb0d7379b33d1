"""The export queue finishing client-integration spans on its thread
(``ExportQueue.defer``, ``configure(background_finish=...)``)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import faultprint
import pytest
from faultprint import attributes as A
from faultprint._current import CURRENT_CALL
from faultprint._export import EXPORTER_LOGS, DiscardingExporter, ExportQueue, wait_seconds
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")

from tests.sdk.test_integrations import CHAT, MESSAGES, openai_client, responder  # noqa: E402


class Ends(SpanProcessor):
    """Records, for each ended span, the span and the thread that ended it."""

    def __init__(self) -> None:
        self.ended: list[tuple[ReadableSpan, str]] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append((span, threading.current_thread().name))


def pipeline(**options) -> tuple[InMemorySpanExporter, Ends]:
    """faultprint on a provider that also carries an ``Ends`` processor."""
    provider = TracerProvider()
    ends = Ends()
    provider.add_span_processor(ends)
    exporter = InMemorySpanExporter()
    faultprint.configure(
        tracer_provider=provider, exporter=exporter, handle_sigterm=False, **options
    )
    return exporter, ends


@pytest.fixture(autouse=True)
def _shut_down():
    yield
    faultprint.shutdown(timeout=2.0)


def chat(client) -> object:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_integration_span_ends_on_the_export_thread_at_the_return_time():
    exporter, ends = pipeline(schedule_delay=30)
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    before = time.time_ns()
    chat(client)
    returned = time.time_ns()
    assert ends.ended == []  # not ended yet: the export thread has it
    assert faultprint.stats()["finishing"] == 1
    time.sleep(0.05)
    assert faultprint.flush(5)
    [(span, thread)] = ends.ended
    assert thread == "faultprint-export"
    assert before <= span.start_time <= span.end_time <= returned
    assert span.attributes[A.GEN_AI_RESPONSE_MODEL] == CHAT["model"]
    assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    assert [s.name for s in exporter.get_finished_spans()] == ["chat gpt-4o-mini"]
    assert faultprint.stats()["finishing"] == 0


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_background_finish_can_be_turned_off(how, monkeypatch):
    if how == "environment":
        monkeypatch.setenv("FAULTPRINT_BACKGROUND_FINISH", "0")
        _, ends = pipeline(schedule_delay=30)
    else:
        _, ends = pipeline(schedule_delay=30, background_finish=False)
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    chat(client)
    [(span, thread)] = ends.ended  # ended before the call returned
    assert thread == threading.current_thread().name
    assert span.attributes[A.GEN_AI_RESPONSE_ID] == CHAT["id"]


def _recorded(**options) -> dict:
    exporter, _ = pipeline(**options)
    client = faultprint.instrument_openai(
        openai_client(responder(200, {**CHAT, "choices": [{**CHAT["choices"][0]}]})),
        version="v2",
    )
    refusing = faultprint.instrument_openai(
        openai_client(
            responder(
                200,
                {
                    **CHAT,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": None,
                                "refusal": "I can't help with that.",
                            },
                            "finish_reason": "stop",
                        }
                    ],
                },
            )
        ),
        version="v2",
    )
    chat(client)
    chat(refusing)
    assert faultprint.flush(5)
    spans = exporter.get_finished_spans()
    faultprint.shutdown()
    return {
        s.attributes[A.GEN_AI_RESPONSE_ID] + str(i): (dict(s.attributes), s.status.status_code)
        for i, s in enumerate(spans)
    }


def test_finishing_in_the_background_records_what_the_calling_thread_would():
    background = _recorded()
    calling = _recorded(background_finish=False)
    assert background == calling
    assert [a.get(A.FP_FAILURE_CATEGORY) for a, _ in background.values()] == [None, "refusal"]


def test_when_the_queue_is_full_the_caller_finishes_its_own_span():
    # One span fits: the second call cannot be handed over and is ended by
    # its caller (then dropped by the full queue, and counted), never lost
    # unended.
    _, ends = pipeline(schedule_delay=30, max_queue_size=1)
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    chat(client)
    chat(client)
    assert [thread for _, thread in ends.ended] == [threading.current_thread().name]
    assert faultprint.flush(5)
    assert sorted(thread for _, thread in ends.ended) == [
        "MainThread",
        "faultprint-export",
    ]
    stats = faultprint.stats()
    assert stats["dropped_queue_full"] == 1 and stats["exported"] == 1


def test_shutdown_finishes_and_exports_what_was_handed_over():
    exporter, ends = pipeline(schedule_delay=30)
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    for _ in range(3):
        chat(client)
    faultprint.shutdown()
    spans = exporter.get_finished_spans()
    assert len(spans) == 3 and len(ends.ended) == 3
    assert all(s.attributes[A.GEN_AI_RESPONSE_ID] == CHAT["id"] for s in spans)
    # After shutdown, a call finishes its span itself; nothing is exported.
    chat(client)
    assert len(ends.ended) == 4  # ended, by its caller
    assert len(exporter.get_finished_spans()) == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_finish_the_parents_spans():
    exporter, _ = pipeline(schedule_delay=30)
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    chat(client)  # handed to the export thread, not yet finished
    pid = os.fork()
    if pid == 0:  # child: nothing of the parent's to finish or export
        code = 1
        try:
            stats = faultprint.stats()
            flushed = faultprint.flush(5)
            code = 0 if flushed and stats["finishing"] == 0 else 2
            code = code or (3 if exporter.get_finished_spans() else 0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert faultprint.flush(5)
    assert len(exporter.get_finished_spans()) == 1


def test_a_failing_finish_does_not_stop_the_export_thread():
    queue = ExportQueue(DiscardingExporter, schedule_delay=30)
    done: list[int] = []

    def broken() -> None:
        raise RuntimeError("finishing bug")

    assert queue.defer(broken)
    assert queue.defer(done.append, 1)
    assert queue.flush(5)
    assert done == [1]
    queue.shutdown()
    assert not queue.defer(done.append, 2)  # refused: the caller runs it itself
    assert done == [1]


def test_many_handed_over_spans_wake_the_export_thread_without_a_flush():
    queue = ExportQueue(DiscardingExporter, schedule_delay=30, max_export_batch_size=4)
    done = threading.Event()
    for _ in range(3):
        assert queue.defer(lambda: None)
    assert queue.defer(done.set)
    assert done.wait(5)  # a batch's worth woke the thread long before 30 s
    queue.shutdown()


def test_stats_have_the_same_keys_before_configure_and_after():
    # Before any configure(): a fresh interpreter, since stats() here would
    # still report the pipeline an earlier test shut down.
    code = "import json, faultprint; print(json.dumps(faultprint.stats()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before = json.loads(out.stdout)
    pipeline()
    after = faultprint.stats()
    assert set(before) == set(after)
    assert all(before[k] == 0 for k in before if k not in ("endpoint", "sample_rate"))


def test_a_span_ended_after_shutdown_is_counted_as_dropped():
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    queue = ExportQueue(lambda: exporter)
    provider.add_span_processor(queue)
    tracer = provider.get_tracer("t")
    tracer.start_span("before").end()
    queue.shutdown(2.0)
    tracer.start_span("after").end()
    stats = queue.stats()
    assert [s.name for s in exporter.get_finished_spans()] == ["before"]
    assert stats["dropped_after_shutdown"] == 1 and stats["dropped"] == 1
    assert stats["exported"] == 1 and stats["export_batches"] == 1


def test_flush_and_the_export_thread_never_wait_for_the_queues_lock():
    # A signal handler's flush runs on a thread that may hold the lock (see
    # test_reliability's SIGTERM test); the export thread must finish,
    # count and export without it.
    exporter = InMemorySpanExporter()
    queue = ExportQueue(lambda: exporter)
    provider = TracerProvider()
    provider.add_span_processor(queue)
    tracer = provider.get_tracer("t")
    span = tracer.start_span("sampled out")
    queue.drop_sampled_out(span.get_span_context().span_id)
    assert queue.defer(span.end)
    tracer.start_span("kept").end()
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(queue.flush(5.0)))
    with queue._lock:
        flusher.start()
        flusher.join(10.0)
    assert flushed == [True]
    assert [s.name for s in exporter.get_finished_spans()] == ["kept"]
    stats = queue.stats()
    assert stats["sampled_out"] == 1 and stats["exported"] == 1
    queue.shutdown(2.0)


class FlakyExporter(SpanExporter):
    """Logs like the OTLP exporter and fails while ``down`` is set; an export
    made while ``hang`` is set waits, as the OTLP exporter's retries do,
    until ``shutdown``."""

    def __init__(self) -> None:
        self.down = True
        self.hang = False
        self.log: list[str] = []
        self.closed = threading.Event()

    def export(self, spans) -> SpanExportResult:
        logging.getLogger("tests.flaky_exporter").warning("connection refused, retrying")
        if self.hang:
            self.log.append("export started")
            self.closed.wait(30)
            self.log.append("export gave up")
            return SpanExportResult.FAILURE
        return SpanExportResult.FAILURE if self.down else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.log.append("shutdown")
        self.closed.set()


def test_an_outage_is_reported_once_and_the_exporters_own_logs_held_back(caplog):
    caplog.set_level(logging.INFO)
    EXPORTER_LOGS.install("tests.flaky_exporter")
    exporter = FlakyExporter()
    queue = ExportQueue(lambda: exporter)
    tracer = TracerProvider().get_tracer("t")
    for _ in range(3):
        queue.on_end(tracer.start_span("s"))
        assert queue.flush(5)
    exporter.down = False
    for _ in range(2):
        queue.on_end(tracer.start_span("s"))
        assert queue.flush(5)
    queue.shutdown(2)
    assert not [r for r in caplog.records if r.name == "tests.flaky_exporter"]
    said = [r.getMessage() for r in caplog.records if r.name == "faultprint"]
    assert len(said) == 2, said
    assert "cannot be exported (connection refused, retrying)" in said[0]
    assert "exported again" in said[1]
    assert queue.stats()["export_failed"] == 3 and queue.stats()["exported"] == 2
    # Records of other threads (the application's own exports) pass.
    logging.getLogger("tests.flaky_exporter").warning("the application's own")
    assert [r.getMessage() for r in caplog.records if r.name == "tests.flaky_exporter"] == [
        "the application's own"
    ]


def test_shutdown_ends_the_exporters_retries_when_the_collector_is_down():
    exporter = FlakyExporter()
    queue = ExportQueue(lambda: exporter)
    tracer = TracerProvider().get_tracer("t")
    queue.on_end(tracer.start_span("s"))
    assert queue.flush(5)  # the collector is down
    exporter.hang = True
    queue.on_end(tracer.start_span("s"))
    assert queue.shutdown(5)
    # Not "export started" first: exit does not wait out the retries.
    assert exporter.log[0] == "shutdown", exporter.log
    assert queue.stats()["export_failed"] == 2


def test_shutdown_during_a_first_export_that_retries_ends_the_retries():
    exporter = FlakyExporter()
    exporter.hang = True
    queue = ExportQueue(lambda: exporter)
    queue.on_end(TracerProvider().get_tracer("t").start_span("s"))
    queue._wake.put(None)
    for _ in range(500):  # until the export thread is inside the exporter
        if exporter.log:
            break
        time.sleep(0.01)
    assert queue.shutdown(5)  # did not wait out the retries
    assert exporter.log == ["export started", "shutdown", "export gave up"]


class HeldExporter(InMemorySpanExporter):
    """Exports only once ``release`` is set: an export under way as long as a test needs."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait()
        return super().export(spans)

    def shutdown(self) -> None:
        self.shut_down = True
        super().shutdown()


def held_calls(n: int) -> HeldExporter:
    """faultprint exporting to a ``HeldExporter``, ``n`` calls made."""
    exporter = HeldExporter()
    faultprint.configure(exporter=exporter, use_global_provider=False, handle_sigterm=False)

    @faultprint.observe(model="m")
    def answer(i: int) -> str:
        return "fine"

    for i in range(n):
        answer(i)
    return exporter


@pytest.mark.parametrize("timeout", [None, float("inf"), 1e10])
def test_a_flush_without_a_bound_waits_until_everything_is_exported(timeout):
    exporter = held_calls(5)
    threading.Timer(0.2, exporter.release.set).start()
    assert faultprint.flush(timeout)
    assert len(exporter.get_finished_spans()) == 5


def test_a_shutdown_without_a_bound_exports_everything_and_stops():
    exporter = held_calls(5)
    threading.Timer(0.2, exporter.release.set).start()
    faultprint.shutdown(float("inf"))
    assert len(exporter.get_finished_spans()) == 5
    assert exporter.shut_down


@pytest.mark.parametrize("timeout", [-1.0, -0.5, float("nan"), 0])
def test_a_flush_past_its_deadline_does_not_wait(timeout):
    exporter = held_calls(5)
    # Should the flush wait, this release ends the wait, and the flush says done.
    safety = threading.Timer(30, exporter.release.set)
    safety.start()
    try:
        assert faultprint.flush(timeout) is False
    finally:
        safety.cancel()
        exporter.release.set()
    assert faultprint.flush(None)
    assert len(exporter.get_finished_spans()) == 5


def test_wait_seconds():
    assert wait_seconds(None) is None
    assert wait_seconds(float("inf")) is None
    assert wait_seconds(threading.TIMEOUT_MAX) is None
    assert wait_seconds(2) == 2.0
    assert wait_seconds(-3) == 0.0
    assert wait_seconds(float("nan")) == 0.0
    assert wait_seconds(float("-inf")) == 0.0


@pytest.mark.parametrize("is_async", [False, True])
def test_a_failure_to_end_an_integration_span_never_reaches_the_application(is_async, monkeypatch):
    pipeline(schedule_delay=30)

    def broken(*args, **kwargs):
        raise RuntimeError("faultprint bug")

    monkeypatch.setattr(ExportQueue, "defer", broken)
    if is_async:
        client = faultprint.instrument_openai(openai_client(responder(200, CHAT), is_async=True))
        result = asyncio.run(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))
    else:
        result = chat(faultprint.instrument_openai(openai_client(responder(200, CHAT))))
    assert result.choices[0].message.content == "Hello!"
    # nothing left current: the call was left before its span failed to end
    assert CURRENT_CALL.get() is None
    assert trace.get_current_span() is trace.INVALID_SPAN
