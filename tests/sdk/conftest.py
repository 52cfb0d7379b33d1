"""Fixtures for SDK tests: a real SDK pipeline ending in an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import faultprint
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class Spans:
    """Spans faultprint exported, read after a flush."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        assert faultprint.flush(5.0)
        return list(self.exporter.get_finished_spans())

    def one(self) -> ReadableSpan:
        spans = self.all()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def clear(self) -> None:
        faultprint.flush(5.0)
        self.exporter.clear()


@pytest.fixture
def spans() -> Iterator[Spans]:
    """faultprint configured with its own provider and an in-memory exporter."""
    exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=exporter,
        service="sdk-tests",
        environment="test",
        release="1.2.3",
        use_global_provider=False,
        handle_sigterm=False,
        schedule_delay=0.05,
    )
    yield Spans(exporter)
    faultprint.shutdown(timeout=2.0)
