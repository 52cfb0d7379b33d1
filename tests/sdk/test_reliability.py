"""Never hurt the application: sampling, bounded queue, dead collector, fork,
SIGTERM, exit, import weight, faultprint's own errors."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import faultprint
import pytest
from faultprint import attributes as A
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

PY = sys.executable


def test_sampling_keeps_every_failure_and_weights_successes():
    exporter = InMemorySpanExporter()
    faultprint.configure(exporter=exporter, sample_rate=0.25, use_global_provider=False)

    @faultprint.observe(model="m")
    def f(i: int) -> str:
        if i % 20 == 0:
            raise ValueError("boom")
        return "ok"

    random.seed(1234)
    for i in range(400):
        with contextlib.suppress(ValueError):
            f(i)
    assert faultprint.flush(5)
    spans = exporter.get_finished_spans()
    failures = [s for s in spans if A.FP_FAILURE_CATEGORY in s.attributes]
    successes = [s for s in spans if A.FP_FAILURE_CATEGORY not in s.attributes]
    assert len(failures) == 20
    assert all(s.attributes[A.FP_SAMPLE_WEIGHT] == 1.0 for s in failures)
    assert 40 < len(successes) < 150  # 380 * 0.25 = 95 expected
    assert all(s.attributes[A.FP_SAMPLE_WEIGHT] == 4.0 for s in successes)
    assert faultprint.stats()["sampled_out"] == 380 - len(successes)
    faultprint.shutdown()


class BlockingExporter(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.count = 0

    def export(self, spans):
        self.release.wait(10)
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_full_queue_drops_and_counts_without_blocking():
    exporter = BlockingExporter()
    faultprint.configure(
        exporter=exporter,
        max_queue_size=10,
        max_export_batch_size=5,
        schedule_delay=0.01,
        use_global_provider=False,
    )

    @faultprint.observe(model="m")
    def f() -> str:
        return "ok"

    for _ in range(100):
        f()
    stats = faultprint.stats()
    assert stats["dropped"] >= 100 - 10 - 5
    assert stats["dropped"] == stats["dropped_queue_full"]
    exporter.release.set()
    assert faultprint.flush(5)
    stats = faultprint.stats()
    assert stats["exported"] + stats["dropped"] == 100
    assert exporter.count == stats["exported"]
    faultprint.shutdown()


def test_dead_collector_costs_only_dropped_spans(caplog):
    caplog.set_level(logging.INFO)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here any more
    faultprint.configure(
        endpoint=f"http://127.0.0.1:{port}",
        export_timeout=0.5,
        schedule_delay=0.01,
        use_global_provider=False,
        handle_sigterm=False,
    )

    @faultprint.observe(model="m")
    def f(i: int) -> int:
        return i

    assert [f(i) for i in range(200)] == list(range(200))
    faultprint.flush(10)
    stats = faultprint.stats()
    assert stats["export_failed"] + stats["dropped"] == 200
    assert stats["exported"] == 0
    faultprint.shutdown(timeout=1)
    # Exports ran on faultprint's thread; the exporter's retry warnings stayed
    # out of the application's logs, and faultprint said once what is wrong.
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]
    warnings = [r for r in caplog.records if r.name == "faultprint"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].threadName == "faultprint-export"
    assert "spans cannot be exported" in warnings[0].getMessage()


class RaisingExporter(SpanExporter):
    def export(self, spans):
        raise RuntimeError("exporter bug")

    def shutdown(self) -> None:
        pass


def test_faultprint_errors_never_reach_the_application():
    faultprint.configure(
        exporter=RaisingExporter(),
        capture_content=True,
        redact=lambda text: 1 / 0,
        use_global_provider=False,
    )

    def broken_check(out):
        raise LookupError("check bug")

    @faultprint.observe(model="m", expect=broken_check)
    def f(x: object) -> str:
        return "fine"

    class Unhashable:
        def __repr__(self):
            raise RuntimeError("repr bug")

    assert f(Unhashable()) == "fine"
    faultprint.flush(5)
    assert faultprint.stats()["export_failed"] == 1
    faultprint.shutdown()


def test_fork_child_exports_its_own_spans_only(receiver):
    faultprint.configure(endpoint=receiver.url, schedule_delay=30, use_global_provider=False)

    @faultprint.observe(model="m")
    def in_parent() -> str:
        return "p"

    @faultprint.observe(model="m")
    def in_child() -> str:
        return "c"

    in_parent()  # queued, not yet exported, when the process forks
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            in_child()
            code = 0 if faultprint.flush(10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert faultprint.flush(10)
    sites = [site.rsplit(".", 1)[-1] for site in receiver.call_sites()]
    assert sites == ["in_child", "in_parent"]  # each exactly once: no copies after fork


MULTIPROCESSING_SCRIPT = """
import multiprocessing, sys
import faultprint
faultprint.configure(endpoint=sys.argv[1], schedule_delay=60, use_global_provider=False)

@faultprint.observe(model="m")
def work(x):
    return x

def in_process():
    work(-1)

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=in_process)
    proc.start()
    proc.join()
    pool = ctx.Pool(2)
    pool.map(work, range(4))
    pool.close()
    pool.join()
    with ctx.Pool(2) as pool:  # leaving the block terminates the workers
        pool.map(work, range(4, 8))
    work(99)
"""


def test_multiprocessing_children_export_their_spans(receiver, tmp_path):
    # Process and Pool children end with os._exit, which skips atexit.
    script = tmp_path / "mp_app.py"
    script.write_text(textwrap.dedent(MULTIPROCESSING_SCRIPT))
    subprocess.run([PY, str(script), receiver.url], check=True, timeout=60)
    spans = receiver.received
    assert len(spans) == 10  # nothing lost, nothing exported twice
    assert {s["attributes"]["faultprint.call_site"] for s in spans} == {"__main__.work"}


SCRIPT = """
import os, signal, sys, time
import faultprint
mode = sys.argv[2]
if mode == "chain":
    def app_handler(signum, frame):
        print("app handler ran", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, app_handler)
faultprint.configure(endpoint=sys.argv[1], schedule_delay=60, use_global_provider=False)

@faultprint.observe(model="m")
def work():
    return "done"

work()
if mode == "exit":
    sys.exit(0)
print("ready", flush=True)
time.sleep(30)
"""


def run_script(receiver, mode: str) -> subprocess.CompletedProcess | subprocess.Popen:
    code = textwrap.dedent(SCRIPT)
    proc = subprocess.Popen([PY, "-c", code, receiver.url, mode], stdout=subprocess.PIPE, text=True)
    return proc


@pytest.mark.parametrize("mode", ["default", "chain"])
def test_sigterm_flushes_and_chains_the_previous_handler(receiver, mode):
    proc = run_script(receiver, mode)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    if mode == "chain":
        assert proc.returncode == 3 and "app handler ran" in out
    else:
        assert proc.returncode == -signal.SIGTERM
    assert [s["name"] for s in receiver.received] == ["chat m"]


LOCKED_SCRIPT = """
import os, signal, sys
import faultprint
from faultprint._config import STATE
faultprint.configure(endpoint=sys.argv[1], schedule_delay=60, use_global_provider=False)

@faultprint.observe(model="m")
def work():
    return "done"

work()
queue = STATE.queue
with queue._lock:  # as inside stats(), defer() or a drop count
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pause()
"""


def test_sigterm_inside_the_queues_own_lock_still_flushes_and_exits(receiver):
    # The handler runs on the main thread wherever the signal caught it, here
    # while that thread holds the export queue's lock.
    proc = subprocess.Popen([PY, "-c", textwrap.dedent(LOCKED_SCRIPT), receiver.url])
    try:
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            pytest.fail("the process hung in its SIGTERM handler")
    assert proc.returncode == -signal.SIGTERM
    assert [s["name"] for s in receiver.received] == ["chat m"]


def test_normal_exit_flushes(receiver):
    proc = run_script(receiver, "exit")
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert [s["attributes"]["faultprint.call_site"] for s in receiver.received] == ["__main__.work"]


def test_import_is_light_and_never_touches_the_collector():
    code = (
        "import sys, json, faultprint\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    heavy = {
        "faultprint_collector",
        "fastapi",
        "pydantic",
        "openai",
        "anthropic",
        "clickhouse_connect",
        "chdb",
        "jsonschema",
        "requests",
        "google",
    }
    assert not loaded & heavy, loaded & heavy


def test_sdk_source_never_imports_the_collector():
    root = os.path.dirname(faultprint.__file__)
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    assert "faultprint_collector" not in fh.read(), name


def test_flush_without_configuration_is_a_no_op():
    faultprint.shutdown()
    assert faultprint.flush(1) is True
    assert faultprint.stats()["queued"] == 0


GLOBAL_PROVIDER_SCRIPT = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import faultprint

app_exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "the-app"}))
provider.add_span_processor(SimpleSpanProcessor(app_exporter))
trace.set_tracer_provider(provider)

faultprint.configure(endpoint=sys.argv[1], handle_sigterm=False)
faultprint.configure(endpoint=sys.argv[1], handle_sigterm=False)  # twice: one processor

@faultprint.observe(model="m")
def work():
    return "ok"

with trace.get_tracer("app").start_as_current_span("http request"):
    work()
assert faultprint.flush(10)
print(sorted(s.name for s in app_exporter.get_finished_spans()))
"""


def test_reuses_the_applications_global_provider(receiver):
    # In a subprocess: a global provider can be set only once per process.
    out = subprocess.run(
        [PY, "-c", GLOBAL_PROVIDER_SCRIPT, receiver.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # the application's own exporter sees both spans ...
    assert out.strip() == "['chat m', 'http request']"
    # ... the collector only the model call, once, under the app's resource
    assert [s["name"] for s in receiver.received] == ["chat m"]


def test_a_lone_surrogate_in_a_failure_costs_no_span_of_the_batch(receiver):
    """Text UTF-8 cannot encode (a file name decoded with surrogateescape, half
    an emoji in a provider's error body) is escaped in the failure's status,
    message, detail and exception event: the batch holding it is exported whole."""
    import openai

    from tests.sdk.providers import OPENAI_KW, openai_client, responder

    faultprint.configure(endpoint=receiver.url, use_global_provider=False, handle_sigterm=False)
    name = b"report-\xff.pdf".decode("utf-8", "surrogateescape")

    @faultprint.observe(model="m")
    def ok() -> str:
        return "fine"

    @faultprint.observe(model="m")
    def read_document() -> str:
        raise FileNotFoundError(f"no such document: {name}")

    @faultprint.observe(model="m")
    def look_up() -> str:
        faultprint.record_failure("tool_error", {"tool": name}, message=f"unknown tool {name}")
        return "x"

    body = (
        b'{"error": {"message": "string starting with \'Summarise \\ud83d\' is not valid",'
        b' "type": "invalid_request_error", "param": "messages", "code": "invalid_value"}}'
    )
    client = faultprint.instrument_openai(openai_client(responder(400, body)))
    ok()
    with pytest.raises(FileNotFoundError):
        read_document()
    look_up()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**OPENAI_KW)
    ok()
    assert faultprint.flush(10)
    assert faultprint.stats()["export_failed"] == 0
    spans = {s["attributes"][A.FP_CALL_SITE].rsplit(".", 1)[-1]: s for s in receiver.received}
    assert len(receiver.received) == 5
    read = spans["read_document"]
    assert read["status"] == "FileNotFoundError: no such document: report-\\udcff.pdf"
    (event,) = read["events"]
    assert event["exception.message"] == "no such document: report-\\udcff.pdf"
    assert "report-\\udcff.pdf" in event["exception.stacktrace"]
    tool = spans["look_up"]
    assert tool["attributes"][A.FP_FAILURE_MESSAGE] == "unknown tool report-\\udcff.pdf"
    assert json.loads(tool["attributes"][A.FP_FAILURE_DETAIL]) == {"tool": "report-\\udcff.pdf"}
    assert tool["status"] == "tool_error: unknown tool report-\\udcff.pdf"
    provider = spans["chat"]
    assert "Summarise \\ud83d" in provider["status"]
    assert provider["attributes"][A.FP_ERROR_CODE] == "invalid_value"
