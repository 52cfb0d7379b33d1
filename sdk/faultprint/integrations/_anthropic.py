"""``faultprint.instrument_anthropic``: Anthropic messages.

Wraps ``client.messages.create`` (streaming included) and
``client.messages.stream`` (the helper's span ends when its ``with`` block
exits, with the accumulated message) on the given client instance.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from faultprint._observe import _leave
from faultprint.integrations._common import MethodWrapper, server_address

__all__ = ["instrument"]

_log = logging.getLogger("faultprint")


class _StreamManagerProxy:
    """Wraps ``messages.stream(...)``'s manager: one span per ``with`` block."""

    def __init__(self, manager: Any, wrapper: MethodWrapper, kwargs: dict[str, Any]) -> None:
        self._manager = manager
        self._wrapper = wrapper
        self._kwargs = kwargs
        self._call: Any = None
        self._parent: Any = None
        self._stream: Any = None

    def _begin(self) -> None:
        self._call, self._parent = self._wrapper._start(self._kwargs)
        if self._call is not None:
            _leave(self._call)  # current only inside create(), not the with-block

    def _end(self, exc: BaseException | None) -> None:
        call, parent = self._call, self._parent
        try:
            if exc is not None:
                if call is not None:
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
            self._stream = self._manager.__enter__()
        except BaseException as exc:
            self._end(exc)
            raise
        return self._stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self._manager.__exit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    async def __aenter__(self) -> Any:
        self._begin()
        try:
            self._stream = await self._manager.__aenter__()
        except BaseException as exc:
            self._end(exc)
            raise
        return self._stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


def instrument(client: Any, **options: Any) -> Any:
    """Instrument an Anthropic client in place; returns it. Idempotent."""
    messages = getattr(client, "messages", None)
    if messages is None:
        return client
    wrapper = MethodWrapper(
        provider="anthropic",
        operation="chat",
        endpoint="messages",
        server_address=server_address(client),
        options=options,
    )
    create = getattr(messages, "create", None)
    if create is not None and not getattr(create, "__faultprint__", False):
        if inspect.iscoroutinefunction(create) or type(messages).__name__.startswith("Async"):
            messages.create = wrapper.wrap_async(create)
        else:
            messages.create = wrapper.wrap_sync(create)
    stream = getattr(messages, "stream", None)
    if stream is not None and not getattr(stream, "__faultprint__", False):

        def stream_wrapper(*args: Any, **kwargs: Any) -> Any:
            manager = stream(*args, **kwargs)
            try:
                return _StreamManagerProxy(manager, wrapper, kwargs)
            except Exception:
                return manager

        stream_wrapper.__faultprint__ = True  # type: ignore[attr-defined]
        stream_wrapper.__wrapped__ = stream  # type: ignore[attr-defined]
        messages.stream = stream_wrapper
    return client
