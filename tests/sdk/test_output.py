"""Reading provider responses and stream events: property tests over malformed input,
and the line between a provider's body and the application's own values.

A response the SDK cannot read must cost only what it could not read: the
reader never raises (an exception would be swallowed by the call wrapper,
and the call recorded without its output), and what it reads has the types
the span attributes need. Bodies are shaped like the providers' (chat
completions, responses, Anthropic messages, and their stream events) with
any JSON value at any field.
"""

from __future__ import annotations

import json
from typing import Any

import faultprint
import hypothesis
import pytest
from faultprint import attributes as A
from faultprint._export import DiscardingExporter
from faultprint._output import (
    _CHAT_COMPLETION_TYPES,
    Output,
    StreamState,
    _fields,
    _library_body,
    _plain_chat_completion,
    _read,
    analyze,
    extract,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.sdk import providers
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


# --- the application's own values are not the model's output ----------------------

#: results an application returns that share keys with a provider's body
APPLICATION_DICTS = [
    {"status": "completed", "output": "The invoice total is 42.00 EUR", "steps": 3},
    {"status": "ok", "output": {"label": "spam", "score": 0.97}},
    {"status": "ok", "output": [{"label": "spam"}, {"label": "ham"}]},
    {"choices": ["short", "long"], "picked": "short"},
    {"choices": [{"label": "a"}, {"label": "b"}]},
    {"choices": []},
    {"type": "message", "content": "Your order has shipped"},
    {"stop_reason": "done", "result": 42},
]


@pytest.mark.parametrize("value", APPLICATION_DICTS)
def test_an_application_dict_is_not_read_as_a_provider_response(value: dict[str, Any]) -> None:
    out = extract(value)
    assert not out.provider_shape
    assert out.text is None and out.finish_reasons is None


def chat_chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


@pytest.mark.parametrize(
    ("body", "text", "finish_reasons"),
    [
        (providers.CHAT, "Hello!", ["stop"]),
        ({k: v for k, v in providers.CHAT.items() if k != "object"}, "Hello!", ["stop"]),
        (providers.RESPONSE, "In a peaceful grove", ["max_output_tokens"]),
        (
            {k: v for k, v in providers.RESPONSE.items() if k != "object"},
            "In a peaceful grove",
            ["max_output_tokens"],
        ),
        (providers.FAILED_RESPONSE, None, ["failed"]),
        (providers.MESSAGE, None, ["tool_use"]),
        (
            {
                "id": "cmpl-1",
                "object": "text_completion",
                "model": "gpt-3.5-turbo-instruct",
                "choices": [{"text": "Hi", "index": 0, "logprobs": None, "finish_reason": "stop"}],
            },
            "Hi",
            ["stop"],
        ),
        ({**chat_chunk({}, "stop"), "choices": []}, None, None),
    ],
)
def test_provider_bodies_are_read(body: dict[str, Any], text: str | None, finish_reasons) -> None:
    out = extract(body)
    assert out.provider_shape
    assert (out.text, out.finish_reasons) == (text, finish_reasons)


@pytest.mark.parametrize("value", APPLICATION_DICTS[:3])
def test_a_function_returning_its_own_dict_is_not_judged(spans, value: dict[str, Any]) -> None:
    @faultprint.observe(model="gpt-4o-mini", version="v1")
    def run_agent(task: str) -> dict[str, Any]:
        return value

    assert run_agent("x") is value
    span = spans.one()
    assert A.FP_FAILURE_CATEGORY not in span.attributes
    assert A.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes


#: a chat UI backend's own events, made of the model's answer
APPLICATION_EVENTS = [
    {"type": "start", "id": 1},
    *({"type": "token", "content": word} for word in ("The ", "answer ", "is ", "42.")),
    {"type": "error", "message": "retrying"},
    {"type": "end"},
]

ANTHROPIC_EVENTS = providers.ANTHROPIC_EVENTS


def test_application_stream_events_are_not_provider_events() -> None:
    state = StreamState()
    for event in APPLICATION_EVENTS:
        state.add(event)
    assert state.saw_other
    assert not state.out.provider_shape


@pytest.mark.parametrize(
    ("events", "text", "finish_reasons"),
    [
        (ANTHROPIC_EVENTS, "Once upon", ["max_tokens"]),
        (providers.RESPONSE_EVENTS, "In a peaceful grove", ["max_output_tokens"]),
        ([chat_chunk({"content": "Hi"}), chat_chunk({}, "length")], "Hi", ["length"]),
    ],
)
def test_provider_stream_events_are_read(events: list[Any], text: str, finish_reasons) -> None:
    state = StreamState()
    for event in events:
        state.add(event)
    out = state.result()
    assert out.provider_shape
    assert (out.text, out.finish_reasons) == (text, finish_reasons)


def test_a_generator_of_its_own_events_is_not_judged(spans) -> None:
    @faultprint.observe(model="gpt-4o-mini", version="v1")
    def chat_events(question: str):
        yield from APPLICATION_EVENTS

    assert list(chat_events("what is the answer?")) == APPLICATION_EVENTS
    span = spans.one()
    assert A.FP_FAILURE_CATEGORY not in span.attributes
    assert span.attributes[A.FP_STREAM_CHUNKS] == len(APPLICATION_EVENTS)


def test_a_generator_of_provider_events_is_judged(spans) -> None:
    @faultprint.observe(model="claude-haiku-4-5", version="v1")
    def story(prompt: str):
        yield from ANTHROPIC_EVENTS

    list(story("a story"))
    assert spans.one().attributes[A.FP_FAILURE_CATEGORY] == "truncation"


# --- the plain chat completion reader agrees with the general one -------------------

_ABSENT = object()
#: a field of the body: left out, or one of the values the library may hold
_FIELD = st.sampled_from([_ABSENT, None, "", "stop", "length", 3, [], {"x": 1}, "I can't help."])


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is _ABSENT:
        target.pop(key, None)
    else:
        target[key] = value


#: (level, field) the readers look at, or the library keeps as an extra
_CHANGES = [
    *(("message", key) for key in ("content", "refusal", "tool_calls", "function_call", "audio")),
    *(("message", "x_extra"), ("choice", "x_extra"), ("body", "x_extra")),
    *(("choice", key) for key in ("finish_reason", "message", "text")),
    *(("body", key) for key in ("model", "id", "usage", "choices")),
    *(("usage", key) for key in ("prompt_tokens", "completion_tokens", "input_tokens")),
]


@st.composite
def chat_completion_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """``providers.CHAT`` with one to three of the fields the readers look at
    changed: most such bodies are still plain enough for the plain reader."""
    body = json.loads(json.dumps(providers.CHAT))
    choice = body["choices"][0]
    levels = {"body": body, "choice": choice, "message": choice["message"], "usage": body["usage"]}
    for level, key in draw(
        st.lists(st.sampled_from(_CHANGES), min_size=1, max_size=3, unique=True)
    ):
        if key == "choices":
            body["choices"] = body["choices"] * draw(st.sampled_from([0, 2]))
        elif key == "tool_calls" and draw(st.booleans()):
            function = {"name": "f", "arguments": "{}"}
            levels[level][key] = [{"id": "c1", "type": "function", "function": function}]
        else:
            _set(levels[level], key, draw(_FIELD))
    return body


def _slots(out: Output) -> dict[str, Any]:
    return {name: getattr(out, name) for name in Output.__slots__}


def _changed(level: str, key: str, value: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(providers.CHAT))
    choice = body["choices"][0]
    levels = {"body": body, "choice": choice, "message": choice["message"], "usage": body["usage"]}
    levels[level][key] = value
    return body


@settings(max_examples=400)
@given(body=chat_completion_bodies())
@example(body=_changed("choice", "finish_reason", ""))
@example(body=_changed("choice", "text", "a legacy text"))
@example(body=_changed("usage", "prompt_tokens", "7"))
@example(body=_changed("body", "model", 3))
@example(body=_changed("message", "content", ""))
def test_the_plain_chat_completion_reader_agrees_with_the_general_reader(body) -> None:
    """The fast reader of the commonest response either declines or reads what
    the general reader reads, on the library's own objects."""
    with providers.openai_client(providers.responder(200, body)) as client:
        response = client.chat.completions.create(model="m", messages=providers.MESSAGES)
    fields = _fields(response)
    general = _read(fields, _library_body(fields))
    plain = _plain_chat_completion(response)
    hypothesis.event("read by the plain reader" if plain is not None else "declined")
    if plain is not None:
        assert _slots(plain) == _slots(general)


def test_the_commonest_response_is_read_by_the_plain_reader() -> None:
    with providers.openai_client(providers.responder(200, providers.CHAT)) as client:
        response = client.chat.completions.create(model="m", messages=providers.MESSAGES)
    extract(response)  # the first read learns the library's class
    plain = _plain_chat_completion(response)
    assert plain is not None
    assert _slots(plain) == _slots(extract(response))
    assert (plain.text, plain.finish_reasons, plain.input_tokens) == ("Hello!", ["stop"], 19)
    assert type(response) in _CHAT_COMPLETION_TYPES
