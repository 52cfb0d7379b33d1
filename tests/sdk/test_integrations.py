"""instrument_openai / instrument_anthropic with each library's real client on a
mock HTTP transport returning the providers' real response and error formats."""

from __future__ import annotations

import asyncio
import json

import faultprint
import pytest
from faultprint import attributes as A

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

OPENAI_429 = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min "
        "(TPM): Limit 200000, Used 199862, Requested 1203. Please try again in 319ms.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130415 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
ANTHROPIC_529 = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
    "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
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


def openai_client(handler, is_async=False):
    transport = httpx2.MockTransport(handler)
    if is_async:
        return openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=transport),
        )
    return openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def anthropic_client(handler, is_async=False):
    transport = httpx2.MockTransport(handler)
    if is_async:
        return anthropic.AsyncAnthropic(
            api_key="sk-ant-test",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=transport),
        )
    return anthropic.Anthropic(
        api_key="sk-ant-test", max_retries=0, http_client=httpx2.Client(transport=transport)
    )


MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_openai_chat_completion(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)), version="v7")
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.choices[0].message.content == "Hello!"
    span = spans.one()
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert a[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[A.GEN_AI_RESPONSE_ID] == CHAT["id"]
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 19 and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[A.SERVER_ADDRESS] == "api.openai.com"
    assert a[A.FP_MODEL_VERSION] == "v7"
    # the endpoint is the call site (other instrumentations can name only that)
    assert a[A.FP_CALL_SITE] == "openai.chat"
    assert a["code.function.name"] == f"{__name__}.test_openai_chat_completion"
    assert A.FP_FAILURE_CATEGORY not in a


def test_openai_input_hash_ignores_model(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "x"}])
    h1, h2, h3 = (s.attributes[A.FP_INPUT_HASH] for s in spans.all())
    assert h1 == h2 != h3


@pytest.mark.parametrize(
    ("status", "body", "exc", "code"),
    [
        (429, OPENAI_429, "RateLimitError", "rate_limit_exceeded"),
        (400, OPENAI_CONTEXT, "BadRequestError", "context_length_exceeded"),
        (
            500,
            {
                "error": {
                    "message": "The server had an error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            "InternalServerError",
            "server_error",
        ),
    ],
)
def test_openai_api_errors(spans, status, body, exc, code):
    client = faultprint.instrument_openai(openai_client(responder(status, body)))
    with pytest.raises(getattr(openai, exc)):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_HTTP_STATUS] == status
    assert a[A.FP_ERROR_CODE] == code
    assert a[A.ERROR_TYPE] == f"openai.{exc}"


def test_openai_timeout(spans):
    def handler(request):
        raise httpx2.ReadTimeout("timed out", request=request)

    client = faultprint.instrument_openai(openai_client(handler))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert spans.one().attributes[A.FP_FAILURE_CATEGORY] == "timeout"


def test_openai_streaming_chat(spans):
    base = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
    }
    chunks = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        },
        {**base, "choices": [{"index": 0, "delta": {"content": '{"a": '}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "[1, 2"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        },
    ]
    client = faultprint.instrument_openai(openai_client(responder(200, sse(chunks, done=True))))
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert spans.all() == []  # still streaming
    text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    assert text == '{"a": [1, 2'
    a = spans.one().attributes
    assert a[A.FP_STREAM_CHUNKS] == 5
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_openai_responses_api_and_expect(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, RESPONSE)))
    result = client.responses.create(model="gpt-4.1", input="Write a story")
    assert result.output_text == "In a peaceful grove"
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_output_tokens",)
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 36


def test_openai_refusal_and_unknown_tool(spans):
    refusal = json.loads(json.dumps(CHAT))
    refusal["choices"][0]["message"].update(content=None, refusal="I'm sorry, I can't do that.")
    tool = json.loads(json.dumps(CHAT))
    tool["choices"][0]["finish_reason"] = "tool_calls"
    tool["choices"][0]["message"].update(
        content=None,
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "delete_everything", "arguments": "{}"},
            }
        ],
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    c1 = faultprint.instrument_openai(openai_client(responder(200, refusal)))
    c1.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    c2 = faultprint.instrument_openai(openai_client(responder(200, tool)))
    c2.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=tools)
    r, t = spans.all()
    assert r.attributes[A.FP_FAILURE_CATEGORY] == "refusal"
    assert json.loads(r.attributes[A.FP_FAILURE_DETAIL]) == {"source": "provider_field"}
    assert t.attributes[A.FP_FAILURE_CATEGORY] == "tool_error"
    assert json.loads(t.attributes[A.FP_FAILURE_DETAIL])["tool"] == "delete_everything"


def test_openai_async_client(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT), is_async=True))

    async def main():
        return await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert asyncio.run(main()).choices[0].message.content == "Hello!"
    assert spans.one().attributes[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_openai_inside_observe_enriches_the_decorated_call(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1", json=True)
    def greet() -> str:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    greet()
    span = spans.one()  # one logical call, one span
    assert span.attributes[A.FP_CALL_SITE].endswith("greet")
    assert span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 19
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"  # "Hello!" is not JSON


def test_instrumenting_twice_is_harmless(spans):
    client = openai_client(responder(200, CHAT))
    faultprint.instrument_openai(client)
    faultprint.instrument_openai(client)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(spans.all()) == 1


def test_anthropic_message_with_unknown_tool(spans):
    seen: list = []
    client = faultprint.instrument_anthropic(anthropic_client(responder(200, MESSAGE, seen)))
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    msg = client.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, tools=tools
    )
    assert msg.stop_reason == "tool_use"
    assert seen[0]["model"] == "claude-haiku-4-5"
    span = spans.one()
    a = span.attributes
    assert span.name == "chat claude-haiku-4-5"
    assert a[A.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[A.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 2095
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert a[A.FP_FAILURE_CATEGORY] == "tool_error"


def test_anthropic_overloaded(spans):
    client = faultprint.instrument_anthropic(anthropic_client(responder(529, ANTHROPIC_529)))
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_HTTP_STATUS] == 529
    assert a[A.FP_ERROR_CODE] == "overloaded_error"


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


def test_anthropic_streaming_create(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)))
    )
    stream = client.messages.create(
        model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES, stream=True
    )
    kinds = [ev.type for ev in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 15
    assert a[A.FP_STREAM_CHUNKS] == len(kinds)  # the library drops "ping" events


def test_anthropic_stream_helper(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)))
    )
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "Once upon"
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "truncation"
    assert span.attributes[A.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"


def test_anthropic_async_streaming(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)), is_async=True)
    )

    async def main():
        stream = await client.messages.create(
            model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES, stream=True
        )
        return [ev.type async for ev in stream]

    assert asyncio.run(main())[-1] == "message_stop"
    assert spans.one().attributes[A.FP_FAILURE_CATEGORY] == "truncation"


def test_openai_async_streaming_closed_early(spans):
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": None}]}
        for i in range(5)
    ]
    client = faultprint.instrument_openai(
        openai_client(responder(200, sse(chunks, done=True)), is_async=True)
    )

    async def main():
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices[0].delta.content == "t1":
                    break

    asyncio.run(main())
    a = spans.one().attributes
    assert a[A.FP_STREAM_CHUNKS] == 2
    assert a[A.FP_STREAM_CLOSED_EARLY] is True
