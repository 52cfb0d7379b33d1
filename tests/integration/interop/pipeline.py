"""The export pipeline of an interop application: faultprint's, or a plain
OpenTelemetry SDK provider exporting OTLP/HTTP for another instrumentation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def setup_pipeline(mode: str, endpoint: str) -> tuple[Any, Callable[[], bool]]:
    """(tracer provider to instrument with, or None for faultprint; flush-and-stop)."""
    if mode == "faultprint":
        import faultprint

        faultprint.configure(endpoint=endpoint, service=f"shop-{mode}", schedule_delay=0.1)
        return None, lambda: faultprint.flush(10)
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"shop-{mode}", "deployment.environment": "test"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)

    def done() -> bool:
        ok = provider.force_flush(10_000)
        provider.shutdown()
        return ok

    return provider, done
