"""faultprint's own span object, for model-call spans on an OpenTelemetry SDK tracer.

``opentelemetry.sdk.trace.Span`` checks every attribute through a generic,
lock-guarded validator (about 1.5 µs per attribute); a faultprint span
carries a dozen attributes, so that check alone costs more than the rest of
the SDK's work for the call. :class:`ModelCallSpan` is a complete
implementation of the OpenTelemetry span API that checks attributes with a
fast path for the primitive values faultprint writes (str, bool, int,
float) and falls back to OpenTelemetry's own cleaning for anything else. It
keeps the tracer's contract:

* ids come from the provider's id generator and the provider's sampler
  decides (``ParentBased(ALWAYS_ON)``, the default, and
  :class:`RecordEveryCall`, the sampler of faultprint's own provider, are
  evaluated inline: same decision, same trace state); a call it does not
  record is counted (``stats()["not_recorded"]``);
* the provider's span limits apply (attribute count and length, events,
  links) and what they drop is counted;
* the provider's span processors see ``on_start``, ``_on_ending`` (when the
  SDK has it) and ``on_end``; the span is a ``ReadableSpan`` and, once
  ended, immutable, so it is handed to ``on_end`` as is. ``on_start`` and
  ``_on_ending`` are skipped only while every processor is one of
  faultprint's own, which do nothing then.

:class:`SpanStarter` is built once per tracer. It is used only for an SDK
``Tracer`` whose parts it knows; any other tracer (a no-op, a vendor's)
keeps its own ``start_span``. ``FAULTPRINT_SDK_SPANS=1`` (or
``configure(sdk_spans=True)``) makes faultprint use the SDK's span class
everywhere.
"""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanLimits,
    SynchronousMultiSpanProcessor,
    sampling,
)
from opentelemetry.sdk.trace import Tracer as SDKTracer
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    DEFAULT_TRACE_STATE,
    INVALID_SPAN_CONTEXT,
    SpanContext,
    SpanKind,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

from faultprint._clean import all_clean
from faultprint._naming import code_module

__all__ = ["RECORD_EVERY_CALL", "ModelCallSpan", "RecordEveryCall", "SpanStarter"]

_log = logging.getLogger("faultprint")
_otel_log = logging.getLogger("opentelemetry.sdk.trace")
_MISSING = object()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
# TraceFlags.RANDOM_TRACE_ID exists in newer API releases only.
_RANDOM_FLAG: int = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
#: the flags of a span whose trace id is random, built once (not per span)
_SAMPLED_RANDOM = TraceFlags(_SAMPLED | _RANDOM_FLAG)
_NOT_SAMPLED_RANDOM = TraceFlags(_NOT_SAMPLED | _RANDOM_FLAG)
_get_current_span = trace_api.get_current_span
_UNSET = Status(StatusCode.UNSET)  # immutable, shared
_new_tuple = tuple.__new__


def _tuple_layout_known() -> bool:
    """True when a ``SpanContext`` is the tuple (trace id, span id, is remote,
    flags, trace state, is valid), as :meth:`SpanStarter.start` builds it."""
    try:
        made = SpanContext(1, 2, False, _SAMPLED, DEFAULT_TRACE_STATE)
        built = _new_tuple(SpanContext, (1, 2, False, _SAMPLED, DEFAULT_TRACE_STATE, True))
        return tuple(made) == tuple(built) and made.is_valid and built.span_id == 2
    except Exception:
        return False


#: the installed API's SpanContext can be built as a plain tuple (see start())
_TUPLE_CONTEXTS = _tuple_layout_known()


def _reads_tracer_config(tracer: Any) -> bool:
    """Whether ``tracer._is_enabled()`` is the SDK's, which returns
    ``tracer._tracer_config.is_enabled`` and does nothing else."""
    method = getattr(type(tracer), "_is_enabled", None)
    code = getattr(method, "__code__", None)
    return (
        method is getattr(SDKTracer, "_is_enabled", _MISSING)
        and code is not None
        and code.co_names == ("_tracer_config", "is_enabled")
        and isinstance(getattr(getattr(tracer, "_tracer_config", None), "is_enabled", None), bool)
    )


def quiet_processor(processor: Any) -> bool:
    """Whether ``processor``'s ``on_start`` and ``_on_ending`` do nothing for
    faultprint's own spans.

    faultprint's processors say so with a ``faultprint_quiet_processor``
    class attribute; any other processor is called.
    """
    return getattr(type(processor), "faultprint_quiet_processor", False) is True


def _clean(value: Any, max_len: int | None) -> Any:
    """An attribute value as OpenTelemetry would store it; ``_MISSING`` when invalid."""
    kind = type(value)
    if kind is str:
        if max_len is not None and len(value) > max_len:
            return value[:max_len]
        return value
    if kind is bool or kind is int or kind is float:
        return value
    if (
        kind is tuple
        and all(type(v) is str for v in value)
        and (max_len is None or all(len(v) <= max_len for v in value))
    ):
        return value
    # Anything else (sequences, mappings, bytes, objects) is cleaned by
    # OpenTelemetry's own rules for the installed release.
    cleaned = BoundedAttributes(None, {"v": value}, max_value_len=max_len)
    return cleaned.get("v", _MISSING)


def _frozen(count: int | None, attributes: types.Attributes, limits: SpanLimits) -> Any:
    """An event's or link's attributes, cleaned, bounded and immutable (as in the SDK)."""
    return BoundedAttributes(
        count, attributes, immutable=True, max_value_len=limits.max_attribute_length
    )


class RecordEveryCall(sampling.Sampler):
    """The sampler of faultprint's own provider: every call is recorded.

    faultprint samples model calls itself (``sample_rate``), keeping every
    failure; a sampler that drops spans, a ratio named by
    ``OTEL_TRACES_SAMPLER`` or ``ParentBased`` following an upstream "not
    sampled", would drop failures unseen. The trace's own decision stays in
    the span context all the same: sampled at a root or under a sampled
    parent (``RECORD_AND_SAMPLE``), not sampled under a parent that is not
    (``RECORD_ONLY``), with the parent's trace state, so what a call
    propagates downstream is what ``ParentBased(ALWAYS_ON)`` would
    propagate. faultprint's export queue exports a recorded span whatever
    its sampled flag; an application's ``BatchSpanProcessor`` would not.
    """

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> sampling.SamplingResult:
        """Record; sample unless the parent is not sampled."""
        parent = trace_api.get_current_span(parent_context).get_span_context()
        if parent is None or not parent.is_valid:
            return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE, attributes)
        decision = (
            sampling.Decision.RECORD_AND_SAMPLE
            if parent.trace_flags.sampled
            else sampling.Decision.RECORD_ONLY
        )
        return sampling.SamplingResult(decision, attributes, parent.trace_state)

    def get_description(self) -> str:
        """The sampler's name."""
        return "faultprint.RecordEveryCall"


#: the sampler of the providers faultprint creates, evaluated inline by SpanStarter
RECORD_EVERY_CALL = RecordEveryCall()


def _nothing() -> None:
    pass


class SpanStarter:
    """Starts :class:`ModelCallSpan` objects on one SDK tracer.

    ``not_recorded`` is called for each call the tracer's sampler does not
    record (or the tracer, disabled, does not start).
    """

    def __init__(self, tracer: SDKTracer, not_recorded: Callable[[], None] = _nothing) -> None:
        self.not_recorded = not_recorded
        self.sampler = tracer.sampler
        self.resource = tracer.resource
        self.processor: Any = tracer.span_processor
        self.on_ending = getattr(self.processor, "_on_ending", None)
        self.id_generator = tracer.id_generator
        self.instrumentation_info = getattr(tracer, "instrumentation_info", None)
        scope = getattr(tracer, "_instrumentation_scope", None)
        if not isinstance(scope, InstrumentationScope):
            info = self.instrumentation_info
            scope = InstrumentationScope(
                getattr(info, "name", "faultprint"), getattr(info, "version", None)
            )
        self.scope = scope
        limits = getattr(tracer, "_span_limits", None)
        self.limits: SpanLimits = limits if isinstance(limits, SpanLimits) else SpanLimits()
        self.max_attributes = self.limits.max_span_attributes
        self.max_length = self.limits.max_span_attribute_length
        self.is_enabled = getattr(tracer, "_is_enabled", None)
        #: the tracer, when its _is_enabled() reads ``_tracer_config.is_enabled``
        #: and nothing else: read inline (see start())
        self.config_tracer = tracer if _reads_tracer_config(tracer) else None
        is_random = getattr(self.id_generator, "is_trace_id_random", None)
        self.random_ids = bool(is_random()) if callable(is_random) else False
        # The SDK's default id generator, and the API's tuple layout: ids are
        # drawn and the span context built inline (see start()).
        self.fast_ids = type(self.id_generator) is RandomIdGenerator and _TUPLE_CONTEXTS
        #: (the provider's processors, whether they are all quiet processors
        #: behind the SDK's synchronous multi-processor: see quiet_processor),
        #: one tuple so that threads read a matching pair
        self.quiet_checked: tuple[Any, bool] = (_MISSING, False)
        self.own_scope = scope.name == "faultprint"
        # The default sampler and faultprint's own are evaluated inline (see
        # start()); RecordEveryCall records what it does not sample.
        self.inline = self.sampler is sampling.DEFAULT_ON or self.sampler is RECORD_EVERY_CALL
        self.records_unsampled = self.sampler is RECORD_EVERY_CALL

    @classmethod
    def for_tracer(
        cls, tracer: Any, not_recorded: Callable[[], None] = _nothing
    ) -> SpanStarter | None:
        """A starter for an SDK tracer; None for any other tracer."""
        if type(tracer) is not SDKTracer:
            return None
        try:
            return cls(tracer, not_recorded)
        except Exception:
            _log.debug("faultprint: SDK tracer not usable for fast spans", exc_info=True)
            return None

    def start(
        self,
        name: str,
        attributes: dict[str, Any],
        kind: SpanKind = SpanKind.CLIENT,
        current: Mapping[str, object] | None = None,
        clean: bool = False,
    ) -> trace_api.Span:
        """Start a span in the current context, as ``Tracer.start_span`` would.

        ``attributes`` becomes the span's attribute dict (it is not copied).
        ``current`` is the current OpenTelemetry context when the caller
        already holds it. ``clean``: the caller knows every key to be a
        non-empty string and every value a string or a number, so only the
        length limit, if any, is checked.
        """
        if current is None:
            found = _get_current_span().get_span_context()
        else:
            current_span = current.get(_SPAN_KEY)
            if current_span is None:  # a root: isinstance() would ask Span's ABC
                found = INVALID_SPAN_CONTEXT
            elif type(current_span) is ModelCallSpan or isinstance(current_span, trace_api.Span):
                found = current_span.get_span_context()
            else:
                found = INVALID_SPAN_CONTEXT
        if self.config_tracer is not None:
            enabled = self.config_tracer._tracer_config.is_enabled  # _is_enabled(), inline
        else:
            is_enabled = self.is_enabled
            enabled = is_enabled is None or is_enabled()
        if not enabled:
            self.not_recorded()
            return trace_api.NonRecordingSpan(found)
        parent: SpanContext | None = found
        trace_state: TraceState | None
        fast_ids = self.fast_ids
        if parent is None or parent is INVALID_SPAN_CONTEXT or not parent.is_valid:
            parent = None
            if fast_ids:  # RandomIdGenerator.generate_trace_id, inline
                trace_id = random.getrandbits(128)
                while not trace_id:
                    trace_id = random.getrandbits(128)
            else:
                trace_id = self.id_generator.generate_trace_id()
            random_id = self.random_ids
        else:
            trace_id = parent.trace_id
            random_id = bool(parent.trace_flags & _RANDOM_FLAG) if _RANDOM_FLAG else False
        if self.inline:
            # ParentBased(ALWAYS_ON) and RecordEveryCall: follow a parent's
            # decision, else sample; the trace state is the parent's. Here
            # ``recording`` is the sampled flag: RecordEveryCall records an
            # unsampled span all the same (below).
            recording = sampled = parent is None or parent.trace_flags.sampled
            trace_state = parent.trace_state if parent is not None else None
        else:
            result = self.sampler.should_sample(None, trace_id, name, kind, attributes, ())
            decision = result.decision
            sampled = decision.is_sampled()
            recording = decision.is_recording()
            trace_state = result.trace_state
            if result.attributes != attributes:
                attributes = dict(result.attributes)
                clean = False
        if random_id:
            flags = _SAMPLED_RANDOM if sampled else _NOT_SAMPLED_RANDOM
        else:
            flags = _SAMPLED if sampled else _NOT_SAMPLED
        if fast_ids:
            # RandomIdGenerator.generate_span_id and SpanContext(...), inline:
            # both ids are valid, so the context is too.
            span_id = random.getrandbits(64)
            while not span_id:
                span_id = random.getrandbits(64)
            context = _new_tuple(
                SpanContext,
                (
                    trace_id,
                    span_id,
                    False,
                    flags,
                    DEFAULT_TRACE_STATE if trace_state is None else trace_state,
                    True,
                ),
            )
        else:
            context = SpanContext(
                trace_id,
                self.id_generator.generate_span_id(),
                is_remote=False,
                trace_flags=flags,
                trace_state=trace_state,
            )
        if not recording and not self.records_unsampled:
            self.not_recorded()
            return trace_api.NonRecordingSpan(context)
        span = ModelCallSpan(self, name, context, parent, kind, attributes, clean)
        processor = self.processor
        processors = getattr(processor, "_span_processors", None)
        checked = self.quiet_checked
        if checked[0] is not processors:
            # Looked at again whenever the provider's processors change.
            quiet = (
                self.own_scope
                and type(processor) is SynchronousMultiSpanProcessor
                and type(processors) is tuple
                and all(quiet_processor(p) for p in processors)
            )
            checked = self.quiet_checked = (processors, quiet)
        if not checked[1]:
            processor.on_start(span, parent_context=None)
        return span


class ModelCallSpan(trace_api.Span, ReadableSpan):
    """A recording span; a ``ReadableSpan`` too, frozen once ended."""

    #: a model call's span: faultprint's export queue takes it without
    #: looking at its scope (see faultprint._export.is_model_call_span)
    faultprint_model_call = True

    def __init__(
        self,
        starter: SpanStarter,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        clean: bool = False,
    ) -> None:
        # ReadableSpan's fields, set directly (its __init__ would rebuild a
        # resource when none is given; ours always is).
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = starter.instrumentation_info
        self._instrumentation_scope = starter.scope
        self._parent = parent
        self._resource = starter.resource
        self._status = _UNSET
        self._events: Sequence[Event] = ()
        self._links: Sequence[trace_api.Link] = ()
        self._end_time: int | None = None
        self._starter = starter
        self._dropped_attributes = 0
        max_length = starter.max_length
        if (clean and max_length is None) or all_clean(attributes, max_length):
            limit = starter.max_attributes
            if limit is not None and len(attributes) > limit:
                # Keep the newest, as the SDK's bounded attributes do.
                self._dropped_attributes = len(attributes) - limit
                attributes = dict(list(attributes.items())[-limit:]) if limit else {}
            self._attrs = attributes
        else:  # something needs cleaning or dropping: add one by one
            self._attrs = {}
            for key, value in attributes.items():
                self._put(key, value)
        self._attributes = self._attrs  # what ReadableSpan reads
        self._start_time = time_ns()

    # --- ReadableSpan ---------------------------------------------------------------
    @property
    def dropped_attributes(self) -> int:
        """Attributes dropped by the span limits."""
        return self._dropped_attributes

    # --- opentelemetry.trace.Span -----------------------------------------------------
    def get_span_context(self) -> SpanContext:
        """This span's context."""
        return self._context  # type: ignore[return-value]

    def is_recording(self) -> bool:
        """True until the span has ended."""
        return self._end_time is None

    def _put(self, key: str, value: Any) -> None:
        if not key or type(key) is not str:
            _otel_log.warning("invalid key `%s`. must be non-empty string. Dropping key.", key)
            self._dropped_attributes += 1
            return
        cleaned = _clean(value, self._starter.max_length)
        if cleaned is _MISSING:
            self._dropped_attributes += 1
            return
        attributes = self._attrs
        if key in attributes:
            del attributes[key]
        else:
            limit = self._starter.max_attributes
            if limit is not None and len(attributes) >= limit:
                if not limit:
                    self._dropped_attributes += 1
                    return
                del attributes[next(iter(attributes))]
                self._dropped_attributes += 1
        attributes[key] = cleaned

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        """Set one attribute (checked as OpenTelemetry checks it)."""
        if self._end_time is not None:
            _otel_log.warning("Setting attribute on ended span.")
            return
        self._put(key, value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue], clean: bool = False) -> None:
        """Set several attributes.

        ``clean``: the caller knows every key to be a non-empty string and
        every value a string, a number or a tuple of strings, so only the
        length limit, if any, is checked (as in ``SpanStarter.start``).
        """
        if self._end_time is not None:
            _otel_log.warning("Setting attribute on ended span.")
            return
        current = self._attrs
        starter = self._starter
        limit = starter.max_attributes
        max_length = starter.max_length
        if (
            ((clean and max_length is None) or all_clean(attributes, max_length))
            and (limit is None or len(current) + len(attributes) <= limit)
            and current.keys().isdisjoint(attributes)
        ):
            current.update(attributes)  # the common case: new, clean, within the limit
        else:
            for key, value in attributes.items():
                self._put(key, value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        """Add an event, within the span limits."""
        if self._end_time is not None:
            _otel_log.warning("Tried calling add_event on an ended span.")
            return
        limits = self._starter.limits
        if not isinstance(self._events, BoundedList):
            self._events = BoundedList(limits.max_events)
        frozen = _frozen(limits.max_event_attributes, attributes, limits)
        self._events.append(Event(name=name, attributes=frozen, timestamp=timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        """Add a link to another span, within the span limits."""
        if self._end_time is not None:
            _otel_log.warning("Tried calling add_link on an ended span.")
            return
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return
        limits = self._starter.limits
        if not isinstance(self._links, BoundedList):
            self._links = BoundedList(limits.max_links)
        frozen = _frozen(limits.max_link_attributes, attributes, limits)
        self._links.append(trace_api.Link(context, frozen))

    def update_name(self, name: str) -> None:
        """Rename the span."""
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status; OK is final and UNSET is ignored, as in the SDK."""
        if self._end_time is not None:
            _otel_log.warning("Tried calling set_status on an ended span.")
            return
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is StatusCode.UNSET:
                return
            self._status = status
        elif isinstance(status, StatusCode):
            if status is StatusCode.UNSET:
                return
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Record ``exception`` as an ``exception`` event (the SDK's attributes)."""
        module = code_module(type(exception).__module__ or "")
        qualname = type(exception).__qualname__
        event: dict[str, Any] = {
            "exception.type": (
                f"{module}.{qualname}" if module and module != "builtins" else qualname
            ),
            "exception.escaped": str(escaped),
        }
        # Given ones win, as in the SDK: only what is not given is computed.
        if not attributes or "exception.message" not in attributes:
            event["exception.message"] = str(exception)
        if not attributes or "exception.stacktrace" not in attributes:
            event["exception.stacktrace"] = "".join(traceback.format_exception(exception))
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        """End the span and hand it to the provider's span processors."""
        if self._end_time is not None:
            _otel_log.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time if end_time is not None else time_ns()
        starter = self._starter
        processor = starter.processor
        processors: tuple[Any, ...]
        processors, quiet = starter.quiet_checked
        if quiet and processors is getattr(processor, "_span_processors", None):
            # Only quiet processors (see start()): no _on_ending, and each
            # on_end called as the synchronous multi-processor calls it.
            for each in processors:
                each.on_end(self)
            return
        if starter.on_ending is not None:
            starter.on_ending(self)
        processor.on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Used as a context manager: record an escaping exception, then end (as the SDK)."""
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'
