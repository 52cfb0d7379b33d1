"""``configure`` / ``flush`` / ``shutdown`` / ``stats`` and the process hooks.

faultprint's runtime state lives in one module-level object, ``STATE``; the
decorator reads it on every call, so re-configuration (a new endpoint, a new
sampling rate) takes effect for functions decorated before it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExporter

from faultprint import attributes as A
from faultprint._export import (
    EXPORTER_LOGS,
    DiscardingExporter,
    ExportQueue,
    empty_stats,
    slot_for,
)
from faultprint._options import (
    ConfigurationError,
    check_count,
    check_flag,
    check_headers,
    check_rate,
    check_seconds,
    check_text,
    refused,
)
from faultprint._redact import default_redactor
from faultprint._span import SpanStarter

__all__ = ["STATE", "ConfigurationError", "configure", "flush", "shutdown", "stats"]

_log = logging.getLogger("faultprint")

SDK_VERSION = "0.1.0"
DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
TRACES_PATH = "/v1/traces"


class _State:
    """Everything the hot path needs, read through one global."""

    __slots__ = (
        "background_finish",
        "capture_content",
        "configured",
        "endpoint",
        "extra_attrs",
        "max_content_chars",
        "owned_provider",
        "provider",
        "queue",
        "redact",
        "refusal_detector",
        "sample_rate",
        "sdk_spans",
        "starter",
        "tracer",
    )

    def __init__(self) -> None:
        # Before configure(): spans go to whatever global provider the
        # application sets (a no-op until then), as the OTel API does.
        self.tracer: Any = trace.get_tracer("faultprint", SDK_VERSION)
        #: starts faultprint's own span objects on an SDK tracer (None: the
        #: tracer's start_span is used); see faultprint._span
        self.starter: SpanStarter | None = None
        self.sdk_spans = False
        #: client integrations end their spans on the export thread (see
        #: ExportQueue.defer)
        self.background_finish = True
        self.provider: Any = None
        self.owned_provider = False
        self.queue: ExportQueue | None = None
        self.sample_rate = 1.0
        self.capture_content = False
        self.max_content_chars = 4096
        self.redact: Callable[[str], str] | None = default_redactor
        self.refusal_detector = True
        self.endpoint: str | None = None
        #: added to every span when the application's provider (and so its
        #: resource) is used and lacks faultprint's environment / release
        self.extra_attrs: dict[str, Any] = {}
        self.configured = False

    def use_tracer(self, tracer: Any) -> None:
        """Make ``tracer`` the one faultprint's spans start on."""
        self.tracer = tracer
        self.starter = None if self.sdk_spans else SpanStarter.for_tracer(tracer)


STATE = _State()
_config_lock = threading.RLock()
_hooks_installed = False
_previous_sigterm: Any = None


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def _env_float(name: str) -> float | None:
    value = _env(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        _log.warning("faultprint: ignoring %s=%r (not a number)", name, value)
        return None


def resolve_traces_url(endpoint: str | None) -> str:
    """Traces URL from an explicit base URL or the environment.

    Precedence: ``endpoint`` argument, ``FAULTPRINT_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (a full URL, used as is),
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, then ``http://127.0.0.1:4318``.
    """
    base = endpoint or _env("FAULTPRINT_ENDPOINT")
    if base is None:
        full = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if full is not None:
            return full
        base = _env("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    if not base.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"faultprint endpoint must start with http:// or https://, got {base!r}"
        )
    base = base.rstrip("/")
    if base.endswith(TRACES_PATH):
        return base
    return base + TRACES_PATH


def _build_exporter_factory(
    url: str, headers: Mapping[str, str] | None, timeout: float, compression: str | None
) -> Callable[[], SpanExporter]:
    def factory() -> SpanExporter:
        # Imported here: the protobuf exporter is the heaviest import of the
        # SDK and is only needed once the first span is exported.
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        EXPORTER_LOGS.install(
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
            "opentelemetry.exporter.otlp.common.http",
        )
        comp = Compression.Gzip if compression == "gzip" else Compression.NoCompression
        return OTLPSpanExporter(
            endpoint=url,
            headers=dict(headers) if headers else None,
            timeout=timeout,
            compression=comp,
        )

    return factory


#: the values ``compression=`` takes
_COMPRESSIONS = (None, "gzip", "none")


def _check_arguments(**args: Any) -> None:
    """Raise :class:`ConfigurationError` for an argument of ``configure()`` it cannot use."""
    where = "faultprint.configure()"
    check_text(
        where,
        endpoint=args["endpoint"],
        service=args["service"],
        environment=args["environment"],
        release=args["release"],
        api_key=args["api_key"],
    )
    check_headers(where, args["headers"])
    check_rate(where, "sample_rate", args["sample_rate"])
    check_flag(
        where,
        refusal_detector=args["refusal_detector"],
        use_global_provider=args["use_global_provider"],
        handle_sigterm=args["handle_sigterm"],
        enabled=args["enabled"],
    )
    check_flag(
        where,
        optional=True,
        capture_content=args["capture_content"],
        sdk_spans=args["sdk_spans"],
        background_finish=args["background_finish"],
    )
    check_count(where, "max_content_chars", args["max_content_chars"], 0)
    check_count(where, "max_queue_size", args["max_queue_size"], 1)
    check_count(where, "max_export_batch_size", args["max_export_batch_size"], 1)
    check_seconds(where, "export_timeout", args["export_timeout"])
    check_seconds(where, "schedule_delay", args["schedule_delay"])
    redact = args["redact"]
    if not (redact is None or isinstance(redact, bool) or callable(redact)):
        raise refused(where, "redact", "True, False, None or a function of a string", redact)
    if args["compression"] not in _COMPRESSIONS:
        raise refused(where, "compression", "'gzip', 'none' or None", args["compression"])
    provider = args["tracer_provider"]
    if provider is not None and not (
        callable(getattr(provider, "get_tracer", None))
        and callable(getattr(provider, "add_span_processor", None))
    ):
        raise refused(
            where,
            "tracer_provider",
            "an OpenTelemetry SDK TracerProvider (opentelemetry.sdk.trace.TracerProvider)",
            provider,
        )
    exporter = args["exporter"]
    if exporter is not None and not callable(getattr(exporter, "export", None)):
        raise refused(where, "exporter", "an OpenTelemetry SpanExporter", exporter)


def configure(
    endpoint: str | None = None,
    *,
    service: str | None = None,
    environment: str | None = None,
    release: str | None = None,
    headers: Mapping[str, str] | None = None,
    api_key: str | None = None,
    sample_rate: float | None = None,
    capture_content: bool | None = None,
    max_content_chars: int = 4096,
    redact: Callable[[str], str] | bool | None = True,
    refusal_detector: bool = True,
    tracer_provider: Any = None,
    use_global_provider: bool = True,
    exporter: SpanExporter | None = None,
    export_timeout: float = 10.0,
    compression: str | None = None,
    max_queue_size: int = 4096,
    max_export_batch_size: int = 512,
    schedule_delay: float = 0.5,
    handle_sigterm: bool = True,
    enabled: bool = True,
    sdk_spans: bool | None = None,
    background_finish: bool | None = None,
) -> None:
    """Set up export of faultprint spans; safe to call again to reconfigure.

    Every argument left ``None`` falls back to the environment:
    ``FAULTPRINT_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``,
    ``FAULTPRINT_ENVIRONMENT``, ``FAULTPRINT_RELEASE``, ``FAULTPRINT_API_KEY``
    (sent as ``Authorization: Bearer <key>``), ``FAULTPRINT_SAMPLE_RATE``,
    ``FAULTPRINT_CAPTURE_CONTENT``.

    Provider: ``tracer_provider`` if given; else, when ``use_global_provider``
    and the application already set an SDK ``TracerProvider`` globally, that
    one (its resource then describes the service; faultprint adds one span
    processor that forwards only model-call spans); else faultprint creates
    its own provider, which it does not make global, so the application's
    other spans are not sent to the collector.

    ``sample_rate`` r in (0, 1]: failures are always exported, successes with
    probability r, carrying ``faultprint.sample_weight`` = 1/r.

    Spans: on an SDK tracer, faultprint records each call in its own
    implementation of the span API (``faultprint._span.ModelCallSpan``), which
    checks attributes at a fraction of the SDK span's cost and goes through
    the provider's sampler, limits and processors all the same.
    ``sdk_spans=True`` (or ``FAULTPRINT_SDK_SPANS=1``) uses the SDK's own
    span class instead.

    Client integrations (``instrument_openai`` / ``instrument_anthropic``)
    hand a returned call's span to the export thread, which reads the
    response, records what it finds and ends the span with the end time
    taken at the return: the calling thread pays only for starting the span.
    Such spans reach span processors after that moment (``flush()`` waits
    for them). ``background_finish=False`` (or
    ``FAULTPRINT_BACKGROUND_FINISH=0``) ends them on the calling thread.
    """
    _check_arguments(
        endpoint=endpoint,
        service=service,
        environment=environment,
        release=release,
        headers=headers,
        api_key=api_key,
        sample_rate=sample_rate,
        capture_content=capture_content,
        max_content_chars=max_content_chars,
        redact=redact,
        refusal_detector=refusal_detector,
        tracer_provider=tracer_provider,
        use_global_provider=use_global_provider,
        exporter=exporter,
        export_timeout=export_timeout,
        compression=compression,
        max_queue_size=max_queue_size,
        max_export_batch_size=max_export_batch_size,
        schedule_delay=schedule_delay,
        handle_sigterm=handle_sigterm,
        enabled=enabled,
        sdk_spans=sdk_spans,
        background_finish=background_finish,
    )
    with _config_lock:
        rate = sample_rate if sample_rate is not None else _env_float("FAULTPRINT_SAMPLE_RATE")
        if rate is None:
            rate = 1.0
        if not 0.0 < float(rate) <= 1.0:
            _log.warning("faultprint: FAULTPRINT_SAMPLE_RATE out of (0, 1]; using 1.0")
            rate = 1.0

        _shutdown_pipeline(timeout=2.0)

        if capture_content is None:
            capture_content = _env_bool("FAULTPRINT_CAPTURE_CONTENT", False)
        STATE.sample_rate = float(rate)
        STATE.capture_content = bool(capture_content)
        STATE.max_content_chars = int(max_content_chars)
        if redact is True:
            STATE.redact = default_redactor
        elif redact is False or redact is None:
            STATE.redact = None
        else:
            STATE.redact = redact
        STATE.refusal_detector = bool(refusal_detector)
        if sdk_spans is None:
            sdk_spans = _env_bool("FAULTPRINT_SDK_SPANS", False)
        STATE.sdk_spans = bool(sdk_spans)
        if background_finish is None:
            background_finish = _env_bool("FAULTPRINT_BACKGROUND_FINISH", True)
        STATE.background_finish = bool(background_finish)

        if not enabled:
            from opentelemetry.trace import NoOpTracer

            STATE.use_tracer(NoOpTracer())
            STATE.provider = None
            STATE.queue = None
            STATE.configured = True
            return

        url = resolve_traces_url(endpoint)
        all_headers: dict[str, str] = dict(headers or {})
        key = api_key or _env("FAULTPRINT_API_KEY")
        if key and not any(k.lower() == "authorization" for k in all_headers):
            all_headers["Authorization"] = f"Bearer {key}"
        if exporter is not None:
            fixed = exporter
            factory: Callable[[], SpanExporter] = lambda: fixed  # noqa: E731
        else:
            factory = _build_exporter_factory(url, all_headers, export_timeout, compression)
        queue = ExportQueue(
            factory,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay=schedule_delay,
        )

        provider = tracer_provider
        owned = False
        if provider is None and use_global_provider:
            from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider

            current = trace.get_tracer_provider()
            if isinstance(current, SDKTracerProvider):
                provider = current
        extra: dict[str, Any] = {}
        if provider is None:
            provider = _new_provider(service, environment, release)
            owned = True
        else:
            resource_attrs = getattr(getattr(provider, "resource", None), "attributes", {}) or {}
            wanted = {
                "service.name": service,
                "deployment.environment.name": environment or _env("FAULTPRINT_ENVIRONMENT"),
                "service.version": release or _env("FAULTPRINT_RELEASE"),
            }
            for key, value in wanted.items():
                if value and resource_attrs.get(key) != value:
                    extra[key] = value
            if service and resource_attrs.get("service.name") not in (None, service):
                _log.info(
                    "faultprint: using the application's TracerProvider; its resource names "
                    "the service %r, spans also carry service.name=%r",
                    resource_attrs.get("service.name"),
                    service,
                )
        STATE.extra_attrs = extra
        slot_for(provider).target = queue

        STATE.provider = provider
        STATE.owned_provider = owned
        STATE.queue = queue
        STATE.endpoint = url
        STATE.use_tracer(provider.get_tracer("faultprint", SDK_VERSION))
        STATE.configured = True
        _install_hooks(handle_sigterm)


def _new_provider(service: str | None, environment: str | None, release: str | None) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider

    attrs: dict[str, Any] = {}
    service = service or _env("OTEL_SERVICE_NAME")
    if service:
        attrs["service.name"] = service
    environment = environment or _env("FAULTPRINT_ENVIRONMENT")
    if environment:
        attrs["deployment.environment.name"] = environment
    release = release or _env("FAULTPRINT_RELEASE")
    if release:
        attrs["service.version"] = release
    attrs[A.FP_CONTRACT] = A.CONTRACT_VERSION
    # shutdown_on_exit=False: faultprint's own atexit hook flushes with a
    # bounded timeout, so a dead collector cannot hold up interpreter exit.
    return SDKTracerProvider(resource=Resource.create(attrs), shutdown_on_exit=False)


#: end spans still open (background calls) before a final flush; see add_closer
_closers: list[Callable[[], None]] = []


def add_closer(close: Callable[[], None]) -> None:
    """Have ``close()`` end spans still open before the final flush of a
    shutdown, of the process's exit, or of a SIGTERM that ends the process."""
    if close not in _closers:
        _closers.append(close)


def _close_open_spans() -> None:
    for close in list(_closers):
        try:
            close()
        except Exception:
            _log.debug("faultprint: open spans not ended", exc_info=True)


def _shutdown_pipeline(timeout: float) -> None:
    queue = STATE.queue
    if queue is None:
        return
    _close_open_spans()
    STATE.queue = None
    # The slot still feeds the queue while it shuts down: the spans it
    # finishes on its thread during the final flush must reach it.
    queue.shutdown(timeout)
    provider = STATE.provider
    slot = getattr(provider, "_faultprint_slot", None)
    if slot is not None and slot.target is queue:
        slot.target = None


def flush(timeout: float = 10.0) -> bool:
    """Export every span ended so far; True when done within ``timeout`` seconds."""
    try:
        queue = STATE.queue
        return True if queue is None else queue.flush(timeout)
    except Exception:
        _log.debug("faultprint: flush failed", exc_info=True)
        return False


def shutdown(timeout: float = 5.0) -> None:
    """Flush (bounded by ``timeout``) and stop exporting; spans afterwards go nowhere."""
    with _config_lock:
        try:
            _shutdown_pipeline(timeout)
        except Exception:
            _log.debug("faultprint: shutdown failed", exc_info=True)
        from opentelemetry.trace import NoOpTracer

        if STATE.owned_provider:
            STATE.use_tracer(NoOpTracer())
        STATE.provider = None
        STATE.owned_provider = False


def stats() -> dict[str, Any]:
    """Export counters of the current configuration.

    Keys: ``exported``, ``export_failed``, ``dropped`` (queue full or after
    shutdown), ``dropped_queue_full``, ``dropped_after_shutdown``,
    ``sampled_out``, ``duplicates_dropped`` (spans of other
    instrumentations that recorded a faultprint call's API call again, see
    ``ProcessorSlot``), ``queued``,
    ``finishing`` (integration spans the export thread has yet to end),
    ``export_batches``, plus ``endpoint`` and ``sample_rate``.
    """
    queue = STATE.queue
    out: dict[str, Any] = queue.stats() if queue is not None else empty_stats()
    out["endpoint"] = STATE.endpoint
    out["sample_rate"] = STATE.sample_rate
    return out


# --- process hooks -----------------------------------------------------------
def _at_exit() -> None:
    queue = STATE.queue
    if queue is not None:
        _close_open_spans()
        with contextlib.suppress(Exception):
            queue.shutdown(2.0)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    queue = STATE.queue
    previous = _previous_sigterm
    if queue is not None:
        if not callable(previous) and previous != signal.SIG_IGN:
            # The process ends with this signal (below), without running atexit.
            _close_open_spans()
        with contextlib.suppress(Exception):
            queue.flush(2.0)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:
        # Default action: terminate, as the application would have without us.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _install_hooks(handle_sigterm: bool) -> None:
    global _hooks_installed, _previous_sigterm
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if not handle_sigterm:
        return
    try:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None:  # installed from C; we cannot chain it
            return
        _previous_sigterm = previous
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread / unsupported platform
        pass


def noop_exporter() -> SpanExporter:
    """An exporter that discards spans (benchmarks)."""
    return DiscardingExporter()
