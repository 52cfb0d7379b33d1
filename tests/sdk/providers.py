"""The providers' real response and error bodies, and their real clients on a mock
HTTP transport: shared by the tests of the OpenAI and Anthropic integrations."""

from __future__ import annotations

import json

import pytest

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")


CHAT = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello!",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
}


RESPONSE = {
    "id": "resp_67ccd2bed1ec8190b14f964abc054267",
    "object": "response",
    "created_at": 1741476542,
    "status": "incomplete",
    "incomplete_details": {"reason": "max_output_tokens"},
    "model": "gpt-4.1-2025-04-14",
    "output": [
        {
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6",
            "status": "incomplete",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "In a peaceful grove", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 16,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 52,
    },
}


MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_wether",
            "input": {"location": "San Francisco, CA"},
        }
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 2095, "output_tokens": 503},
}


def sse(events: list[dict], *, named: bool = False, done: bool = False) -> bytes:
    out = []
    for ev in events:
        head = f"event: {ev['type']}\n" if named else ""
        out.append(f"{head}data: {json.dumps(ev)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def responder(status: int, body: bytes | dict, seen: list | None = None):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    stream = raw.startswith((b"data:", b"event:"))
    ctype = "text/event-stream" if stream else "application/json"

    def handler(request):
        if seen is not None:
            seen.append(json.loads(request.content))
        return httpx2.Response(status, content=raw, headers={"content-type": ctype})

    return handler


def mock_http(handler, is_async=False):
    """An HTTP client of the libraries' HTTP package, every request answered by HANDLER."""
    transport = httpx2.MockTransport(handler)
    return (
        httpx2.AsyncClient(transport=transport) if is_async else httpx2.Client(transport=transport)
    )


def openai_client(handler, is_async=False):
    return (openai.AsyncOpenAI if is_async else openai.OpenAI)(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=mock_http(handler, is_async),
    )


def anthropic_client(handler, is_async=False):
    return (anthropic.AsyncAnthropic if is_async else anthropic.Anthropic)(
        api_key="sk-ant-test", max_retries=0, http_client=mock_http(handler, is_async)
    )


MESSAGES = [{"role": "user", "content": "Say hello"}]


#: an Anthropic Messages stream cut by max_tokens, as the API sends its events
ANTHROPIC_EVENTS = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-haiku-4-5-20251001",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Once "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "upon"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"output_tokens": 15},
    },
    {"type": "message_stop"},
]


RESPONSE_EVENTS = [
    {
        "type": "response.created",
        "sequence_number": 0,
        "response": {
            **RESPONSE,
            "status": "in_progress",
            "output": [],
            "incomplete_details": None,
            "usage": None,
        },
    },
    {
        "type": "response.output_item.added",
        "sequence_number": 1,
        "output_index": 0,
        "item": {
            "type": "message",
            "id": "msg_1",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        },
    },
    {
        "type": "response.output_text.delta",
        "sequence_number": 2,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "In a peaceful grove",
        "logprobs": [],
    },
    {"type": "response.incomplete", "sequence_number": 3, "response": RESPONSE},
]


#: an OpenAI response that failed on OpenAI's side: an HTTP 200 whose status says so
FAILED_RESPONSE = {
    **RESPONSE,
    "status": "failed",
    "incomplete_details": None,
    "output": [],
    "error": {
        "code": "server_error",
        "message": "The server had an error processing your request.",
    },
}


OPENAI_KW = {"model": "gpt-4o-mini", "messages": MESSAGES}


ANTHROPIC_KW = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": MESSAGES}
