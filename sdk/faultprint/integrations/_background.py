"""Background responses: model calls whose outcome arrives after the call returns.

``client.responses.create(background=True)`` answers at once with a response
that is ``queued`` or ``in_progress``; the model's output, its failure or its
cancellation arrives when the application asks for the response again
(``responses.retrieve`` until its status is final, a ``retrieve(...,
stream=True)`` stream until its final event, or ``responses.cancel``).
The call's span stays open until then, so that the call is judged on its
outcome (a truncation, a refusal, a failed response) and lasts as long as the
model worked on it.

Held calls are bounded: beyond :data:`MAX_HELD`, the oldest ends with what its
first response said (recorded, no verdict), and so does every held call when
faultprint shuts down or the process exits. A response retrieved by a process
that did not create it (a separate poller) is not a call of that process and
records nothing.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable
from typing import Any

from faultprint._config import add_closer
from faultprint._output import PENDING_STATUSES

__all__ = ["BACKGROUND", "MAX_HELD", "BackgroundCalls", "is_pending_response"]

_log = logging.getLogger("faultprint")

#: background calls held open at most; beyond it the oldest ends unresolved
MAX_HELD = 10_000

#: ends a held call: ``end(response, defer)``
Ender = Callable[[Any, bool], None]


def _response_id(obj: Any) -> str | None:
    """The id of an OpenAI response object; None for anything else."""
    if getattr(obj, "object", None) != "response":
        return None
    rid = getattr(obj, "id", None)
    return rid if isinstance(rid, str) else None


def _pending(obj: Any) -> bool:
    status = getattr(obj, "status", None)
    return isinstance(status, str) and status in PENDING_STATUSES


def is_pending_response(result: Any) -> bool:
    """True for an OpenAI response still queued or in progress (``background=True``)."""
    return _pending(result) and _response_id(result) is not None


class BackgroundCalls:
    """Open calls of background responses, by response id, until their outcome is seen.

    Takes no lock: each change is one operation of the (C) ordered dict, so
    that ending the held calls is safe in a signal handler, wherever the
    signal caught the thread.
    """

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        #: response id -> (ends the call with a response, the first response)
        self._held: collections.OrderedDict[str, tuple[Ender, Any]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, first: Any, end: Ender) -> None:
        """Keep a call open until its response (``first``, pending) is seen final.

        ``end(response, defer)`` records ``response`` on the call and ends its
        span (on the export thread when ``defer`` and it can take the work).
        """
        held = self._held
        held[first.id] = (end, first)
        while len(held) > max(0, self.limit):
            try:
                _, (end_call, response) = held.popitem(last=False)
            except KeyError:
                break
            _end(end_call, response, defer=True)

    def resolve(self, response: Any) -> None:
        """End the held call of ``response`` when it is final (any status but pending)."""
        try:
            rid = _response_id(response)
            if rid is None or _pending(response):
                return
            entry = self._held.pop(rid, None)
        except Exception:
            _log.debug("faultprint: background response not resolved", exc_info=True)
            return
        if entry is not None:
            _end(entry[0], response, defer=True)

    def end_all(self) -> None:
        """End every held call now, on this thread, with its first response
        (no outcome seen: no verdict)."""
        held = self._held
        while True:
            try:
                _, (end_call, first) = held.popitem(last=False)
            except KeyError:
                return
            _end(end_call, first, defer=False)

    def forget(self) -> None:
        """Drop every held call without ending it (a forked child: the calls are the parent's)."""
        self._held = collections.OrderedDict()


def _end(end_call: Ender, response: Any, *, defer: bool) -> None:
    try:
        end_call(response, defer)
    except Exception:
        _log.debug("faultprint: background call not ended", exc_info=True)


#: the process's held background calls
BACKGROUND = BackgroundCalls()
os.register_at_fork(after_in_child=BACKGROUND.forget)
add_closer(BACKGROUND.end_all)
