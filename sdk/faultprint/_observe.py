"""``@observe``, ``call()`` and the per-call object behind them.

Hot-path rules: everything that depends only on the decorated function (span
name, constant attributes, call site, which wrapper shape) is computed once at
decoration time; per call there is one span, one context attach, one
contextvar set, and the input hash. faultprint's own work runs inside
``try`` blocks so that it can never raise into the application.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json as _json
import logging
import random
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from opentelemetry import context as _otel_context
from opentelemetry.context import Context, attach, detach, get_current
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanKind,
    Status,
    StatusCode,
    set_span_in_context,
)
from opentelemetry.trace.propagation import _SPAN_KEY

from faultprint import attributes as A
from faultprint._capture import capture_enabled, captured
from faultprint._clean import all_clean
from faultprint._config import STATE, count_not_recorded
from faultprint._current import CURRENT_CALL
from faultprint._errors import (
    InvalidOutputError,
    classify_exception,
    content_free_exception,
    exception_chain,
    exception_type_name,
    failure_subject,
    frame_modules,
    interrupts_call,
)
from faultprint._hash import hash_and_text, input_hash
from faultprint._naming import code_module
from faultprint._options import check_call_options
from faultprint._output import (
    Output,
    analyze,
    analyze_result,
    collect_chunk,
    extract,
    finish_stream,
    record_partial_stream,
)
from faultprint._redact import truncate, utf8_text

__all__ = ["Call", "call", "current_call", "observe", "record_failure"]

_log = logging.getLogger("faultprint")
_CLIENT = SpanKind.CLIENT
_CURRENT: contextvars.ContextVar[Call | None] = CURRENT_CALL
_random = random.random
_perf = time.perf_counter
_dict_set = dict.__setitem__
_CATEGORIES = frozenset(A.CATEGORIES)
_EMPTY_HASH = input_hash((), {})


def _runtime_variable() -> tuple[Any, contextvars.ContextVar[Context] | None]:
    """OpenTelemetry's runtime context and the variable holding the current
    context, when it is the default (contextvars) one; else (None, None)."""
    runtime = getattr(_otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(variable, contextvars.ContextVar):
        return runtime, variable
    return None, None


# A call's span is made current by setting the default runtime's variable
# directly: what opentelemetry.context's attach(set_span_in_context(span))
# does, without its four layers of calls. Another runtime context
# (OTEL_PYTHON_CONTEXT) goes through the API.
_RUNTIME, _RUNTIME_VAR = _runtime_variable()
#: ``raw`` not given to :meth:`Call.set_integration_output`
_SAME: Any = object()

F = TypeVar("F", bound=Callable[..., Any])


class CallSpec:
    """What is fixed for one decorated function or ``call()`` site."""

    __slots__ = (
        "base_attrs",
        "base_attrs_clean",
        "call_site",
        "capture_content",
        "checks",
        "integration",
        "model",
        "name",
        "provider",
        "raise_on_invalid",
        "receiver",
        "sample_rate",
        "tools",
    )

    def __init__(
        self,
        *,
        call_site: str,
        model: str | None,
        provider: str | None,
        version: str | None,
        operation: str,
        server_address: str | None = None,
        expect: Any = None,
        json: bool = False,
        raise_on_invalid: bool = False,
        tools: Any = None,
        sample_rate: float | None = None,
        capture_content: bool | None = None,
        integration: bool = False,
        receiver: bool = False,
    ) -> None:
        self.name = f"{operation} {model}" if model else operation
        #: the first argument is a method's self or cls, left out of the input
        self.receiver = receiver
        self.integration = integration
        self.call_site = call_site
        self.model = model
        self.provider = provider
        attrs: dict[str, Any] = {A.GEN_AI_OPERATION_NAME: operation}
        if provider:
            attrs[A.GEN_AI_PROVIDER_NAME] = provider
        if model:
            attrs[A.GEN_AI_REQUEST_MODEL] = model
        if server_address:
            attrs[A.SERVER_ADDRESS] = server_address
        attrs[A.FP_CALL_SITE] = call_site
        if version:
            attrs[A.FP_MODEL_VERSION] = version
        self.base_attrs = attrs
        #: the attributes' values need no cleaning (as OpenTelemetry cleans
        #: them) but for a length limit: spans start without checking them
        self.base_attrs_clean = all_clean(attrs, None)
        self.checks = None
        if expect is not None or json:
            from faultprint._checks import build_checks

            self.checks = build_checks(expect, json)
        self.raise_on_invalid = raise_on_invalid
        self.tools = tools
        # sample_rate and the other options were checked where they were
        # given: @observe, the client integrations (call() takes no rate)
        self.sample_rate = sample_rate
        self.capture_content = capture_content


class Call:
    """One model call in progress: its span and what is known about its outcome.

    Obtained from ``with faultprint.call(...) as call`` or, inside a decorated
    function, from :func:`current_call`.
    """

    __slots__ = (
        "_ctx_token",
        "_otel_token",
        "chunks",
        "end_time",
        "ended",
        "failure",
        "first_chunk_ms",
        "nested",
        "open_stream",
        "output_from_integration",
        "output_set",
        "span",
        "spec",
        "start",
        "stream_parts",
        "tools",
    )

    def __init__(self, span: Any, spec: CallSpec) -> None:
        self.span = span
        self.spec = spec
        self.failure: tuple[str, dict[str, Any] | None, str | None, bool] | None = None
        self.output_set = False
        #: the output was a provider response of a call made inside this one
        self.output_from_integration = False
        #: provider calls made inside this one that raised: (their call, the exception)
        self.nested: list[tuple[Call, BaseException]] | None = None
        #: the last stream a provider client returned inside this call:
        #: (what the application got, its observer)
        self.open_stream: tuple[Any, Any] | None = None
        self.ended = False
        self.chunks = 0
        self.first_chunk_ms: float | None = None
        self.stream_parts: Any = None
        self.tools: Any = None
        self.start = 0.0
        #: epoch ns at which the span ends (None: when it is ended)
        self.end_time: int | None = None
        self._otel_token: Any = None
        self._ctx_token: Any = None

    # --- public -----------------------------------------------------------------
    def set_attribute(self, key: str, value: Any) -> None:
        """Set one span attribute (ignored once the call has ended)."""
        try:
            if not self.ended:
                self.span.set_attribute(key, value)
        except Exception:
            _log.debug("faultprint: set_attribute failed", exc_info=True)

    def set_output(
        self,
        output: Any = None,
        *,
        finish_reason: str | list[str] | None = None,
        usage: Any = None,
        refusal: str | bool | None = None,
        response_model: str | None = None,
        response_id: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
    ) -> None:
        """Declare the call's output: text (or a provider response object / dict).

        Records usage, finish reasons and response ids, and detects failures
        that do not raise: refusal, content filter, truncation, tool errors,
        empty output and failed output checks. After ``set_output`` the
        decorated function's return value is not inspected again. Declared
        again, the last output is the call's (a refusal, then the answer a
        retry got): a failure seen in an earlier output goes with it, one
        recorded with ``record_failure`` stays.
        """
        try:
            if self.ended:
                return
            failure = self.failure
            if failure is not None and not failure[3]:
                self.failure = None
            self.output_from_integration = False
            if isinstance(output, Output):
                out = output
            else:
                out = extract(output) if output is not None else Output()
            if finish_reason is not None:
                out.finish_reasons = (
                    [finish_reason] if isinstance(finish_reason, str) else list(finish_reason)
                )
            if usage is not None:
                out.set_usage(usage)
            if refusal:
                out.refusal = refusal if isinstance(refusal, str) else "refused"
            if response_model:
                out.response_model = response_model
            if response_id:
                out.response_id = response_id
            if tool_calls is not None:
                out.tool_calls = tool_calls
            self.output_set = True
            analyze(self, out, output)
        except Exception:
            _log.debug("faultprint: set_output failed", exc_info=True)
        self._raise_if_invalid()

    def _raise_if_invalid(self) -> None:
        exc = self._invalid_output_error()
        if exc is not None:
            raise exc

    def _invalid_output_error(self) -> InvalidOutputError | None:
        """With ``raise_on_invalid``, the exception a failed output check raises."""
        failure = self.failure
        if self.spec.raise_on_invalid and failure is not None and failure[0] == "invalid_output":
            return InvalidOutputError(failure[2] or "invalid output", failure[1])
        return None

    def record_failure(
        self, category: str, detail: dict[str, Any] | str | None = None, message: str | None = None
    ) -> bool:
        """Mark this call failed with ``category`` (one of ``attributes.CATEGORIES``).

        ``detail`` is structure (or text) for the collector, recorded as JSON:
        values JSON cannot hold are recorded as their ``str``, a container
        holding itself as ``"[circular]"``. An explicit failure overrides one
        detected automatically.
        """
        if not isinstance(category, str) or category not in _CATEGORIES:
            _log.warning("faultprint: unknown failure category %r ignored", category)
            return False
        if isinstance(detail, str):
            detail = {"message": detail}
            message = message or detail["message"]
        self.failure = (category, detail, message, True)
        return True

    # --- internal ---------------------------------------------------------------
    def detected(
        self, category: str, detail: dict[str, Any] | None = None, message: str | None = None
    ) -> None:
        """An automatically detected failure; never overrides an earlier one."""
        if self.failure is None:
            self.failure = (category, detail, message, False)

    def on_chunk(self) -> None:
        self.chunks += 1
        if self.first_chunk_ms is None:
            self.first_chunk_ms = (_perf() - self.start) * 1000.0

    def finish_exception(self, exc: BaseException) -> None:
        """End the span for a call that raised ``exc`` (re-raised by the caller)."""
        if self.nested:
            self._settle_nested(exc)
        if interrupts_call(exc):
            self._finish_interrupted(exc)
            return
        try:
            span = self.span
            # A group of one (asyncio.TaskGroup) is described by its member:
            # its type, message and class; the trace is the whole group's.
            subject = failure_subject(exc)
            etype = exception_type_name(subject)
            span.set_attribute(A.ERROR_TYPE, etype)
            # With capture off, an exception whose own text quotes the output
            # is recorded without it.
            rewritten = None if capture_enabled(self.spec) else content_free_exception(exc)
            if rewritten is None:  # the message and trace the SDK would record
                message, trace = _text(subject), "".join(traceback.format_exception(exc))
            else:
                message, trace = rewritten
                if subject is not exc:
                    own = content_free_exception(subject)
                    message = own[0] if own is not None else _text(subject)
            msg = utf8_text(message)
            event: dict[str, Any] = {
                "exception.message": msg,
                "exception.stacktrace": utf8_text(trace),
            }
            modules = frame_modules(exc)
            if modules:
                event[A.FP_EXCEPTION_MODULES] = tuple(utf8_text(m) for m in modules)
            span.record_exception(exc, attributes=event, escaped=True)
            if self.failure is None:
                if self.chunks or self.first_chunk_ms is not None:
                    # A stream that failed part-way: what arrived before it did.
                    span.set_attributes(self._stream_attrs())
                category, code, status = classify_exception(subject)
                if code:
                    span.set_attribute(
                        A.FP_ERROR_CODE, utf8_text(code) if type(code) is str else code
                    )
                if status is not None:
                    span.set_attribute(A.FP_HTTP_STATUS, status)
                span.set_attribute(A.FP_FAILURE_CATEGORY, category)
                span.set_attribute(A.FP_SAMPLE_WEIGHT, 1.0)
                span.set_status(Status(StatusCode.ERROR, f"{etype}: {msg}"[:512]))
                self._end_span()
            else:
                self._finish()
        except Exception:
            _log.debug("faultprint: finishing a failed call failed", exc_info=True)
            self._end_span()

    def _finish_interrupted(self, exc: BaseException) -> None:
        """End the span of a call the caller abandoned: cancelled or interrupted.

        No verdict, as for a stream closed early: the model did not fail, so
        the span carries no error (its status stays unset, as OpenTelemetry
        leaves it for such exceptions), only ``faultprint.cancelled`` naming
        what ended it, and what a stream delivered before. A failure already
        known (recorded, or seen in a declared output) still stands.
        """
        try:
            self.span.set_attribute(A.FP_CANCELLED, exception_type_name(exc))
            record_partial_stream(self)
        except Exception:
            _log.debug("faultprint: recording a cancelled call failed", exc_info=True)
        self._finish()

    def finish_ok(self, result: Any, *, returned: bool = True) -> None:
        """End the span for a call that returned ``result``.

        ``returned=False``: a ``with faultprint.call()`` block, which returns
        nothing; its output is what ``set_output`` declared. A function that
        returns the stream a provider client gave it, unread, leaves it to its
        caller to read: the call ends when that stream does, as a streaming
        call.
        """
        stream, self.open_stream = self.open_stream, None
        if stream is not None and result is stream[0] and stream[1]._fp_adopt():
            return
        try:
            if not self.output_set and (
                result is not None or (returned and self.spec.checks is not None)
            ):
                analyze_result(self, result)
        except Exception:
            _log.debug("faultprint: output analysis failed", exc_info=True)
        except BaseException as exc:
            # Interrupted while an output check ran: cancelled, as when the
            # function itself is (see _finish_interrupted).
            self.finish_exception(exc)
            raise
        self._finish_checked()

    def _finish_checked(self) -> None:
        """End the span once the output is analysed; with ``raise_on_invalid``
        and a failed output check, end it with the :class:`InvalidOutputError`
        the application asked for, and raise that."""
        exc = self._invalid_output_error()
        if exc is not None:
            self.finish_exception(exc)
            raise exc
        self._finish()

    def _finish(self) -> None:
        try:
            span = self.span
            attrs: dict[str, Any] = {}
            if self.chunks or self.first_chunk_ms is not None:
                attrs = self._stream_attrs()
            failure = self.failure
            if failure is not None:
                category, detail, message, _explicit = failure
                attrs[A.FP_FAILURE_CATEGORY] = category
                if detail is not None:
                    attrs[A.FP_FAILURE_DETAIL] = _detail_json(detail)
                if message:
                    message = utf8_text(truncate(_text(message), 1024))
                    attrs[A.FP_FAILURE_MESSAGE] = message
                current = span.attributes
                if current is None or A.ERROR_TYPE not in current:
                    attrs[A.ERROR_TYPE] = category
                attrs[A.FP_SAMPLE_WEIGHT] = 1.0
                span.set_attributes(attrs)
                span.set_status(Status(StatusCode.ERROR, f"{category}: {message or ''}"[:512]))
            else:
                rate = self.spec.sample_rate or STATE.sample_rate
                if rate < 1.0:
                    if _random() < rate:
                        attrs[A.FP_SAMPLE_WEIGHT] = 1.0 / rate
                    else:
                        queue = STATE.queue
                        if queue is not None:
                            queue.drop_sampled_out(span.get_span_context().span_id)
                if attrs:
                    span.set_attributes(attrs)
        except Exception:
            _log.debug("faultprint: finishing a call failed", exc_info=True)
        self._end_span()

    def _stream_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {A.FP_STREAM_CHUNKS: self.chunks}
        if self.first_chunk_ms is not None:
            attrs[A.FP_STREAM_TTFC_MS] = round(self.first_chunk_ms, 3)
        return attrs

    def set_integration_output(self, output: Output, raw: Any = _SAME) -> None:
        """Record a provider response (or a finished stream's output) of a
        call made inside this one; ``raw`` is what the output checks read
        when the response is not of a provider's shape (``output`` unless given).

        The last response is this call's output (a draft cut short, then a
        full answer: the call returned the answer), unless the application
        declared the output itself (``set_output``). A failure seen in an
        earlier response goes with it; one the application recorded stays.
        """
        if self.ended or (self.output_set and not self.output_from_integration):
            return
        failure = self.failure
        if failure is not None and not failure[3]:
            self.failure = None
        try:
            self.output_set = True
            analyze(self, output, output if raw is _SAME else raw)
        except Exception:
            _log.debug("faultprint: integration output not analysed", exc_info=True)
        self.output_from_integration = True
        self._raise_if_invalid()

    def hold_nested(self, call: Call, exc: BaseException) -> None:
        """Keep ``call``, a provider call made inside this one that raised
        ``exc``, until this call ends.

        It is then recorded as a failed call of its own (the application
        handled the error: a rate limit before a fallback is still a failed
        model call), unless this call ends raising ``exc`` itself, or an
        exception caused by it: this call records that failure, once.
        """
        if self.nested is None:
            self.nested = []
        self.nested.append((call, exc))

    def _settle_nested(self, raised: BaseException | None) -> None:
        nested, self.nested = self.nested, None
        if not nested:
            return
        chain = exception_chain(raised, suppressed=True)
        for call, exc in nested:
            if not any(exc is e for e in chain):
                call.finish_exception(exc)

    def _end_span(self) -> None:
        if self.nested:
            self._settle_nested(None)
        if not self.ended:
            self.ended = True
            try:
                self.span.end(self.end_time)
            except Exception:
                _log.debug("faultprint: span end failed", exc_info=True)

    # --- context manager (faultprint.call) --------------------------------------
    def __enter__(self) -> Call:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        _leave(self)
        if exc is not None:
            self.finish_exception(exc)
        else:
            self.finish_ok(None, returned=False)
        return False

    async def __aenter__(self) -> Call:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)


class _NoCall(Call):
    """Returned by :func:`current_call` outside any call: accepts and ignores."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Ignored: no call in progress."""

    def set_output(self, output: Any = None, **kwargs: Any) -> None:
        """Ignored: no call in progress."""

    def record_failure(
        self, category: str, detail: dict[str, Any] | str | None = None, message: str | None = None
    ) -> bool:
        """Ignored: no call in progress."""
        return False


#: whether the first call made before configure() was looked at
_unconfigured_seen = False


def _unconfigured() -> None:
    """Say once, at the first call, when calls go unrecorded for want of setup.

    Before ``configure()`` faultprint's spans go to the global OpenTelemetry
    provider, as the OpenTelemetry API's do; with none set they are dropped,
    and a decorator that records nothing would otherwise look like a broken
    collector.
    """
    global _unconfigured_seen
    if _unconfigured_seen:
        return
    _unconfigured_seen = True
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, get_tracer_provider

    if isinstance(get_tracer_provider(), (ProxyTracerProvider, NoOpTracerProvider)):
        _log.warning(
            "faultprint: model calls are not recorded: faultprint.configure() has not "
            "been called and no OpenTelemetry tracer provider is set"
        )


def _begin(
    spec: CallSpec,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    extra: dict[str, Any] | None = None,
    start_time: int | None = None,
) -> Call | None:
    """Start the span and make it current; None when faultprint cannot.

    With ``start_time`` (epoch ns) the span starts then, under the current
    span, and is not made current: a call recorded once it is over.
    """
    try:
        if not STATE.configured:
            _unconfigured()
        attrs = dict(spec.base_attrs)
        if STATE.extra_attrs:
            attrs.update(STATE.extra_attrs)
        if extra:
            attrs.update(extra)
        if spec.receiver and args:
            args = args[1:]
        capture = spec.capture_content  # capture_enabled(spec), inline
        if capture if capture is not None else STATE.capture_content:
            attrs[A.FP_INPUT_HASH], text = hash_and_text(args, kwargs)
            attrs[A.FP_INPUT_TEXT] = captured(text)
        else:
            attrs[A.FP_INPUT_HASH] = input_hash(args, kwargs) if (args or kwargs) else _EMPTY_HASH
        # The base attributes (checked once, see CallSpec), the hash, the
        # caller's name (``extra``) and a captured input are strings and
        # numbers: only what configure() adds to spans on the application's
        # provider (service, environment, release, as given) needs the check.
        clean = spec.base_attrs_clean and not STATE.extra_attrs
        starter = STATE.starter
        if start_time is not None:
            span = STATE.tracer.start_span(
                spec.name, kind=_CLIENT, attributes=attrs, start_time=start_time
            )
            if type(span) is NonRecordingSpan:
                count_not_recorded()
            return Call(span, spec)
        variable = _RUNTIME_VAR
        current = (
            variable.get()
            if variable is not None and _otel_context._RUNTIME_CONTEXT is _RUNTIME
            else None
        )
        if starter is not None:
            # The starter counts what it does not record.
            span = starter.start(spec.name, attrs, current=current, clean=clean)
        else:
            span = STATE.tracer.start_span(spec.name, kind=_CLIENT, attributes=attrs)
            if type(span) is NonRecordingSpan:  # what the SDK's tracer starts then
                count_not_recorded()
        if current is not None:
            # set_span_in_context(span, current), with one copy of the
            # context's dict instead of two (Context refuses item assignment:
            # this one is new and not yet shared)
            context = Context(current)
            _dict_set(context, _SPAN_KEY, span)
            otel_token = variable.set(context)  # type: ignore[union-attr]
        else:
            otel_token = attach(set_span_in_context(span))
        call = Call(span, spec)
        call.start = _perf()
        call._otel_token = otel_token
        call._ctx_token = _CURRENT.set(call)
        return call
    except Exception:
        _log.debug("faultprint: could not start a call", exc_info=True)
        return None


def _leave(call: Call) -> None:
    """Undo what ``_begin`` made current."""
    # try/except rather than contextlib.suppress: this runs on every call and
    # a suppress() context manager costs more than the reset itself.
    try:  # noqa: SIM105
        _CURRENT.reset(call._ctx_token)
    except Exception:
        pass
    token = call._otel_token
    try:
        if type(token) is contextvars.Token and token.var is _RUNTIME_VAR:
            _RUNTIME_VAR.reset(token)  # detach(token), without its layers (see _RUNTIME)
        else:
            detach(token)
    except Exception:
        pass


def _detail_json(detail: Any) -> str:
    """A failure detail as JSON, whatever the application put in it.

    Values JSON cannot hold become their ``str``; a container that contains
    itself becomes ``"[circular]"``; text UTF-8 cannot encode (a lone
    surrogate) is written as its escape, a backslash and five characters
    (see ``utf8_text``). Never raises: a detail that cannot be encoded must
    not cost the failure it describes.
    """
    try:
        text = _json.dumps(detail, sort_keys=True, default=_text, ensure_ascii=False)
        if utf8_text(text) is text:
            return text
    except (TypeError, ValueError, RecursionError):
        pass  # a circular container, keys JSON cannot sort or hold, nesting too deep
    try:
        return _json.dumps(_plain(detail, set(), 0), sort_keys=True, ensure_ascii=False)
    except Exception:
        return _json.dumps(utf8_text(_text(detail)), ensure_ascii=False)


#: nesting below this depth is cut: a detail is a summary, not a data dump
_MAX_DETAIL_DEPTH = 32


def _plain(value: Any, path: set[int], depth: int) -> Any:
    """``value`` with only JSON types: str keys, text UTF-8 can encode, no
    cycles, bounded depth."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return utf8_text(value)
    if depth >= _MAX_DETAIL_DEPTH:
        return "[too deep]"
    if not isinstance(value, (dict, list, tuple)):
        return utf8_text(_text(value))
    key = id(value)
    if key in path:
        return "[circular]"
    path.add(key)
    try:
        if isinstance(value, dict):
            return {utf8_text(_text(k)): _plain(v, path, depth + 1) for k, v in value.items()}
        return [_plain(v, path, depth + 1) for v in value]
    finally:
        path.discard(key)


def _text(value: Any) -> str:
    """``str(value)``, or a placeholder when its ``__str__`` raises."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def current_call() -> Call:
    """The innermost faultprint call in progress (a do-nothing call outside one)."""
    found = _CURRENT.get()
    return found if found is not None else _NO_CALL


def record_failure(
    category: str, detail: dict[str, Any] | str | None = None, message: str | None = None
) -> bool:
    """Mark the current call failed; False (and nothing happens) outside a call."""
    try:
        found = _CURRENT.get()
        if found is None:
            return False
        return found.record_failure(category, detail, message)
    except Exception:
        return False


def call(
    *,
    model: str | None = None,
    provider: str | None = None,
    version: str | None = None,
    operation: str = "chat",
    call_site: str | None = None,
    server_address: str | None = None,
    expect: Any = None,
    json: bool = False,
    raise_on_invalid: bool = False,
    tools: Any = None,
    input: Any = None,
) -> CallBlock:
    """Observe a block of code as one model call: ``with faultprint.call(model=...) as c:``.

    ``call_site`` defaults to the calling function (``module.function``);
    ``input`` (any JSON-able value) feeds the input hash. Declare the output
    with ``c.set_output(...)``. The call starts when the block is entered
    (see :class:`CallBlock`).

    The options are those of :func:`observe`, checked the same way: one it
    cannot use raises :class:`faultprint.ConfigurationError` (``TypeError``
    for an unusable ``expect=``), rather than record every call wrongly.
    """
    check_call_options(
        "faultprint.call()",
        model=model,
        provider=provider,
        version=version,
        call_site=call_site,
        server_address=server_address,
        operation=operation,
        json=json,
        raise_on_invalid=raise_on_invalid,
    )
    if call_site is None:
        frame = sys._getframe(1)
        module = code_module(frame.f_globals.get("__name__", "?"))
        call_site = f"{module}.{frame.f_code.co_qualname}"
    spec = CallSpec(
        call_site=call_site,
        model=model,
        provider=provider,
        version=version,
        operation=operation,
        server_address=server_address,
        expect=expect,
        json=json,
        raise_on_invalid=raise_on_invalid,
        tools=tools,
    )
    return CallBlock(spec, () if input is None else (input,))


class CallBlock:
    """A block of code observed as one model call: what :func:`call` returns.

    Each ``with`` (or ``async with``) entering it starts a call and makes it
    current, and leaving the block ends it. A block built ahead and never
    entered records nothing and leaves nothing current. One block may be
    entered again, or by several tasks at once: each entry is a call of its
    own, and each exit ends the one entered in its context.
    """

    __slots__ = ("_args", "_open", "_spec")

    def __init__(self, spec: CallSpec, args: tuple[Any, ...]) -> None:
        self._spec = spec
        self._args = args
        #: calls entered and not yet left
        self._open: list[Call] = []

    def __enter__(self) -> Call:
        try:
            started = _begin(self._spec, self._args, {})
        except Exception:
            _log.debug("faultprint: call() failed", exc_info=True)
            started = None
        if started is None:
            return _NoCallContext()
        self._open.append(started)
        return started

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        # The call this context entered is the current one (a nested block
        # has been left by now); none is when its entry recorded nothing.
        current = _CURRENT.get()
        for i, entered in enumerate(self._open):
            if entered is current:
                del self._open[i]
                return entered.__exit__(exc_type, exc, tb)
        return False

    async def __aenter__(self) -> Call:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)


class _NoCallContext(_NoCall):
    def __init__(self) -> None:
        super().__init__(None, _NO_SPEC)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        return False


@overload
def observe(fn: F) -> F: ...


@overload
def observe(
    fn: None = None,
    *,
    model: str | None = None,
    provider: str | None = None,
    version: str | None = None,
    operation: str = "chat",
    call_site: str | None = None,
    server_address: str | None = None,
    expect: Any = None,
    json: bool = False,
    raise_on_invalid: bool = False,
    tools: Any = None,
    sample_rate: float | None = None,
    capture_content: bool | None = None,
) -> Callable[[F], F]: ...


def observe(
    fn: Any = None,
    *,
    model: str | None = None,
    provider: str | None = None,
    version: str | None = None,
    operation: str = "chat",
    call_site: str | None = None,
    server_address: str | None = None,
    expect: Any = None,
    json: bool = False,
    raise_on_invalid: bool = False,
    tools: Any = None,
    sample_rate: float | None = None,
    capture_content: bool | None = None,
) -> Any:
    """Record every call of the decorated function as a model-call span.

    Works on functions, async functions, generators and async generators
    (streams end their span when exhausted, closed or abandoned), methods,
    ``staticmethod`` and ``classmethod``; which of these it is, is decided by
    the function given, not by one it wraps (``functools.wraps``). A stream's
    span starts when its first chunk is requested (time to first chunk is
    measured from there) and its parent is the span current when the
    generator function was called. The span is a CLIENT span named
    ``"{operation} {model}"``; ``version`` is the version under comparison.
    A call cancelled or interrupted (an exception that is not an
    ``Exception``) ends without a verdict, marked ``faultprint.cancelled``.

    Output checks: ``expect`` = a pydantic model class, a JSON schema (dict),
    a type pydantic validates (``list[Item]``, ``dict[str, int]``, ...) or a
    callable (raising, or returning ``False``, marks the output invalid; any
    other return value passes it); ``json=True`` requires parseable JSON. A
    declared check fails a None return (``no_output``). A failed check is
    recorded as ``invalid_output``; the return value is unchanged unless
    ``raise_on_invalid=True``, which raises
    :class:`faultprint.InvalidOutputError` (a stream: after its last chunk).

    An argument it cannot use raises :class:`faultprint.ConfigurationError`
    (``TypeError`` for an unusable ``expect=``) when it decorates.
    """
    check_call_options(
        "@faultprint.observe",
        model=model,
        provider=provider,
        version=version,
        call_site=call_site,
        server_address=server_address,
        operation=operation,
        json=json,
        raise_on_invalid=raise_on_invalid,
        capture_content=capture_content,
        sample_rate=sample_rate,
    )
    options = dict(
        model=model,
        provider=provider,
        version=version,
        operation=operation,
        server_address=server_address,
        expect=expect,
        json=json,
        raise_on_invalid=raise_on_invalid,
        tools=tools,
        sample_rate=sample_rate,
        capture_content=capture_content,
    )
    if fn is None:
        return lambda f: _decorate(f, call_site, options)
    return _decorate(fn, call_site, options)


def _decorate(fn: Any, call_site: str | None, options: dict[str, Any]) -> Any:
    if isinstance(fn, (staticmethod, classmethod)):
        return type(fn)(_decorate(fn.__func__, call_site, options))
    if not callable(fn):
        raise TypeError(f"@faultprint.observe needs a function, got {type(fn).__name__}")
    # The call site names the function the application wrote, behind any
    # functools.wraps decorators; the kind of wrapper is that of ``fn``
    # itself, the function the wrapper calls. A decorator may change the kind
    # (a sync facade running a coroutine, a wrapper collecting a generator
    # into a list, contextlib.contextmanager): judged by the function it
    # wraps, the wrapper would hand the caller something ``fn`` never returns.
    target = _function_of(inspect.unwrap(fn))
    module = code_module(getattr(target, "__module__", None) or "?")
    site = call_site or f"{module}.{getattr(target, '__qualname__', repr(target))}"
    spec = CallSpec(call_site=site, receiver=_takes_receiver(target), **options)
    if inspect.isasyncgenfunction(fn):
        wrapper = _wrap_async_gen(fn, spec, _function_of(fn))
    elif inspect.isgeneratorfunction(fn):
        wrapper = _wrap_gen(fn, spec, _function_of(fn))
    elif inspect.iscoroutinefunction(fn):
        wrapper = _wrap_async(fn, spec)
    else:
        wrapper = _wrap_sync(fn, spec)
    functools.update_wrapper(wrapper, fn)
    wrapper.__faultprint_spec__ = spec  # type: ignore[attr-defined]
    return wrapper


def _takes_receiver(fn: Any) -> bool:
    """Whether ``fn``'s first parameter is a method's receiver, ``self`` or ``cls``.

    The receiver is not the call's input: hashing it would make the input
    hash depend on the object's state (and cost a pass over all the data a
    dataclass or pydantic ``self`` holds, on every call).
    """
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_argcount > 0 and code.co_varnames[0] in ("self", "cls")


def _function_of(fn: Any) -> Any:
    """The function whose code runs when ``fn`` is called.

    ``fn`` itself, or the function behind a bound method or a
    ``functools.partial``: :mod:`inspect` looks through those two to tell a
    function's kind, and a decorated stream function carries that code.
    """
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif inspect.ismethod(fn):
            fn = fn.__func__
        else:
            return fn


def _wrap_sync(fn: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = _begin(spec, args, kwargs)
        if call is None:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _leave(call)
            call.finish_exception(exc)
            raise
        _leave(call)
        call.finish_ok(result)
        return result

    return wrapper


def _wrap_async(fn: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = _begin(spec, args, kwargs)
        if call is None:
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:  # CancelledError included: end the span
            _leave(call)
            call.finish_exception(exc)
            raise
        _leave(call)
        call.finish_ok(result)
        return result

    return wrapper


def _stream_chunk(call: Call, item: Any) -> None:
    try:
        call.on_chunk()
        collect_chunk(call, item)
    except Exception:
        _log.debug("faultprint: chunk not recorded", exc_info=True)


def _stream_closed(call: Call) -> None:
    with contextlib.suppress(Exception):
        call.span.set_attribute(A.FP_STREAM_CLOSED_EARLY, True)
        record_partial_stream(call)
    call._finish()


def _stream_done(call: Call) -> None:
    """End a stream read to its end (as ``Call.finish_ok`` ends a returned call):
    with ``raise_on_invalid``, a failed output check raises here, after the last chunk."""
    try:
        finish_stream(call)
    except Exception:
        _log.debug("faultprint: stream output not analysed", exc_info=True)
    except BaseException as exc:  # interrupted while an output check ran
        call.finish_exception(exc)
        raise
    call._finish_checked()


def _begin_stream(
    spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any], parent: Context
) -> Call | None:
    """Start a stream's span under ``parent``, the context of the generator's creation.

    The span starts when the consumer first asks for a chunk, so time to first
    chunk is the model's latency, not how long the generator object waited
    to be iterated; its parent is what was current when the generator
    function was called (the consumer may iterate after leaving that span).
    """
    token = attach(parent)
    try:
        call = _begin(spec, args, kwargs)
        if call is not None:
            _leave(call)  # current only while the generator body runs
        return call
    finally:
        detach(token)


class _StreamFunction:
    """A decorated generator or async generator function.

    Calling it reads the current context, the stream's parent, at call time
    (a generator function's body would run only at the first ``next``), and
    returns the observed generator. To :mod:`inspect` it is still the
    generator function it wraps: like other function-like objects (Cython's,
    for one) it carries that function's ``__code__``, defaults and
    annotations, so ``inspect.isgeneratorfunction`` /
    ``inspect.isasyncgenfunction`` stay true, and code that tells streaming
    functions or yield fixtures (pytest's) by them keeps treating it as one.
    It binds as a method, and pickles and copies by name, as a function does.
    """

    __qualname__: str  # the wrapped function's, set by ``functools.update_wrapper``

    def __init__(
        self,
        fn: Callable[..., Any],
        spec: CallSpec,
        observed: Callable[..., Any],
        target: Any,
    ) -> None:
        self._fn = fn
        self._spec = spec
        self._observed = observed
        self.__code__ = target.__code__
        # the function's names, which functools.update_wrapper then replaces
        # with those of ``fn`` when it has its own (a partial has none)
        self.__name__ = target.__name__
        self.__qualname__ = target.__qualname__
        self.__defaults__ = getattr(target, "__defaults__", None)
        self.__kwdefaults__ = getattr(target, "__kwdefaults__", None)
        self.__globals__ = getattr(target, "__globals__", {})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._observed(self._fn, self._spec, args, kwargs, get_current())

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return types.MethodType(self, obj)

    def __reduce__(self) -> str:
        # By name, as pickle and copy treat functions.
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<observed function {self.__qualname__}>"


def _wrap_gen(fn: Callable[..., Any], spec: CallSpec, target: Any) -> Callable[..., Any]:
    return _StreamFunction(fn, spec, _observed_gen, target)


def _observed_gen(
    fn: Callable[..., Any],
    spec: CallSpec,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    parent: Context,
) -> Any:
    call = _begin_stream(spec, args, kwargs, parent)
    if call is None:
        return (yield from fn(*args, **kwargs))
    # The span is current only while the generator body runs, never
    # while the consumer holds a chunk.
    ctx = set_span_in_context(call.span, parent)
    try:
        gen = fn(*args, **kwargs)
    except BaseException as exc:
        call.finish_exception(exc)
        raise
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        token = attach(ctx)
        ctoken = _CURRENT.set(call)
        try:
            if to_throw is not None:
                exc_in, to_throw = to_throw, None
                item = gen.throw(exc_in)
            else:
                item = gen.send(to_send)
        except StopIteration as stop:
            _CURRENT.reset(ctoken)
            detach(token)
            value = stop.value
            break
        except BaseException as exc:  # KeyboardInterrupt included: end the span
            _CURRENT.reset(ctoken)
            detach(token)
            call.finish_exception(exc)
            raise
        _CURRENT.reset(ctoken)
        detach(token)
        _stream_chunk(call, item)
        try:
            to_send = yield item
        except GeneratorExit:
            # The body's own cleanup (an application span's ``with`` left
            # open across the yield) runs in the context it ran in, and
            # leaves the consumer's context as it was.
            token = attach(ctx)
            ctoken = _CURRENT.set(call)
            try:
                gen.close()
            finally:
                _safe_reset(ctoken, token)
                _stream_closed(call)
            raise
        except BaseException as exc:
            to_throw = exc
    _stream_done(call)  # out of the except block: an InvalidOutputError is not raised "during" it
    return value


def _wrap_async_gen(fn: Callable[..., Any], spec: CallSpec, target: Any) -> Callable[..., Any]:
    return _StreamFunction(fn, spec, _observed_async_gen, target)


async def _observed_async_gen(
    fn: Callable[..., Any],
    spec: CallSpec,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    parent: Context,
) -> Any:
    call = _begin_stream(spec, args, kwargs, parent)
    if call is None:
        async for item in fn(*args, **kwargs):
            yield item
        return
    ctx = set_span_in_context(call.span, parent)
    try:
        agen = fn(*args, **kwargs)
    except BaseException as exc:
        call.finish_exception(exc)
        raise
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        token = attach(ctx)
        ctoken = _CURRENT.set(call)
        try:
            if to_throw is not None:
                exc_in, to_throw = to_throw, None
                item = await agen.athrow(exc_in)
            else:
                item = await agen.asend(to_send)
        except StopAsyncIteration:
            _CURRENT.reset(ctoken)
            detach(token)
            break
        except BaseException as exc:  # CancelledError included: end the span
            _safe_reset(ctoken, token)
            call.finish_exception(exc)
            raise
        _CURRENT.reset(ctoken)
        detach(token)
        _stream_chunk(call, item)
        try:
            to_send = yield item
        except GeneratorExit:
            token = attach(ctx)  # as for a generator (see _observed_gen)
            ctoken = _CURRENT.set(call)
            try:
                await agen.aclose()
            finally:
                _safe_reset(ctoken, token)
                _stream_closed(call)
            raise
        except BaseException as exc:
            to_throw = exc
    _stream_done(call)


def _safe_reset(ctoken: Any, token: Any) -> None:
    # After a cancellation the task's context is still ours, but be defensive:
    # a failed reset must not mask the application's exception.
    with contextlib.suppress(Exception):
        _CURRENT.reset(ctoken)
    with contextlib.suppress(Exception):
        detach(token)


_NO_SPEC = CallSpec(call_site="", model=None, provider=None, version=None, operation="chat")
_NO_CALL = _NoCall(None, _NO_SPEC)
_NO_CALL.ended = True
