"""Failures that do not raise: output checks, refusals, truncation, empties, tools."""

from __future__ import annotations

import asyncio
import datetime
import enum
import json
import subprocess
import sys
import typing
import uuid

import faultprint
import jsonschema
import pydantic
import pytest
from faultprint import attributes as A
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, field_validator
from typing_extensions import TypedDict


class Item(BaseModel):
    name: str
    price: float


class Order(BaseModel):
    items: list[Item]


ORDER_SCHEMA = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "price"],
                "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
            },
        }
    },
}


def detail(span) -> dict:
    return json.loads(span.attributes[A.FP_FAILURE_DETAIL])


def test_pydantic_check_records_kinds_and_generalised_paths(spans):
    @faultprint.observe(model="m", expect=Order)
    def extract_order(text: str) -> str:
        return text

    bad = '{"items": [{"name": "a", "price": 1}, {"name": "b"}, {"name": "c"}]}'
    assert extract_order(bad) == bad  # return value unchanged
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"
    d = detail(span)
    assert d["validator"] == "pydantic"
    # content capture is off: pydantic's own messages, which may quote the
    # value, are left out; the kind and the path say what failed where
    assert {"kind": "missing", "path": "items.*.price"} in d["errors"]
    assert span.attributes[A.FP_FAILURE_MESSAGE] == (
        "pydantic check failed: items.*.price: missing (+1 more)"
    )


def test_pydantic_check_passes_valid_output_and_model_instances(spans):
    @faultprint.observe(model="m", expect=Order)
    def good(as_model: bool):
        order = Order(items=[Item(name="a", price=1.0)])
        return order if as_model else order.model_dump_json()

    good(True)
    good(False)
    for span in spans.all():
        assert A.FP_FAILURE_CATEGORY not in span.attributes


def test_json_schema_check(spans):
    @faultprint.observe(model="m", expect=ORDER_SCHEMA)
    def f(text: str) -> str:
        return text

    f('{"items": [{"name": "a", "price": "cheap"}, {"price": 2}]}')
    d = detail(spans.one())
    assert d["validator"] == "jsonschema"
    kinds = {(e["kind"], e["path"]) for e in d["errors"]}
    assert kinds == {("type", "items.*.price"), ("required", "items.*.name")}


def test_json_flag_records_decode_error(spans):
    @faultprint.observe(model="m", json=True)
    def f(text: str) -> str:
        return text

    f('{"answer": "cut off')
    span = spans.one()
    d = detail(span)
    assert d["validator"] == "json"
    assert d["errors"][0]["kind"] == "truncated_json"
    assert d["errors"][0]["message"] == (
        "JSON output cut off before its end: Unterminated string starting at: line 1 column 12"
        " (char 11)"
    )
    assert span.attributes[A.FP_FAILURE_MESSAGE] == (
        "json check failed: JSON output cut off before its end: Unterminated string starting"
        " at: line 1 column 12 (char 11)"
    )


@pytest.mark.parametrize("capture", [False, True], ids=["capture off", "capture on"])
@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ('{"answer": [1, 2', "truncated_json"),
        ('```json\n{"answer": 1', "truncated_json"),
        ('Here it is: {"answer": 1}', "wrapped_json"),
        ('{"answer": 1} Hope this helps!', "wrapped_json"),
        ('```json\n{"answer": 1}\n```', "wrapped_json"),
        ("The answer is one.", "prose"),
        ('{"answer": 1,, "b": 2}', "malformed_json"),
    ],
)
@pytest.mark.parametrize(
    "options",
    [{"json": True}, {"expect": Order}, {"expect": list[Item]}, {"expect": ORDER_SCHEMA}],
    ids=["json", "model", "type", "schema"],
)
def test_an_output_that_is_no_json_is_named_by_its_shape(spans, output, kind, options, capture):
    """Cut off, wrapped in prose or a fence, prose alone: each its own failure
    mode, named without the output, whichever check found no JSON."""

    @faultprint.observe(model="m", capture_content=capture, **options)
    def f() -> str:
        return output

    f()
    span = spans.one()
    errors = detail(span)["errors"]
    assert [(e["kind"], e["path"]) for e in errors] == [(kind, "")]
    if not capture:
        assert "answer" not in json.dumps(dict(span.attributes))


def test_callable_check(spans):
    @faultprint.observe(model="m", expect=lambda out: any(c.isdigit() for c in out))
    def f(text: str) -> str:
        return text

    f("abc")
    f("a1")
    failed, ok = spans.all()
    assert detail(failed) == {
        "validator": "callable",
        "errors": [
            {
                "kind": "rejected",
                "path": "",
                "message": "test_callable_check.<locals>.<lambda> returned False",
            }
        ],
    }
    assert A.FP_FAILURE_CATEGORY not in ok.attributes


def test_callable_check_that_raises_marks_the_output_invalid(spans):
    def check(out: str) -> bool:
        raise LookupError(f"no key in {out}")

    @faultprint.observe(model="m", expect=check)
    def f() -> str:
        return "private words"

    assert f() == "private words"
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"
    name = "test_callable_check_that_raises_marks_the_output_invalid.<locals>.check"
    assert detail(span)["errors"] == [
        {"kind": "LookupError", "path": "", "message": f"{name} raised LookupError"}
    ]
    assert "private" not in span.attributes[A.FP_FAILURE_MESSAGE]


def test_raise_on_invalid(spans):
    @faultprint.observe(model="m", expect=Order, raise_on_invalid=True)
    def f() -> str:
        return '{"items": [{"name": 1}]}'

    with pytest.raises(faultprint.InvalidOutputError) as info:
        f()
    assert info.value.detail["validator"] == "pydantic"
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"
    assert span.attributes[A.ERROR_TYPE] == "faultprint._errors.InvalidOutputError"


def test_bad_expect_is_rejected_at_decoration_time():
    with pytest.raises(TypeError):
        faultprint.observe(model="m", expect=42)(lambda: None)


# --- a function that returns nothing -----------------------------------------------
@pytest.mark.parametrize(
    ("options", "validator"),
    [
        ({"json": True}, "json"),
        ({"expect": Order}, "pydantic"),
        ({"expect": ORDER_SCHEMA}, "jsonschema"),
        ({"expect": list[Item]}, "pydantic"),
        ({"expect": lambda out: True}, "callable"),
        ({"json": True, "expect": Order}, "json"),
    ],
    ids=["json", "model", "schema", "type", "callable", "json+model"],
)
def test_none_fails_a_declared_check_as_no_output(spans, options, validator):
    # message.content is None for a refusal or a reply that only calls tools
    @faultprint.observe(model="m", **options)
    def ask(question: str) -> str | None:
        return None

    assert ask("q") is None
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"
    assert detail(span) == {
        "validator": validator,
        "errors": [{"kind": "no_output", "path": "", "message": "no output"}],
    }
    assert span.attributes[A.FP_FAILURE_MESSAGE] == f"{validator} check failed: no output"


def test_none_without_a_check_is_not_judged(spans):
    @faultprint.observe(model="m")
    def store(question: str) -> None:
        return None  # keeps the output itself

    async_calls = []

    @faultprint.observe(model="m")
    async def astore(question: str) -> None:
        async_calls.append(question)

    import asyncio

    store("q")
    asyncio.run(astore("q"))
    for span in spans.all():
        assert A.FP_FAILURE_CATEGORY not in span.attributes


def test_none_with_raise_on_invalid_raises(spans):
    @faultprint.observe(model="m", json=True, raise_on_invalid=True)
    def ask() -> str | None:
        return None

    with pytest.raises(faultprint.InvalidOutputError) as info:
        ask()
    assert info.value.detail["errors"][0]["kind"] == "no_output"


def test_async_none_fails_a_declared_check(spans):
    import asyncio

    @faultprint.observe(model="m", expect=Order)
    async def ask() -> str | None:
        return None

    assert asyncio.run(ask()) is None
    assert detail(spans.one())["errors"][0]["kind"] == "no_output"


def test_a_with_block_with_no_output_declared_is_not_judged(spans):
    with faultprint.call(model="m", json=True):
        pass  # no set_output: nothing was returned to check
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


# --- type expressions ----------------------------------------------------------------
class Address(TypedDict):
    street: str
    town: str


class Sentiment(enum.Enum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


@pytest.mark.parametrize(
    ("expect", "output"),
    [
        (list[Item], '[{"name": "a", "price": 1}]'),
        (list[Item], [Item(name="a", price=1.0)]),  # structured data: validated as Python
        (typing.List[Item], '[{"name": "a", "price": 1}]'),  # noqa: UP006
        (dict, '{"a": 1}'),
        (dict[str, int], '{"a": 1}'),
        (dict[str, int], {"a": 1}),
        (int, "42"),
        (int | None, "null"),
        (typing.Optional[Item], '{"name": "a", "price": 1}'),  # noqa: UP045
        (Address, '{"street": "Main St", "town": "Springfield"}'),
        (typing.Literal["yes", "no"], "yes"),  # a word is its own text form
        (Sentiment, "positive"),
        (Sentiment, '"negative"'),
        (str, "any text at all"),
        (uuid.UUID, "123e4567-e89b-12d3-a456-426614174000"),
        (datetime.date, "2025-06-01"),
    ],
    ids=repr,
)
def test_type_expressions_pass_what_they_describe(spans, expect, output):
    @faultprint.observe(model="m", expect=expect)
    def f():
        return output

    assert f() is output
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


@pytest.mark.parametrize(
    ("expect", "output", "errors"),
    [
        (list[Item], "not json", [("prose", "")]),
        (list[Item], '[{"name": "a", "price": 1}, {"name": "b"}]', [("missing", "*.price")]),
        (typing.List[Item], "{}", [("list_type", "")]),  # noqa: UP006
        (dict, "[1, 2]", [("dict_type", "")]),
        (dict[str, int], '{"a": "many"}', [("int_parsing", "*")]),  # the output's key
        (int, "forty-two", [("int_parsing", "")]),  # a wrong word
        (typing.Literal["yes", "no"], "maybe", [("literal_error", "")]),
        (Address, '{"street": "Main St"}', [("missing", "town")]),
        (Sentiment, "neutral", [("enum", "")]),
        (list[Item], {"not": "a list"}, [("list_type", "")]),
    ],
    ids=repr,
)
def test_type_expressions_fail_what_they_do_not_describe(spans, expect, output, errors):
    @faultprint.observe(model="m", expect=expect)
    def f():
        return output

    assert f() is output
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"
    d = detail(span)
    assert d["validator"] == "pydantic"
    assert [(e["kind"], e["path"]) for e in d["errors"]] == errors


class Cat(BaseModel):
    kind: typing.Literal["cat"]
    meows: int


class Dog(BaseModel):
    kind: typing.Literal["dog"]
    barks: int


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Scores(BaseModel, extra="forbid"):
    by_customer: dict[str, int]
    pet: Cat | Dog
    tagged: typing.Annotated[Cat | Dog, pydantic.Field(discriminator="kind")]
    total: int = pydantic.Field(alias="Total")
    tree: Node
    pair: tuple[int, str]


def test_pydantic_paths_name_only_what_the_model_declares(spans):
    """The keys of a dict field, extra fields and list indices are the output's
    choice, and may be its content: they become ``*``. Field names, aliases,
    union labels and discriminator tags are the model's, and stay."""

    @faultprint.observe(model="m", expect=Scores)
    def score(output: dict) -> dict:
        return output

    def paths(output: dict) -> list[tuple[str, str]]:
        score(output)
        span = spans.all()[-1]
        assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"
        return sorted((e["kind"], e["path"]) for e in detail(span)["errors"])

    valid = {
        "by_customer": {"jane@corp.com": 3},
        "pet": {"kind": "cat", "meows": 1},
        "tagged": {"kind": "dog", "barks": 2},
        "Total": 5,
        "tree": {"value": 1, "children": [{"value": 2}]},
        "pair": [1, "a"],
    }
    score(valid)
    assert A.FP_FAILURE_CATEGORY not in spans.all()[-1].attributes
    bad = {
        "by_customer": {"jane@corp.com": "three"},
        "pet": {"kind": "cat", "meows": "x"},
        "tagged": {"kind": "dog", "barks": "y"},
        "Total": "five",
        "tree": {"value": 1, "children": [{"value": 2, "children": [{"value": "z"}]}]},
        "pair": [1, 2],
        "Jane Doe, 12 Main St": 1,
    }
    found = paths(bad)
    assert found == sorted(
        [
            ("int_parsing", "by_customer.*"),
            ("int_parsing", "pet.Cat.meows"),
            ("literal_error", "pet.Dog.kind"),
            ("missing", "pet.Dog.barks"),
            ("int_parsing", "tagged.dog.barks"),
            ("int_parsing", "Total"),
            ("int_parsing", "tree.children.*.children.*.value"),
            ("string_type", "pair.*"),
            ("extra_forbidden", "*"),
        ]
    )
    recorded = json.dumps([dict(s.attributes) for s in spans.all()])
    assert "jane@corp.com" not in recorded and "Jane Doe" not in recorded
    # the same mistake under another key is the same failure mode
    other = {**bad, "by_customer": {"bob@corp.com": "four"}, "Ann Lee, 3 High St": 2}
    del other["Jane Doe, 12 Main St"]
    assert paths(other) == found


def test_pydantic_paths_of_a_type_expression_name_its_keys_as_the_output_chose_them(spans):
    @faultprint.observe(model="m", expect=dict[str, list[Cat]])
    def cats() -> str:
        return '{"jane@corp.com": [{"kind": "cat", "meows": "x"}], "7": 1}'

    cats()
    d = detail(spans.one())
    assert sorted((e["kind"], e["path"]) for e in d["errors"]) == [
        ("int_parsing", "*.*.meows"),
        ("list_type", "*"),
    ]


class Opaque:
    pass


UNUSABLE_EXPECTS = [
    list[Opaque],  # callable: list[Opaque]("text") would pass every output
    dict[str, Opaque],
    "list[Item]",  # a name, not a type
]
if sys.version_info < (3, 12):
    UNUSABLE_EXPECTS.append(typing.TypedDict("Old", {"a": int}))  # pydantic wants another


@pytest.mark.parametrize("expect", UNUSABLE_EXPECTS, ids=repr)
def test_an_expect_it_cannot_use_is_rejected_at_decoration_time(expect):
    with pytest.raises(TypeError, match="expect="):
        faultprint.observe(model="m", expect=expect)(lambda: None)


def test_a_class_pydantic_does_not_know_is_a_callable_check(spans):
    class NonEmpty:
        def __init__(self, text: str) -> None:
            if not text.strip():
                raise ValueError("empty")

    @faultprint.observe(model="m", expect=NonEmpty)
    def f(text: str) -> str:
        return text

    f("fine")
    f("   x")
    f("\t")
    ok, ok2, failed = spans.all()
    assert A.FP_FAILURE_CATEGORY not in ok.attributes
    assert A.FP_FAILURE_CATEGORY not in ok2.attributes
    assert failed.attributes[A.FP_FAILURE_CATEGORY] == "empty_output"  # judged before checks


# --- the callable contract -----------------------------------------------------------
@pytest.mark.parametrize(
    "check",
    [
        lambda out: out.strip(),  # returns the cleaned text
        lambda out: "",  # an empty string is still not False
        lambda out: None,
        lambda out: 0,
        lambda out: json.loads(out),  # returns what it parsed
        lambda out: True,
    ],
    ids=["cleaned text", "empty text", "None", "zero", "parsed value", "True"],
)
def test_a_callable_check_passes_unless_it_raises_or_returns_false(spans, check):
    @faultprint.observe(model="m", expect=check)
    def f() -> str:
        return ' {"a": 1} '

    assert f() == ' {"a": 1} '
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


def test_a_callable_check_returning_false_or_raising_fails(spans):
    def numpy_like_false(out: str):
        return type("bool_", (), {"__bool__": lambda self: False})()

    for check in (lambda out: False, numpy_like_false, lambda out: json.loads("{")):
        faultprint.observe(model="m", expect=check)(lambda: "text")()
    kinds = [detail(span)["errors"][0]["kind"] for span in spans.all()]
    assert kinds == ["rejected", "rejected", "JSONDecodeError"]


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot assist with this request.", True),
        ("Sorry, I won't provide that information.", True),
        ("I can't guarantee this is accurate, but the capital of France is Paris.", False),
        ("The refund policy says: I cannot help you if the item is damaged.", False),
        ('{"answer": "I am unable to comply"}', False),
    ],
)
def test_text_refusal_detector_is_conservative(spans, text, refusal):
    @faultprint.observe(model="m")
    def f() -> str:
        return text

    f()
    span = spans.one()
    if refusal:
        assert span.attributes[A.FP_FAILURE_CATEGORY] == "refusal"
        assert detail(span) == {"source": "text_detector"}
    else:
        assert A.FP_FAILURE_CATEGORY not in span.attributes


def test_text_refusal_detector_can_be_switched_off(spans):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    faultprint.configure(exporter=exporter, refusal_detector=False, use_global_provider=False)

    @faultprint.observe(model="m")
    def f() -> str:
        return "I'm sorry, but I can't help with that."

    f()
    faultprint.flush()
    (span,) = exporter.get_finished_spans()
    assert A.FP_FAILURE_CATEGORY not in span.attributes


def test_empty_output(spans):
    @faultprint.observe(model="m")
    def f() -> str:
        return "   "

    f()
    assert spans.one().attributes[A.FP_FAILURE_CATEGORY] == "empty_output"


def chat_completion(content, finish_reason="stop", refusal=None, tool_calls=None) -> dict:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


@pytest.mark.parametrize(
    ("response", "category", "detail_value"),
    [
        (chat_completion("Hi"), None, None),
        (chat_completion('{"a": [1, 2', "length"), "truncation", {"finish_reason": "length"}),
        (
            chat_completion(None, "content_filter"),
            "content_filter",
            {"finish_reason": "content_filter"},
        ),
        (
            chat_completion(None, refusal="I can't help with that."),
            "refusal",
            {"source": "provider_field"},
        ),
        (chat_completion(""), "empty_output", {"source": "no_text"}),
        (
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [],
                "stop_reason": "refusal",
                "usage": {"input_tokens": 4, "output_tokens": 0},
            },
            "refusal",
            {"source": "stop_reason"},
        ),
        (
            {
                "id": "msg_2",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "Once upon"}],
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 4, "output_tokens": 2},
            },
            "truncation",
            {"finish_reason": "max_tokens"},
        ),
    ],
)
def test_provider_response_dicts(spans, response, category, detail_value):
    @faultprint.observe(model="m")
    def f() -> dict:
        return response

    assert f() is response
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY if category else A.GEN_AI_RESPONSE_MODEL] == (
        category or response["model"]
    )
    if category:
        assert detail(span) == detail_value
    assert span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] in (10, 4)


def test_tool_errors_unknown_tool_and_invalid_arguments(spans):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "required": ["city"],
                    "properties": {"city": {"type": "string"}},
                },
            },
        }
    ]

    @faultprint.observe(model="m", tools=tools)
    def f(name: str, args: str) -> dict:
        call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}
        return chat_completion(None, "tool_calls", tool_calls=[call])

    f("get_wether", '{"city": "Oslo"}')
    f("get_weather", '{"town": "Oslo"}')
    f("get_weather", '{"city": "Os')
    f("get_weather", '{"city": "Oslo"}')
    unknown, bad_args, bad_json, ok = spans.all()
    assert detail(unknown) == {"tool": "get_wether", "reason": "unknown_tool", "errors": []}
    assert detail(bad_args)["errors"] == [
        {"kind": "required", "path": "city", "message": "'city' is a required property"}
    ]
    assert detail(bad_json)["errors"][0]["kind"] == "json_decode"
    assert A.FP_FAILURE_CATEGORY not in ok.attributes


def test_content_capture_is_off_by_default_and_redacted_when_on(spans):
    @faultprint.observe(model="m")
    def f(prompt: str) -> str:
        return "mail me at jane@example.com"

    f("key sk-abcdefghijklmnopqrstuvwxyz")
    assert A.FP_INPUT_TEXT not in spans.one().attributes
    spans.clear()

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=exporter, capture_content=True, max_content_chars=200, use_global_provider=False
    )
    f("key sk-abcdefghijklmnopqrstuvwxyz " + "x" * 500)
    faultprint.flush()
    (span,) = exporter.get_finished_spans()
    captured_in = span.attributes[A.FP_INPUT_TEXT]
    assert "sk-abc" not in captured_in and "[REDACTED_KEY]" in captured_in
    assert len(captured_in) < 260 and "truncated" in captured_in
    assert span.attributes[A.FP_OUTPUT_TEXT] == "mail me at [REDACTED_EMAIL]"


def test_custom_redaction_hook(spans):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=exporter,
        capture_content=True,
        redact=lambda text: text.replace("secret", "******"),
        use_global_provider=False,
    )

    @faultprint.observe(model="m")
    def f(prompt: str) -> str:
        return "the secret is out"

    f("p")
    faultprint.flush()
    (span,) = exporter.get_finished_spans()
    assert span.attributes[A.FP_OUTPUT_TEXT] == "the ****** is out"


# --- content in failures ---------------------------------------------------------
SECRET = "jane.doe@example.com"
INT_TOOL = [
    {
        "type": "function",
        "function": {
            "name": "send",
            "parameters": {"type": "object", "properties": {"to": {"type": "integer"}}},
        },
    }
]


class Contact(BaseModel):
    email: str

    @field_validator("email")
    @classmethod
    def no_personal_mail(cls, value: str) -> str:
        raise ValueError(f"{value} is a personal address")


def text_refusal() -> None:
    faultprint.observe(model="m")(lambda: f"I'm sorry, I can't help with emailing {SECRET}")()


def provider_refusal() -> None:
    response = chat_completion(None, refusal=f"I can't share {SECRET}'s password")
    faultprint.observe(model="m")(lambda: response)()


def declared_refusal() -> None:
    with faultprint.call(model="m") as c:
        c.set_output("", refusal=f"I won't write to {SECRET}")


def schema_error() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    faultprint.observe(model="m", expect=schema)(lambda: f'{{"n": "call {SECRET}"}}')()


def schema_error_raised() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    f = faultprint.observe(model="m", expect=schema, raise_on_invalid=True)(
        lambda: f'{{"n": "call {SECRET}"}}'
    )
    with pytest.raises(faultprint.InvalidOutputError):
        f()


def schema_key_error() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    output = json.dumps({SECRET: f"call {SECRET}"})
    faultprint.observe(model="m", expect=schema)(lambda: output)()


def pydantic_error() -> None:
    faultprint.observe(model="m", expect=Contact)(lambda: f'{{"email": "{SECRET}"}}')()


def callable_verdict() -> None:
    def allowed(out: str) -> None:
        raise ValueError(f"{out} is not allowed")

    faultprint.observe(model="m", expect=allowed)(lambda: SECRET)()


def tool_arguments() -> None:
    tool_call = {"id": "c", "type": "function"}
    tool_call["function"] = {"name": "send", "arguments": json.dumps({"to": SECRET})}
    response = chat_completion(None, "tool_calls", tool_calls=[tool_call])
    faultprint.observe(model="m", tools=INT_TOOL)(lambda: response)()


CONTENT_FAILURES = {
    text_refusal: ("refusal", "model refused (text detector)"),
    provider_refusal: ("refusal", "model refused (provider refusal field)"),
    declared_refusal: ("refusal", "model refused (provider refusal field)"),
    schema_error: ("invalid_output", "jsonschema check failed: n: type"),
    schema_error_raised: ("invalid_output", "jsonschema check failed: n: type"),
    schema_key_error: ("invalid_output", "jsonschema check failed: *: type"),
    pydantic_error: ("invalid_output", "pydantic check failed: email: value_error"),
    callable_verdict: (
        "invalid_output",
        "callable check failed: callable_verdict.<locals>.allowed raised ValueError",
    ),
    tool_arguments: ("tool_error", "tool 'send' arguments invalid: to: type"),
}


def recorded_text(span) -> list[str]:
    """Every text faultprint put on the span: attributes, status, event attributes."""
    texts = [v for v in span.attributes.values() if isinstance(v, str)]
    texts.append(span.status.description or "")
    for event in span.events:
        texts += [v for v in event.attributes.values() if isinstance(v, str)]
    return texts


def configure(spans, **options) -> None:
    """Configure again with ``options``; ``spans`` then reads the new pipeline."""
    spans.exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=spans.exporter, use_global_provider=False, handle_sigterm=False, **options
    )


@pytest.mark.parametrize("produce", CONTENT_FAILURES, ids=lambda f: f.__name__)
def test_with_capture_off_failures_say_what_and_where_never_the_content(spans, produce):
    produce()
    span = spans.one()
    category, message = CONTENT_FAILURES[produce]
    assert span.attributes[A.FP_FAILURE_CATEGORY] == category
    assert span.attributes[A.FP_FAILURE_MESSAGE] == message
    assert span.status.description == f"{category}: {message}" or (
        produce is schema_error_raised
        and span.status.description == f"faultprint._errors.InvalidOutputError: {message}"
    )
    leaks = [t for t in recorded_text(span) if "jane" in t or "example.com" in t]
    assert leaks == []


@pytest.mark.parametrize("produce", CONTENT_FAILURES, ids=lambda f: f.__name__)
def test_with_capture_on_failure_messages_carry_redacted_content(spans, produce):
    configure(spans, capture_content=True)
    produce()
    span = spans.one()
    assert "[REDACTED_EMAIL]" in span.attributes[A.FP_FAILURE_MESSAGE]
    leaks = [t for t in recorded_text(span) if "jane" in t or "example.com" in t]
    assert leaks == []


def test_with_capture_on_validator_messages_are_kept_redacted_and_bounded(spans):
    configure(spans, capture_content=True, max_content_chars=40)
    schema_error()
    d = detail(spans.one())
    (error,) = d["errors"]
    assert error["kind"] == "type" and error["path"] == "n"
    assert error["message"].startswith("'call [REDACTED_EMAIL]' is not of type")
    assert len(error["message"]) < 80 and "truncated" in error["message"]


def test_per_call_capture_decides_for_failure_messages(spans):
    configure(spans, capture_content=True)

    @faultprint.observe(model="m", capture_content=False)
    def f() -> str:
        return "I'm sorry, but I can't help with that."

    f()
    assert spans.one().attributes[A.FP_FAILURE_MESSAGE] == "model refused (text detector)"


# --- a validator's exception raised by the application ------------------------------
class Invoice(BaseModel):
    customer: str
    total: float


class Signed(BaseModel):
    signer: str

    @field_validator("signer")
    @classmethod
    def known(cls, value: str) -> str:
        raise ValueError(f"{value} did not sign")


VALIDATION_ERROR = "pydantic_core._pydantic_core.ValidationError"


@faultprint.observe(model="m")
def extract_invoice(text: str) -> Invoice:
    return Invoice.model_validate_json(text)


def raise_validation_error() -> None:
    with pytest.raises(pydantic.ValidationError):
        extract_invoice('{"customer": "Jane Doe, 12 Main St"}')


def exception_event(span) -> dict:
    (event,) = span.events
    assert event.name == "exception"
    return dict(event.attributes)


def test_a_validation_error_raised_is_recorded_without_the_output(spans):
    raise_validation_error()
    span = spans.one()
    assert [t for t in recorded_text(span) if "Jane" in t or "Main St" in t] == []
    event = exception_event(span)
    message = "1 validation error for Invoice\ntotal\n  Field required [type=missing]"
    assert event["exception.message"] == message
    assert event["exception.type"] == VALIDATION_ERROR
    assert span.status.description == f"{VALIDATION_ERROR}: {message}"
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "exception"
    assert span.attributes[A.ERROR_TYPE] == VALIDATION_ERROR


def traces_with_and_without_content(spans, raise_error) -> tuple[str, str]:
    """The stack traces recorded for ``raise_error()`` with capture on, then off."""
    traces = []
    for capture in (True, False):
        configure(spans, capture_content=capture)
        raise_error()
        traces.append(exception_event(spans.one())["exception.stacktrace"])
    return traces[0], traces[1]


def test_a_validation_error_keeps_its_trace_frames_without_the_output(spans):
    with_content, without = traces_with_and_without_content(spans, raise_validation_error)
    assert "Jane Doe" in with_content and "Jane Doe" not in without
    # the same frames (what fingerprints read), only the message differs
    head = f"\n{VALIDATION_ERROR}: "
    assert without.split(head)[0] == with_content.split(head)[0]
    assert "in extract_invoice" in without
    message = "1 validation error for Invoice\ntotal\n  Field required [type=missing]"
    assert without.endswith(f"{VALIDATION_ERROR}: {message}\n")


def test_with_capture_on_a_validation_error_is_recorded_as_raised(spans):
    configure(spans, capture_content=True)
    raise_validation_error()
    event = exception_event(spans.one())
    assert "input_value={'customer': 'Jane Doe, 12 Main St'}" in event["exception.message"]


def test_a_validators_own_words_are_left_out_of_a_validation_error(spans):
    @faultprint.observe(model="m")
    def sign(text: str) -> Signed:
        return Signed.model_validate_json(text)

    with pytest.raises(pydantic.ValidationError):
        sign(f'{{"signer": "{SECRET}"}}')
    span = spans.one()
    assert exception_event(span)["exception.message"] == (
        "1 validation error for Signed\nsigner\n  Value error [type=value_error]"
    )
    assert [t for t in recorded_text(span) if "jane" in t or "example.com" in t] == []


def test_a_validation_error_behind_another_exception_is_left_out_too(spans):
    class NoInvoice(LookupError):
        pass

    @faultprint.observe(model="m")
    def find(text: str) -> Invoice:
        try:
            return Invoice.model_validate_json(text)
        except pydantic.ValidationError as exc:
            raise NoInvoice("no invoice in the reply") from exc

    with pytest.raises(NoInvoice):
        find('{"customer": "Jane Doe, 12 Main St"}')
    span = spans.one()
    assert [t for t in recorded_text(span) if "Jane" in t] == []
    event = exception_event(span)
    assert event["exception.message"] == "no invoice in the reply"
    trace = event["exception.stacktrace"]
    assert "\nThe above exception was the direct cause of the following exception:\n" in trace
    assert "Field required [type=missing]" in trace
    assert trace.endswith("NoInvoice: no invoice in the reply\n")


# --- a JSON schema's exception raised by the application ----------------------------
INVOICE_SCHEMA = {
    "type": "object",
    "required": ["customer", "total"],
    "properties": {"customer": {"type": "string"}, "total": {"type": "number"}},
}
SCHEMA_ERROR = "jsonschema.exceptions.ValidationError"


@faultprint.observe(model="m")
def check_invoice(text: str, schema: dict | None = None, **options) -> None:
    jsonschema.validate(json.loads(text), schema or INVOICE_SCHEMA, **options)


def raise_schema_error(text: str = '{"customer": "Jane", "total": "Jane Doe, 12 Main St"}') -> None:
    with pytest.raises(jsonschema.ValidationError):
        check_invoice(text)


def test_a_schema_error_raised_is_recorded_without_the_output(spans):
    raise_schema_error()
    span = spans.one()
    assert [t for t in recorded_text(span) if "Jane" in t or "Main St" in t] == []
    event = exception_event(span)
    message = (
        "<value> is not of type 'number'\n\n"
        "Failed validating 'type' in schema['properties']['total']:\n"
        "    {'type': 'number'}\n\n"
        "On instance['total']:\n"
        "    <value>"
    )
    assert event["exception.message"] == message
    assert event["exception.type"] == SCHEMA_ERROR
    assert span.status.description == f"{SCHEMA_ERROR}: {message}"
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "exception"


def test_a_schema_error_keeps_its_trace_frames_without_the_output(spans):
    with_content, without = traces_with_and_without_content(spans, raise_schema_error)
    assert "Jane Doe" in with_content and "Jane" not in without
    head = f"\n{SCHEMA_ERROR}: "
    assert without.split(head)[0] == with_content.split(head)[0]
    assert "in check_invoice" in without
    assert without.endswith("On instance['total']:\n    <value>\n")


def test_with_capture_on_a_schema_error_is_recorded_as_raised(spans):
    configure(spans, capture_content=True)
    raise_schema_error()
    message = exception_event(spans.one())["exception.message"]
    assert message.startswith("'Jane Doe, 12 Main St' is not of type 'number'")
    assert "On instance['total']:\n    'Jane Doe, 12 Main St'" in message


@pytest.mark.parametrize(
    ("schema", "value", "line"),
    [
        ({"enum": ["paid", "due"]}, SECRET, "<value> is not one of ['paid', 'due']"),
        ({"const": "paid"}, SECRET, "'paid' was expected"),
        ({"pattern": "^[0-9]+$"}, SECRET, "<value> does not match '^[0-9]+$'"),
        ({"format": "email"}, "Jane Doe", "<value> is not a 'email'"),
        ({"minimum": 0}, -31337, "<value> is less than the minimum of 0"),
        ({"exclusiveMaximum": 10}, 31337, "<value> is greater than or equal to the maximum of 10"),
        ({"multipleOf": 7}, 31337, "<value> is not a multiple of 7"),
        ({"maxLength": 3}, SECRET, "<value> is too long"),
        ({"minItems": 2}, [SECRET], "<value> is too short"),
        ({"uniqueItems": True}, [SECRET, SECRET], "<value> has non-unique elements"),
        ({"required": ["id"]}, {"note": SECRET}, "'id' is a required property"),
        (
            {"additionalProperties": False},
            {SECRET: 1},
            "Additional properties are not allowed (<value> unexpected)",
        ),
        (
            {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            SECRET,
            "<value> is not valid under any of the given schemas",
        ),
        (
            {"not": {"type": "string"}},
            SECRET,
            "<value> should not be valid under {'type': 'string'}",
        ),
        # wordings that quote the instance in another way: the keyword alone
        ({"oneOf": [{"type": "string"}, {"minLength": 1}]}, SECRET, "oneOf validation failed"),
        ({"unevaluatedProperties": False}, {SECRET: 1}, "unevaluatedProperties validation failed"),
        (
            {"properties": {"lines": {"prefixItems": [{}], "items": False}}},
            {"lines": [1, SECRET]},
            "items validation failed at lines",
        ),
    ],
)
def test_a_schema_errors_message_names_the_rule_never_the_value(spans, schema, value, line):
    with pytest.raises(jsonschema.ValidationError) as raised:
        check_invoice(json.dumps(value), schema, format_checker=jsonschema.FormatChecker())
    assert str(raised.value) != line  # the application's exception is its own
    span = spans.one()
    event = exception_event(span)
    assert event["exception.message"].split("\n")[0] == line
    assert f"\nFailed validating {raised.value.validator!r} in schema" in event["exception.message"]
    leaks = [t for t in recorded_text(span) if "jane" in t.lower() or "31337" in t]
    assert leaks == []


def test_a_schema_error_path_keeps_the_schemas_names_only(spans):
    schema = {
        "properties": {
            "lines": {"items": {"additionalProperties": {"type": "integer"}}},
        }
    }
    with pytest.raises(jsonschema.ValidationError):
        check_invoice(json.dumps({"lines": [{}, {SECRET: "2"}]}), schema)
    event = exception_event(spans.one())
    # the list index and the key the output chose (its content) alike
    assert "\nOn instance['lines'][*][*]:\n" in event["exception.message"]
    assert "jane" not in event["exception.stacktrace"]


def test_a_format_checks_own_exception_is_left_out_too(spans):
    checker = jsonschema.FormatChecker()

    @checker.checks("invoice-number", raises=ValueError)
    def invoice_number(value: object) -> bool:
        raise ValueError(f"{value} is no invoice number")

    with pytest.raises(jsonschema.ValidationError) as raised:
        check_invoice(
            json.dumps({"n": SECRET}),
            {"properties": {"n": {"format": "invoice-number"}}},
            format_checker=checker,
        )
    assert raised.value.__cause__ is not None
    span = spans.one()
    assert [t for t in recorded_text(span) if "jane" in t] == []
    trace = exception_event(span)["exception.stacktrace"]
    assert "\nValueError\n\nThe above exception was the direct cause" in trace
    assert "<value> is not a 'invoice-number'" in trace


def test_a_schema_error_made_by_hand_is_recorded_without_its_words(spans):
    @faultprint.observe(model="m")
    def f() -> None:
        raise jsonschema.ValidationError(f"{SECRET} is not a customer")

    with pytest.raises(jsonschema.ValidationError):
        f()
    span = spans.one()
    assert exception_event(span)["exception.message"] == "validation failed"
    assert [t for t in recorded_text(span) if "jane" in t] == []


def test_a_schema_error_behind_another_exception_is_left_out_too(spans):
    class NoInvoice(LookupError):
        pass

    @faultprint.observe(model="m")
    def find(text: str) -> None:
        try:
            jsonschema.validate(json.loads(text), INVOICE_SCHEMA)
        except jsonschema.ValidationError as exc:
            raise NoInvoice("no invoice in the reply") from exc

    with pytest.raises(NoInvoice):
        find('{"customer": "Jane Doe, 12 Main St"}')
    span = spans.one()
    assert [t for t in recorded_text(span) if "Jane" in t] == []
    event = exception_event(span)
    assert event["exception.message"] == "no invoice in the reply"
    trace = event["exception.stacktrace"]
    assert f"{SCHEMA_ERROR}: 'total' is a required property\n" in trace
    assert trace.endswith("NoInvoice: no invoice in the reply\n")


def test_jsonschema_is_not_imported_to_record_an_exception():
    code = (
        "import sys, faultprint\n"
        "from faultprint._errors import content_free_exception\n"
        "print(content_free_exception(ValueError('x')), 'jsonschema' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "False"]


def test_raise_on_invalid_on_a_stream_raises_after_its_last_chunk(spans):
    @faultprint.observe(model="m", json=True, raise_on_invalid=True)
    def stream():
        yield '{"answer": '
        yield "4"

    @faultprint.observe(model="m", json=True, raise_on_invalid=True)
    async def astream():
        yield '{"answer": '
        yield "4"

    received = []
    with pytest.raises(faultprint.InvalidOutputError) as info:
        for chunk in stream():
            received.append(chunk)
    assert received == ['{"answer": ', "4"]
    assert info.value.__context__ is None  # not raised "during" the StopIteration

    async def consume() -> list[str]:
        return [chunk async for chunk in astream()]

    with pytest.raises(faultprint.InvalidOutputError):
        asyncio.run(consume())

    @faultprint.observe(model="m", json=True, raise_on_invalid=True)
    def valid():
        yield '{"answer": 4}'

    assert list(valid()) == ['{"answer": 4}']
    failed = [s for s in spans.all() if A.FP_FAILURE_CATEGORY in s.attributes]
    assert len(failed) == 2
    for span in failed:
        assert span.attributes[A.FP_FAILURE_CATEGORY] == "invalid_output"
        assert span.attributes[A.ERROR_TYPE] == "faultprint._errors.InvalidOutputError"


@pytest.mark.parametrize(
    ("output", "constant"),
    [('{"score": NaN}', "NaN"), ("[1, Infinity]", "Infinity"), ('{"a": [-Infinity]}', "-Infinity")],
)
@pytest.mark.parametrize(
    "options", [{"json": True}, {"expect": {"type": ["object", "array"]}}], ids=["json", "schema"]
)
def test_nan_and_infinity_are_not_json(spans, output, constant, options):
    """Python's json reads them; JSON has none, and strict parsers refuse them."""

    @faultprint.observe(model="m", **options)
    def f() -> str:
        return output

    f()
    (error,) = detail(spans.one())["errors"]
    assert error["kind"] == "malformed_json"
    assert error["message"] == f"malformed JSON: {constant} is not a JSON value"


def test_text_that_only_mentions_nan_is_json(spans):
    @faultprint.observe(model="m", json=True)
    def f() -> str:
        return '{"note": "NaN and Infinity", "n": 1e308}'

    f()
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes
