"""``faultprint.instrument_openai``: OpenAI chat completions, responses, text completions.

Wraps ``create`` and ``parse`` of ``client.chat.completions``,
``client.completions``, ``client.responses`` and ``client.beta.responses`` on
the given client instance (sync ``OpenAI`` or ``AsyncOpenAI``, and the Azure
variants); the ``stream()`` helpers call ``create`` and are recorded through
it, and ``with_raw_response`` / ``with_streaming_response`` calls go through
the wrapped methods (their span reads the parsed response: for
``with_streaming_response`` when the application's ``parse()`` returns; a
``stream=True`` one's ``parse()`` returns the library's stream, whose chunks
are recorded as ``create``'s are).
Clients made from it with ``with_options()`` / ``copy()`` are instrumented
with the same options.
A background response's call (``background=True``) stays open until
``responses.retrieve`` or ``responses.cancel`` returns it final (see
``_background``). Responses over a WebSocket (``responses.connect()``) are
one call each (see ``_websocket``).
"""

from __future__ import annotations

from typing import Any

from faultprint.integrations._common import (
    MethodWrapper,
    check_client,
    check_options,
    instrument_copies,
    provider_of,
    replace_methods,
    server_address,
    wrap_outcome,
)
from faultprint.integrations._websocket import wrap_connect

__all__ = ["instrument", "mock_http_client"]


def _wrap(resource: Any, wrapper: MethodWrapper) -> None:
    replace_methods(resource, ("create", "parse"), wrapper.wrap)


def instrument(client: Any, **options: Any) -> Any:
    """Instrument an OpenAI client in place; returns it. Idempotent."""
    where = "faultprint.instrument_openai()"
    check_options(where, options)
    check_client(where, client, "openai", ("chat", "completions", "responses"))
    server = server_address(client)
    provider = options.get("provider") or provider_of(client, "openai")

    def wrapper(operation: str, endpoint: str) -> MethodWrapper:
        return MethodWrapper(
            provider=provider,
            operation=operation,
            endpoint=endpoint,
            server_address=server,
            options=options,
        )

    chat = getattr(getattr(client, "chat", None), "completions", None)
    if chat is not None:
        _wrap(chat, wrapper("chat", "chat.completions"))
    # The legacy text completions: what many self-hosted servers speaking
    # OpenAI's dialect are called with.
    completions = getattr(client, "completions", None)
    if completions is not None:
        _wrap(completions, wrapper("text_completion", "completions"))
    # client.beta.responses is a second Responses resource (create, background
    # retrieve / cancel, the WebSocket): one call site and one wrapper for both.
    responses_wrapper = wrapper("chat", "responses")
    beta = getattr(client, "beta", None)
    for responses in (getattr(client, "responses", None), getattr(beta, "responses", None)):
        if responses is None:
            continue
        _wrap(responses, responses_wrapper)
        # A background response's call ends when one of these returns it final.
        replace_methods(responses, ("retrieve", "cancel"), wrap_outcome)
        replace_methods(responses, ("connect",), wrap_connect(responses_wrapper))
    instrument_copies(client, instrument, options)
    return client


def mock_http_client(status: int, body: bytes, *, is_async: bool = False) -> Any:
    """An HTTP client for the OpenAI/Anthropic libraries answering every request
    with ``status`` and ``body`` (JSON, or ``text/event-stream`` when the body
    starts with ``data:`` / ``event:``). For tests and benchmarks: no network.
    """
    try:
        import httpx2 as httpx_mod
    except ImportError:  # older library releases use httpx
        import httpx as httpx_mod  # type: ignore[no-redef]

    sse = body.lstrip().startswith((b"data:", b"event:"))
    headers = {"content-type": "text/event-stream" if sse else "application/json"}

    def handler(request: Any) -> Any:
        return httpx_mod.Response(status, content=body, headers=headers)

    transport = httpx_mod.MockTransport(handler)
    if is_async:
        return httpx_mod.AsyncClient(transport=transport)
    return httpx_mod.Client(transport=transport)
