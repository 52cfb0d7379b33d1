"""A Responses WebSocket endpoint on loopback, speaking the protocol of OpenAI's
``responses.connect()``, and the server events of a response: shared by the SDK's
WebSocket tests and the collector's cross-component tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from websockets.sync.server import serve

from tests.sdk.providers import RESPONSE

#: what the server does on a message: events to send, or DROP to close abnormally
DROP = "drop"
Script = Callable[[dict[str, Any]], list[Any]]


def response(rid: str, status: str, **fields: Any) -> dict[str, Any]:
    """A Responses API response object in ``status``."""
    return {
        **RESPONSE,
        "id": rid,
        "status": status,
        "incomplete_details": None,
        "output": [],
        "usage": None,
        **fields,
    }


MESSAGE_ITEM = {
    "type": "message",
    "id": "msg_1",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
}
USAGE = RESPONSE["usage"]


def events(
    rid: str,
    *,
    final: str = "completed",
    lane: str | None = None,
    deltas: tuple[str, ...] = ("Hel", "lo!"),
    item: dict[str, Any] | None = None,
    omit_output: bool = False,
    **final_fields: Any,
) -> list[dict[str, Any]]:
    """The server events of one response, as the Responses WebSocket sends them."""
    item = item or MESSAGE_ITEM
    end = response(rid, final, output=[item], usage=USAGE, **final_fields)
    if omit_output:
        del end["output"]  # over a WebSocket the final event may leave it out
    out: list[dict[str, Any]] = [
        {"type": "response.created", "response": response(rid, "in_progress")},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
    ]
    for delta in deltas:
        out.append(
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": delta,
                "logprobs": [],
            }
        )
    out.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    out.append({"type": f"response.{final}", "response": end})
    for n, event in enumerate(out):
        event["sequence_number"] = n
        if lane is not None:
            event["stream_id"] = lane
    return out


class ResponsesServer:
    """A Responses WebSocket endpoint on 127.0.0.1 that answers each client
    message with what ``script`` returns for it."""

    def __init__(self) -> None:
        self.script: Script = lambda message: []
        self.received: list[dict[str, Any]] = []
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, ws: Any) -> None:
        for message in ws:
            event = json.loads(message)
            self.received.append(event)
            for out in self.script(event):
                if out == DROP:
                    ws.close(code=1011, reason="internal error")
                    return
                ws.send(json.dumps(out))

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


def answer(*responses: list[dict[str, Any]]) -> Script:
    """A script answering successive ``response.create`` messages with ``responses``."""
    queue = list(responses)

    def script(message: dict[str, Any]) -> list[Any]:
        return queue.pop(0) if message["type"] == "response.create" and queue else []

    return script
