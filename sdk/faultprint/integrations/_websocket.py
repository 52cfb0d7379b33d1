"""Responses over a WebSocket (``client.responses.connect()``): one span per response.

On a Responses WebSocket the application sends ``response.create`` events
and reads the server's events for many responses on one socket: one response
at a time per lane (the request's ``stream_id``), lanes concurrently, and,
after the application steers a response, a successor response the server
starts by itself. Each response is one call:

* it starts when its ``response.create`` is sent (a successor: when its
  ``response.created`` arrives) and ends with its final event
  (``response.completed``, ``response.failed``, ``response.incomplete``),
  judged as a Responses stream is; the events in between are its chunks;
* an ``error`` event for the request fails it as the provider error it
  carries: its code, and its HTTP status when it has one, so that an error
  met over the socket is the failure mode the same error met over HTTP is;
* a socket lost while responses are under way fails them with the exception
  the application reads; closing the connection, faultprint shutting down or
  the process exiting ends them unjudged, as closing a stream early does;
* a ``response.create`` with ``generate: false`` (request state prepared,
  no output) is no model call, and one sent inside an ``@observe`` function
  is that function's call, as for the HTTP methods.

Watched where every way of using a connection meets: the sockets its manager
opens (every send, whether through the connection, the library's session
lanes or the queue of messages sent before the connection opened; every
receive) and the connection's ``parse_event``, which ``recv``, iteration,
``dispatch_events`` and sessions all read through. Messages read with
``recv_bytes`` are seen only if the application parses them with
``parse_event`` too.
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context, get_current

from faultprint import attributes as A
from faultprint._config import add_closer
from faultprint._observe import Call, _begin_stream, _leave, _stream_closed, _stream_done
from faultprint._output import (
    FINAL_RESPONSE_EVENTS,
    RESPONSE_STARTED_EVENTS,
    Output,
    StreamState,
    error_event,
)
from faultprint.integrations._common import replacement

__all__ = ["MAX_WAITING", "SocketCalls", "wrap_connect"]

_log = logging.getLogger("faultprint")

#: requests sent on one lane and not yet answered, at most; beyond it the
#: oldest ends unjudged (a server that never answers must not grow memory)
MAX_WAITING = 1000
#: lanes whose last response is remembered for its successor, at most
_MAX_FINISHED_LANES = 256


class _Request:
    """A ``response.create`` sent, waiting for its response."""

    __slots__ = ("call", "lane", "model", "parent")

    def __init__(self, call: Call | None, lane: str | None, model: Any, parent: Context) -> None:
        self.call = call  # None: not recorded (generate: false, or an @observe call's)
        self.lane = lane
        self.model = model
        self.parent = parent


class _Response:
    """The response a lane is streaming, and the call it ends."""

    __slots__ = ("call", "id", "model", "parent", "recorded", "state")

    def __init__(self, rid: str | None, request: _Request, recorded: bool) -> None:
        self.id = rid
        self.call = request.call
        self.model = request.model
        self.parent = request.parent
        self.recorded = recorded
        self.state = StreamState()


#: what a successor response inherits from the last one on its lane:
#: (response id, request model, parent context, recorded)
_Ended = tuple[str | None, Any, Context, bool]


def _lane(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _response_id(event: Any) -> str | None:
    rid = getattr(getattr(event, "response", None), "id", None)
    return rid if isinstance(rid, str) else None


def _is_create(message: Any) -> bool:
    if isinstance(message, str):
        return "response.create" in message
    if isinstance(message, (bytes, bytearray)):
        return b"response.create" in message
    return False


class SocketCalls:
    """The calls under way on one Responses WebSocket connection.

    Sends may come from any thread, events from the connection's reader;
    both change the lanes under one lock. Ending every call at shutdown
    takes no lock (it may run in a signal handler, wherever the signal
    caught the thread).
    """

    def __init__(self, wrapper: Any) -> None:
        #: the ``MethodWrapper`` of ``responses.create``: same spec, same call site
        self.wrapper = wrapper
        self._lock = threading.Lock()
        #: per lane, the requests sent and not yet answered, oldest first
        self._waiting: dict[str | None, collections.deque[_Request]] = {}
        #: per lane, the response under way
        self._running: dict[str | None, _Response] = {}
        #: per lane, the last response that ended: (id, model, parent context,
        #: recorded); a successor inherits from it, its late events are ignored
        self._finished: collections.OrderedDict[str | None, _Ended] = collections.OrderedDict()
        _SOCKETS.add(self)

    # --- sending ----------------------------------------------------------------
    def sent(self, message: Any) -> _Request | None:
        """A message about to be sent: a ``response.create`` starts its call."""
        try:
            if not _is_create(message):
                return None
            event = json.loads(message)
            if not isinstance(event, dict) or event.get("type") != "response.create":
                return None
            call = None
            if event.get("generate") is not False:
                call, _parent = self.wrapper.start(event)
                if call is not None:
                    _leave(call)  # the response arrives after send() returns
            lane = _lane(event.get("stream_id"))
            request = _Request(call, lane, event.get("model"), get_current())
            with self._lock:
                queue = self._waiting.setdefault(request.lane, collections.deque())
                queue.append(request)
                dropped = queue.popleft() if len(queue) > MAX_WAITING else None
            if dropped is not None and dropped.call is not None:
                _stream_closed(dropped.call)
            return request
        except Exception:
            _log.debug("faultprint: WebSocket request not recorded", exc_info=True)
            return None

    def unsent(self, request: _Request, exc: BaseException) -> None:
        """Sending ``request`` raised ``exc``: its call failed with it."""
        try:
            with self._lock:
                queue = self._waiting.get(request.lane)
                if queue is None or request not in queue:
                    return
                queue.remove(request)
            if request.call is not None:
                request.call.finish_exception(exc)
        except Exception:
            _log.debug("faultprint: WebSocket send failure not recorded", exc_info=True)

    # --- receiving --------------------------------------------------------------
    def received(self, event: Any) -> None:
        """An event the application reads: route it to its lane's response."""
        try:
            self._route(event)
        except Exception:
            _log.debug("faultprint: WebSocket event not recorded", exc_info=True)

    def _route(self, event: Any) -> None:
        etype = getattr(event, "type", None)
        if not isinstance(etype, str):
            return
        lane = _lane(getattr(event, "stream_id", None))
        replaced: _Response | None = None
        failed: _Request | _Response | None = None
        final = False
        with self._lock:
            running = self._running.get(lane)
            if etype == "error":
                failed = self._running.pop(lane, None)
                if failed is not None:
                    self._ended(lane, failed)
                else:
                    failed = self._pop_waiting(lane)
                running = None
            elif etype in RESPONSE_STARTED_EVENTS or etype in FINAL_RESPONSE_EVENTS:
                rid = _response_id(event)
                if running is None or (rid is not None and running.id != rid):
                    last = self._finished.get(lane)
                    if rid is not None and last is not None and last[0] == rid:
                        return  # a late event of a response that has ended
                    # A new response on this lane (replacing one that never
                    # ended: the server moved on without its final event).
                    replaced = running
                    running = self._running[lane] = self._next(lane, rid)
                if etype in FINAL_RESPONSE_EVENTS:
                    final = True
                    del self._running[lane]
                    self._ended(lane, running)
        if replaced is not None and replaced.call is not None:
            _close(replaced.call, replaced.state)
        if failed is not None and failed.call is not None:
            _fail(failed.call, event)
        if running is None or running.call is None:
            return
        call = running.call
        call.on_chunk()
        running.state.add(event)
        if final:
            call.stream_parts = running.state
            _stream_done(call)

    def _pop_waiting(self, lane: str | None) -> _Request | None:
        queue = self._waiting.get(lane)
        if not queue:
            return None
        request = queue.popleft()
        if not queue:
            del self._waiting[lane]
        return request

    def _ended(self, lane: str | None, response: _Response) -> None:
        finished = self._finished
        finished[lane] = (response.id, response.model, response.parent, response.recorded)
        finished.move_to_end(lane)
        if len(finished) > _MAX_FINISHED_LANES:
            finished.popitem(last=False)

    def _next(self, lane: str | None, rid: str | None) -> _Response:
        """The response ``rid`` starting on ``lane``: the answer to its oldest
        request, else a successor the server started (after steering)."""
        request = self._pop_waiting(lane)
        if request is not None:
            return _Response(rid, request, recorded=request.call is not None)
        last = self._finished.get(lane)
        previous, model, parent, recorded = last or (None, None, Context(), True)
        call = None
        if recorded:
            # It carries on from the last response with input queued by
            # steering: its input is "after that response".
            spec = self.wrapper.spec(model)
            call = _begin_stream(spec, ({"previous_response_id": previous},), {}, parent)
        return _Response(rid, _Request(call, lane, model, parent), recorded)

    # --- ending -----------------------------------------------------------------
    def lost(self, exc: BaseException) -> None:
        """The socket failed with ``exc``: every call under way failed with it."""
        try:
            with self._lock:
                entries = self._take()
            for call, _state in entries:
                call.finish_exception(exc)
        except Exception:
            _log.debug("faultprint: WebSocket loss not recorded", exc_info=True)

    def closed(self) -> None:
        """The application closes the connection: calls under way end unjudged."""
        try:
            with self._lock:
                entries = self._take()
            for call, state in entries:
                _close(call, state)
        except Exception:
            _log.debug("faultprint: WebSocket close not recorded", exc_info=True)

    def end_all(self) -> None:
        """End every call under way, unjudged, without the lock (shutdown, exit, SIGTERM)."""
        for call, state in self._take():
            _close(call, state)

    def forget(self) -> None:
        """Drop every call without ending it (a forked child: they are the parent's)."""
        self._lock = threading.Lock()
        self._waiting = {}
        self._running = {}
        self._finished = collections.OrderedDict()

    def _take(self) -> list[tuple[Call, StreamState | None]]:
        """Remove every call under way: (call, its stream so far).

        Their lanes remember them as ended and unrecorded: should the
        connection go on (faultprint shut down or reconfigured, not the
        connection), the rest of their events is no new response.
        """
        running, self._running = self._running, {}
        waiting, self._waiting = self._waiting, {}
        out: list[tuple[Call, StreamState | None]] = []
        for lane, queue in waiting.items():
            for request in queue:
                if request.call is not None:
                    out.append((request.call, None))
                self._ended(lane, _Response(None, request, recorded=False))
        for lane, response in running.items():
            if response.call is not None:
                out.append((response.call, response.state))
            response.recorded = False
            self._ended(lane, response)
        return out

    # --- hooks --------------------------------------------------------------------
    def watch_socket(self, ws: Any, is_async: bool) -> None:
        """Observe what is sent on, and the failure of, one socket of the connection."""
        from websockets.exceptions import ConnectionClosed

        send, recv = ws.send, ws.recv
        calls = self
        if is_async:

            async def send_async(message: Any, *args: Any, **kwargs: Any) -> Any:
                request = calls.sent(message)
                try:
                    return await send(message, *args, **kwargs)
                except BaseException as exc:
                    if request is not None:
                        calls.unsent(request, exc)
                    raise

            async def recv_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await recv(*args, **kwargs)
                except ConnectionClosed as exc:
                    calls.lost(exc)
                    raise

            ws.send, ws.recv = send_async, recv_async
            return

        def send_sync(message: Any, *args: Any, **kwargs: Any) -> Any:
            request = calls.sent(message)
            try:
                return send(message, *args, **kwargs)
            except BaseException as exc:
                if request is not None:
                    calls.unsent(request, exc)
                raise

        def recv_sync(*args: Any, **kwargs: Any) -> Any:
            try:
                return recv(*args, **kwargs)
            except ConnectionClosed as exc:
                calls.lost(exc)
                raise

        ws.send, ws.recv = send_sync, recv_sync

    def watch_connection(self, connection: Any, is_async: bool) -> None:
        """Observe the events the application reads from ``connection``, and its closing."""
        parse, close = connection.parse_event, connection.close
        calls = self

        def parse_event(*args: Any, **kwargs: Any) -> Any:
            event = parse(*args, **kwargs)
            calls.received(event)
            return event

        connection.parse_event = functools.update_wrapper(parse_event, parse)
        if is_async:

            async def close_async(*args: Any, **kwargs: Any) -> Any:
                calls.closed()
                return await close(*args, **kwargs)

            connection.close = functools.update_wrapper(close_async, close)
        else:

            def close_sync(*args: Any, **kwargs: Any) -> Any:
                calls.closed()
                return close(*args, **kwargs)

            connection.close = functools.update_wrapper(close_sync, close)


def _close(call: Call, state: StreamState | None) -> None:
    """End ``call`` unjudged, with what its stream delivered so far."""
    if state is not None:
        call.stream_parts = state
    _stream_closed(call)


def _fail(call: Call, event: Any) -> None:
    """End ``call`` with the provider error an ``error`` event carries."""
    status = getattr(event, "status", None)
    if type(status) is int and status >= 400:
        # A request the server refused as it would have over HTTP (429, 400):
        # the same failure mode as that HTTP error.
        call.set_attribute(A.FP_HTTP_STATUS, status)
    out = Output()
    out.provider_shape = True
    out.error = error_event(event)
    call.set_output(out)
    call._finish()


# --- connection managers ----------------------------------------------------------
#: per connection-manager class of the library: its instrumented subclass
_MANAGER_CLASSES: dict[type, type] = {}


def _calls_of(manager: Any) -> SocketCalls | None:
    calls = manager.__dict__.get("_faultprint_calls")
    return calls if isinstance(calls, SocketCalls) else None


def _manager_class(base: type) -> type:
    """``base`` with its sockets and its connection watched once opened.

    The connection is returned by ``__enter__`` (``__aenter__``), which
    Python looks up on the class: hence a subclass, swapped in on each
    manager an instrumented client makes.
    """
    cls = _MANAGER_CLASSES.get(base)
    if cls is not None:
        return cls
    is_async = inspect.iscoroutinefunction(getattr(base, "__aenter__", None))
    namespace: dict[str, Any] = {"__module__": base.__module__, "__qualname__": base.__qualname__}
    if is_async:

        async def connect_ws_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            ws = await base._connect_ws(self, *args, **kwargs)  # type: ignore[attr-defined]
            _watch(_calls_of(self), ws, None, is_async=True)
            return ws

        async def aenter(self: Any) -> Any:
            connection = await base.__aenter__(self)  # type: ignore[attr-defined]
            _watch(_calls_of(self), None, connection, is_async=True)
            return connection

        namespace.update(_connect_ws=connect_ws_async, __aenter__=aenter, enter=aenter)
    else:

        def connect_ws(self: Any, *args: Any, **kwargs: Any) -> Any:
            ws = base._connect_ws(self, *args, **kwargs)  # type: ignore[attr-defined]
            _watch(_calls_of(self), ws, None, is_async=False)
            return ws

        def enter(self: Any) -> Any:
            connection = base.__enter__(self)  # type: ignore[attr-defined]
            _watch(_calls_of(self), None, connection, is_async=False)
            return connection

        namespace.update(_connect_ws=connect_ws, __enter__=enter, enter=enter)
    cls = type(base.__name__, (base,), namespace)
    _MANAGER_CLASSES[base] = cls
    return cls


def _watch(calls: SocketCalls | None, ws: Any, connection: Any, *, is_async: bool) -> None:
    if calls is None:
        return
    try:
        if ws is not None:
            calls.watch_socket(ws, is_async)
        if connection is not None:
            calls.watch_connection(connection, is_async)
    except Exception:
        _log.debug("faultprint: WebSocket connection not watched", exc_info=True)


def _socket_host(manager: Any) -> str | None:
    """The host the manager's sockets go to (``websocket_base_url`` may not be
    the client's HTTP host); None when unknown."""
    try:
        host = manager._prepare_url().host
        return str(host) if host else None
    except Exception:
        return None


def _instrument_manager(manager: Any, wrapper: Any) -> None:
    base = type(manager)
    if base in _MANAGER_CLASSES.values() or not hasattr(base, "_connect_ws"):
        return
    host = _socket_host(manager)
    manager._faultprint_calls = SocketCalls(wrapper.at(host) if host else wrapper)
    manager.__class__ = _manager_class(base)


def wrap_connect(wrapper: Any) -> Callable[[Callable[..., Any], bool], Callable[..., Any]]:
    """For ``replace_methods``: a ``responses.connect`` whose connections are
    watched, their responses recorded as calls of ``wrapper``'s method."""

    def make(original: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
        # connect() itself is synchronous in both clients: it returns the manager.
        def connect(*args: Any, **kwargs: Any) -> Any:
            manager = original(*args, **kwargs)
            try:
                _instrument_manager(manager, wrapper)
            except Exception:
                _log.debug("faultprint: WebSocket connection not instrumented", exc_info=True)
            return manager

        return replacement(connect, original)

    return make


#: every connection's calls, to end at shutdown and forget in a forked child
_SOCKETS: weakref.WeakSet[SocketCalls] = weakref.WeakSet()


def _end_all() -> None:
    for calls in list(_SOCKETS):
        try:
            calls.end_all()
        except Exception:
            _log.debug("faultprint: WebSocket calls not ended", exc_info=True)


def _forget_all() -> None:
    for calls in list(_SOCKETS):
        calls.forget()


os.register_at_fork(after_in_child=_forget_all)
add_closer(_end_all)
