"""``faultprint.instrument_anthropic``: Anthropic messages.

Wraps ``create`` (streaming included), ``parse`` (structured outputs) and the
``stream`` helper (its span records the stream like ``create(...,
stream=True)`` does, and ends when the stream ends or its ``with`` block
exits) of ``client.messages`` and ``client.beta.messages`` on the given
client instance. The beta resource's helpers that send requests through
``client.beta.messages.create`` (message threads) are recorded through it,
and clients made from it with ``with_options()`` / ``copy()`` are
instrumented with the same options.
"""

from __future__ import annotations

import logging
from time import time_ns
from typing import Any

from faultprint._observe import _leave
from faultprint.integrations._common import (
    AsyncStreamProxy,
    MethodWrapper,
    StreamProxy,
    _StreamBase,
    check_client,
    check_options,
    instrument_copies,
    provider_of,
    replace_methods,
    replacement,
    server_address,
)

__all__ = ["instrument"]

_log = logging.getLogger("faultprint")


class _StreamManagerProxy:
    """Wraps ``messages.stream(...)``'s manager: one span per ``with`` block.

    The span starts when the block is entered (the request is sent then). The
    helper's ``MessageStream`` reads the raw event stream that ``create(...,
    stream=True)`` returns; that stream is observed by the same proxy as
    ``create``'s, so both record the same chunks, time to first chunk,
    output and failures, and leaving the block before the stream ends marks
    the span closed early.
    """

    def __init__(self, manager: Any, wrapper: MethodWrapper, kwargs: dict[str, Any]) -> None:
        self._manager = manager
        self._wrapper = wrapper
        self._kwargs = kwargs
        self._call: Any = None
        self._parent: Any = None
        self._stream: Any = None
        self._observed: Any = None
        #: when the request was sent (epoch ns), inside an @observe call
        self._began = 0

    def _begin(self) -> None:
        # Current while the manager sends the request, as inside create(), so
        # that a span the library starts for it is this call's child; not in
        # the with-block (see _sent).
        self._call, self._parent = self._wrapper.start(self._kwargs)
        if self._parent is not None:
            self._began = time_ns()

    def _failed(self, exc: BaseException) -> None:
        """The request failed: the manager's enter raised ``exc``."""
        if self._parent is not None:
            # inside an @observe call: a failed call of its own, as create()'s
            self._wrapper._raised(None, self._parent, exc, self._kwargs, self._began)
        else:
            self._end(exc)

    def _sent(self) -> None:
        if self._call is not None:
            _leave(self._call)

    def _observe(self, stream: Any, proxy: type[_StreamBase]) -> None:
        self._stream = stream
        call = self._call or self._parent
        if call is None:
            return
        try:
            raw = stream._raw_stream
            if isinstance(raw, _StreamBase):
                return
            on_error = self._wrapper._nested_errors(self._parent, self._kwargs, self._began)
            observed = proxy(raw, call, own=self._call is not None, on_error=on_error)
            # MessageStream reads _raw_stream lazily, on its first event.
            stream._raw_stream = observed
            self._observed = observed
        except Exception:
            _log.debug("faultprint: anthropic stream not observed", exc_info=True)

    def _end(self, exc: BaseException | None) -> None:
        call, parent = self._call, self._parent
        try:
            if self._observed is not None:
                # Ended by the stream (exhausted, failed, or closed by the
                # manager's exit, even when the block raised, as other
                # streams are); one still open ends closed early.
                self._observed._fp_end(early=True)
                return
            if exc is not None:
                if call is not None and not call.ended:
                    call.finish_exception(exc)
                return
            message = None
            if self._stream is not None:
                message = self._stream.current_message_snapshot
            if call is not None:
                if message is not None:
                    call.set_output(self._wrapper.extract(message))
                call._finish()
            elif parent is not None and message is not None and not parent.output_set:
                parent.set_output(self._wrapper.extract(message))
        except Exception:
            _log.debug("faultprint: anthropic stream not recorded", exc_info=True)
            if call is not None:
                call._finish()

    def __enter__(self) -> Any:
        self._begin()
        try:
            try:
                stream = self._manager.__enter__()
            finally:
                self._sent()
        except BaseException as exc:
            self._failed(exc)
            raise
        self._observe(stream, StreamProxy)
        return stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self._manager.__exit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    async def __aenter__(self) -> Any:
        self._begin()
        try:
            try:
                stream = await self._manager.__aenter__()
            finally:
                self._sent()
        except BaseException as exc:
            self._failed(exc)
            raise
        self._observe(stream, AsyncStreamProxy)
        return stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


def _wrap(messages: Any, wrapper: MethodWrapper) -> None:
    """Wrap ``create``, ``parse`` and ``stream`` of one messages resource, once."""
    replace_methods(messages, ("create", "parse"), wrapper.wrap)

    def wrap_stream(stream: Any, is_async: bool) -> Any:
        # stream() itself is synchronous in both clients: it returns the manager.
        def stream_wrapper(*args: Any, **kwargs: Any) -> Any:
            manager = stream(*args, **kwargs)
            try:
                return _StreamManagerProxy(manager, wrapper, kwargs)
            except Exception:
                return manager

        return replacement(stream_wrapper, stream)

    replace_methods(messages, ("stream",), wrap_stream)


def instrument(client: Any, **options: Any) -> Any:
    """Instrument an Anthropic client in place; returns it. Idempotent."""
    where = "faultprint.instrument_anthropic()"
    check_options(where, options)
    check_client(where, client, "anthropic", ("messages", "beta"))
    server = server_address(client)
    provider = options.get("provider") or provider_of(client, "anthropic")
    resources = (
        ("messages", getattr(client, "messages", None)),
        ("beta.messages", getattr(getattr(client, "beta", None), "messages", None)),
    )
    for endpoint, messages in resources:
        if messages is None:
            continue
        # One call site for both resources: a failure mode met through the
        # beta resource is the same mode as through the stable one.
        wrapper = MethodWrapper(
            provider=provider,
            operation="chat",
            endpoint=endpoint,
            server_address=server,
            options=options,
        )
        _wrap(messages, wrapper)
    instrument_copies(client, instrument, options)
    return client
