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
import inspect
import logging
import sys
from collections.abc import Callable
from time import time_ns
from typing import Any

from faultprint._config import STATE
from faultprint._observe import (
    _CURRENT,
    Call,
    CallSpec,
    _begin,
    _leave,
    _stream_closed,
    _stream_done,
)
from faultprint._output import Output, StreamState, analyze, extract

__all__ = ["AsyncStreamProxy", "MethodWrapper", "StreamProxy", "caller_site", "server_address"]

_log = logging.getLogger("faultprint")
_SITE_CACHE: dict[Any, str] = {}
# Request fields that describe the input; the model is deliberately not one
# of them so the same prompt has the same input hash on every model version.
_INPUT_FIELDS = (
    "messages",
    "input",
    "system",
    "instructions",
    "prompt",
    "tools",
    "response_format",
    "text",
)


def caller_site() -> str:
    """``module.qualname`` of the nearest calling function outside faultprint and the providers."""
    try:
        frame = sys._getframe(1)
        # Skip frames of the provider libraries and of faultprint itself.
        while frame is not None:
            mod = frame.f_globals.get("__name__", "")
            if not mod.startswith(("faultprint", "openai", "anthropic")):
                break
            frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return "unknown"
        code = frame.f_code
        site = _SITE_CACHE.get(code)
        if site is None:
            site = f"{frame.f_globals.get('__name__', '?')}.{code.co_qualname}"
            if len(_SITE_CACHE) < 10000:
                _SITE_CACHE[code] = site
        return site
    except Exception:
        return "unknown"


def server_address(client: Any) -> str | None:
    """The host a provider client sends to (``server.address``); None when unknown."""
    try:
        host = client.base_url.host
        return str(host) if host else None
    except Exception:
        return None


def _request_input(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in _INPUT_FIELDS if k in kwargs}


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
        self.version = options.get("version")
        self.call_site = options.get("call_site")
        self.expect = options.get("expect")
        self.json = bool(options.get("json", False))
        self.capture_content = options.get("capture_content")
        self.sample_rate = options.get("sample_rate")
        self._specs: dict[tuple[Any, str], CallSpec] = {}
        self.extract = classify_response or extract

    def spec(self, model: Any, site: str) -> CallSpec:
        """The CallSpec for (model, call site), built once."""
        key = (model, site)
        spec = self._specs.get(key)
        if spec is None:
            spec = CallSpec(
                call_site=site,
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
                self._specs[key] = spec
        return spec

    def _start(self, kwargs: dict[str, Any]) -> tuple[Call | None, Call | None]:
        """(own call, parent call): exactly one is set, or neither."""
        try:
            parent = _CURRENT.get()
            if parent is not None and not parent.ended:
                if parent.spec.integration:
                    return None, None  # the provider library calling itself
                parent.tools = kwargs.get("tools")
                return None, parent
            # The call site is the instrumented endpoint ({provider}.{operation},
            # e.g. openai.chat): other instrumentations of the same client can
            # only name the endpoint, and one failure must get one fingerprint
            # whichever of them recorded it. The caller is kept as
            # code.function.name.
            site = self.call_site or f"{self.provider}.{self.operation}"
            extra = None if self.call_site else {"code.function.name": caller_site()}
            spec = self.spec(kwargs.get("model"), site)
            call = _begin(spec, (_request_input(kwargs),), {}, extra)
            if call is not None:
                call.tools = kwargs.get("tools")
            return call, None
        except Exception:
            _log.debug("faultprint: could not start an integration call", exc_info=True)
            return None, None

    def _done(self, call: Call | None, parent: Call | None, result: Any) -> None:
        try:
            if call is not None:
                _leave(call)
                # The span ends now; reading the response and ending it
                # happen on the export thread when it takes the work.
                call.end_time = time_ns()
                queue = STATE.queue
                if (
                    queue is None
                    or not STATE.background_finish
                    or not queue.defer(self._finish, call, result)
                ):
                    self._finish(call, result)
            elif parent is not None and not parent.output_set:
                parent.set_output(self.extract(result))
        except Exception:
            _log.debug("faultprint: integration output not recorded", exc_info=True)

    def _finish(self, call: Call, result: Any) -> None:
        """Record a returned call's response on its span and end the span."""
        try:
            call.set_output(self.extract(result) if result is not None else None)
        finally:
            call._finish()

    @staticmethod
    def _failed(call: Call | None, exc: BaseException) -> None:
        if call is not None:
            _leave(call)
            call.finish_exception(exc)

    def _raised(self, call: Call | None, parent: Call | None, exc: BaseException) -> None:
        """Record a provider method that raised ``exc`` (the caller re-raises it)."""
        completion = _finish_reason_completion(exc)
        if completion is None:
            self._failed(call, exc)
        else:
            # parse() refusing a completion cut by its finish reason: record
            # the completion, as create() would have, so that a truncation is
            # one failure mode whichever of the two methods met it.
            self._done(call, parent, completion)

    def wrap_sync(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Replacement for a sync ``create``."""

        def create(*args: Any, **kwargs: Any) -> Any:
            call, parent = self._start(kwargs)
            if call is None and parent is None:
                return original(*args, **kwargs)
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                self._raised(call, parent, exc)
                raise
            if kwargs.get("stream") and _is_stream(result):
                if call is not None:
                    _leave(call)
                return StreamProxy(result, call or parent, own=call is not None)
            if "extra_headers" in kwargs and not kwargs.get("stream"):  # with_raw_response?
                parsed = _raw_parse(result, kwargs)
                if inspect.isawaitable(parsed):  # not ours to await here
                    with contextlib.suppress(Exception):
                        parsed.close()  # type: ignore[attr-defined]
                    parsed = result
                self._done(call, parent, parsed)
                return result
            self._done(call, parent, result)
            return result

        create.__faultprint__ = True  # type: ignore[attr-defined]
        create.__wrapped__ = original  # type: ignore[attr-defined]
        return create

    def wrap_async(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Replacement for an async ``create``."""

        async def create(*args: Any, **kwargs: Any) -> Any:
            call, parent = self._start(kwargs)
            if call is None and parent is None:
                return await original(*args, **kwargs)
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                self._raised(call, parent, exc)
                raise
            if kwargs.get("stream") and _is_stream(result):
                if call is not None:
                    _leave(call)
                return AsyncStreamProxy(result, call or parent, own=call is not None)
            if "extra_headers" in kwargs and not kwargs.get("stream"):  # with_raw_response?
                parsed = _raw_parse(result, kwargs)
                if inspect.isawaitable(parsed):
                    try:
                        parsed = await parsed
                    except Exception:
                        parsed = result
                self._done(call, parent, parsed)
                return result
            self._done(call, parent, result)
            return result

        create.__faultprint__ = True  # type: ignore[attr-defined]
        create.__wrapped__ = original  # type: ignore[attr-defined]
        return create


def _raw_parse(result: Any, kwargs: dict[str, Any]) -> Any:
    """What ``result.parse()`` returns when ``result`` is a ``with_raw_response`` response.

    Anything else comes back unchanged. The raw response caches what its
    ``parse()`` returns, per target type: parsing it here with no
    arguments, as the application's own ``parse()`` does, costs the
    application nothing more and hands it the same object. Its body has been
    read already; a ``with_streaming_response`` response (header value
    ``stream``) has not, and is left for the application to read. The async
    clients' ``parse()`` returns an awaitable.
    """
    try:
        headers = kwargs.get("extra_headers")
        if not isinstance(headers, dict) or headers.get(_RAW_HEADER) not in ("raw", "true"):
            return result
        if type(result).__name__ not in _RAW_TYPES:
            return result
        return result.parse()
    except Exception:
        _log.debug("faultprint: raw response not parsed", exc_info=True)
        return result


# The providers' libraries mark a with_raw_response call with this header
# (value "raw" or "true"; "stream" for with_streaming_response).
_RAW_HEADER = "X-Stainless-Raw-Response"
_RAW_TYPES = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})


#: OpenAI's parse() raises these for a completion whose finish reason is
#: length / content_filter; the completion rides on the exception
_FINISH_REASON_ERRORS = frozenset({"LengthFinishReasonError", "ContentFilterFinishReasonError"})


def _finish_reason_completion(exc: BaseException) -> Any:
    """The completion an OpenAI finish-reason error carries, else None."""
    cls = type(exc)
    if cls.__name__ in _FINISH_REASON_ERRORS and (cls.__module__ or "").startswith("openai"):
        return getattr(exc, "completion", None)
    return None


def _is_stream(obj: Any) -> bool:
    return hasattr(obj, "__iter__") or hasattr(obj, "__aiter__")


class _StreamBase:
    """Observes a provider stream; the span ends when it is exhausted or closed."""

    def __init__(self, stream: Any, call: Call | None, own: bool) -> None:
        self._fp_stream = stream
        self._fp_call = call
        self._fp_own = own
        self._fp_state = StreamState()
        self._fp_finished = call is None

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
                    call.finish_exception(exc)
                return
            if self._fp_own:
                call.stream_parts = self._fp_state
                if early:
                    _stream_closed(call)
                else:
                    _stream_done(call)
            elif not early and not call.ended and not call.output_set:
                out = self._fp_state.result()
                call.output_set = True
                analyze(call, out, out.text)
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
