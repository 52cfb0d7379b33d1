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


@pytest.fixture(params=["faultprint-spans", "sdk-spans"])
def spans(request: pytest.FixtureRequest) -> Iterator[Spans]:
    """faultprint configured with its own provider and an in-memory exporter.

    Every test using it runs twice: with faultprint's own span class and
    with the OpenTelemetry SDK's, which must record the same thing.
    """
    exporter = InMemorySpanExporter()
    faultprint.configure(
        sdk_spans=request.param == "sdk-spans",
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


class OTLPReceiver:
    """A minimal OTLP/HTTP endpoint on loopback that records decoded spans."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        received: list[dict] = []
        self.received = received
        #: the HTTP headers of each request, names lower-cased
        headers: list[dict[str, str]] = []
        self.headers = headers

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                headers.append({k.lower(): v for k, v in self.headers.items()})
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportTraceServiceRequest.FromString(body)
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            attrs = {}
                            for kv in span.attributes:
                                value = kv.value
                                attrs[kv.key] = getattr(value, value.WhichOneof("value"))
                            received.append(
                                {
                                    "name": span.name,
                                    "attributes": attrs,
                                    "status": span.status.message,
                                    "events": [
                                        {kv.key: kv.value.string_value for kv in e.attributes}
                                        for e in span.events
                                    ],
                                }
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def call_sites(self) -> list[str]:
        return sorted(s["attributes"].get("faultprint.call_site", "") for s in self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    """A real OTLP/HTTP receiver on a free loopback port."""
    r = OTLPReceiver()
    yield r
    r.close()
    faultprint.shutdown(timeout=1.0)
