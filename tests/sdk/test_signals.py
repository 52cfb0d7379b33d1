"""SIGTERM: an ignored SIGTERM stays ignored (for the programs the application
starts too), and with a collector that accepts and never answers faultprint
waits once, not once in the signal handler and again at exit."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
from faultprint._export import ExportQueue
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

PY = sys.executable

IGNORED = """
import os, signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as nohup and some supervisors leave it
import faultprint
faultprint.configure(endpoint=sys.argv[1], schedule_delay=60, use_global_provider=False)

@faultprint.observe(model="m")
def work():
    return "done"

print("here:", signal.getsignal(signal.SIGTERM) == signal.SIG_IGN, flush=True)
INHERITED = "import signal; print(signal.getsignal(signal.SIGTERM) == signal.SIG_IGN)"
started = subprocess.run(
    [sys.executable, "-c", INHERITED], capture_output=True, text=True, check=True
)
print("in a program it starts:", started.stdout.strip(), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
work()
print("survived", flush=True)
"""


def test_an_ignored_sigterm_stays_ignored(receiver):
    out = subprocess.run(
        [PY, "-c", textwrap.dedent(IGNORED), receiver.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "here: True",
        "in a program it starts: True",
        "survived",
    ]
    # the call after the signal is exported at the process's real exit
    assert [s["name"] for s in receiver.received] == ["chat m"]


SIGTERM_WITH_APP_HANDLER = """
import signal, sys, time
import faultprint
from faultprint._config import STATE

def app_handler(signum, frame):
    print("app handler ran; exported:", faultprint.stats()["exported"], flush=True)
    sys.exit(3)

signal.signal(signal.SIGTERM, app_handler)
at_once = sys.argv[2] == "exported at once"
faultprint.configure(
    endpoint=sys.argv[1],
    export_timeout=60,
    # at once: a batch of one, exported as the call ends; else queued until a flush
    max_export_batch_size=1 if at_once else 512,
    schedule_delay=60,
    use_global_provider=False,
)
queue = STATE.queue
flush = queue.flush

def reported_flush(timeout=10.0, **options):
    done = flush(timeout, **options)
    print("faultprint waited:", "flushed" if done else "gave up", flush=True)
    return done

queue.flush = reported_flush  # every wait of faultprint's, in the handler and at exit

@faultprint.observe(model="m")
def work():
    return "done"

work()
for _ in range(200 if at_once else 0):  # until the export is under way
    if faultprint.stats().get("exporting"):
        break
    time.sleep(0.05)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def silent_collector() -> Iterator[str]:
    """A collector that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def sigterm(url: str, span: str) -> tuple[int, list[str]]:
    proc = subprocess.Popen(
        [PY, "-c", textwrap.dedent(SIGTERM_WITH_APP_HANDLER), url, span],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.splitlines()


def test_sigterm_with_a_silent_collector_waits_once(silent_collector):
    returncode, lines = sigterm(silent_collector, "exported at once")
    assert returncode == 3
    # The handler's flush gave up on the export under way; exit did not wait
    # for it a second time.
    assert lines == ["faultprint waited: gave up", "app handler ran; exported: 0"]


def test_sigterm_exports_before_the_applications_handler_runs(receiver):
    returncode, lines = sigterm(receiver.url, "queued")
    assert returncode == 3
    assert lines == [
        "faultprint waited: flushed",  # in the signal handler
        "app handler ran; exported: 1",
        "faultprint waited: flushed",  # at exit, with nothing left to export
    ]
    assert [s["name"] for s in receiver.received] == ["chat m"]


class StuckExporter(SpanExporter):
    """Its first export hangs as a request to a silent collector does:
    closing the exporter does not end it, only ``release`` (or its timeout)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.exports = 0
        self.closed = False

    def export(self, spans) -> SpanExportResult:
        self.exports += 1
        if self.exports == 1:
            self.started.set()
            self.release.wait(120)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.closed = True


def stuck_queue() -> tuple[ExportQueue, StuckExporter]:
    exporter = StuckExporter()
    queue = ExportQueue(lambda: exporter, max_export_batch_size=1, schedule_delay=30)
    queue.on_end(TracerProvider().get_tracer("t").start_span("s"))  # a batch: exported now
    assert exporter.started.wait(10)
    return queue, exporter


def test_shutdown_does_not_wait_again_for_an_export_a_flush_gave_up_on():
    queue, exporter = stuck_queue()
    assert not queue.flush(0.05, before_exit=True)  # the SIGTERM handler's flush gives up
    result: list[bool] = []
    at_exit = threading.Thread(target=lambda: result.append(queue.shutdown(timeout=600)))
    at_exit.start()
    try:
        at_exit.join(30)  # not 600 s: it does not wait for that export again
        assert result == [False]
        assert exporter.closed
    finally:
        exporter.release.set()
        at_exit.join(30)


def test_an_applications_short_flush_leaves_shutdown_its_wait():
    # A flush with a short timeout of the application's own (at the end of a
    # request, say) gave up on a slow export: shutdown still waits for it
    # and exports what is queued after it.
    queue, exporter = stuck_queue()
    assert not queue.flush(0.05)
    queue.on_end(TracerProvider().get_tracer("t").start_span("later"))
    result: list[bool] = []
    at_exit = threading.Thread(target=lambda: result.append(queue.shutdown(timeout=60)))
    at_exit.start()
    try:
        exporter.release.wait(0.5)  # shutdown is waiting, not closing the exporter
        assert not exporter.closed and at_exit.is_alive()
    finally:
        exporter.release.set()
        at_exit.join(60)
    assert result == [True]
    assert queue.stats()["exported"] == 2 and queue.stats()["export_failed"] == 0


def test_an_export_that_ended_after_a_flush_gave_up_is_waited_for_no_longer():
    # The export the flush gave up on finished: the next shutdown flushes as usual.
    queue, exporter = stuck_queue()
    assert not queue.flush(0.05, before_exit=True)
    exporter.release.set()
    assert queue.flush(10)
    queue.on_end(TracerProvider().get_tracer("t").start_span("later"))
    assert queue.shutdown(10)
    assert exporter.exports == 2 and exporter.closed
    assert queue.stats()["exported"] == 2
