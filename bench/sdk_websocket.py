"""Per-response cost of recording Responses over a WebSocket, against the library's own work.

A response over ``client.responses.connect()`` is one ``response.create`` sent
and its server events read; the library parses each event
(``ResponsesConnection.parse_event``: JSON, then its typed event objects).
faultprint adds, per response, the start of its call when the create is sent
(the request's input hash, the span) and, per event, the routing of the parsed
event to its lane's call (its chunk count, the stream's output), then the
judgement and the end of the span at the final event.

Measured in one process, without the network (the socket's cost would only
lower the ratio): per response, the library parsing a realistic event
sequence (created, item added, ``--deltas`` text deltas, item done, completed)
vs the same plus faultprint's recording, spans dropped by the exporter; and
faultprint's recording alone, of events parsed beforehand, to show how much
of the added time is its own work.
Shuffled rounds of short blocks, ratios within each round, medians of the
process CPU time, as ``sdk_overhead.py`` does (and with its code).

Run: ``/work/venv/bin/python bench/sdk_websocket.py [--rounds 150] [--deltas 20]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
from collections.abc import Callable
from typing import Any

import faultprint
from sdk_overhead import check_nothing_dropped, configure, interleaved

RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1741476542,
    "model": "gpt-4.1-2025-04-14",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "incomplete_details": None,
    "usage": None,
}


def event_messages(deltas: int, rid: str = "resp_1") -> list[str]:
    """The server messages of response ``rid`` with ``deltas`` text deltas."""
    item = {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "word " * deltas, "annotations": []}],
    }
    usage = {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": deltas,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 36 + deltas,
    }
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**RESPONSE, "id": rid, "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
    ]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "word ",
            "logprobs": [],
        }
        for _ in range(deltas)
    ]
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append(
        {
            "type": "response.completed",
            "response": {
                **RESPONSE,
                "id": rid,
                "status": "completed",
                "output": [item],
                "usage": usage,
            },
        }
    )
    for n, event in enumerate(events):
        event["sequence_number"] = n
    return [json.dumps(e) for e in events]


def candidates(deltas: int) -> dict[str, Callable[[], object]]:
    """One response read by the library alone, and recorded by faultprint."""
    from faultprint.integrations._common import MethodWrapper
    from faultprint.integrations._websocket import SocketCalls
    from openai.resources.responses.responses import ResponsesConnection

    parse = ResponsesConnection.parse_event
    create = json.dumps({"type": "response.create", "model": "gpt-4.1", "input": "Say hello"})
    # Two responses in turn: each response on a socket has an id of its own.
    pair = [event_messages(deltas, "resp_1"), event_messages(deltas, "resp_2")]
    library_turns, recorded_turns = itertools.cycle(pair), itertools.cycle(pair)
    calls = SocketCalls(
        MethodWrapper(
            provider="openai",
            operation="chat",
            endpoint="responses",
            server_address="api.openai.com",
            options={},
        )
    )

    def library() -> object:
        last = None
        for data in next(library_turns):
            last = parse(None, data)  # type: ignore[arg-type]
        return last

    def recorded() -> object:
        calls.sent(create)
        last = None
        for data in next(recorded_turns):
            last = parse(None, data)  # type: ignore[arg-type]
            calls.received(last)
        return last

    # faultprint's work alone: the same recording of events parsed beforehand
    parsed = [[parse(None, data) for data in turn] for turn in pair]  # type: ignore[arg-type]
    alone_turns = itertools.cycle(parsed)
    alone_calls = SocketCalls(calls.wrapper)

    def alone() -> object:
        alone_calls.sent(create)
        for event in next(alone_turns):
            alone_calls.received(event)
        return None

    return {
        "library": library,
        "library, again": library,
        "recorded": recorded,
        "faultprint alone": alone,
    }


def main() -> None:
    """Print the recorded / library ratio (process CPU time, medians of rounds)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--deltas", type=int, default=20, help="text deltas per response")
    parser.add_argument("--responses", type=int, default=20, help="responses per block")
    args = parser.parse_args()
    if args.rounds < 1 or args.deltas < 0 or args.responses < 1:
        parser.error("--rounds and --responses must be positive, --deltas not negative")
    if importlib.util.find_spec("openai") is None:
        raise SystemExit("openai is not installed")
    configure()
    fns = candidates(args.deltas)
    res = interleaved(fns, "library", args.responses, args.rounds)
    check_nothing_dropped()
    faultprint.shutdown()
    events = args.deltas + 4
    added = res.cpu["recorded"] - res.cpu["library"]
    print(
        f"websocket: library parsing one response ({events} events) "
        f"{res.cpu['library'] / 1000:.1f} µs, recorded {res.cpu['recorded'] / 1000:.1f} µs: "
        f"ratio {res.cpu_ratio['recorded']:.3f} ({res.spread('recorded')}) = "
        f"{added / 1000:.1f} µs per response, {added / events / 1000:.2f} µs per event; "
        f"faultprint's work alone {res.cpu['faultprint alone'] / 1000:.1f} µs "
        f"= {100 * res.cpu_ratio['faultprint alone']:.1f}% of the library's; "
        f"noise floor {res.cpu_ratio['library, again']:.3f}"
    )


if __name__ == "__main__":
    main()
