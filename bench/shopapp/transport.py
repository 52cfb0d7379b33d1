"""A scripted HTTP transport for the real provider clients.

``script(handler)`` sets what the next requests answer; the clients are built
with ``http_client=httpx2.Client(transport=...)``, so everything above the
transport (retries disabled, error mapping, response parsing) is the
libraries' own code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai

Handler = Callable[[httpx2.Request], httpx2.Response]

_handler: list[Handler] = []


def script(handler: Handler) -> None:
    """Answer the following requests with ``handler``."""
    _handler[:] = [handler]


def _dispatch(request: httpx2.Request) -> httpx2.Response:
    return _handler[0](request)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    """A handler that answers every request with ``status`` and a JSON body."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body, headers=headers or {})

    return handler


def raising(exc_factory: Callable[[httpx2.Request], Exception]) -> Handler:
    """A handler that raises a transport error (timeout, connection reset)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc_factory(request)

    return handler


def openai_client() -> openai.OpenAI:
    """A real OpenAI client on the scripted transport, without retries."""
    return openai.OpenAI(
        api_key="sk-test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_dispatch)),
    )


def anthropic_client() -> anthropic.Anthropic:
    """A real Anthropic client on the scripted transport, without retries."""
    return anthropic.Anthropic(
        api_key="sk-ant-test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_dispatch)),
    )
