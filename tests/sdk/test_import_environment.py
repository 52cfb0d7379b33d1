"""OpenTelemetry's span limit variables: one its SDK cannot use never makes
``import faultprint`` fail, and ``configure()`` refuses it as a
``ConfigurationError`` naming it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import faultprint
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

PY = sys.executable

BEFORE_AND_AFTER_CONFIGURE = """
import faultprint

@faultprint.observe(model="m")
def work():
    return "done"

print(work(), flush=True)  # before configure(): the no-op API
try:
    faultprint.configure(handle_sigterm=False)
except faultprint.ConfigurationError as exc:
    print("refused:", exc, flush=True)
print(work(), faultprint.stats()["exported"], flush=True)
"""


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # read by OpenTelemetry's SDK as it is imported
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "abc"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "-1"),
        # read when a TracerProvider is created
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-5"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "1.5"),
    ],
)
def test_a_bad_span_limit_never_breaks_import_and_configure_names_it(variable, value):
    env = {**os.environ, variable: value}
    out = subprocess.run(
        [PY, "-c", textwrap.dedent(BEFORE_AND_AFTER_CONFIGURE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    first, refused, after = out.stdout.splitlines()
    assert first == "done"
    assert refused.startswith("refused: faultprint.configure(): environment variable ")
    assert variable in refused and repr(value) in refused
    assert after == "done 0"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-5"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "ten"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "1e3"),
    ],
)
def test_configure_refuses_a_bad_span_limit_and_keeps_the_running_setup(
    monkeypatch, variable, value
):
    exporter = InMemorySpanExporter()
    faultprint.configure(exporter=exporter, use_global_provider=False, handle_sigterm=False)

    @faultprint.observe(model="m")
    def work() -> str:
        return "done"

    monkeypatch.setenv(variable, value)
    with pytest.raises(faultprint.ConfigurationError, match=variable):
        faultprint.configure(use_global_provider=False, handle_sigterm=False)
    assert work() == "done"
    assert faultprint.flush(5)
    assert len(exporter.get_finished_spans()) == 1  # still exporting as it was
    faultprint.shutdown()


@pytest.mark.parametrize("value", ["", "  ", "0", " 64 "])
def test_span_limits_the_sdk_accepts_are_accepted(monkeypatch, value):
    for variable in ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"):
        monkeypatch.setenv(variable, value)
    faultprint.configure(
        exporter=InMemorySpanExporter(), use_global_provider=False, handle_sigterm=False
    )
    faultprint.shutdown()


GLOBAL_PROVIDER_BEFORE_CONFIGURE = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import faultprint

@faultprint.observe(model="m")
def work():
    return "done"

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
work()
print([s.name for s in exporter.get_finished_spans()])
"""


def test_calls_before_configure_go_to_the_global_provider():
    out = subprocess.run(
        [PY, "-c", textwrap.dedent(GLOBAL_PROVIDER_BEFORE_CONFIGURE)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "['chat m']"
