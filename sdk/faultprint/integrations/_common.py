"""Wrapping a provider client's methods (shared by the OpenAI and Anthropic integrations).

Integrations wrap bound methods on the client's resource objects (for example
``client.chat.completions.create``), never the HTTP transport: the providers'
libraries change HTTP client packages between releases, their public methods
stay. A call made while a ``@observe`` call is in progress enriches that
call (response model, usage, finish reasons, output checks) instead of
opening a second span, so one logical model call is counted once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import weakref
from collections.abc import Callable
from time import time_ns
from types import CodeType, FrameType
from typing import Any

from faultprint._config import STATE
from faultprint._errors import interrupts_call
from faultprint._naming import code_module
from faultprint._observe import (
    _CURRENT,
    Call,
    CallSpec,
    _begin,
    _leave,
    _stream_closed,
    _stream_done,
)
from faultprint._options import check_call_options
from faultprint._output import (
    FINAL_RESPONSE_EVENTS,
    STOPPED_SHORT,
    Output,
    StreamState,
    extract,
)
from faultprint.integrations._background import BACKGROUND, is_pending_response

__all__ = [
    "AsyncStreamProxy",
    "MethodWrapper",
    "StreamProxy",
    "caller_site",
    "check_client",
    "check_options",
    "instrument_copies",
    "is_replacement",
    "provider_of",
    "replace_methods",
    "replacement",
    "server_address",
    "wrap_outcome",
]

_log = logging.getLogger("faultprint")
#: id(code) -> (code, its call site; None for a frame of faultprint or the
#: providers, skipped). Keyed by id: a code object's own hash reads its
#: constants (nested functions' code included) on every lookup, microseconds
#: for a large function. The entry holds the code, so while it is cached no
#: other code object can have its id.
_SITE_CACHE: dict[int, tuple[CodeType, str | None]] = {}
_MAX_SITES = 10000
#: modules whose frames are not the application's call site
_SKIPPED_MODULES = ("faultprint", "openai", "anthropic")
# Request fields that describe the input; the model is deliberately not one
# of them so the same prompt has the same input hash on every model version.
_INPUT_FIELDS = frozenset(
    {
        "messages",
        "input",
        "system",
        "instructions",
        "prompt",
        "tools",
        "response_format",
        "text",
    }
)


def caller_site(depth: int = 1) -> str:
    """``module.qualname`` of the nearest calling function outside faultprint and the providers.

    The search starts ``depth`` frames up (1: the function calling this
    one): a caller that knows how many of faultprint's own frames lie
    between it and the application's skips them at no cost.
    """
    try:
        frame: FrameType | None = sys._getframe(depth)
        while frame is not None:
            code = frame.f_code
            entry = _SITE_CACHE.get(id(code))
            site = entry[1] if entry is not None else _site_of(frame, code)
            if site is not None:
                return site
            frame = frame.f_back
        return "unknown"
    except Exception:
        return "unknown"


def _site_of(frame: FrameType, code: CodeType) -> str | None:
    """The call site a frame of CODE names, None when it is skipped (cached)."""
    module = frame.f_globals.get("__name__")
    if not isinstance(module, str):
        module = "?"
    site = (
        None if module.startswith(_SKIPPED_MODULES) else f"{code_module(module)}.{code.co_qualname}"
    )
    if len(_SITE_CACHE) < _MAX_SITES:
        _SITE_CACHE[id(code)] = (code, site)
    return site


def server_address(client: Any) -> str | None:
    """The host a provider client sends to (``server.address``); None when unknown."""
    try:
        host = client.base_url.host
        return str(host) if host else None
    except Exception:
        return None


#: what instrument_openai / instrument_anthropic take besides the client
INSTRUMENT_OPTIONS = (
    "version",
    "call_site",
    "provider",
    "expect",
    "json",
    "sample_rate",
    "capture_content",
)


def check_options(where: str, options: dict[str, Any]) -> None:
    """Check the ``options`` of the integration ``where`` now, at start-up.

    Read later, on each call, a mistake would only be logged, at debug
    level, and leave every call of the client unrecorded: an unknown option
    raises ``TypeError`` (as an unknown keyword argument would), an unusable
    value :class:`~faultprint.ConfigurationError` as for ``@observe``, an
    unusable ``expect=`` the ``TypeError`` ``@observe`` raises for it.
    """
    unknown = sorted(set(options) - set(INSTRUMENT_OPTIONS))
    if unknown:
        raise TypeError(
            f"{where} got an unexpected option {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(INSTRUMENT_OPTIONS)}"
        )
    check_call_options(where, **{k: v for k, v in options.items() if k != "expect"})
    if options.get("expect") is not None:
        from faultprint._checks import build_checks

        build_checks(options["expect"], False)


def check_client(where: str, client: Any, library: str, resources: tuple[str, ...]) -> None:
    """Raise ``TypeError`` unless ``client`` looks like a client of ``library``.

    A client of the other provider's library, or something that is not a
    client at all, would otherwise be left unrecorded without a word.
    """
    root = (type(client).__module__ or "").split(".", 1)[0]
    other = {"openai": "anthropic", "anthropic": "openai"}.get(library)
    if root == other:
        raise TypeError(f"{where} got a client of the {other} library: use instrument_{other}()")
    if not any(getattr(client, name, None) is not None for name in resources):
        raise TypeError(
            f"{where} takes a client of the {library} library, got {type(client).__name__}"
        )


#: hosts of the clouds that serve a provider's API -> OpenTelemetry registry
#: name; the same names other instrumentations give them, so that a failure
#: recorded by either has one call site and one fingerprint
_HOSTED = (
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("amazonaws.com", "aws.bedrock"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
)
#: client classes of the provider libraries for those clouds
_HOSTED_CLIENTS = {
    "BaseAzureClient": "azure.ai.openai",
    "BaseBedrockClient": "aws.bedrock",
    "BaseMantleClient": "aws.bedrock",
    "BaseVertexClient": "gcp.vertex_ai",
}


def provider_of(client: Any, library: str) -> str:
    """``gen_ai.provider.name`` of ``client``'s calls: the cloud serving
    the API (Azure OpenAI, AWS Bedrock, Google Vertex AI) when the client's
    class or host says so, else ``library``.

    As the GenAI conventions ask, a host faultprint does not know (a proxy,
    another company's endpoint speaking the same API) keeps the library's
    name; ``provider=`` names it.
    """
    for cls in type(client).__mro__:
        hosted = _HOSTED_CLIENTS.get(cls.__name__)
        if hosted is not None:
            return hosted
    host = (server_address(client) or "").lower()
    for suffix, name in _HOSTED:
        # Vertex AI's regional hosts are "{region}-aiplatform.googleapis.com"
        if host == suffix or host.endswith(("." + suffix, "-" + suffix)):
            return name
    return library


def _request_input(kwargs: dict[str, Any]) -> dict[str, Any]:
    # A loop, not a comprehension: this runs on every call, and before
    # Python 3.12 a comprehension is a function call of its own. Over the
    # call's arguments (two to six, as a rule), not over the fields; their
    # order does not matter: the canonical form sorts the keys.
    request = {}
    for key in kwargs:
        if key in _INPUT_FIELDS:
            request[key] = kwargs[key]
    return request


#: set on each method faultprint puts in place of a provider library's, so
#: that instrumenting a client again leaves it alone
_MARK = "__faultprint__"


def replacement(method: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, marked as faultprint's replacement for ``original`` (whose
    name and docstring it takes, and which it keeps as ``__wrapped__``)."""
    functools.update_wrapper(method, original)
    setattr(method, _MARK, True)
    return method


def is_replacement(method: Any) -> bool:
    """True for a method faultprint already put in place."""
    return bool(getattr(method, _MARK, False))


class MethodWrapper:
    """Builds sync / async replacements for one provider method."""

    def __init__(
        self,
        *,
        provider: str,
        operation: str,
        endpoint: str,
        server_address: str | None,
        options: dict[str, Any],
        classify_response: Callable[[Any], Output] | None = None,
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.endpoint = endpoint
        self.server_address = server_address
        self.options = options
        self.classify_response = classify_response
        self.version = options.get("version")
        self.call_site = options.get("call_site")
        self.expect = options.get("expect")
        self.json = bool(options.get("json", False))
        self.capture_content = options.get("capture_content")
        self.sample_rate = options.get("sample_rate")
        self._specs: dict[Any, CallSpec] = {}
        self.extract = classify_response or extract
        #: its responses may be background ones (OpenAI's responses endpoint)
        self.background = endpoint == "responses"

    def at(self, server_address: str | None) -> MethodWrapper:
        """This wrapper, for calls sent to ``server_address`` instead."""
        if server_address == self.server_address:
            return self
        return MethodWrapper(
            provider=self.provider,
            operation=self.operation,
            endpoint=self.endpoint,
            server_address=server_address,
            options=self.options,
            classify_response=self.classify_response,
        )

    @property
    def site(self) -> str:
        """The call site of this method's calls: ``call_site=``, else the endpoint.

        The endpoint is ``{provider}.{operation}`` (e.g. ``openai.chat``):
        other instrumentations of the same client can only name the
        endpoint, and one failure must get one fingerprint whichever of them
        recorded it. The caller is kept as ``code.function.name``.
        """
        return self.call_site or f"{self.provider}.{self.operation}"

    def spec(self, model: Any) -> CallSpec:
        """The CallSpec of this method's calls of ``model``, built once."""
        spec = self._specs.get(model)
        if spec is None:
            spec = CallSpec(
                call_site=self.site,
                model=model if isinstance(model, str) else None,
                provider=self.provider,
                version=self.version,
                operation=self.operation,
                server_address=self.server_address,
                expect=self.expect,
                json=self.json,
                sample_rate=self.sample_rate,
                capture_content=self.capture_content,
                integration=True,
            )
            if len(self._specs) < 1000:
                self._specs[model] = spec
        return spec

    def start(self, kwargs: dict[str, Any]) -> tuple[Call | None, Call | None]:
        """Start a call of this method with ``kwargs``: (own call, parent call).

        Exactly one is set, or neither: inside an ``@observe`` call the
        method enriches that call (the parent) instead of opening a span;
        inside another instrumented method (the provider library calling
        itself) nothing is recorded.
        """
        try:
            parent = _CURRENT.get()
            if parent is not None and not parent.ended:
                if parent.spec.integration:
                    return None, None  # the provider library calling itself
                parent.tools = kwargs.get("tools")
                return None, parent
            # 3: past start() and the create() replacement that called it
            extra = None if self.call_site else {"code.function.name": caller_site(3)}
            spec = self.spec(kwargs.get("model"))
            call = _begin(spec, (_request_input(kwargs),), {}, extra)
            if call is not None:
                call.tools = kwargs.get("tools")
            return call, None
        except Exception:
            _log.debug("faultprint: could not start an integration call", exc_info=True)
            return None, None

    def _done(self, call: Call | None, parent: Call | None, result: Any) -> None:
        """Leave ``call`` and record ``result`` as its (or ``parent``'s) response."""
        if call is not None:
            _leave(call)
            if not self.background:
                # _complete(), inline for the commonest call: one call fewer
                # measured cheaper right after the client's own work, when
                # faultprint's code is no longer in the CPU's caches
                try:
                    self._end(call, result)
                except Exception:
                    _log.debug("faultprint: integration output not recorded", exc_info=True)
                return
        self._complete(call, parent, result)

    def _complete(self, call: Call | None, parent: Call | None, result: Any) -> None:
        """Record ``result`` as the response of a call no longer current, ending its span."""
        try:
            if call is not None:
                if self.background and is_pending_response(result):
                    # background=True: the outcome comes with a later retrieve
                    BACKGROUND.hold(result, functools.partial(self._end, call))
                    return
                self._end(call, result)
            elif parent is not None and result is not _UNREAD:
                parent.set_integration_output(self.extract(result))
        except Exception:
            _log.debug("faultprint: integration output not recorded", exc_info=True)

    def _end(self, call: Call, result: Any, defer: bool = True) -> None:
        """End ``call``'s span now, with ``result`` as its response.

        Reading the response and ending the span happen on the export thread
        when it takes the work (and ``defer``: not in a signal handler).
        """
        call.end_time = time_ns()
        queue = STATE.queue
        if (
            not defer
            or queue is None
            or not STATE.background_finish
            or not queue.defer(self._finish, call, result)
        ):
            self._finish(call, result)

    def _finish(self, call: Call, result: Any) -> None:
        """Record a returned call's response on its span and end the span."""
        try:
            if result is not _UNREAD:
                call.set_output(self.extract(result) if result is not None else None)
        finally:
            call._finish()

    def _raised(
        self,
        call: Call | None,
        parent: Call | None,
        exc: BaseException,
        kwargs: dict[str, Any] | None = None,
        began: int = 0,
    ) -> None:
        """Record a provider method that raised ``exc`` (the caller re-raises it).

        Inside a ``@observe`` call (PARENT), a provider error is a failed
        model call of its own, held by the parent until it ends (see
        ``Call.hold_nested``); KWARGS and BEGAN (epoch ns) describe it.
        """
        if call is not None:
            _leave(call)
        elif (
            parent is not None
            and kwargs is not None
            and began
            and self._hold_nested(parent, kwargs, began, exc)
        ):
            return
        self._complete_raised(call, parent, exc)

    def _hold_nested(
        self, parent: Call, kwargs: dict[str, Any], began: int, exc: BaseException
    ) -> bool:
        """Have PARENT keep a call of this method begun at BEGAN (epoch ns)
        that failed with ``exc`` (see ``Call.hold_nested``).

        False when ``exc`` is no failed call of its own: an interruption, or
        a completion refused for its finish reason (the caller records it).
        """
        try:
            if _finish_reason_completion(exc) is None and not interrupts_call(exc):
                nested = self._nested_call(kwargs, began)
                if nested is not None:
                    nested.end_time = time_ns()
                    parent.hold_nested(nested, exc)
                    return True
        except Exception:
            _log.debug("faultprint: nested provider error not recorded", exc_info=True)
        return False

    def _nested_errors(
        self, parent: Call | None, kwargs: dict[str, Any], began: int
    ) -> Callable[[BaseException], object] | None:
        """What a stream of this method's call inside PARENT (an ``@observe``
        call) does with an error it raises: PARENT keeps it as a failed call
        of its own, begun at BEGAN (``_hold_nested``). None outside one."""
        if parent is None:
            return None
        return functools.partial(self._hold_nested, parent, kwargs, began)

    def _streamed(
        self,
        result: Any,
        call: Call | None,
        parent: Call | None,
        kwargs: dict[str, Any],
        began: int,
        proxy: type[_StreamBase],
    ) -> Any:
        """Observe the stream a ``create(..., stream=True)`` returned; returns what
        the application gets.

        A provider library's own ``Stream`` is observed in place: applications
        and the library's helpers check its type. Anything else is wrapped in
        PROXY. Inside an ``@observe`` call (PARENT), an error the stream
        raises is a failed model call of its own, as a ``create`` that raised.
        """
        if call is not None:
            _leave(call)
        on_error = self._nested_errors(parent, kwargs, began)
        returned: Any = result
        observed = None
        try:
            observed = _observe_library_stream(result, call or parent, call is not None, on_error)
        except Exception:
            _log.debug("faultprint: library stream not observed in place", exc_info=True)
        if observed is None:
            observed = returned = proxy(result, call or parent, call is not None, on_error)
        if parent is not None:
            parent.open_stream = (returned, observed)
        return returned

    def _nested_call(self, kwargs: dict[str, Any], began: int) -> Call | None:
        """A call of this method, started at BEGAN under the current call, not made current."""
        extra = None if self.call_site else {"code.function.name": caller_site()}
        spec = self.spec(kwargs.get("model"))
        return _begin(spec, (_request_input(kwargs),), {}, extra, start_time=began)

    def _complete_raised(self, call: Call | None, parent: Call | None, exc: BaseException) -> None:
        """Record ``exc`` as the end of a call no longer current."""
        completion = _finish_reason_completion(exc)
        if completion is not None:
            # parse() refusing a completion cut by its finish reason: record
            # the completion, as create() would have, so that a truncation is
            # one failure mode whichever of the two methods met it.
            self._complete(call, parent, completion)
        elif call is not None:
            call.finish_exception(exc)

    def _raw_returned(
        self, call: Call | None, parent: Call | None, result: Any, parsed: Any, read: bool
    ) -> None:
        """Record a raw response: at once when its body was READ (PARSED is the
        parsed body), else when the application reads it (``_observe_raw``)."""
        if read:
            self._done(call, parent, parsed)
        elif not self._observe_raw(call, parent, result, parsed):
            self._done(call, parent, result)

    def _observe_raw(
        self, call: Call | None, parent: Call | None, result: Any, parsed: Any
    ) -> bool:
        """Leave a raw response's call open until the application reads it.

        ``parsed`` is the stream a ``stream=True`` response's ``parse()``
        returned (observed like ``create``'s streams), or None for a
        ``with_streaming_response`` response whose body is still unread
        (recorded when the application's ``parse()`` returns). False when
        neither applies and nothing was changed.
        """
        observed: _StreamBase | _PendingResponse | None = None
        try:
            if parsed is not None:
                observed = _observe_library_stream(parsed, call or parent, own=call is not None)
                if observed is None:
                    return False
                _on_close(result, observed._fp_end, early=True)
            else:
                observed = _PendingResponse(self, call, parent)
                observed.watch(result)
        except Exception:
            _log.debug("faultprint: raw response not observed", exc_info=True)
            if observed is not None:
                observed._fp_finished = True  # the caller ends the span: hooks set do nothing
            return False
        if call is not None:
            _leave(call)  # current only inside create(), not while the application reads
        return True

    def wrap(self, original: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
        """Replacement for a ``create`` (or ``parse``), async or not."""
        return self.wrap_async(original) if is_async else self.wrap_sync(original)

    def wrap_sync(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Replacement for a sync ``create``."""

        def create(*args: Any, **kwargs: Any) -> Any:
            call, parent = self.start(kwargs)
            if call is None and parent is None:
                return original(*args, **kwargs)
            began = time_ns() if parent is not None else 0
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                self._raised(call, parent, exc, kwargs, began)
                raise
            if kwargs.get("stream") and _is_stream(result):
                return self._streamed(result, call, parent, kwargs, began, StreamProxy)
            # with_raw_response / with_streaming_response? (one dict lookup otherwise)
            mode = _raw_mode(result, kwargs) if "extra_headers" in kwargs else None
            if mode is not None:
                parsed = _raw_parse(result) if mode == "raw" or kwargs.get("stream") else None
                if inspect.isawaitable(parsed):  # not ours to await here
                    with contextlib.suppress(Exception):
                        parsed.close()  # type: ignore[attr-defined]
                    parsed = result
                read = mode == "raw" and not kwargs.get("stream")  # parsed: the body
                self._raw_returned(call, parent, result, parsed, read)
                return result
            self._done(call, parent, result)
            return result

        return replacement(create, original)

    def wrap_async(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Replacement for an async ``create``."""

        async def create(*args: Any, **kwargs: Any) -> Any:
            call, parent = self.start(kwargs)
            if call is None and parent is None:
                return await original(*args, **kwargs)
            began = time_ns() if parent is not None else 0
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                self._raised(call, parent, exc, kwargs, began)
                raise
            if kwargs.get("stream") and _is_stream(result):
                return self._streamed(result, call, parent, kwargs, began, AsyncStreamProxy)
            # with_raw_response / with_streaming_response? (one dict lookup otherwise)
            mode = _raw_mode(result, kwargs) if "extra_headers" in kwargs else None
            if mode is not None:
                parsed = _raw_parse(result) if mode == "raw" or kwargs.get("stream") else None
                if inspect.isawaitable(parsed):
                    try:
                        parsed = await parsed
                    except Exception:
                        parsed = result
                read = mode == "raw" and not kwargs.get("stream")  # parsed: the body
                self._raw_returned(call, parent, result, parsed, read)
                return result
            self._done(call, parent, result)
            return result

        return replacement(create, original)


def replace_methods(
    resource: Any,
    names: tuple[str, ...],
    make: Callable[[Callable[..., Any], bool], Callable[..., Any]],
) -> None:
    """Set each method of ``resource`` named in ``names`` to ``make(original, is_async)``.

    Once: a method faultprint already replaced is left alone. Async
    resources' methods are plain functions returning a coroutine
    (argument-checking wrappers hide the coroutine function), so the
    resource's class name decides too.
    """
    for name in names:
        original = getattr(resource, name, None)
        if original is None or is_replacement(original):
            continue
        is_async = inspect.iscoroutinefunction(original) or type(resource).__name__.startswith(
            "Async"
        )
        setattr(resource, name, make(original, is_async))


def wrap_outcome(original: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    """Replacement for ``responses.retrieve`` / ``cancel``: a final response
    they return (or stream, ``retrieve(..., stream=True)``) ends the held call
    of the background response it is."""
    if is_async:

        async def outcome_async(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            if BACKGROUND:
                _outcome(result, kwargs)
            return result

        method = outcome_async
    else:

        def outcome(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if BACKGROUND:
                _outcome(result, kwargs)
            return result

        method = outcome
    return replacement(method, original)


def instrument_copies(client: Any, instrument: Callable[..., Any], options: dict[str, Any]) -> None:
    """Have ``client.copy()`` and ``client.with_options()`` (one method in both
    libraries) return clients instrumented with the same ``options``: per-request
    settings such as ``client.with_options(timeout=...)`` are common, and the
    libraries' own helpers make such copies."""
    original = getattr(client, "copy", None)
    if original is None or is_replacement(original):
        return

    def copy(*args: Any, **kwargs: Any) -> Any:
        new = original(*args, **kwargs)
        try:
            instrument(new, **options)
        except Exception:
            _log.debug("faultprint: client copy not instrumented", exc_info=True)
        return new

    client.copy = client.with_options = replacement(copy, original)


def _outcome(result: Any, kwargs: dict[str, Any]) -> None:
    """End the held call ``result`` (a response, or a stream of one) is the outcome of."""
    try:
        if not kwargs.get("stream"):
            BACKGROUND.resolve(result)
            return
        if _is_library_stream(result):
            # The library's stream stays the application's; only the iterator
            # it reads events from is watched for the final one.
            iterator = result._iterator
            if hasattr(iterator, "__anext__"):
                result._iterator = _final_events_async(iterator)
            else:
                result._iterator = _final_events(iterator)
    except Exception:
        _log.debug("faultprint: background outcome not watched", exc_info=True)


def _final_event(event: Any) -> None:
    kind = getattr(event, "type", None)
    if isinstance(kind, str) and kind in FINAL_RESPONSE_EVENTS:
        BACKGROUND.resolve(getattr(event, "response", None))


def _final_events(iterator: Any) -> Any:
    for event in iterator:
        _final_event(event)
        yield event


async def _final_events_async(iterator: Any) -> Any:
    async for event in iterator:
        _final_event(event)
        yield event


def _raw_mode(result: Any, kwargs: dict[str, Any]) -> str | None:
    """How ``result`` came back: ``raw`` (``with_raw_response``), ``stream``
    (``with_streaming_response``), or None for a plain call."""
    try:
        headers = kwargs.get("extra_headers")
        if not isinstance(headers, dict) or type(result).__name__ not in _RAW_TYPES:
            return None
        mode = headers.get(_RAW_HEADER)
        if mode in ("raw", "true"):
            return "raw"
        return "stream" if mode == "stream" else None
    except Exception:
        return None


def _raw_parse(result: Any) -> Any:
    """What the raw response ``result``'s ``parse()`` returns, else ``result``.

    The raw response caches what its ``parse()`` returns, per target type:
    parsing it here with no arguments, as the application's own ``parse()``
    does, costs the application nothing more and hands it the same object.
    It is called only where it reads no body: a ``with_raw_response``
    response's body has been read already, and a streamed response's
    ``parse()`` makes the library's stream object without reading from it.
    A ``with_streaming_response`` response's body is left for the
    application to read. The async clients' ``parse()`` returns an awaitable.
    """
    try:
        return result.parse()
    except Exception:
        _log.debug("faultprint: raw response not parsed", exc_info=True)
        return result


#: The result of a call whose response the application never parsed: its
#: span ends with no output (an unread body is not an empty output)
_UNREAD = object()

# The providers' libraries mark a with_raw_response call with this header
# (value "raw" or "true"; "stream" for with_streaming_response).
_RAW_HEADER = "X-Stainless-Raw-Response"
_RAW_TYPES = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})


def _is_library_stream(obj: Any) -> bool:
    """True for a provider library's ``Stream`` / ``AsyncStream``."""
    cls = type(obj)
    return (cls.__module__ or "").startswith(("openai", "anthropic")) and hasattr(cls, "__stream__")


def _observe_library_stream(
    stream: Any,
    call: Call | None,
    own: bool,
    on_error: Callable[[BaseException], object] | None = None,
) -> _StreamBase | None:
    """Observe a provider library's ``Stream`` / ``AsyncStream`` in place.

    The application keeps the library's own stream object (the library's
    helpers and applications check its type); only the iterator it reads its
    items from, ``_iterator``, is replaced by a stream proxy, and closing it
    ends the span as a closed ``create`` stream does. None (and nothing
    changed) for anything else.
    """
    if not _is_library_stream(stream):
        return None
    iterator = stream._iterator  # the library's generator (made on first use)
    if isinstance(iterator, _StreamBase):
        return iterator
    proxy: type[_StreamBase] = AsyncStreamProxy if hasattr(iterator, "__anext__") else StreamProxy
    observed = proxy(iterator, call, own, on_error)
    stream._iterator = observed
    _on_close(stream, observed._fp_end, early=True)
    return observed


def _hook(obj: Any, name: str, after: Callable[[Any, BaseException | None], None]) -> bool:
    """Set ``obj.NAME`` so that its class's method runs, then ``after(value, exc)``.

    Sync or async, as the class defines the method; ``after`` never raises
    into the caller. Set on the instance, so its type is unchanged; the
    replacement holds ``obj`` weakly so that dropping ``obj`` still frees it
    at once. False (and nothing set) when the class has no such method.
    """
    original = getattr(type(obj), name, None)
    if original is None:
        return False
    ref = weakref.ref(obj)

    def done(value: Any, exc: BaseException | None) -> None:
        with contextlib.suppress(Exception):
            after(value, exc)

    hooked: Callable[..., Any]
    if inspect.iscoroutinefunction(original):

        async def hooked_async(*args: Any, **kwargs: Any) -> Any:
            try:
                value = await original(ref(), *args, **kwargs)
            except BaseException as exc:
                done(None, exc)
                raise
            done(value, None)
            return value

        hooked = hooked_async
    else:

        def hooked_sync(*args: Any, **kwargs: Any) -> Any:
            try:
                value = original(ref(), *args, **kwargs)
            except BaseException as exc:
                done(None, exc)
                raise
            done(value, None)
            return value

        hooked = hooked_sync
    setattr(obj, name, functools.update_wrapper(hooked, original))
    return True


def _on_close(obj: Any, callback: Callable[..., Any], **kwargs: Any) -> None:
    """After ``obj.close()`` returns or raises, call ``callback(**kwargs)``."""
    _hook(obj, "close", lambda _value, _exc: callback(**kwargs))


class _PendingResponse:
    """A ``with_streaming_response`` call whose body the application has yet to read.

    Its span ends when the application's first ``parse()`` returns (with the
    parsed response, as an ordinary call records it) or raises, or else when
    the response is closed or dropped unparsed (with no output: reading the
    body some other way, or not at all, is no failure of the call).
    """

    def __init__(self, wrapper: MethodWrapper, call: Call | None, parent: Call | None) -> None:
        self._wrapper = wrapper
        self._call = call
        self._parent = parent
        self._fp_finished = False
        self._finalizer: Any = None

    def watch(self, response: Any) -> None:
        """Hook ``response``'s ``parse()`` and ``close()`` on the instance."""
        if not _hook(response, "parse", self._parse_ended):
            raise TypeError(f"{type(response).__name__} has no parse()")
        _on_close(response, self.closed)
        finalizer = weakref.finalize(response, self.closed)
        finalizer.atexit = False
        self._finalizer = finalizer

    def _parse_ended(self, value: Any, exc: BaseException | None) -> None:
        if exc is None:
            self.parsed(value)
        else:
            self.failed(exc)

    def _end(self) -> bool:
        if self._fp_finished:
            return False
        self._fp_finished = True
        with contextlib.suppress(Exception):
            self._finalizer.detach()
        return True

    def parsed(self, value: Any) -> None:
        """The application's ``parse()`` returned ``value``."""
        if self._end():
            self._wrapper._complete(self._call, self._parent, value)

    def failed(self, exc: BaseException) -> None:
        """The application's ``parse()`` raised ``exc``."""
        if self._end():
            try:
                self._wrapper._complete_raised(self._call, self._parent, exc)
            except Exception:
                _log.debug("faultprint: raw response failure not recorded", exc_info=True)

    def closed(self) -> None:
        """The response was closed or dropped; ends a span not ended yet."""
        if self._end():
            self._wrapper._complete(self._call, None, _UNREAD)


#: OpenAI's parse() raises these for a completion whose finish reason is
#: length / content_filter; the completion rides on the exception
_FINISH_REASON_ERRORS = frozenset({"LengthFinishReasonError", "ContentFilterFinishReasonError"})

#: anthropic's parse helpers, whose ``response`` argument is that message
_ANTHROPIC_PARSERS = frozenset({"parse_response", "parse_beta_response"})


def _finish_reason_completion(exc: BaseException) -> Any:
    """The response a ``parse()`` refused for its finish or stop reason, else None.

    OpenAI's finish-reason errors carry the completion. Anthropic's
    ``parse()`` raises the validation error of a message whose text was cut
    short by its stop reason (or is a refusal): that message is read from
    the frame of anthropic's parse helper in the exception's traceback.
    """
    cls = type(exc)
    module = cls.__module__ or ""
    if cls.__name__ in _FINISH_REASON_ERRORS and module.startswith("openai"):
        return getattr(exc, "completion", None)
    if cls.__name__ == "ValidationError" and module.startswith("pydantic"):
        return _anthropic_cut_message(exc)
    return None


def _anthropic_cut_message(exc: BaseException) -> Any:
    """The message a validation error raised by anthropic's parse helper was
    about, when its stop reason cut it short or refused; else None."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in _ANTHROPIC_PARSERS and str(
            frame.f_globals.get("__name__", "")
        ).startswith("anthropic."):
            # The text of a message stopped short fails that validation because
            # it was cut or refused, not because the model got it wrong.
            message = frame.f_locals.get("response")
            reason = getattr(message, "stop_reason", None)
            return message if isinstance(reason, str) and reason in STOPPED_SHORT else None
        tb = tb.tb_next
    return None


def _is_stream(obj: Any) -> bool:
    return hasattr(obj, "__iter__") or hasattr(obj, "__aiter__")


class _StreamBase:
    """Observes a provider stream; the span ends when it is exhausted or closed."""

    def __init__(
        self,
        stream: Any,
        call: Call | None,
        own: bool,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        self._fp_stream = stream
        self._fp_call = call
        self._fp_own = own
        #: a stream of a call inside another (not OWN): records an error the
        #: stream raises as a failed call of its own (``MethodWrapper._hold_nested``)
        self._fp_on_error = on_error
        self._fp_state = StreamState()
        self._fp_finished = call is None

    def _fp_adopt(self) -> bool:
        """Make this stream of a call inside another its call's own.

        The decorated function that made it returned it unread: its call
        ends when the stream does (exhausted, closed, abandoned or failed),
        with the stream's chunks and output. False when the stream has ended
        or is its own call's already.
        """
        if self._fp_finished or self._fp_own:
            return False
        self._fp_own = True
        self._fp_on_error = None
        return True

    def _fp_chunk(self, item: Any) -> None:
        call = self._fp_call
        if call is None:
            return
        try:
            if self._fp_own:
                call.on_chunk()
            self._fp_state.add(item)
        except Exception:
            _log.debug("faultprint: stream chunk not recorded", exc_info=True)

    def _fp_end(self, exc: BaseException | None = None, early: bool = False) -> None:
        if self._fp_finished:
            return
        self._fp_finished = True
        call = self._fp_call
        if call is None:
            return
        try:
            if exc is not None:
                if self._fp_own:
                    # what arrived before is recorded if the caller cancelled it
                    call.stream_parts = self._fp_state
                    call.finish_exception(exc)
                elif self._fp_on_error is not None:
                    self._fp_on_error(exc)
                return
            if self._fp_own:
                call.stream_parts = self._fp_state
                if early:
                    _stream_closed(call)
                else:
                    _stream_done(call)
            elif not early:
                # a stream read to its end inside an @observe call: like any
                # response there, the last one is that call's output
                out = self._fp_state.result()
                call.set_integration_output(out, out.text)
        except Exception:
            _log.debug("faultprint: stream end not recorded", exc_info=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp_stream, name)

    def __del__(self) -> None:
        # An abandoned stream still ends its span (as closed early).
        if not self._fp_finished:
            with contextlib.suppress(Exception):
                self._fp_end(early=True)


class StreamProxy(_StreamBase):
    """Sync stream proxy: iterate it, use it as a context manager, close it."""

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._fp_iter())
        except StopIteration:
            self._fp_end()
            raise
        except BaseException as exc:
            self._fp_end(exc)
            raise
        self._fp_chunk(item)
        return item

    def _fp_iter(self) -> Any:
        it = self.__dict__.get("_fp_it")
        if it is None:
            it = self.__dict__["_fp_it"] = iter(self._fp_stream)
        return it

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying stream; the span ends (closed early if unfinished)."""
        try:
            self._fp_stream.close()
        finally:
            self._fp_end(early=True)


class AsyncStreamProxy(_StreamBase):
    """Async stream proxy: ``async for``, ``async with``, ``await close()``."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            it = self.__dict__.get("_fp_it")
            if it is None:
                it = self.__dict__["_fp_it"] = self._fp_stream.__aiter__()
            item = await it.__anext__()
        except StopAsyncIteration:
            self._fp_end()
            raise
        except BaseException as exc:
            self._fp_end(exc)
            raise
        self._fp_chunk(item)
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying stream; the span ends (closed early if unfinished)."""
        try:
            await self._fp_stream.close()
        finally:
            self._fp_end(early=True)
