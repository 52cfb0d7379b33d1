"""instrument_openai / instrument_anthropic with each library's real client on a
mock HTTP transport returning the providers' real response and error formats."""

from __future__ import annotations

import asyncio
import gc
import json

import faultprint
import pydantic
import pytest
from faultprint import attributes as A
from opentelemetry.trace import StatusCode

from tests.sdk.providers import (
    ANTHROPIC_EVENTS,
    ANTHROPIC_KW,
    CHAT,
    FAILED_RESPONSE,
    MESSAGE,
    MESSAGES,
    OPENAI_KW,
    RESPONSE,
    RESPONSE_EVENTS,
    anthropic_client,
    openai_client,
    responder,
    sse,
)

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")


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


TEXT_COMPLETION = {
    "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
    "object": "text_completion",
    "created": 1589478378,
    "model": "gpt-3.5-turbo-instruct",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "text": "\n\nThis is indeed a test",
            "index": 0,
            "logprobs": None,
            "finish_reason": "length",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_openai_text_completions_are_recorded(spans, is_async):
    """The legacy completions endpoint (and self-hosted servers speaking it)."""
    choice = {**TEXT_COMPLETION["choices"][0], "finish_reason": "stop"}
    ok = {**TEXT_COMPLETION, "choices": [choice]}
    for body, category in ((ok, None), (TEXT_COMPLETION, "truncation")):
        spans.clear()
        client = faultprint.instrument_openai(openai_client(responder(200, body), is_async))
        create = client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7
        )
        result = asyncio.run(create) if is_async else create
        assert result.choices[0].text == "\n\nThis is indeed a test"
        span = spans.one()
        a = span.attributes
        assert span.name == "text_completion gpt-3.5-turbo-instruct"
        assert a[A.GEN_AI_OPERATION_NAME] == "text_completion"
        assert a[A.FP_CALL_SITE] == "openai.text_completion"
        assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
        assert a.get(A.FP_FAILURE_CATEGORY) == category  # not an empty output


def test_openai_streamed_text_completion_is_read_from_its_chunks(spans):
    chunks = [
        {**TEXT_COMPLETION, "choices": [{"text": text, "index": 0, "finish_reason": reason}]}
        for text, reason in (("This is", None), (" a test", None), ("", "stop"))
    ]
    client = faultprint.instrument_openai(
        openai_client(responder(200, sse(chunks, done=True))), json=True
    )
    stream = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", stream=True)
    assert "".join(c.choices[0].text for c in stream) == "This is a test"
    a = spans.one().attributes
    assert a[A.FP_STREAM_CHUNKS] == 3
    # judged on the streamed text: not JSON, as json=True asked
    assert a[A.FP_FAILURE_CATEGORY] == "invalid_output"


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


def _cut(content: str) -> dict:
    """CHAT with CONTENT, cut at the length limit."""
    choice = {**CHAT["choices"][0], "finish_reason": "length"}
    choice["message"] = {**choice["message"], "content": content}
    return {**CHAT, "choices": [choice]}


def assert_a_failed_child_call(spans, site: str, code: str) -> None:
    """The decorated ``answer`` succeeded; its provider call at SITE failed with
    CODE, recorded as a call of its own within it, as its child."""
    by_name = {s.attributes[A.FP_CALL_SITE]: s for s in spans.all()}
    assert len(by_name) == 2
    outer = next(s for name, s in by_name.items() if name.endswith("answer"))
    inner = by_name[site]
    assert A.FP_FAILURE_CATEGORY not in outer.attributes  # the answer came back
    assert inner.attributes[A.FP_FAILURE_CATEGORY] == "api_error"
    assert inner.attributes[A.FP_ERROR_CODE] == code
    assert inner.parent.span_id == outer.context.span_id
    assert outer.start_time <= inner.start_time <= inner.end_time <= outer.end_time


def test_a_handled_provider_error_inside_observe_is_a_failed_call_of_its_own(spans):
    """A rate limit before a fallback is a failed model call: recorded as a
    child of the decorated call, which is judged on what it returned."""
    primary = faultprint.instrument_openai(openai_client(responder(429, OPENAI_429)))
    fallback = faultprint.instrument_openai(openai_client(responder(200, CHAT)))

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def answer() -> str:
        try:
            return primary.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except openai.RateLimitError:
            return fallback.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    answer()
    assert_a_failed_child_call(spans, "openai.chat", "rate_limit_exceeded")


#: the events anthropic's stream yields (it drops "ping")
ANTHROPIC_YIELDED = [event for event in ANTHROPIC_EVENTS if event["type"] != "ping"]
ANTHROPIC_ERROR_EVENT_SSE = sse(ANTHROPIC_EVENTS[:2], named=True) + sse([ANTHROPIC_529], named=True)


@pytest.mark.parametrize(
    ("how", "status", "body"),
    [
        ("create", 529, ANTHROPIC_529),
        ("create(stream=True)", 529, ANTHROPIC_529),
        ("stream()", 529, ANTHROPIC_529),
        ("create(stream=True)", 200, ANTHROPIC_ERROR_EVENT_SSE),
        ("stream()", 200, ANTHROPIC_ERROR_EVENT_SSE),
    ],
    ids=["create", "stream-529", "helper-529", "stream-error-event", "helper-error-event"],
)
def test_a_handled_anthropic_overload_inside_observe_is_a_failed_call_of_its_own(
    spans, how, status, body
):
    """The same overload before a fallback is recorded whichever way the
    request was made: once lost when it came from messages.stream() or an
    error event inside a stream."""
    primary = faultprint.instrument_anthropic(anthropic_client(responder(status, body)))
    fallback = faultprint.instrument_anthropic(anthropic_client(responder(200, MESSAGE)))

    def ask() -> None:
        if how == "create":
            primary.messages.create(**ANTHROPIC_KW)
        elif how == "stream()":
            with primary.messages.stream(**ANTHROPIC_KW) as stream:
                stream.get_final_message()
        else:
            for _event in primary.messages.create(**ANTHROPIC_KW, stream=True):
                pass

    @faultprint.observe(model="claude-haiku-4-5", provider="anthropic", version="v1")
    def answer() -> object:
        try:
            ask()
        except anthropic.APIStatusError:
            return fallback.messages.create(**ANTHROPIC_KW)
        raise AssertionError("the primary request did not fail")

    answer()
    assert_a_failed_child_call(spans, "anthropic.chat", "overloaded_error")


def test_a_provider_error_that_ends_the_observed_call_is_counted_once(spans):
    primary = faultprint.instrument_openai(openai_client(responder(429, OPENAI_429)))

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def answer() -> str:
        try:
            return primary.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except openai.RateLimitError as exc:
            raise RuntimeError("no answer") from exc

    with pytest.raises(RuntimeError):
        answer()
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "exception"


def test_a_provider_error_that_ends_the_observed_call_through_a_task_group_is_counted_once(
    spans,
):
    """An asyncio.TaskGroup passes its task's rate limit on in an ExceptionGroup:
    still that call's failure, recorded once, as the rate limit it is."""
    primary = faultprint.instrument_openai(openai_client(responder(429, OPENAI_429), is_async=True))

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    async def answer() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(primary.chat.completions.create(**OPENAI_KW))

    with pytest.raises(ExceptionGroup):
        asyncio.run(answer())
    span = spans.one()
    assert span.attributes[A.FP_CALL_SITE].endswith("answer")
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "api_error"
    assert span.attributes[A.FP_ERROR_CODE] == "rate_limit_exceeded"
    assert span.attributes[A.FP_HTTP_STATUS] == 429
    # described by the one error the group holds, as when raised directly
    assert span.attributes[A.ERROR_TYPE] == "openai.RateLimitError"
    assert span.status.description.startswith("openai.RateLimitError: Error code: 429")


def test_a_task_group_passing_on_one_timeout_is_that_timeout(spans):
    """One failure mode, one fingerprint: a timeout that reached the call
    through a task group is recorded as the same timeout raised directly."""

    async def fetch() -> None:
        raise TimeoutError("read timed out")

    @faultprint.observe(model="m")
    async def grouped() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(fetch())

    @faultprint.observe(model="m")
    async def direct() -> None:
        await fetch()

    with pytest.raises(ExceptionGroup):
        asyncio.run(grouped())
    with pytest.raises(TimeoutError):
        asyncio.run(direct())
    through_group, raised = spans.all()
    for key in (A.ERROR_TYPE, A.FP_FAILURE_CATEGORY):
        assert through_group.attributes[key] == raised.attributes[key]
    assert through_group.attributes[A.FP_FAILURE_CATEGORY] == "timeout"
    assert through_group.status.description == raised.status.description
    (event,) = through_group.events
    assert event.attributes["exception.message"] == "read timed out"
    assert "ExceptionGroup" in event.attributes["exception.stacktrace"]


def test_a_task_group_failing_in_unrelated_ways_is_one_exception(spans):
    primary = faultprint.instrument_openai(openai_client(responder(429, OPENAI_429), is_async=True))

    async def lookup() -> None:
        try:
            await asyncio.Event().wait()  # until the rate limit cancels it
        finally:
            raise KeyError("order")

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    async def answer() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(primary.chat.completions.create(**OPENAI_KW))
            tasks.create_task(lookup())

    with pytest.raises(ExceptionGroup) as raised:
        asyncio.run(answer())
    assert {type(e) for e in raised.value.exceptions} == {openai.RateLimitError, KeyError}
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "exception"
    assert span.attributes[A.ERROR_TYPE] == "ExceptionGroup"
    assert A.FP_ERROR_CODE not in span.attributes


def test_the_last_response_inside_observe_is_the_calls_output(spans):
    """A draft cut short, then a full answer: the call returned the answer."""
    draft = faultprint.instrument_openai(openai_client(responder(200, _cut("Once upon"))))
    final = faultprint.instrument_openai(openai_client(responder(200, CHAT)))

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def two_steps() -> str:
        draft.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return final.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def cut_last() -> str:
        final.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return draft.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def declared() -> str:
        answer = final.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        faultprint.current_call().set_output("Hello!", finish_reason="stop")
        draft.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return answer

    two_steps()
    cut_last()
    declared()
    by_site = {s.attributes[A.FP_CALL_SITE].rsplit(".", 1)[-1]: s for s in spans.all()}
    assert A.FP_FAILURE_CATEGORY not in by_site["two_steps"].attributes
    assert by_site["cut_last"].attributes[A.FP_FAILURE_CATEGORY] == "truncation"
    # the application declared its output: later responses do not replace it
    assert A.FP_FAILURE_CATEGORY not in by_site["declared"].attributes


def test_a_stream_inside_observe_is_a_response_like_any_other(spans):
    """Streamed or not, the last response read inside the call is its output."""
    cut = [
        chat_chunk({"role": "assistant", "content": "Once"}),
        chat_chunk({"content": " upon"}, finish_reason="length"),
    ]
    whole = [chat_chunk({"role": "assistant", "content": "Hello!"}, finish_reason="stop")]
    cut_stream = faultprint.instrument_openai(openai_client(responder(200, sse(cut, done=True))))
    whole_stream = faultprint.instrument_openai(
        openai_client(responder(200, sse(whole, done=True)))
    )
    final = faultprint.instrument_openai(openai_client(responder(200, CHAT)))

    def read(client) -> str:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def draft_then_answer() -> str:
        read(cut_stream)
        return final.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def answer_then_cut_stream() -> str:
        final.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return read(cut_stream)

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def cut_stream_then_whole_stream() -> str:
        read(cut_stream)
        return read(whole_stream)

    draft_then_answer()
    answer_then_cut_stream()
    cut_stream_then_whole_stream()
    by_site = {s.attributes[A.FP_CALL_SITE].rsplit(".", 1)[-1]: s for s in spans.all()}
    assert len(by_site) == 3
    assert A.FP_FAILURE_CATEGORY not in by_site["draft_then_answer"].attributes
    assert by_site["answer_then_cut_stream"].attributes[A.FP_FAILURE_CATEGORY] == "truncation"
    assert A.FP_FAILURE_CATEGORY not in by_site["cut_stream_then_whole_stream"].attributes


def test_instrumenting_twice_is_harmless(spans):
    client = openai_client(responder(200, CHAT))
    faultprint.instrument_openai(client)
    faultprint.instrument_openai(client)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(spans.all()) == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_client_copies_are_instrumented_with_the_same_options(spans, is_async):
    openai_base = openai_client(responder(200, CHAT), is_async=is_async)
    anthropic_base = anthropic_client(responder(200, MESSAGE), is_async=is_async)
    faultprint.instrument_openai(openai_base, version="v7")
    faultprint.instrument_openai(openai_base, version="v7")  # twice: still one span a call
    faultprint.instrument_anthropic(anthropic_base, version="v7")
    # per-request settings make copies; the libraries' own helpers make them too
    copies = [
        openai_base.with_options(timeout=5).chat.completions.create,
        openai_base.copy(max_retries=1).with_options(timeout=5).responses.create,
        anthropic_base.with_options(timeout=5).messages.create,
        anthropic_base.copy(max_retries=1).beta.messages.create,
    ]
    kwargs = [OPENAI_KW, {"model": "gpt-4.1", "input": "x"}, ANTHROPIC_KW, ANTHROPIC_KW]

    async def call_all():
        for create, kw in zip(copies, kwargs, strict=True):
            await create(**kw)

    if is_async:
        asyncio.run(call_all())
    else:
        for create, kw in zip(copies, kwargs, strict=True):
            create(**kw)
    recorded = spans.all()
    assert len(recorded) == 4
    assert {s.attributes[A.FP_MODEL_VERSION] for s in recorded} == {"v7"}
    assert [s.attributes[A.GEN_AI_PROVIDER_NAME] for s in recorded] == [
        "openai",
        "openai",
        "anthropic",
        "anthropic",
    ]


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
    # the application's function, past the stream manager's frames and faultprint's
    assert span.attributes["code.function.name"] == f"{__name__}.test_anthropic_stream_helper"


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


# --- errors -------------------------------------------------------------------------

CHUNK_BASE = {
    "id": "chatcmpl-9",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
}


def chat_chunk(delta: dict, finish_reason: str | None = None) -> dict:
    return {
        **CHUNK_BASE,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def test_a_cancelled_integration_stream_records_what_it_delivered(spans):
    chunks = [chat_chunk({"role": "assistant", "content": "Hel"}), chat_chunk({"content": "lo"})]

    async def stalls_after_two_chunks():
        yield sse(chunks)
        await asyncio.sleep(10)  # the caller cancels here

    def handler(request):
        return httpx2.Response(
            200, content=stalls_after_two_chunks(), headers={"content-type": "text/event-stream"}
        )

    client = faultprint.instrument_openai(openai_client(handler, is_async=True))

    async def main():
        seen = []

        async def read():
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                seen.append(chunk)

        task = asyncio.create_task(read())
        while len(seen) < 2:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    a = spans.one().attributes
    assert a[A.FP_CANCELLED] == "asyncio.exceptions.CancelledError"
    assert A.FP_FAILURE_CATEGORY not in a
    assert a[A.FP_STREAM_CHUNKS] == 2
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[A.GEN_AI_RESPONSE_ID] == "chatcmpl-9"


def test_openai_error_inside_a_stream_is_the_provider_error(spans):
    # OpenAI sends an error object as an SSE data line of a 200 stream
    body = sse([chat_chunk({"role": "assistant", "content": "Hel"})]) + sse(
        [{"error": {**OPENAI_429["error"]}}]
    )
    client = faultprint.instrument_openai(openai_client(responder(200, body)))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as raised:
        list(stream)
    assert raised.value.code == "rate_limit_exceeded"
    span = spans.one()
    a = span.attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "rate_limit_exceeded"
    assert A.FP_HTTP_STATUS not in a  # the response was a 200: no HTTP error
    assert a[A.FP_STREAM_CHUNKS] == 1
    assert span.status.status_code == StatusCode.ERROR


def test_anthropic_error_event_inside_a_stream_claims_no_http_status(spans):
    body = sse(ANTHROPIC_EVENTS[:4], named=True) + sse([ANTHROPIC_529], named=True)
    client = faultprint.instrument_anthropic(anthropic_client(responder(200, body)))
    stream = client.messages.create(
        model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES, stream=True
    )
    with pytest.raises(anthropic.APIStatusError):
        list(stream)
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "overloaded_error"
    assert A.FP_HTTP_STATUS not in a
    assert a[A.FP_STREAM_CHUNKS] == 3  # message_start, content_block_start, one delta


@pytest.mark.parametrize("status", [408, 504])
def test_openai_gateway_timeouts_are_timeouts(spans, status):
    body = {"error": {"message": "timed out", "type": "timeout", "param": None, "code": None}}
    client = faultprint.instrument_openai(openai_client(responder(status, body)))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "timeout"
    assert a[A.FP_HTTP_STATUS] == status


def test_openai_connection_error(spans):
    def refuse(request):
        raise httpx2.ConnectError("connection refused", request=request)

    client = faultprint.instrument_openai(openai_client(refuse))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "connection_error"
    assert A.FP_HTTP_STATUS not in a


def test_openai_async_client_error(spans):
    client = faultprint.instrument_openai(openai_client(responder(429, OPENAI_429), is_async=True))

    async def main():
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    asyncio.run(main())
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "rate_limit_exceeded"
    assert a[A.FP_HTTP_STATUS] == 429


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_create_stream_returns_the_library_stream_itself(spans, is_async):
    """Applications (and the libraries' own helpers) check a stream's type:
    an instrumented create(stream=True) returns the library's Stream, observed."""
    oclient = faultprint.instrument_openai(openai_client(responder(200, OPENAI_SSE), is_async))
    aclient = faultprint.instrument_anthropic(
        anthropic_client(responder(200, ANTHROPIC_SSE), is_async)
    )

    async def read_async() -> tuple[object, object]:
        ostream = await oclient.chat.completions.create(**OPENAI_STREAM_KW)
        assert isinstance(ostream, openai.AsyncStream)
        async for _chunk in ostream:
            pass
        astream = await aclient.messages.create(**ANTHROPIC_STREAM_KW)
        assert isinstance(astream, anthropic.AsyncStream)
        async with astream:
            async for _event in astream:
                pass
        return ostream, astream

    if is_async:
        asyncio.run(read_async())
    else:
        ostream = oclient.chat.completions.create(**OPENAI_STREAM_KW)
        assert isinstance(ostream, openai.Stream)
        assert len(list(ostream)) == len(OPENAI_CHUNKS)
        astream = aclient.messages.create(**ANTHROPIC_STREAM_KW)
        assert isinstance(astream, anthropic.Stream)
        with astream:
            assert len(list(astream)) == len(ANTHROPIC_YIELDED)
    chat, message = spans.all()
    assert_chat_stream_recorded(chat.attributes)
    assert_message_stream_recorded(message.attributes, ANTHROPIC_YIELDED)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_decorated_function_returning_a_stream_ends_with_the_stream(spans, is_async):
    """An endpoint that starts the model's stream and returns it for its caller
    to read: once recorded as a success with no output, the stream's
    truncation lost."""
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, ANTHROPIC_SSE), is_async)
    )
    observe = faultprint.observe(model="claude-haiku-4-5", provider="anthropic", version="v1")

    @observe
    def start() -> object:
        return client.messages.create(**ANTHROPIC_STREAM_KW)

    @observe
    async def start_async() -> object:
        return await client.messages.create(**ANTHROPIC_STREAM_KW)

    async def read_async() -> int:
        return len([event async for event in await start_async()])

    if is_async:
        assert asyncio.run(read_async()) == len(ANTHROPIC_YIELDED)
    else:
        stream = start()
        assert isinstance(stream, anthropic.Stream)
        assert spans.all() == []  # open until the caller has read the stream
        assert len(list(stream)) == len(ANTHROPIC_YIELDED)
    span = spans.one()
    assert span.attributes[A.FP_CALL_SITE].endswith("start" + ("_async" if is_async else ""))
    assert_message_stream_recorded(span.attributes, ANTHROPIC_YIELDED)
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "truncation"


def test_a_returned_stream_that_fails_fails_its_call(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, ANTHROPIC_ERROR_EVENT_SSE))
    )

    @faultprint.observe(model="claude-haiku-4-5", provider="anthropic", version="v1")
    def start() -> object:
        return client.messages.create(**ANTHROPIC_STREAM_KW)

    stream = start()
    with pytest.raises(anthropic.APIStatusError):
        list(stream)
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "api_error"
    assert span.attributes[A.FP_ERROR_CODE] == "overloaded_error"
    assert span.attributes[A.FP_STREAM_CHUNKS] == 2


class _CutStream(httpx2.SyncByteStream):
    """A stream body the server's connection drops after its first bytes."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    def __iter__(self):
        yield self.head
        raise httpx2.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )


def test_a_connection_dropped_mid_stream_is_the_connection_error_it_is(spans):
    """The HTTP client's own error, raised while the stream is read: once an
    exception fingerprinted by the application's frames (a mode per code
    path), it is the connection failure a drop before the response is."""
    head = sse(ANTHROPIC_EVENTS[:3], named=True)

    def cut(request):
        return httpx2.Response(
            200, stream=_CutStream(head), headers={"content-type": "text/event-stream"}
        )

    def refused(request):
        raise httpx2.ConnectError("connection refused", request=request)

    client = faultprint.instrument_anthropic(anthropic_client(cut))
    with pytest.raises(httpx2.RemoteProtocolError):
        list(client.messages.create(**ANTHROPIC_STREAM_KW))
    before = faultprint.instrument_anthropic(anthropic_client(refused))
    with pytest.raises(anthropic.APIConnectionError):
        before.messages.create(**ANTHROPIC_KW)
    dropped, unconnected = (s.attributes for s in spans.all())
    for a in (dropped, unconnected):
        assert a[A.FP_FAILURE_CATEGORY] == "api_error"
        assert a[A.FP_ERROR_CODE] == "connection_error"
    assert dropped[A.FP_STREAM_CHUNKS] == 2  # the ping is not an event the library yields


def test_a_gateway_timeout_keeps_its_status(spans):
    body = {"type": "error", "error": {"type": "timeout_error", "message": "Gateway timeout"}}
    client = faultprint.instrument_anthropic(anthropic_client(responder(504, body)))
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**ANTHROPIC_KW)
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "timeout"
    assert a[A.FP_HTTP_STATUS] == 504
    assert a[A.FP_ERROR_CODE] == "timeout_error"


def test_abandoned_integration_stream_ends_its_span_closed_early(spans):
    chunks = [chat_chunk({"content": f"t{i}"}) for i in range(5)]
    client = faultprint.instrument_openai(openai_client(responder(200, sse(chunks, done=True))))

    def read_one():
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return next(iter(stream))

    assert read_one().choices[0].delta.content == "t0"
    gc.collect()
    span = spans.one()
    a = span.attributes
    assert a[A.FP_STREAM_CLOSED_EARLY] is True
    assert a[A.FP_STREAM_CHUNKS] == 1
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"  # what did arrive
    assert span.status.status_code == StatusCode.UNSET  # a partial output is not judged


# --- other ways to call -------------------------------------------------------------


def test_openai_parse_methods_are_recorded(spans):
    length = json.loads(json.dumps(CHAT))
    length["choices"][0]["finish_reason"] = "stop"
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES)
    assert parsed.choices[0].message.content == "Hello!"
    rclient = faultprint.instrument_openai(openai_client(responder(200, RESPONSE)))
    assert rclient.responses.parse(model="gpt-4.1", input="Write").output_text
    chat, resp = spans.all()
    assert chat.attributes[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert chat.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 19
    assert resp.attributes[A.FP_FAILURE_CATEGORY] == "truncation"


@pytest.mark.parametrize(
    ("reason", "category", "error"),
    [
        ("length", "truncation", "LengthFinishReasonError"),
        ("content_filter", "content_filter", "ContentFilterFinishReasonError"),
    ],
)
def test_openai_parse_refusing_a_cut_completion_records_it_as_create_does(
    spans, reason, category, error
):
    cut = json.loads(json.dumps(CHAT))
    cut["choices"][0]["finish_reason"] = reason
    client = faultprint.instrument_openai(openai_client(responder(200, cut)))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.OpenAIError) as raised:  # the application still sees it
        client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES)
    assert type(raised.value).__name__ == error
    created, parsed = spans.all()
    assert parsed.attributes[A.FP_FAILURE_CATEGORY] == category
    assert parsed.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == (reason,)
    assert parsed.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    same = (A.FP_FAILURE_CATEGORY, A.FP_FAILURE_DETAIL, A.FP_CALL_SITE, A.ERROR_TYPE)
    assert {k: parsed.attributes.get(k) for k in same} == {
        k: created.attributes.get(k) for k in same
    }


class Invoice(pydantic.BaseModel):
    customer: str
    total: float


@pytest.mark.parametrize("capture", [False, True], ids=["capture off", "capture on"])
def test_openai_parse_of_invalid_output_quotes_it_only_with_capture_on(spans, capture):
    body = json.loads(json.dumps(CHAT))
    body["choices"][0]["message"]["content"] = '{"customer": "Jane Doe, 12 Main St"}'
    client = faultprint.instrument_openai(
        openai_client(responder(200, body)), capture_content=capture
    )
    with pytest.raises(pydantic.ValidationError) as raised:
        client.chat.completions.parse(**OPENAI_KW, response_format=Invoice)
    assert "Jane Doe" in str(raised.value)  # the application's exception is its own
    span = spans.one()
    (event,) = span.events
    texts = [v for v in span.attributes.values() if isinstance(v, str)]
    texts += [span.status.description or "", *event.attributes.values()]
    assert any("Jane Doe" in t for t in texts) is capture
    if not capture:
        assert event.attributes["exception.message"] == (
            "1 validation error for Invoice\ntotal\n  Field required [type=missing]"
        )


def test_openai_async_parse_is_recorded(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT), is_async=True))

    async def main():
        return await client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES)

    assert asyncio.run(main()).choices[0].message.content == "Hello!"
    assert spans.one().attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_with_raw_response_records_the_response(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["content-type"] == "application/json"
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello!"
    assert raw.parse() is completion  # the application's parse is the cached one
    aclient = faultprint.instrument_anthropic(anthropic_client(responder(200, MESSAGE)))
    message = aclient.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
    ).parse()
    assert message.stop_reason == "tool_use"
    oa, an = spans.all()
    assert oa.attributes[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert oa.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    assert oa.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert an.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)


def test_anthropic_context_window_stop_is_truncation(spans):
    cut = {
        **MESSAGE,
        "content": [{"type": "text", "text": "The answer is"}],
        "stop_reason": "model_context_window_exceeded",
    }
    client = faultprint.instrument_anthropic(anthropic_client(responder(200, cut)))
    client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES)
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert json.loads(a[A.FP_FAILURE_DETAIL]) == {"finish_reason": "model_context_window_exceeded"}


# --- the Anthropic stream helper ------------------------------------------------------


def test_anthropic_stream_helper_records_stream_details(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)))
    )
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES
    ) as stream:
        assert "".join(stream.text_stream) == "Once upon"
    a = spans.one().attributes
    assert a[A.FP_STREAM_CHUNKS] == len(ANTHROPIC_EVENTS) - 1  # the library drops "ping"
    assert a[A.FP_STREAM_TTFC_MS] >= 0
    assert A.FP_STREAM_CLOSED_EARLY not in a


def test_anthropic_stream_helper_left_early_is_closed_early(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)))
    )
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES
    ) as stream:
        for text in stream.text_stream:
            assert text == "Once "
            break
    a = spans.one().attributes
    assert a[A.FP_STREAM_CLOSED_EARLY] is True
    assert a[A.FP_STREAM_CHUNKS] == 3  # up to the first text delta
    assert a[A.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert A.FP_FAILURE_CATEGORY not in a


def test_anthropic_async_stream_helper(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)), is_async=True)
    )

    async def main():
        async with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES
        ) as stream:
            return [t async for t in stream.text_stream]

    assert asyncio.run(main()) == ["Once ", "upon"]
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 15
    assert a["code.function.name"] == f"{__name__}.test_anthropic_async_stream_helper.<locals>.main"
    assert a[A.FP_STREAM_CHUNKS] == len(ANTHROPIC_EVENTS) - 1


@pytest.mark.parametrize("is_async", [False, True])
def test_anthropic_stream_helper_http_error(spans, is_async):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(529, ANTHROPIC_529), is_async=is_async)
    )
    kwargs = {"model": "claude-haiku-4-5", "max_tokens": 15, "messages": MESSAGES}

    async def enter_async():
        async with client.messages.stream(**kwargs):
            pass

    with pytest.raises(anthropic.APIStatusError):
        if is_async:
            asyncio.run(enter_async())
        else:
            with client.messages.stream(**kwargs):
                pass
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "overloaded_error"
    assert a[A.FP_HTTP_STATUS] == 529


def test_anthropic_stream_helper_error_event(spans):
    body = sse(ANTHROPIC_EVENTS[:4], named=True) + sse([ANTHROPIC_529], named=True)
    client = faultprint.instrument_anthropic(anthropic_client(responder(200, body)))
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(model="claude-haiku-4-5", max_tokens=15, messages=MESSAGES) as s,
    ):
        s.until_done()
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "overloaded_error"
    assert a[A.FP_STREAM_CHUNKS] == 3


# --- Anthropic structured outputs (parse) and the beta resource -------------------------


class City(pydantic.BaseModel):
    city: str


def anthropic_text(text: str, stop_reason: str) -> dict:
    return {**MESSAGE, "content": [{"type": "text", "text": text}], "stop_reason": stop_reason}


def run(is_async: bool, call):
    """``call()``'s result, awaited when the client is async."""
    return asyncio.run(call()) if is_async else call()


@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_anthropic_parse_is_recorded(spans, beta, is_async):
    body = anthropic_text('{"city": "Paris"}', "end_turn")
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, body), is_async=is_async)
    )
    messages = client.beta.messages if beta else client.messages
    parsed = run(is_async, lambda: messages.parse(**ANTHROPIC_KW, output_format=City))
    assert parsed.content[0].parsed_output == City(city="Paris")
    span = spans.one()
    a = span.attributes
    assert span.name == "chat claude-haiku-4-5"
    assert a[A.FP_CALL_SITE] == "anthropic.chat"
    assert a[A.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 503
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert A.FP_FAILURE_CATEGORY not in a
    assert span.status.status_code is not StatusCode.ERROR


@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
@pytest.mark.parametrize(
    ("text", "stop_reason", "category"),
    [
        ('{"city": "Pa', "max_tokens", "truncation"),
        ('{"city": "Pa', "model_context_window_exceeded", "truncation"),
        ("I can't help with that request.", "refusal", "refusal"),
    ],
)
def test_anthropic_parse_of_a_cut_message_records_it_as_create_does(
    spans, beta, text, stop_reason, category
):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, anthropic_text(text, stop_reason)))
    )
    messages = client.beta.messages if beta else client.messages
    messages.create(**ANTHROPIC_KW)
    # parse() cannot validate a cut or refused text: the application still sees
    # the validation error, the span records the message as create() did
    with pytest.raises(pydantic.ValidationError):
        messages.parse(**ANTHROPIC_KW, output_format=City)
    created, parsed = spans.all()
    assert parsed.attributes[A.FP_FAILURE_CATEGORY] == category
    assert parsed.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == (stop_reason,)
    assert parsed.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 503
    same = (A.FP_FAILURE_CATEGORY, A.FP_FAILURE_DETAIL, A.FP_CALL_SITE, A.ERROR_TYPE)
    assert {k: parsed.attributes.get(k) for k in same} == {
        k: created.attributes.get(k) for k in same
    }


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_anthropic_parse_of_invalid_output_records_the_validation_error(spans, is_async):
    body = anthropic_text('{"town": "Paris"}', "end_turn")  # complete, but not a City
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, body), is_async=is_async)
    )
    with pytest.raises(pydantic.ValidationError):
        run(is_async, lambda: client.messages.parse(**ANTHROPIC_KW, output_format=City))
    span = spans.one()
    assert span.attributes[A.ERROR_TYPE] == "pydantic_core._pydantic_core.ValidationError"
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert "city" in span.events[0].attributes["exception.message"]


def test_anthropic_beta_stream_helper_and_threads_are_recorded(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)))
    )
    with client.beta.messages.stream(**ANTHROPIC_KW) as stream:
        assert "".join(stream.text_stream) == "Once upon"
    streamed = spans.one()
    assert streamed.attributes[A.FP_FAILURE_CATEGORY] == "truncation"
    assert streamed.attributes[A.FP_STREAM_CHUNKS] == len(ANTHROPIC_EVENTS) - 1
    spans.clear()
    # a message thread sends its turns through client.beta.messages.create
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, anthropic_text("Hello!", "end_turn")))
    )
    thread = client.beta.messages.thread(max_tokens=100, model="claude-haiku-4-5")
    assert thread.send({"role": "user", "content": "Say hello"}).content[0].text == "Hello!"
    a = spans.one().attributes
    assert a[A.FP_CALL_SITE] == "anthropic.chat"
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_anthropic_async_beta_stream_helper(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, sse(ANTHROPIC_EVENTS, named=True)), is_async=True)
    )

    async def main():
        async with client.beta.messages.stream(**ANTHROPIC_KW) as stream:
            return [t async for t in stream.text_stream]

    assert asyncio.run(main()) == ["Once ", "upon"]
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert a[A.FP_STREAM_CHUNKS] == len(ANTHROPIC_EVENTS) - 1


def test_instrumenting_anthropic_twice_is_harmless(spans):
    client = anthropic_client(responder(200, anthropic_text('{"city": "Paris"}', "end_turn")))
    faultprint.instrument_anthropic(client)
    faultprint.instrument_anthropic(client)
    client.messages.parse(**ANTHROPIC_KW, output_format=City)
    client.beta.messages.create(**ANTHROPIC_KW)
    assert len(spans.all()) == 2


# --- outputs that are not text -------------------------------------------------------


def chat_message(message: dict, finish_reason: str = "stop") -> dict:
    return {
        **CHAT,
        "choices": [{**CHAT["choices"][0], "message": message, "finish_reason": finish_reason}],
    }


def response_of(*items: dict) -> dict:
    return {**RESPONSE, "status": "completed", "incomplete_details": None, "output": list(items)}


AUDIO = {"id": "audio_1", "data": "UklGRg==", "expires_at": 1741573552, "transcript": "Hello!"}
COMPUTER_CALL = {
    "type": "computer_call",
    "id": "cu_1",
    "call_id": "call_1",
    "action": {"type": "click", "button": "left", "x": 10, "y": 20},
    "pending_safety_checks": [],
    "status": "completed",
}
SERVER_TOOL_USE = {
    "type": "server_tool_use",
    "id": "srvtoolu_1",
    "name": "web_search",
    "input": {"query": "weather in Paris"},
}
REASONING = {"type": "reasoning", "id": "rs_1", "summary": []}


def openai_outcome(spans, body: dict, **kwargs) -> dict:
    """The span attributes of one instrumented OpenAI call answered with ``body``."""
    client = faultprint.instrument_openai(openai_client(responder(200, body)))
    if "choices" in body:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)
    else:
        client.responses.create(model="gpt-4.1", input="x", **kwargs)
    return dict(spans.one().attributes)


@pytest.mark.parametrize(
    ("body", "kwargs", "category"),
    [
        # audio output: the text is in the audio's transcript
        (chat_message({"role": "assistant", "content": None, "audio": AUDIO}), {}, None),
        # the deprecated functions= API: a tool call, checked like one
        (
            chat_message(
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "f", "arguments": "{}"},
                },
                "function_call",
            ),
            {},
            None,
        ),
        (
            chat_message(
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "f", "arguments": "{"},
                },
                "function_call",
            ),
            {},
            "tool_error",
        ),
        # an action for the application (computer use), a generated image
        (response_of(REASONING, COMPUTER_CALL), {}, None),
        (
            response_of(
                {
                    "type": "image_generation_call",
                    "id": "ig_1",
                    "status": "completed",
                    "result": "iVBO",
                }
            ),
            {},
            None,
        ),
        # custom tools take free-form input: their name is checked, not JSON
        (
            response_of(
                {
                    "type": "custom_tool_call",
                    "id": "ct_1",
                    "call_id": "c1",
                    "name": "sql",
                    "input": "SELECT 1",
                }
            ),
            {"tools": [{"type": "custom", "name": "sql"}]},
            None,
        ),
        (
            response_of(
                {
                    "type": "custom_tool_call",
                    "id": "ct_1",
                    "call_id": "c1",
                    "name": "rm",
                    "input": "-rf /",
                }
            ),
            {"tools": [{"type": "custom", "name": "sql"}]},
            "tool_error",
        ),
        # reasoning alone is not an output
        (response_of(REASONING), {}, "empty_output"),
    ],
    ids=[
        "chat audio",
        "chat function_call",
        "chat function_call, arguments not JSON",
        "responses computer_call",
        "responses image",
        "responses custom tool",
        "responses unknown custom tool",
        "responses reasoning only",
    ],
)
def test_openai_outputs_without_text_are_judged_on_what_they_hold(spans, body, kwargs, category):
    assert openai_outcome(spans, body, **kwargs).get(A.FP_FAILURE_CATEGORY) == category


def test_openai_streamed_audio_and_function_call_are_not_empty(spans):
    audio = [
        chat_chunk({"role": "assistant", "audio": {"id": "audio_1", "transcript": "Hel"}}),
        chat_chunk({}, "stop"),
    ]
    legacy = [
        chat_chunk(
            {"role": "assistant", "function_call": {"name": "get_weather", "arguments": ""}}
        ),
        chat_chunk({"function_call": {"arguments": '{"city": '}}),
        chat_chunk({"function_call": {"arguments": '"Paris"}'}}, "function_call"),
    ]
    for chunks in (audio, legacy):
        client = faultprint.instrument_openai(openai_client(responder(200, sse(chunks, done=True))))
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    for span in spans.all():
        assert A.FP_FAILURE_CATEGORY not in span.attributes


@pytest.mark.parametrize("streamed", [False, True], ids=["message", "stream"])
def test_anthropic_paused_turn_of_a_server_tool_is_not_judged(spans, streamed):
    # pause_turn: a long turn (here a web search) paused; the next request continues it
    if streamed:
        blocks = [
            {"type": "content_block_start", "index": 0, "content_block": SERVER_TOOL_USE},
            {"type": "content_block_stop", "index": 0},
        ]
        body: bytes | dict = anthropic_stream_of(blocks, "pause_turn")
    else:
        body = {**MESSAGE, "content": [SERVER_TOOL_USE], "stop_reason": "pause_turn"}
    client = faultprint.instrument_anthropic(anthropic_client(responder(200, body)))
    if streamed:
        list(client.messages.create(**ANTHROPIC_KW, stream=True))
    else:
        client.messages.create(**ANTHROPIC_KW)
    a = spans.one().attributes
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("pause_turn",)
    assert A.FP_FAILURE_CATEGORY not in a


def test_anthropic_server_tool_results_are_output(spans):
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    body = {**MESSAGE, "content": [SERVER_TOOL_USE, result], "stop_reason": "end_turn"}
    client = faultprint.instrument_anthropic(anthropic_client(responder(200, body)))
    client.messages.create(**ANTHROPIC_KW)
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


# --- what streamed outputs say ---------------------------------------------------------


def test_openai_streamed_refusal(spans):
    chunks = [
        chat_chunk({"role": "assistant", "content": None, "refusal": "I can't "}),
        chat_chunk({"refusal": "help with that."}, "stop"),
    ]
    client = faultprint.instrument_openai(openai_client(responder(200, sse(chunks, done=True))))
    list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "refusal"
    assert json.loads(a[A.FP_FAILURE_DETAIL]) == {"source": "provider_field"}
    assert a[A.FP_FAILURE_MESSAGE] == "model refused (provider refusal field)"  # capture off


def test_openai_streamed_tool_call_to_an_unknown_tool(spans):
    call = {"index": 0, "id": "call_1", "type": "function"}
    chunks = [
        chat_chunk({"role": "assistant", "tool_calls": [{**call, "function": {"name": "rm_rf"}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        chat_chunk({}, "tool_calls"),
    ]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    client = faultprint.instrument_openai(openai_client(responder(200, sse(chunks, done=True))))
    list(
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=tools, stream=True)
    )
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "tool_error"
    assert json.loads(a[A.FP_FAILURE_DETAIL])["tool"] == "rm_rf"


def anthropic_stream_of(blocks: list[dict], stop_reason: str) -> bytes:
    events = [ANTHROPIC_EVENTS[0], *blocks]
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    ]
    return sse(events, named=True)


def test_anthropic_streamed_tool_use_of_an_unknown_tool(spans):
    blocks = [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_wether",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'},
        },
        {"type": "content_block_stop", "index": 0},
    ]
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, anthropic_stream_of(blocks, "tool_use")))
    )
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    list(
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES, tools=tools, stream=True
        )
    )
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "tool_error"
    assert json.loads(a[A.FP_FAILURE_DETAIL]) == {
        "tool": "get_wether",
        "reason": "unknown_tool",
        "errors": [],
    }


def test_anthropic_refusal_streamed_or_not_is_the_same_failure(spans):
    refused = {**MESSAGE, "content": [], "stop_reason": "refusal"}
    plain = faultprint.instrument_anthropic(anthropic_client(responder(200, refused)))
    plain.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    streamed = faultprint.instrument_anthropic(
        anthropic_client(responder(200, anthropic_stream_of([], "refusal")))
    )
    list(
        streamed.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES, stream=True
        )
    )
    one, two = (s.attributes for s in spans.all())
    assert one[A.FP_FAILURE_CATEGORY] == two[A.FP_FAILURE_CATEGORY] == "refusal"
    for key in (A.FP_FAILURE_DETAIL, A.FP_FAILURE_MESSAGE):
        assert one[key] == two[key]


def test_openai_responses_stream_reads_the_final_response(spans):
    client = faultprint.instrument_openai(
        openai_client(responder(200, sse(RESPONSE_EVENTS, named=True)))
    )
    events = list(client.responses.create(model="gpt-4.1", input="Write", stream=True))
    assert events[-1].type == "response.incomplete"
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_output_tokens",)
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 36
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4.1-2025-04-14"


def test_openai_failed_response_is_the_provider_error(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, FAILED_RESPONSE)))
    response = client.responses.create(model="gpt-4.1", input="Write", background=True)
    assert response.status == "failed"  # the client does not raise
    span = spans.one()
    a = span.attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "server_error"
    assert A.FP_HTTP_STATUS not in a  # the response was a 200: no HTTP error
    assert json.loads(a[A.FP_FAILURE_DETAIL]) == {"error": FAILED_RESPONSE["error"]}
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("failed",)
    assert span.status.status_code is StatusCode.ERROR


def test_openai_responses_stream_ending_failed_is_the_provider_error(spans):
    events = [
        *RESPONSE_EVENTS[:3],
        {"type": "response.failed", "sequence_number": 3, "response": FAILED_RESPONSE},
    ]
    client = faultprint.instrument_openai(openai_client(responder(200, sse(events, named=True))))
    assert list(client.responses.create(model="gpt-4.1", input="Write", stream=True))
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "server_error"
    assert a[A.FP_STREAM_CHUNKS] == 4


@pytest.mark.parametrize("before", [1, 3], ids=["no text", "after text"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_openai_responses_stream_error_event_is_the_provider_error(spans, before, is_async):
    # The library yields a Responses stream's error event instead of raising
    # it: once recorded as empty output, or, after some text, as a success.
    error = {
        "type": "error",
        "sequence_number": before,
        "code": "rate_limit_exceeded",
        "message": "Rate limit reached for gpt-4.1 on tokens per min (TPM).",
        "param": None,
    }
    body = sse([*RESPONSE_EVENTS[:before], error], named=True)
    client = faultprint.instrument_openai(openai_client(responder(200, body), is_async=is_async))

    async def consume() -> list:
        stream = await client.responses.create(model="gpt-4.1", input="Write", stream=True)
        return [event async for event in stream]

    if is_async:
        events = asyncio.run(consume())
    else:
        events = list(client.responses.create(model="gpt-4.1", input="Write", stream=True))
    assert events[-1].type == "error"  # what the application sees is unchanged
    span = spans.one()
    a = span.attributes
    assert a[A.FP_FAILURE_CATEGORY] == "api_error"
    assert a[A.FP_ERROR_CODE] == "rate_limit_exceeded"
    assert A.FP_HTTP_STATUS not in a  # the response was a 200: no HTTP error
    assert a[A.FP_FAILURE_MESSAGE] == error["message"]
    assert span.status.status_code is StatusCode.ERROR


def test_openai_responses_refusal_and_unknown_function_call(spans):
    refused = {
        **RESPONSE,
        "status": "completed",
        "incomplete_details": None,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "I can't help with that."}],
            }
        ],
    }
    called = {
        **refused,
        "output": [
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "rm_rf",
                "arguments": "{}",
                "status": "completed",
            }
        ],
    }
    tools = [{"type": "function", "name": "get_weather", "parameters": {}}]
    c1 = faultprint.instrument_openai(openai_client(responder(200, refused)))
    c1.responses.create(model="gpt-4.1", input="x")
    c2 = faultprint.instrument_openai(openai_client(responder(200, called)))
    c2.responses.create(model="gpt-4.1", input="x", tools=tools)
    r, t = (s.attributes for s in spans.all())
    assert r[A.FP_FAILURE_CATEGORY] == "refusal"
    assert r[A.FP_FAILURE_MESSAGE] == "model refused (provider refusal field)"  # capture off
    assert t[A.FP_FAILURE_CATEGORY] == "tool_error"
    assert json.loads(t[A.FP_FAILURE_DETAIL])["tool"] == "rm_rf"


def test_async_with_raw_response_and_streaming_response(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, MESSAGE), is_async=True)
    )
    kwargs = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": MESSAGES}

    async def main():
        raw = await client.messages.with_raw_response.create(**kwargs)
        message = await raw.parse()
        async with client.messages.with_streaming_response.create(**kwargs) as response:
            body = await response.read()  # still the application's to read
        return message, body

    message, body = asyncio.run(main())
    assert message.stop_reason == "tool_use"
    assert json.loads(body)["id"] == MESSAGE["id"]
    raw_span, _streaming_span = spans.all()
    assert raw_span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)


# --- with_streaming_response, and raw responses of streams --------------------------

OPENAI_STREAM_KW = {**OPENAI_KW, "stream": True, "stream_options": {"include_usage": True}}
ANTHROPIC_STREAM_KW = {**ANTHROPIC_KW, "max_tokens": 15, "stream": True}
OPENAI_CHUNKS = [
    chat_chunk({"role": "assistant", "content": ""}),
    chat_chunk({"content": "Hel"}),
    chat_chunk({"content": "lo"}),
    chat_chunk({}, "length"),
    {**CHUNK_BASE, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
]
OPENAI_SSE = sse(OPENAI_CHUNKS, done=True)
ANTHROPIC_SSE = sse(ANTHROPIC_EVENTS, named=True)


def assert_chat_recorded(a):
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def assert_message_recorded(a):
    assert a[A.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 2095
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)


def assert_chat_stream_recorded(a):
    assert a[A.FP_STREAM_CHUNKS] == 5
    assert a[A.FP_STREAM_TTFC_MS] >= 0
    assert A.FP_STREAM_CLOSED_EARLY not in a
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"


def assert_message_stream_recorded(a, events):
    assert a[A.FP_STREAM_CHUNKS] == len(events)
    assert a[A.FP_STREAM_TTFC_MS] >= 0
    assert a[A.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 15
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)


def test_streaming_response_is_recorded_when_the_application_parses_it(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    with client.chat.completions.with_streaming_response.create(**OPENAI_KW) as response:
        assert spans.all() == []  # the body is the application's to read
        completion = response.parse()
        assert isinstance(completion, openai.types.chat.ChatCompletion)
        assert response.parse() is completion
    assert_chat_recorded(spans.one().attributes)
    spans.clear()
    aclient = faultprint.instrument_anthropic(anthropic_client(responder(200, MESSAGE)))
    with aclient.messages.with_streaming_response.create(**ANTHROPIC_KW) as response:
        assert isinstance(response.parse(), anthropic.types.Message)
    assert_message_recorded(spans.one().attributes)


def test_async_streaming_response_is_recorded_when_the_application_parses_it(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT), is_async=True))
    aclient = faultprint.instrument_anthropic(
        anthropic_client(responder(200, MESSAGE), is_async=True)
    )

    async def main():
        async with client.chat.completions.with_streaming_response.create(**OPENAI_KW) as r:
            completion = await r.parse()
        async with aclient.messages.with_streaming_response.create(**ANTHROPIC_KW) as r:
            message = await r.parse()
        return completion, message

    completion, message = asyncio.run(main())
    assert completion.choices[0].message.content == "Hello!"
    assert message.stop_reason == "tool_use"
    chat, msg = spans.all()
    assert_chat_recorded(chat.attributes)
    assert_message_recorded(msg.attributes)


def assert_ended_without_output(span):
    a = span.attributes
    assert A.GEN_AI_RESPONSE_MODEL not in a and A.FP_FAILURE_CATEGORY not in a
    assert A.ERROR_TYPE not in a  # not the call's failure
    assert span.status.status_code == StatusCode.UNSET


def test_streaming_response_closed_unparsed_ends_its_span_without_output(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT)))
    with client.chat.completions.with_streaming_response.create(**OPENAI_KW) as response:
        assert json.loads(response.read())["id"] == CHAT["id"]
        assert spans.all() == []  # open until the block closes the response
    assert_ended_without_output(spans.one())
    spans.clear()
    with (
        pytest.raises(KeyError),
        client.chat.completions.with_streaming_response.create(**OPENAI_KW),
    ):
        assert spans.all() == []
        raise KeyError("the application's own error")
    assert_ended_without_output(spans.one())
    spans.clear()
    manager = client.chat.completions.with_streaming_response.create(**OPENAI_KW)
    manager.__enter__()  # and never closed
    assert spans.all() == []
    del manager
    gc.collect()
    assert_ended_without_output(spans.one())


def test_async_streaming_response_left_by_an_exception_ends_its_span(spans):
    client = faultprint.instrument_anthropic(
        anthropic_client(responder(200, MESSAGE), is_async=True)
    )

    async def main():
        async with client.messages.with_streaming_response.create(**ANTHROPIC_KW):
            assert spans.all() == []
            raise KeyError("the application's own error")

    with pytest.raises(KeyError):
        asyncio.run(main())
    assert_ended_without_output(spans.one())


def test_raw_response_of_a_stream_records_its_chunks(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, OPENAI_SSE)))
    raw = client.chat.completions.with_raw_response.create(**OPENAI_STREAM_KW)
    stream = raw.parse()
    assert type(stream) is openai.Stream and raw.parse() is stream
    assert spans.all() == []  # still streaming
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello"
    assert_chat_stream_recorded(spans.one().attributes)
    spans.clear()
    aclient = faultprint.instrument_anthropic(anthropic_client(responder(200, ANTHROPIC_SSE)))
    raw = aclient.messages.with_raw_response.create(**ANTHROPIC_STREAM_KW)
    stream = raw.parse()
    assert type(stream) is anthropic.Stream
    events = [next(stream), *stream]  # __next__ and __iter__ both
    assert events[-1].type == "message_stop"
    assert_message_stream_recorded(spans.one().attributes, events)


def test_async_raw_response_of_a_stream_records_its_chunks(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, OPENAI_SSE), is_async=True))
    aclient = faultprint.instrument_anthropic(
        anthropic_client(responder(200, ANTHROPIC_SSE), is_async=True)
    )

    async def main():
        raw = await client.chat.completions.with_raw_response.create(**OPENAI_STREAM_KW)
        stream = raw.parse()
        assert type(stream) is openai.AsyncStream
        chunks = [c async for c in stream]
        raw = await aclient.messages.with_raw_response.create(**ANTHROPIC_STREAM_KW)
        stream = await raw.parse()
        assert type(stream) is anthropic.AsyncStream
        return chunks, [await stream.__anext__()] + [e async for e in stream]

    chunks, events = asyncio.run(main())
    assert len(chunks) == 5
    chat, msg = spans.all()
    assert_chat_stream_recorded(chat.attributes)
    assert_message_stream_recorded(msg.attributes, events)


def test_streaming_response_of_a_stream_records_its_chunks(spans):
    client = faultprint.instrument_anthropic(anthropic_client(responder(200, ANTHROPIC_SSE)))
    with client.messages.with_streaming_response.create(**ANTHROPIC_STREAM_KW) as response:
        events = list(response.parse())
    assert_message_stream_recorded(spans.one().attributes, events)
    spans.clear()
    oclient = faultprint.instrument_openai(openai_client(responder(200, OPENAI_SSE), is_async=True))

    async def main():
        async with oclient.chat.completions.with_streaming_response.create(
            **OPENAI_STREAM_KW
        ) as response:
            return [c async for c in await response.parse()]

    assert len(asyncio.run(main())) == 5
    assert_chat_stream_recorded(spans.one().attributes)


def test_raw_streams_left_early_are_closed_early(spans):
    client = faultprint.instrument_openai(openai_client(responder(200, OPENAI_SSE)))
    with client.chat.completions.with_raw_response.create(**OPENAI_STREAM_KW).parse() as stream:
        next(stream)
    # the block that closes the response, not the stream, also ends it
    with client.chat.completions.with_streaming_response.create(**OPENAI_STREAM_KW) as r:
        next(iter(r.parse()))
    aclient = faultprint.instrument_anthropic(
        anthropic_client(responder(200, ANTHROPIC_SSE), is_async=True)
    )

    async def main():
        async with aclient.messages.with_streaming_response.create(**ANTHROPIC_STREAM_KW) as r:
            stream = await r.parse()
            await stream.__anext__()
            raise KeyError("the application's own error")

    with pytest.raises(KeyError):
        asyncio.run(main())
    for span in spans.all():
        assert span.attributes[A.FP_STREAM_CLOSED_EARLY] is True
        assert span.attributes[A.FP_STREAM_CHUNKS] == 1
        assert A.ERROR_TYPE not in span.attributes
    assert len(spans.all()) == 3


def test_streaming_response_parse_refusing_a_cut_completion_records_it(spans):
    cut = json.loads(json.dumps(CHAT))
    cut["choices"][0]["finish_reason"] = "length"
    client = faultprint.instrument_openai(openai_client(responder(200, cut)))
    with (
        client.chat.completions.with_streaming_response.parse(**OPENAI_KW) as response,
        pytest.raises(openai.LengthFinishReasonError),  # the application still sees it
    ):
        response.parse()
    a = spans.one().attributes
    assert a[A.FP_FAILURE_CATEGORY] == "truncation"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
