"""Setup arguments faultprint cannot use fail at start-up, naming the argument.

``configure()``, ``@observe`` and the client integrations are called once; a
mistake there must raise then, rather than leave calls unrecorded, recorded
under the wrong version, or content captured that was meant to stay out.
"""

from __future__ import annotations

import math
from typing import Any

import faultprint
import pytest
from faultprint._export import DiscardingExporter
from faultprint.integrations._common import INSTRUMENT_OPTIONS, is_replacement
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sdk.providers import CHAT, OPENAI_KW, anthropic_client, openai_client, responder

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

#: (argument, a value configure() cannot use)
BAD_CONFIGURE: list[tuple[str, Any]] = [
    ("endpoint", 4318),
    ("endpoint", ""),
    ("endpoint", "localhost:4318"),
    ("endpoint", "http://"),
    ("service", 3),
    ("environment", ["prod"]),
    ("release", 1.2),
    ("api_key", b"key"),
    ("api_key", "key\r\nX-Other: 1"),
    ("headers", {"x-team": 1}),
    ("headers", ["x-team"]),
    ("headers", {"x-team": "shop\nX-Other: 1"}),
    ("sample_rate", 0),
    ("sample_rate", 1.5),
    ("sample_rate", "0.5"),
    ("sample_rate", True),
    ("sample_rate", math.nan),
    ("capture_content", "false"),
    ("max_content_chars", -1),
    ("max_content_chars", 10.5),
    ("redact", "yes"),
    ("refusal_detector", None),
    ("tracer_provider", object()),
    ("use_global_provider", "no"),
    ("exporter", "console"),
    ("export_timeout", 0),
    ("compression", "gz"),
    ("max_queue_size", 0),
    ("max_export_batch_size", True),
    ("schedule_delay", math.inf),
    ("handle_sigterm", 1),
    ("enabled", "false"),
    ("sdk_spans", "1"),
    ("background_finish", 0),
]


@pytest.mark.parametrize(
    ("name", "value"), BAD_CONFIGURE, ids=[f"{n}={v!r}" for n, v in BAD_CONFIGURE]
)
def test_configure_refuses_a_value_and_keeps_the_running_setup(spans, name, value):
    @faultprint.observe(model="m", version="v1")
    def answer() -> str:
        return "Paris."

    with pytest.raises(faultprint.ConfigurationError, match=f"configure\\(\\): {name}= takes"):
        faultprint.configure(**{name: value})
    # the refused call changed nothing: the pipeline set up before still exports
    assert answer() == "Paris."
    assert spans.one().attributes["faultprint.model_version"] == "v1"


_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2),
)
#: every argument but those that touch the process (SIGTERM handler, global provider)
_ARGUMENTS = sorted(
    {name for name, _ in BAD_CONFIGURE} - {"handle_sigterm", "exporter", "use_global_provider"}
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(_ARGUMENTS), value=_ANY_VALUE)
def test_configure_takes_any_value_or_raises_a_configuration_error(name, value):
    arguments: dict[str, Any] = {
        "exporter": DiscardingExporter(),
        "handle_sigterm": False,
        "use_global_provider": False,
    }
    arguments[name] = value
    try:
        faultprint.configure(**arguments)
    except faultprint.ConfigurationError as exc:
        assert f"{name}=" in str(exc) or "endpoint" in str(exc)
    finally:
        faultprint.shutdown(timeout=1.0)


BAD_OBSERVE: list[tuple[str, Any]] = [
    ("model", 4),
    ("provider", ["openai"]),
    ("version", 2),
    ("operation", None),
    ("call_site", object()),
    ("server_address", 443),
    ("json", "yes"),
    ("raise_on_invalid", 1),
    ("capture_content", "false"),
    ("sample_rate", 2),
    ("sample_rate", "all"),
]


@pytest.mark.parametrize(("name", "value"), BAD_OBSERVE, ids=[f"{n}={v!r}" for n, v in BAD_OBSERVE])
def test_observe_refuses_a_value_when_it_decorates(name, value):
    with pytest.raises(faultprint.ConfigurationError, match=f"observe: {name}= takes"):

        @faultprint.observe(**{name: value})
        def f() -> str:
            return "x"


#: call() takes the options of @observe but sample_rate and capture_content
BAD_CALL = [(n, v) for n, v in BAD_OBSERVE if n not in ("sample_rate", "capture_content")]


@pytest.mark.parametrize(("name", "value"), BAD_CALL, ids=[f"{n}={v!r}" for n, v in BAD_CALL])
def test_call_refuses_a_value_as_observe_does(spans, name, value):
    with pytest.raises(faultprint.ConfigurationError, match=f"call\\(\\): {name}= takes"):
        faultprint.call(**{name: value})
    assert spans.all() == []


def test_call_does_not_read_a_string_false_as_true(spans):
    # Before, json="false" turned the JSON check on: plain text was then
    # recorded as invalid_output.
    with pytest.raises(faultprint.ConfigurationError, match="json= takes True or False"):
        faultprint.call(model="m", json="false")
    with faultprint.call(model="m", json=False) as call:
        call.set_output("Paris.")
    assert "faultprint.failure.category" not in spans.one().attributes


def test_call_refuses_an_unusable_expect_as_observe_does(spans):
    with pytest.raises(TypeError, match="expect= takes"):
        faultprint.call(model="m", expect=42)
    with pytest.raises(TypeError, match="expect= takes"):

        @faultprint.observe(expect=42)
        def f() -> str:
            return "x"

    assert spans.all() == []


def _openai() -> Any:
    return openai_client(responder(200, CHAT))


BAD_INSTRUMENT: list[tuple[str, Any, type[Exception], str]] = [
    ("verison", "v1", TypeError, "unexpected option 'verison'"),
    ("raise_on_invalid", True, TypeError, "unexpected option 'raise_on_invalid'"),
    ("version", 7, faultprint.ConfigurationError, "version= takes a string"),
    ("call_site", 1, faultprint.ConfigurationError, "call_site= takes a string"),
    ("provider", b"groq", faultprint.ConfigurationError, "provider= takes a string"),
    ("sample_rate", 5, faultprint.ConfigurationError, r"sample_rate= takes a number in \(0, 1\]"),
    ("json", "true", faultprint.ConfigurationError, "json= takes True or False"),
    ("capture_content", 1, faultprint.ConfigurationError, "capture_content= takes"),
    ("expect", 42, TypeError, "expect= takes"),
]


@pytest.mark.parametrize(
    ("name", "value", "error", "message"), BAD_INSTRUMENT, ids=[b[0] for b in BAD_INSTRUMENT]
)
@pytest.mark.parametrize("library", ["openai", "anthropic"])
def test_an_integration_refuses_an_option_and_leaves_the_client_alone(
    spans, library, name, value, error, message
):
    if library == "openai":
        client, instrument = _openai(), faultprint.instrument_openai
        method = client.chat.completions.create
    else:
        client, instrument = anthropic_client(responder(200, {})), faultprint.instrument_anthropic
        method = client.messages.create
    # Before, these were taken, and every call of the client then went unrecorded.
    with pytest.raises(error, match=message):
        instrument(client, **{name: value})
    resource = client.chat.completions if library == "openai" else client.messages
    assert not is_replacement(resource.create)
    assert resource.create == method


def test_the_options_an_integration_takes_all_work(spans):
    seen: list[dict] = []
    options = {
        "version": "v9",
        "call_site": "shop.answer",
        "provider": "groq",
        "expect": lambda text: "Bonjour" in text,  # the answer says Hello: invalid
        "json": False,
        "sample_rate": 1.0,
        "capture_content": False,
    }
    assert set(options) == set(INSTRUMENT_OPTIONS)  # each one exercised here
    client = faultprint.instrument_openai(openai_client(responder(200, CHAT, seen)), **options)
    client.chat.completions.create(**OPENAI_KW)
    attributes = spans.one().attributes
    assert attributes["faultprint.model_version"] == "v9"
    assert attributes["faultprint.call_site"] == "shop.answer"
    assert attributes["gen_ai.provider.name"] == "groq"
    assert attributes["faultprint.failure.category"] == "invalid_output"
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("instrument", "client", "message"),
    [
        ("instrument_openai", None, "takes a client of the openai library, got NoneType"),
        ("instrument_openai", "sk-test", "takes a client of the openai library, got str"),
        ("instrument_anthropic", 42, "takes a client of the anthropic library, got int"),
        ("instrument_openai", "anthropic", "anthropic library: use instrument_anthropic"),
        ("instrument_anthropic", "openai", "client of the openai library: use instrument_openai"),
    ],
)
def test_an_integration_refuses_what_is_not_its_library_client(instrument, client, message):
    if client == "anthropic":
        client = anthropic_client(responder(200, {}))
    elif client == "openai":
        client = _openai()
    with pytest.raises(TypeError, match=message):
        getattr(faultprint, instrument)(client)
