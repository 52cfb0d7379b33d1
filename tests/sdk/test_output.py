"""Reading provider responses and stream events: property tests over malformed input.

A response the SDK cannot read must cost only what it could not read: the
reader never raises (an exception would be swallowed by the call wrapper,
and the call recorded without its output), and what it reads has the types
the span attributes need. Bodies are shaped like the providers' (chat
completions, responses, Anthropic messages, and their stream events) with
any JSON value at any field.
"""

from __future__ import annotations

from typing import Any

import faultprint
import pytest
from faultprint._export import DiscardingExporter
from faultprint._output import Output, StreamState, analyze, extract
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import json_values

JSON = json_values(text=8, size=3, leaves=12)
#: realistic values, sometimes, so that the readers get past their first checks
WORDS = st.sampled_from(
    [
        "stop",
        "length",
        "tool_calls",
        "function_call",
        "refusal",
        "max_tokens",
        "pause_turn",
        "completed",
        "incomplete",
        "failed",
        "queued",
        "cancelled",
        "steered",
        "message",
        "text",
        "tool_use",
        "output_text",
        "function_call",
        "custom_tool_call",
        "computer_call",
        "reasoning",
        "thinking",
        "server_tool_use",
        "response",
        "",
    ]
)


def field(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: a well-formed one, or any JSON value."""
    return st.one_of(value, JSON)


def some(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict holding any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


FUNCTION = some(name=field(WORDS), arguments=field(st.text(max_size=12)))
CHAT_MESSAGE = some(
    content=field(st.text(max_size=12)),
    refusal=field(st.text(max_size=12)),
    tool_calls=field(st.lists(some(function=field(FUNCTION)), max_size=2)),
    function_call=field(FUNCTION),
    audio=JSON,
)
USAGE = some(
    prompt_tokens=field(st.integers()),
    completion_tokens=field(st.integers()),
    input_tokens=field(st.integers()),
    output_tokens=field(st.integers()),
)
CHAT = st.fixed_dictionaries(
    {
        "choices": field(
            st.lists(
                some(
                    finish_reason=field(WORDS),
                    message=field(CHAT_MESSAGE),
                    text=field(st.text(max_size=12)),
                )
            )
        )
    },
    optional={"usage": field(USAGE), "model": JSON, "id": JSON},
)
PART = some(type=field(WORDS), text=JSON, refusal=JSON)
ITEM = some(
    type=field(WORDS),
    content=field(st.lists(PART, max_size=2)),
    name=field(WORDS),
    arguments=JSON,
)
RESPONSE = st.fixed_dictionaries(
    {"object": st.just("response"), "status": field(WORDS)},
    optional={
        "output": field(st.lists(ITEM, max_size=3)),
        "incomplete_details": field(some(reason=field(WORDS))),
        "error": field(some(code=JSON, message=JSON)),
        "usage": field(USAGE),
    },
)
BLOCK = some(type=field(WORDS), text=JSON, name=field(WORDS), input=JSON)
MESSAGE = st.fixed_dictionaries(
    {"type": st.just("message"), "content": field(st.lists(BLOCK, max_size=3))},
    optional={"stop_reason": field(WORDS), "usage": field(USAGE), "model": JSON},
)
EVENT = st.one_of(
    some(
        type=field(WORDS),
        choices=field(st.lists(some(delta=field(CHAT_MESSAGE), text=JSON), max_size=2)),
    ),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "message_start",
                    "content_block_start",
                    "content_block_delta",
                    "message_delta",
                    "response.output_text.delta",
                    "response.refusal.delta",
                    "response.created",
                    "response.output_item.done",
                    "response.completed",
                    "response.incomplete",
                    "response.failed",
                ]
            )
        },
        optional={
            "message": field(MESSAGE),
            "content_block": field(BLOCK),
            "delta": field(some(type=field(WORDS), text=JSON, stop_reason=field(WORDS))),
            "usage": field(USAGE),
            "response": field(RESPONSE),
            "item": field(ITEM),
            "index": JSON,
        },
    ),
    JSON,
)


def check(out: Output) -> None:
    """What the span attributes need of a read output."""
    assert out.text is None or isinstance(out.text, str)
    assert out.finish_reasons is None or all(isinstance(r, str) for r in out.finish_reasons)
    assert out.input_tokens is None or isinstance(out.input_tokens, int)
    assert out.output_tokens is None or isinstance(out.output_tokens, int)
    assert out.response_model is None or isinstance(out.response_model, str)
    assert out.response_id is None or isinstance(out.response_id, str)
    assert out.tool_calls is None or all(isinstance(t, dict) for t in out.tool_calls)
    assert out.error is None or all(isinstance(part, str) for part in out.error)


@pytest.fixture(scope="module")
def pipeline():
    faultprint.configure(
        exporter=DiscardingExporter(), use_global_provider=False, handle_sigterm=False
    )
    yield
    faultprint.shutdown()


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(CHAT, RESPONSE, MESSAGE, JSON))
def test_any_response_body_is_read_without_raising(pipeline, body: Any) -> None:
    out = extract(body)
    check(out)
    with faultprint.call(model="m", tools=[{"name": "text"}]) as call:
        analyze(call, out, body)  # judging it never raises either


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENT, max_size=6))
def test_any_stream_of_events_is_read_without_raising(pipeline, events: list[Any]) -> None:
    state = StreamState()
    for event in events:
        state.add(event)
    out = state.result()
    check(out)
    with faultprint.call(model="m") as call:
        analyze(call, out, out.text)
