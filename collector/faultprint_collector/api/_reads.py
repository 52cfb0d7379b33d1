"""Where the read API's queries run: a bounded pool of its own.

A read can take seconds (up to the ad-hoc SQL time limit). Run in the
default thread pool, which ``/v1/traces`` also uses to append to the spool,
enough waiting reads would take every thread and delay the acknowledgement
of ingest; so reads get their own limiter, as many threads as the store has
read connections, and wait for one on the event loop, where waiting is
free. Each read borrows a read connection (``Store.reading``), never the
connection the spool's replayer inserts through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request

__all__ = ["run_read"]

T = TypeVar("T")


def _on_reader(
    store: Any, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> T:
    with store.reading() as reader:
        return fn(reader, *args, **kwargs)


async def run_read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn(store, *args, **kwargs)`` on a read connection, off the event loop."""
    state = request.app.state.faultprint
    call = functools.partial(_on_reader, state.store, fn, args, kwargs)
    return await anyio.to_thread.run_sync(call, limiter=state.read_limiter)
