"""``configure`` / ``flush`` / ``shutdown`` / ``stats`` and the process hooks.

faultprint's runtime state lives in one module-level object, ``STATE``; the
decorator reads it on every call, so re-configuration (a new endpoint, a new
sampling rate) takes effect for functions decorated before it.

OpenTelemetry's SDK (and with it ``faultprint._export`` and
``faultprint._span``) is imported by ``configure()``, not when faultprint is
imported: the SDK reads a span limit from the environment as it is imported
and raises for a value it cannot use, which must not make ``import
faultprint`` fail. Until ``configure()``, faultprint's spans go through the
OpenTelemetry API to the global provider; ``configure()`` refuses such a
variable with a :class:`ConfigurationError` naming it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from faultprint import attributes as A
from faultprint._options import (
    ConfigurationError,
    Hidden,
    check_count,
    check_flag,
    check_headers,
    check_rate,
    check_seconds,
    check_text,
    is_token,
    refused,
    refused_variable,
    url_problem,
)
from faultprint._redact import default_redactor
from faultprint._stats import empty_stats

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from faultprint._export import ExportQueue, ProcessorSlot
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
        self.starter = None if self.sdk_spans else _starter_for(tracer)


def _starter_for(tracer: Any) -> SpanStarter | None:
    # Only an SDK tracer gets one, and there is none before the SDK is
    # imported: a no-op tracer (enabled=False, shutdown()) must not import it.
    if "opentelemetry.sdk.trace" not in sys.modules:
        return None
    from faultprint._span import SpanStarter

    return SpanStarter.for_tracer(tracer, count_not_recorded)


def count_not_recorded() -> None:
    """Count a call the provider's sampler did not record (``stats()["not_recorded"]``)."""
    queue = STATE.queue
    if queue is not None:
        queue.count_not_recorded()


STATE = _State()
_config_lock = threading.RLock()
_hooks_installed = False
_previous_sigterm: Any = None
#: the pipeline shutdown() stopped: its queue, and the provider slot still
#: feeding it (see _shutdown_pipeline)
_stopped: tuple[ExportQueue, ProcessorSlot | None] | None = None


#: how configure()'s refusals name their origin
_WHERE = "faultprint.configure()"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_FLAG_FORMS = "1, true, yes or on, or 0, false, no or off"
_BASE_URL_FORM = f"a collector URL http(s)://host[:port][/path], such as {DEFAULT_ENDPOINT}"
_FULL_URL_FORM = (
    f"a traces URL http(s)://host[:port]/path, used as is, such as {DEFAULT_ENDPOINT}{TRACES_PATH}"
)
_KEY_FORM = "a key of printable ASCII characters without spaces"

#: where the endpoint comes from when configure() is given none, first found
#: first; True: a full traces URL, used as is
_ENDPOINT_VARIABLES = (
    ("FAULTPRINT_ENDPOINT", False),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", True),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", False),
)


def _env(name: str) -> str | None:
    # Surrounding whitespace is ignored (a value pasted with its line break),
    # and a blank variable counts as unset, as in shells and compose files.
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _env_flag(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    # "ture" must not quietly mean off, nor "enabled" on.
    raise refused_variable(_WHERE, name, _FLAG_FORMS, value)


#: OpenTelemetry's span limit variables. Its SDK raises ValueError for a value
#: other than a non-negative integer or a blank: for the first when it is
#: imported, for any when a TracerProvider is created without limits.
_SPAN_LIMIT_VARIABLES = (
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
)
_LIMIT_FORM = "a non-negative integer (blank: the default)"


def _check_span_limits() -> None:
    """Refuse a span limit variable as OpenTelemetry's SDK would, but as a
    :class:`ConfigurationError` naming it, before the SDK raises ValueError."""
    for name in _SPAN_LIMIT_VARIABLES:
        value = os.environ.get(name)
        if value is None:
            continue
        # The SDK's reading: int() of the stripped value; blank is its default.
        text = value.strip()
        if not text:
            continue
        try:
            limit = int(text)
        except ValueError:
            limit = -1
        if limit < 0:
            raise refused_variable(_WHERE, name, _LIMIT_FORM, value)


def _sdk_refused(exc: ValueError) -> ConfigurationError:
    """A ValueError of OpenTelemetry's SDK about its environment, as faultprint's refusal."""
    return ConfigurationError(f"{_WHERE}: OpenTelemetry's SDK refused its environment: {exc}")


def _env_rate(name: str) -> float | None:
    value = _env(name)
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not 0.0 < rate <= 1.0:  # NaN included
        raise refused_variable(_WHERE, name, "a number in (0, 1]", value)
    return rate


def _join_traces_path(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def resolve_traces_url(endpoint: str | None) -> str:
    """Traces URL from an explicit base URL or the environment.

    Precedence: ``endpoint`` argument, ``FAULTPRINT_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (a full URL, used as is),
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, then ``http://127.0.0.1:4318``.
    Surrounding whitespace is ignored; a URL the HTTP client could not send
    to (no ``http(s)://``, no host, a bad port, a space inside, a query a
    base URL cannot have) raises :class:`ConfigurationError` naming the
    argument or variable it came from.
    """
    if endpoint is not None:
        base = endpoint.strip()
        problem = url_problem(base, full=False)
        if problem is not None:
            if not base:
                problem = "empty; leave it None to use the environment"
            raise refused(_WHERE, "endpoint", _BASE_URL_FORM, endpoint, problem)
        return _join_traces_path(base)
    for variable, full in _ENDPOINT_VARIABLES:
        value = _env(variable)
        if value is None:
            continue
        problem = url_problem(value, full=full)
        if problem is not None:
            form = _FULL_URL_FORM if full else _BASE_URL_FORM
            raise refused_variable(_WHERE, variable, form, value, problem)
        return value if full else _join_traces_path(value)
    return _join_traces_path(DEFAULT_ENDPOINT)


def _resolve_api_key(api_key: str | None) -> str | None:
    if api_key is not None:
        key = api_key.strip()
        if not key:
            raise refused(
                _WHERE, "api_key", _KEY_FORM, api_key, "empty; leave it None to use the environment"
            )
        if not is_token(key):
            # A line break would end the Authorization header: every export
            # would fail in the HTTP client. The key is not shown: errors
            # reach logs and CI output.
            raise refused(_WHERE, "api_key", _KEY_FORM, Hidden(key))
        return key
    from_env = _env("FAULTPRINT_API_KEY")
    if from_env is not None and not is_token(from_env):
        raise refused_variable(_WHERE, "FAULTPRINT_API_KEY", _KEY_FORM, Hidden(from_env))
    return from_env


@dataclass(frozen=True, slots=True)
class _Settings:
    """configure()'s arguments completed from the environment and checked:
    everything that can refuse a configuration, before anything changes."""

    url: str | None  # None: export disabled
    headers: dict[str, str]
    sample_rate: float
    capture_content: bool
    sdk_spans: bool
    background_finish: bool
    environment: str | None
    release: str | None


def _resolve(
    *,
    enabled: bool,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    api_key: str | None,
    sample_rate: float | None,
    capture_content: bool | None,
    sdk_spans: bool | None,
    background_finish: bool | None,
    environment: str | None,
    release: str | None,
) -> _Settings:
    """configure()'s settings from its arguments and the environment; raises
    :class:`ConfigurationError` for an endpoint, a key or a variable it cannot use."""
    rate = sample_rate if sample_rate is not None else _env_rate("FAULTPRINT_SAMPLE_RATE")
    # An argument is checked even while export is disabled; the environment
    # only where it is used.
    url = resolve_traces_url(endpoint) if enabled or endpoint is not None else None
    key = _resolve_api_key(api_key) if enabled or api_key is not None else None
    all_headers: dict[str, str] = dict(headers or {})
    if key and not any(k.lower() == "authorization" for k in all_headers):
        all_headers["Authorization"] = f"Bearer {key}"
    return _Settings(
        url=url if enabled else None,
        headers=all_headers,
        sample_rate=1.0 if rate is None else float(rate),
        capture_content=(
            _env_flag("FAULTPRINT_CAPTURE_CONTENT", False)
            if capture_content is None
            else capture_content
        ),
        sdk_spans=_env_flag("FAULTPRINT_SDK_SPANS", False) if sdk_spans is None else sdk_spans,
        background_finish=(
            _env_flag("FAULTPRINT_BACKGROUND_FINISH", True)
            if background_finish is None
            else background_finish
        ),
        environment=environment or _env("FAULTPRINT_ENVIRONMENT"),
        release=release or _env("FAULTPRINT_RELEASE"),
    )


def _build_exporter_factory(
    url: str, headers: Mapping[str, str] | None, timeout: float, compression: str | None
) -> Callable[[], SpanExporter]:
    def factory() -> SpanExporter:
        # Imported here: the protobuf exporter is the heaviest import of the
        # SDK and is only needed once the first span is exported.
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from faultprint._export import EXPORTER_LOGS

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
    ``FAULTPRINT_CAPTURE_CONTENT``, ``FAULTPRINT_SDK_SPANS``,
    ``FAULTPRINT_BACKGROUND_FINISH``. A blank variable counts as unset;
    surrounding whitespace of a variable, an ``endpoint`` or an ``api_key`` is
    ignored.

    A value it cannot use, given as an argument or read from one of these
    variables, raises :class:`ConfigurationError` naming the argument or
    variable and what it takes (an endpoint without ``http(s)://`` or a host,
    a flag variable other than ``1/true/yes/on`` or ``0/false/no/off``, a
    rate outside (0, 1]), and nothing changes: the running setup goes on
    exporting as it was. Every check comes before the first change.

    Provider: ``tracer_provider`` if given; else, when ``use_global_provider``
    and the application already set an SDK ``TracerProvider`` globally, that
    one (its resource then describes the service; faultprint adds one span
    processor that forwards only model-call spans); else faultprint creates
    its own provider, which it does not make global, so the application's
    other spans are not sent to the collector.

    Sampling: the application's provider's sampler decides which calls are
    recorded (``stats()["not_recorded"]`` counts the others). faultprint's
    own provider records every call, whatever ``OTEL_TRACES_SAMPLER`` says
    and under a parent that is not sampled; such a call keeps the parent's
    "not sampled" flag for what it propagates, and is exported all the same.
    An OpenTelemetry span limit variable its SDK cannot use
    (``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=abc``, a negative
    ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``) raises :class:`ConfigurationError`
    naming it when faultprint creates its provider.

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
    settings = _resolve(
        enabled=enabled,
        endpoint=endpoint,
        headers=headers,
        api_key=api_key,
        sample_rate=sample_rate,
        capture_content=capture_content,
        sdk_spans=sdk_spans,
        background_finish=background_finish,
        environment=environment,
        release=release,
    )
    with _config_lock:
        # Everything that can fail comes before the running setup is touched:
        # a refused configure() leaves it exporting as it was.
        queue: ExportQueue | None = None
        provider: Any = None
        slot: ProcessorSlot | None = None
        tracer: Any
        owned = False
        extra: dict[str, Any] = {}
        if settings.url is None:
            from opentelemetry.trace import NoOpTracer

            tracer = NoOpTracer()
        else:
            if "opentelemetry.sdk.trace" not in sys.modules:
                # Importing OpenTelemetry's SDK reads a span limit variable.
                _check_span_limits()
            try:
                from faultprint._export import ExportQueue, slot_for
            except ValueError as exc:
                raise _sdk_refused(exc) from exc
            if exporter is not None:
                fixed = exporter
                factory: Callable[[], SpanExporter] = lambda: fixed  # noqa: E731
            else:
                factory = _build_exporter_factory(
                    settings.url, settings.headers, export_timeout, compression
                )
            queue = ExportQueue(
                factory,
                max_queue_size=max_queue_size,
                max_export_batch_size=max_export_batch_size,
                schedule_delay=schedule_delay,
            )
            provider = tracer_provider
            if provider is None and use_global_provider:
                from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider

                current = trace.get_tracer_provider()
                if isinstance(current, SDKTracerProvider):
                    provider = current
            if provider is None:
                provider = _new_provider(service, settings.environment, settings.release)
                owned = True
            else:
                extra = _missing_resource_attributes(provider, service, settings)
            slot = slot_for(provider)
            tracer = provider.get_tracer("faultprint", SDK_VERSION)

        _shutdown_pipeline(timeout=2.0)
        _forget_stopped_pipeline()

        STATE.sample_rate = settings.sample_rate
        STATE.capture_content = settings.capture_content
        STATE.max_content_chars = max_content_chars
        if redact is True:
            STATE.redact = default_redactor
        elif redact is False or redact is None:
            STATE.redact = None
        else:
            STATE.redact = redact
        STATE.refusal_detector = refusal_detector
        STATE.sdk_spans = settings.sdk_spans
        STATE.background_finish = settings.background_finish
        STATE.extra_attrs = extra
        if slot is not None:
            slot.target = queue
        STATE.provider = provider
        STATE.owned_provider = owned
        STATE.queue = queue
        STATE.endpoint = settings.url
        STATE.use_tracer(tracer)
        STATE.configured = True
        if queue is not None:
            _install_hooks(handle_sigterm)
            # Not among the hooks installed once: a forked child inherits
            # that flag, not what multiprocessing needs of it (see below).
            _arrange_multiprocessing_exit()


def _missing_resource_attributes(
    provider: Any, service: str | None, settings: _Settings
) -> dict[str, Any]:
    """What faultprint adds to each span on the application's provider: the
    service, environment and release its resource lacks or names otherwise."""
    resource_attrs = getattr(getattr(provider, "resource", None), "attributes", {}) or {}
    wanted = {
        "service.name": service,
        "deployment.environment.name": settings.environment,
        "service.version": settings.release,
    }
    extra = {
        key: value for key, value in wanted.items() if value and resource_attrs.get(key) != value
    }
    if service and resource_attrs.get("service.name") not in (None, service):
        _log.info(
            "faultprint: using the application's TracerProvider; its resource names "
            "the service %r, spans also carry service.name=%r",
            resource_attrs.get("service.name"),
            service,
        )
    return extra


def _new_provider(service: str | None, environment: str | None, release: str | None) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider

    attrs: dict[str, Any] = {}
    service = service or _env("OTEL_SERVICE_NAME")
    if service:
        attrs["service.name"] = service
    if environment:
        attrs["deployment.environment.name"] = environment
    if release:
        attrs["service.version"] = release
    attrs[A.FP_CONTRACT] = A.CONTRACT_VERSION
    _check_span_limits()
    from faultprint._span import RECORD_EVERY_CALL

    try:
        # shutdown_on_exit=False: faultprint's own atexit hook flushes with a
        # bounded timeout, so a dead collector cannot hold up interpreter exit.
        # The sampler: every call recorded (see RecordEveryCall), never the
        # one OTEL_TRACES_SAMPLER names for the application's own tracing.
        return SDKTracerProvider(
            resource=Resource.create(attrs),
            shutdown_on_exit=False,
            sampler=RECORD_EVERY_CALL,
        )
    except ValueError as exc:
        raise _sdk_refused(exc) from exc


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


def _shutdown_pipeline(timeout: float | None, *, keep_counting: bool = False) -> None:
    """Flush and stop the running pipeline.

    ``keep_counting`` (``shutdown()``): the provider's faultprint slot stays
    on the stopped queue, which counts the spans still ending there (a call
    under way in another thread, an application's provider that goes on
    tracing) as ``dropped_after_shutdown``; ``stats()`` reports that queue
    until the next ``configure()``. Otherwise (reconfiguration) the slot is
    detached and the next pipeline takes over.
    """
    global _stopped
    queue = STATE.queue
    if queue is None:
        return
    from faultprint._export import ProcessorSlot

    _close_open_spans()
    STATE.queue = None
    # The slot still feeds the queue while it shuts down: the spans it
    # finishes on its thread during the final flush must reach it.
    try:
        queue.shutdown(timeout)
    finally:
        slot = getattr(STATE.provider, "_faultprint_slot", None)
        if not isinstance(slot, ProcessorSlot) or slot.target is not queue:
            slot = None
        if keep_counting:
            _stopped = (queue, slot)
        elif slot is not None:
            slot.target = None


def _forget_stopped_pipeline() -> None:
    """Detach the queue ``shutdown()`` left counting (see _shutdown_pipeline)."""
    global _stopped
    if _stopped is None:
        return
    queue, slot = _stopped
    _stopped = None
    if slot is not None and slot.target is queue:
        slot.target = None


def flush(timeout: float | None = 10.0) -> bool:
    """Export every span ended so far; True when done within ``timeout`` seconds.

    ``None`` or ``float("inf")`` waits until done; a negative or NaN timeout
    (a deadline already passed) does not wait.
    """
    try:
        queue = STATE.queue
        return True if queue is None else queue.flush(timeout)
    except Exception:
        _log.debug("faultprint: flush failed", exc_info=True)
        return False


def shutdown(timeout: float | None = 5.0) -> None:
    """Flush (bounded by ``timeout``, taken as ``flush`` takes it) and stop
    exporting; spans afterwards go nowhere.

    What they were is still counted: ``stats()`` goes on reporting this
    pipeline, spans that end after the shutdown included, until the next
    ``configure()``.
    """
    with _config_lock:
        try:
            _shutdown_pipeline(timeout, keep_counting=True)
        except Exception:
            _log.debug("faultprint: shutdown failed", exc_info=True)
        from opentelemetry.trace import NoOpTracer

        if STATE.owned_provider:
            STATE.use_tracer(NoOpTracer())
        STATE.provider = None
        STATE.owned_provider = False


def stats() -> dict[str, Any]:
    """Export counters of the current configuration.

    Keys (every one always present):

    - ``exported``: spans the collector accepted;
    - ``export_failed``: spans of export requests that failed (collector
      unreachable or refusing, or the exporter closed at exit);
    - ``dropped``: ``dropped_queue_full`` + ``dropped_after_shutdown``;
    - ``dropped_queue_full``: spans that found the export queue full;
    - ``dropped_after_shutdown``: spans that ended after ``shutdown()``;
    - ``sampled_out``: successes left out by ``sample_rate``;
    - ``not_recorded``: calls the provider's sampler did not record. Only an
      application's provider (``tracer_provider=`` or a global SDK provider)
      leaves calls out: its sampler decides. faultprint's own provider
      records every call;
    - ``duplicates_dropped``: spans of other instrumentations that recorded
      a faultprint call's API call again (see ``ProcessorSlot``);
    - ``queued``: spans waiting in the export queue now;
    - ``exporting``: spans of the export request under way now;
    - ``finishing``: integration spans the export thread has yet to end;
    - ``export_batches``: export requests made;
    - ``endpoint``: the traces URL configured (None before ``configure()``
      and with ``enabled=False``);
    - ``sample_rate``: the global ``sample_rate``.

    The counts add up: every call that has returned is in exactly one of
    ``exported``, ``export_failed``, ``dropped``, ``sampled_out``,
    ``not_recorded``, ``queued``, ``exporting`` and ``finishing`` (with
    the model-call spans of other instrumentations on an application's
    provider), give or take a span moving between two of them as they are
    read.

    After ``shutdown()`` the counters are still those of the pipeline it
    stopped (spans that ended after it counted in ``dropped_after_shutdown``),
    until the next ``configure()`` starts counting afresh; a ``configure()``
    that is refused changes nothing. Before any ``configure()``, and with
    ``enabled=False``, every counter is 0. A forked child (``os.fork``,
    multiprocessing) starts its own counters at 0.
    """
    queue = STATE.queue
    if queue is None and _stopped is not None:
        queue = _stopped[0]
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
        if not callable(previous):
            # The process ends with this signal (below), without running atexit.
            _close_open_spans()
        # Before the application's handler, which may end the process. When
        # this flush gives up on an export under way, the one at exit does
        # not wait for it again (ExportQueue.shutdown).
        with contextlib.suppress(Exception):
            queue.flush(2.0, before_exit=True)
    if callable(previous):
        previous(signum, frame)
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
    os.register_at_fork(after_in_child=_arrange_multiprocessing_exit)
    if not handle_sigterm:
        return
    try:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None:  # installed from C; we cannot chain it
            return
        if previous == signal.SIG_IGN:
            # SIGTERM does not end this process (atexit flushes at its real
            # exit), and an ignored signal stays ignored across exec while a
            # handler does not: the programs the application starts must
            # go on ignoring it.
            return
        _previous_sigterm = previous
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread / unsupported platform
        pass


#: this process's multiprocessing exit finalizer, with the pid it was
#: registered in (see _register_exit_finalizer)
_exit_finalizer: tuple[int, Any] | None = None
#: whether multiprocessing's after-fork registry calls _on_child_start;
#: inherited through fork together with that registry
_child_start_arranged = False


def _arrange_multiprocessing_exit() -> None:
    """Have multiprocessing children flush faultprint when they exit.

    A multiprocessing child (a ``Process``, a ``Pool`` worker) started by
    fork or forkserver ends with ``os._exit``, which skips atexit;
    multiprocessing runs its own exit finalizers first. A child clears their
    registry as it starts: after it was forked, and under spawn and
    forkserver after it imported the main module (where a module-level
    ``configure()`` runs), then runs multiprocessing's after-fork hooks. So
    the finalizer is registered now when this process is a child that has
    started (``configure()`` in a ``Process`` target or a ``Pool``
    initializer), and by an after-fork hook in every child that starts
    later, this process included. Called by ``configure()`` and after every
    fork (multiprocessing may have been imported after ``configure()``).
    """
    global _child_start_arranged
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None:  # no multiprocessing child starts without it
        return
    try:
        if not _child_start_arranged:
            _child_start_arranged = True
            mp_util.register_after_fork(_register_exit_finalizer, _on_child_start)
        mp = sys.modules.get("multiprocessing")
        if mp is not None and mp.parent_process() is not None:
            _register_exit_finalizer()
    except Exception:
        _log.debug("faultprint: multiprocessing exit flush not arranged", exc_info=True)


def _on_child_start(_registered_by: object) -> None:
    _register_exit_finalizer()


def _register_exit_finalizer() -> None:
    """Add ``_at_exit`` to this process's multiprocessing exit finalizers, once."""
    global _exit_finalizer
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None:
        return
    pid = os.getpid()
    # Not a flag: a forked child inherits it, and its registry is cleared as
    # the child starts.
    if (
        _exit_finalizer is not None
        and _exit_finalizer[0] == pid
        and _exit_finalizer[1].still_active()
    ):
        return
    _exit_finalizer = (pid, mp_util.Finalize(None, _at_exit, exitpriority=-100))


def noop_exporter() -> SpanExporter:
    """An exporter that discards spans (benchmarks)."""
    from faultprint._export import DiscardingExporter

    return DiscardingExporter()
