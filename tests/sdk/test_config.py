"""``configure()`` from arguments and the environment, and what ``stats()``
reports around ``shutdown()``.

A configure() that is refused, for an argument or for a variable of the
environment, must change nothing: the setup running before goes on exporting
with its own settings. A value the HTTP client could not send to, or a flag
variable misspelt, is refused at configure() rather than accepted and then
paid for with every span.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import faultprint
import pytest
from faultprint import attributes as A
from faultprint._config import STATE
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

#: every variable configure() reads
VARIABLES = (
    "FAULTPRINT_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "FAULTPRINT_ENVIRONMENT",
    "FAULTPRINT_RELEASE",
    "FAULTPRINT_API_KEY",
    "FAULTPRINT_SAMPLE_RATE",
    "FAULTPRINT_CAPTURE_CONTENT",
    "FAULTPRINT_SDK_SPANS",
    "FAULTPRINT_BACKGROUND_FINISH",
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    faultprint.shutdown(timeout=2.0)


@faultprint.observe(model="m", version="v1")
def answer(question: str) -> str:
    return "Paris."


class Running:
    """A pipeline set up before the configure() under test."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        faultprint.configure(
            endpoint="http://127.0.0.1:18140",
            exporter=self.exporter,
            sample_rate=1.0,
            capture_content=False,
            use_global_provider=False,
            handle_sigterm=False,
            schedule_delay=0.05,
        )
        self.setup = running_setup()

    def still_exports(self) -> None:
        """Nothing changed, and a call is still exported as before."""
        assert running_setup() == self.setup
        assert answer("capital of France?") == "Paris."
        assert faultprint.flush(5.0)
        (span,) = self.exporter.get_finished_spans()
        attributes = span.attributes or {}
        assert attributes["faultprint.model_version"] == "v1"
        # content capture, which the refused configure() asked for, stays off
        assert A.FP_OUTPUT_TEXT not in attributes and A.FP_INPUT_TEXT not in attributes
        stats = faultprint.stats()
        assert stats["exported"] == 1
        assert stats["endpoint"] == "http://127.0.0.1:18140/v1/traces"
        assert stats["sample_rate"] == 1.0


def running_setup() -> dict[str, Any]:
    """Everything configure() sets, by identity for the objects."""
    return {name: getattr(STATE, name) for name in STATE.__slots__}


@pytest.fixture
def running() -> Running:
    return Running()


BAD_ENDPOINTS = [
    ("127.0.0.1:18140", "does not start with http:// or https://"),
    ("", "empty; leave it None"),
    ("   ", "empty; leave it None"),
    ("http://", "no host"),
    ("https:///v1/traces", "no host"),
    ("http://:4318", "no host"),
    ("http://127.0.0.1:18140 x", "a space"),
    ("http://collector\n:4318", "a space or a control character"),
    ("http://collector:43l8", "Port could not be cast"),
    ("http://collector:99999", "Port out of range"),
    ("http://collector:0", "port 0"),
    ("http://[::1", "Invalid IPv6 URL"),
    ("ftp://collector:4318", "does not start with http:// or https://"),
    ("http://collector:4318?project=a", "query or fragment"),
    ("http://collector:4318#traces", "query or fragment"),
]


@pytest.mark.parametrize(("endpoint", "why"), BAD_ENDPOINTS, ids=[e for e, _ in BAD_ENDPOINTS])
def test_an_endpoint_the_client_cannot_send_to_is_refused_and_changes_nothing(
    running, endpoint, why
):
    with pytest.raises(faultprint.ConfigurationError) as refused:
        # the audit's case: valid options given alongside must not be applied
        faultprint.configure(endpoint=endpoint, sample_rate=0.5, capture_content=True)
    message = str(refused.value)
    assert message.startswith("faultprint.configure(): endpoint= takes a collector URL")
    assert "http://127.0.0.1:4318" in message and why in message
    running.still_exports()


BAD_VARIABLES = [
    ("FAULTPRINT_ENDPOINT", "localhost:4318", "a collector URL"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "a collector URL"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "a collector URL"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "localhost:4318", "a traces URL"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://:4318/v1/traces", "a traces URL"),
    ("FAULTPRINT_ENDPOINT", "http://collector:4318/v1/traces extra", "a collector URL"),
    ("FAULTPRINT_API_KEY", "fp_key1 fp_key2", "a key of printable ASCII characters without spaces"),
    (
        "FAULTPRINT_API_KEY",
        "fp_key1\nX-Other: 1",
        "a key of printable ASCII characters without spaces",
    ),
    ("FAULTPRINT_SAMPLE_RATE", "half", "a number in (0, 1]"),
    ("FAULTPRINT_SAMPLE_RATE", "0", "a number in (0, 1]"),
    ("FAULTPRINT_SAMPLE_RATE", "1.5", "a number in (0, 1]"),
    ("FAULTPRINT_SAMPLE_RATE", "nan", "a number in (0, 1]"),
    ("FAULTPRINT_CAPTURE_CONTENT", "ture", "1, true, yes or on, or 0, false, no or off"),
    ("FAULTPRINT_CAPTURE_CONTENT", "enabled", "1, true, yes or on"),
    ("FAULTPRINT_SDK_SPANS", "2", "1, true, yes or on"),
    ("FAULTPRINT_BACKGROUND_FINISH", "nope", "1, true, yes or on"),
]


@pytest.mark.parametrize(
    ("variable", "value", "takes"), BAD_VARIABLES, ids=[f"{v}={x!r}" for v, x, _ in BAD_VARIABLES]
)
def test_a_variable_it_cannot_use_is_refused_and_changes_nothing(
    running, monkeypatch, variable, value, takes
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(faultprint.ConfigurationError) as refused:
        # valid arguments alongside, which must not be applied either
        faultprint.configure(max_content_chars=10, refusal_detector=False, redact=False)
    message = str(refused.value)
    assert message.startswith(f"faultprint.configure(): environment variable {variable} takes")
    assert takes in message
    if variable == "FAULTPRINT_API_KEY":
        # a secret: what is wrong with it, not its text (errors reach logs)
        assert "fp_key1" not in message and "<hidden: " in message and "at position 7" in message
    else:
        assert repr(value.strip()) in message
    running.still_exports()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("api_key", ""),
        ("api_key", "fp_key1 fp_key2"),
        ("headers", {"x-team": "shop\r\nX-Other: 1"}),
        ("headers", {"x team": "shop"}),
        ("headers", {"x-team": " shop"}),
        ("max_queue_size", 0),
        ("capture_content", "false"),
    ],
)
def test_an_argument_it_cannot_use_is_refused_and_changes_nothing(running, name, value):
    with pytest.raises(faultprint.ConfigurationError, match=f"configure\\(\\): {name}= takes"):
        faultprint.configure(**{"sample_rate": 0.5, "max_content_chars": 10, name: value})
    running.still_exports()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("api_key", "fp_secret key"),
        ("api_key", "fp_secret_ключ"),
        ("api_key", "fp\u00a0secret"),
        ("headers", {"authorization": "Bearer fp_secret\n"}),
        ("headers", {"x team": "fp_secret"}),
    ],
)
def test_a_refused_secret_is_not_shown(running, name, value):
    """Errors reach logs and CI output: a key or header value is described, not
    quoted. A key outside ASCII was once taken, and then every export failed
    (the exporter's HTTP client encodes headers as Latin-1)."""
    with pytest.raises(faultprint.ConfigurationError) as refused:
        faultprint.configure(**{name: value})
    message = str(refused.value)
    assert "fp_secret" not in message and "<hidden: " in message
    running.still_exports()


def test_a_later_configure_that_picks_up_a_bad_variable_changes_nothing(running, monkeypatch):
    # The audit's case: the environment changed after the first configure().
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")
    with pytest.raises(faultprint.ConfigurationError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        faultprint.configure(handle_sigterm=False)
    running.still_exports()


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://127.0.0.1:18140 ", "http://127.0.0.1:18140/v1/traces"),
        ("\thttp://127.0.0.1:18140/\n", "http://127.0.0.1:18140/v1/traces"),
        ("HTTPS://collector.example/otlp/", "HTTPS://collector.example/otlp/v1/traces"),
        ("http://[::1]:4318", "http://[::1]:4318/v1/traces"),
        ("http://my_collector:4318/v1/traces", "http://my_collector:4318/v1/traces"),
        ("http://user:secret@collector:4318", "http://user:secret@collector:4318/v1/traces"),
    ],
)
def test_an_endpoint_is_taken_without_its_surrounding_whitespace(endpoint, url):
    faultprint.configure(endpoint=endpoint, use_global_provider=False, handle_sigterm=False)
    assert faultprint.stats()["endpoint"] == url


def test_variables_are_taken_without_their_surrounding_whitespace(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", " http://o:1/ \n")
    faultprint.configure(use_global_provider=False, handle_sigterm=False)
    assert faultprint.stats()["endpoint"] == "http://o:1/v1/traces"
    # the full traces URL is used as is, a query included
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:2/custom?tenant=a\n")
    faultprint.configure(use_global_provider=False, handle_sigterm=False)
    assert faultprint.stats()["endpoint"] == "http://t:2/custom?tenant=a"
    # a blank variable counts as unset
    monkeypatch.setenv("FAULTPRINT_ENDPOINT", "  ")
    faultprint.configure(use_global_provider=False, handle_sigterm=False)
    assert faultprint.stats()["endpoint"] == "http://t:2/custom?tenant=a"


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("TRUE", True), (" yes ", True), ("On", True), ("0", False), ("off", False)],
)
def test_flag_variables_take_the_usual_spellings(monkeypatch, value, on):
    for variable in ("FAULTPRINT_CAPTURE_CONTENT", "FAULTPRINT_SDK_SPANS"):
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("FAULTPRINT_BACKGROUND_FINISH", value)
    faultprint.configure(exporter=InMemorySpanExporter(), use_global_provider=False)
    assert (STATE.capture_content, STATE.sdk_spans, STATE.background_finish) == (on, on, on)


def test_sample_rate_from_the_environment(monkeypatch):
    monkeypatch.setenv("FAULTPRINT_SAMPLE_RATE", " 0.25 ")
    faultprint.configure(exporter=InMemorySpanExporter(), use_global_provider=False)
    assert faultprint.stats()["sample_rate"] == 0.25
    faultprint.configure(exporter=InMemorySpanExporter(), sample_rate=0.5)  # the argument wins
    assert faultprint.stats()["sample_rate"] == 0.5


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_an_api_key_is_sent_without_its_surrounding_whitespace(monkeypatch, receiver, source):
    # A key read from a file keeps its line break; sent as is, it would make
    # every export fail in the HTTP client.
    key = "fp_live_1234\n"
    if source == "environment":
        monkeypatch.setenv("FAULTPRINT_API_KEY", key)
    try:
        faultprint.configure(
            endpoint=receiver.url,
            api_key=key if source == "argument" else None,
            use_global_provider=False,
            handle_sigterm=False,
        )
        answer("capital of France?")
        assert faultprint.flush(10.0)
    finally:
        faultprint.shutdown()
    assert [h["authorization"] for h in receiver.headers] == ["Bearer fp_live_1234"]
    assert faultprint.stats()["exported"] == 1


def test_while_disabled_the_environment_endpoint_is_not_used_but_an_argument_is_checked(
    monkeypatch,
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")
    faultprint.configure(enabled=False)
    assert answer("capital of France?") == "Paris."
    with pytest.raises(faultprint.ConfigurationError, match="endpoint= takes"):
        faultprint.configure(enabled=False, endpoint="localhost:4318")


BAD_ENVIRONMENT_SCRIPT = """
import json, sys, faultprint

@faultprint.observe(model="m")
def answer():
    return "Paris."

with faultprint.call(model="m") as call:
    call.set_output("Paris.")
result = {"answer": answer()}
try:
    faultprint.configure(handle_sigterm=False)
except faultprint.ConfigurationError as exc:
    result["refused"] = str(exc)
result["after"] = answer()
print(json.dumps(result))
"""


def test_the_environment_is_read_by_configure_never_by_a_decorated_call():
    # Bad values are there from the start: decorating and calling must work,
    # configure() is where they are reported.
    env = {
        "PATH": "/usr/bin:/bin",
        "FAULTPRINT_ENDPOINT": "localhost:4318",
        "FAULTPRINT_CAPTURE_CONTENT": "ture",
        "FAULTPRINT_SAMPLE_RATE": "half",
        "FAULTPRINT_SDK_SPANS": "maybe",
        "FAULTPRINT_BACKGROUND_FINISH": "2",
    }
    out = subprocess.run(
        [sys.executable, "-c", BAD_ENVIRONMENT_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    result = json.loads(out.stdout)
    assert result["answer"] == result["after"] == "Paris."
    assert result["refused"].startswith("faultprint.configure(): environment variable FAULTPRINT_")


# --- stats() around shutdown() ---------------------------------------------------------------


def _own_pipeline() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=exporter, use_global_provider=False, handle_sigterm=False, schedule_delay=0.05
    )
    return exporter


def test_stats_after_shutdown_report_the_pipeline_it_stopped():
    exporter = _own_pipeline()
    answer("a")
    answer("b")
    faultprint.shutdown()
    stats = faultprint.stats()
    assert stats["exported"] == len(exporter.get_finished_spans()) == 2
    assert stats["export_batches"] >= 1 and stats["dropped"] == 0


def test_a_call_that_ends_after_shutdown_is_counted_as_dropped():
    exporter = _own_pipeline()

    @faultprint.observe(model="m")
    def last_call() -> str:
        faultprint.shutdown()  # another thread, or an exit hook, shuts down meanwhile
        return "late"

    assert last_call() == "late"
    stats = faultprint.stats()
    assert stats["dropped_after_shutdown"] == stats["dropped"] == 1
    assert stats["exported"] == 0 and exporter.get_finished_spans() == ()


def test_on_the_applications_provider_calls_after_shutdown_are_counted_as_dropped():
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    faultprint.configure(tracer_provider=provider, exporter=exporter, handle_sigterm=False)
    answer("before")
    faultprint.shutdown()
    # the application's provider goes on tracing: faultprint's spans go nowhere, counted
    answer("after")
    answer("after")
    stats = faultprint.stats()
    assert stats["exported"] == 1 and stats["dropped_after_shutdown"] == 2
    assert [s.name for s in exporter.get_finished_spans()] == ["chat m"]
    # the application flushing its provider does not wait on the stopped queue
    assert provider.force_flush(timeout_millis=500) is True


def test_a_refused_configure_after_shutdown_keeps_the_counters():
    _own_pipeline()
    answer("a")
    faultprint.shutdown()
    with pytest.raises(faultprint.ConfigurationError):
        faultprint.configure(endpoint="localhost:4318")
    assert faultprint.stats()["exported"] == 1


def test_the_next_configure_counts_afresh_and_detaches_the_stopped_pipeline():
    provider = TracerProvider()
    faultprint.configure(
        tracer_provider=provider, exporter=InMemorySpanExporter(), handle_sigterm=False
    )
    answer("a")
    faultprint.shutdown()
    assert faultprint.stats()["exported"] == 1
    exporter = _own_pipeline()  # on another provider
    assert all(
        n == 0 for k, n in faultprint.stats().items() if k not in ("endpoint", "sample_rate")
    )
    # the stopped queue is let go: what still reaches the old provider counts nowhere
    assert provider._faultprint_slot.target is None
    answer("b")
    assert faultprint.flush(5.0)
    stats = faultprint.stats()
    assert stats["exported"] == 1 and stats["dropped"] == 0
    assert len(exporter.get_finished_spans()) == 1


def test_configure_on_the_same_provider_after_shutdown_exports_again():
    provider = TracerProvider()
    first = InMemorySpanExporter()
    faultprint.configure(tracer_provider=provider, exporter=first, handle_sigterm=False)
    faultprint.shutdown()
    answer("dropped")
    second = InMemorySpanExporter()
    faultprint.configure(tracer_provider=provider, exporter=second, handle_sigterm=False)
    answer("exported")
    assert faultprint.flush(5.0)
    assert len(second.get_finished_spans()) == 1 and first.get_finished_spans() == ()
    assert faultprint.stats()["exported"] == 1
    assert faultprint.stats()["dropped_after_shutdown"] == 0
