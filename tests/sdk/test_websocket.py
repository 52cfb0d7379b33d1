"""Responses over a WebSocket (``client.responses.connect()``) on OpenAI's real client,
against a real WebSocket server on loopback speaking the Responses WebSocket protocol."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import faultprint
import pytest
from faultprint import attributes as A
from faultprint._config import STATE
from faultprint.integrations import _websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.sdk.providers import RESPONSE, openai_client, responder
from tests.strategies import json_values

openai = pytest.importorskip("openai")
websockets = pytest.importorskip("websockets")
from websockets.exceptions import ConnectionClosedError  # noqa: E402

from tests.sdk.socket_server import (  # noqa: E402
    DROP,
    MESSAGE_ITEM,
    ResponsesServer,
    answer,
    events,
    response,
)

responses_module = pytest.importorskip("openai.resources.responses.responses")
if not hasattr(responses_module.Responses, "connect"):
    pytest.skip("this openai release has no Responses WebSocket", allow_module_level=True)

pytestmark = pytest.mark.timeout(60)
JSON = json_values(text=8, size=3, leaves=8)


@pytest.fixture
def server() -> Iterator[ResponsesServer]:
    srv = ResponsesServer()
    yield srv
    srv.close()


def client(server: ResponsesServer, *, is_async: bool = False, handler: Any = None) -> Any:
    """An instrumented OpenAI client whose WebSocket goes to ``server`` (HTTP to ``handler``)."""
    raw = openai_client(handler or responder(404, {}), is_async=is_async)
    raw = raw.with_options(websocket_base_url=f"ws://127.0.0.1:{server.port}/v1")
    return faultprint.instrument_openai(raw)


def read_until_final(connection: Any, count: int = 1) -> list[Any]:
    """Events read by iterating the connection, up to the ``count``-th final event."""
    seen = []
    for event in connection:
        seen.append(event)
        if event.type in ("response.completed", "response.incomplete", "response.failed"):
            count -= 1
            if count == 0:
                return seen
    return seen


def test_a_response_over_the_socket_is_one_call_judged_on_its_events(spans, server):
    server.script = answer(events("resp_1"))
    http = responder(200, {**response("resp_h", "completed", output=[MESSAGE_ITEM])})
    c = client(server, handler=http)
    with c.responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="Say hello")
        seen = read_until_final(connection)
    assert [e.type for e in seen][-1] == "response.completed"  # the application's events
    span = spans.one()
    attrs = dict(span.attributes)
    assert span.name == "chat gpt-4.1"
    assert attrs[A.GEN_AI_REQUEST_MODEL] == "gpt-4.1"
    assert attrs[A.GEN_AI_RESPONSE_MODEL] == RESPONSE["model"]
    assert attrs[A.GEN_AI_RESPONSE_ID] == "resp_1"
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 36
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 16
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("completed",)
    assert attrs[A.FP_CALL_SITE] == "openai.chat"
    assert attrs[A.SERVER_ADDRESS] == "127.0.0.1"  # the socket's host, not the HTTP one
    assert attrs["code.function.name"].endswith(
        "test_a_response_over_the_socket_is_one_call_judged_on_its_events"
    )
    assert attrs[A.FP_STREAM_CHUNKS] == len(seen)
    assert attrs[A.FP_STREAM_TTFC_MS] >= 0
    assert A.FP_FAILURE_CATEGORY not in attrs
    assert span.status.status_code != StatusCode.ERROR
    # The same input over HTTP has the same input hash: repeated inputs are
    # recognised whichever transport carried them.
    spans.clear()
    c.responses.create(model="gpt-4.1", input="Say hello")
    assert spans.one().attributes[A.FP_INPUT_HASH] == attrs[A.FP_INPUT_HASH]


def test_a_truncated_response_over_the_socket_is_a_truncation(spans, server):
    server.script = answer(
        events("resp_1", final="incomplete", incomplete_details={"reason": "max_output_tokens"})
    )
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="Write", max_output_tokens=3)
        read_until_final(connection)
    attrs = spans.one().attributes
    assert attrs[A.FP_FAILURE_CATEGORY] == "truncation"
    assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("max_output_tokens",)


def test_a_final_event_without_its_output_is_judged_on_the_items_that_came(spans, server):
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
        "status": "completed",
    }
    server.script = answer(events("resp_1", item=call, deltas=(), omit_output=True))
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="Weather in Paris?")
        read_until_final(connection)
    attrs = spans.one().attributes
    # a tool call, not an empty output
    assert A.FP_FAILURE_CATEGORY not in attrs


def test_an_error_event_fails_its_request_as_the_provider_error(spans, server):
    error = {
        "type": "error",
        "status": 429,
        "error": {
            "type": "tokens",
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached for gpt-4.1 on tokens per min (TPM).",
        },
    }
    server.script = answer([error], events("resp_2"))
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="first")
        assert connection.recv().type == "error"  # the application reads it; nothing raises
        connection.response.create(model="gpt-4.1", input="second")
        read_until_final(connection)
    failed, ok = sorted(spans.all(), key=lambda s: s.start_time)
    attrs = failed.attributes
    assert attrs[A.FP_FAILURE_CATEGORY] == "api_error"
    assert attrs[A.FP_ERROR_CODE] == "rate_limit_exceeded"
    assert attrs[A.FP_HTTP_STATUS] == 429
    assert "Rate limit reached" in attrs[A.FP_FAILURE_MESSAGE]
    assert failed.status.status_code == StatusCode.ERROR
    assert A.FP_FAILURE_CATEGORY not in ok.attributes
    assert ok.attributes[A.GEN_AI_RESPONSE_ID] == "resp_2"


def test_a_failed_response_over_the_socket_is_its_provider_error(spans, server):
    failed = events("resp_1", final="failed", deltas=())
    failed[-1]["response"]["output"] = []
    failed[-1]["response"]["error"] = {"code": "server_error", "message": "The server had an error"}
    server.script = answer(failed)
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="Say hello")
        read_until_final(connection)
    attrs = spans.one().attributes
    assert attrs[A.FP_FAILURE_CATEGORY] == "api_error"
    assert attrs[A.FP_ERROR_CODE] == "server_error"
    assert A.FP_HTTP_STATUS not in attrs


def test_lanes_of_a_session_are_separate_calls_however_their_events_interleave(spans, server):
    from openai.lib.responses_websocket import (
        AsyncResponsesWebSocketSession,
        ResponsesWebSocketLimits,
    )

    a = events("resp_a", lane="a", deltas=("Bonjour",))
    b = events(
        "resp_b",
        lane="b",
        final="incomplete",
        incomplete_details={"reason": "max_output_tokens"},
    )

    def script(message: dict[str, Any]) -> list[Any]:
        if message.get("stream_id") == "a":
            return a[:3]  # created, item added, a delta: then b's start, then the rest
        if message.get("stream_id") == "b":
            return [*b[:3], *a[3:], *b[3:]]
        return []

    server.script = script
    limits = ResponsesWebSocketLimits(
        max_lanes=4,
        max_events_per_lane=64,
        max_events=256,
        max_bytes_per_lane=1 << 20,
        max_bytes=1 << 22,
    )

    async def run() -> tuple[Any, Any]:
        c = client(server, is_async=True)
        async with (
            c.responses.connect() as connection,
            AsyncResponsesWebSocketSession(connection, limits=limits) as session,
        ):
            lane_a, lane_b = session.lane("a"), session.lane("b")
            await lane_a.send({"type": "response.create", "model": "gpt-4.1", "input": "A"})
            await lane_b.send({"type": "response.create", "model": "gpt-4o", "input": "B"})
            return await lane_a.get_final_response(), await lane_b.get_final_response()

    final_a, final_b = asyncio.run(run())
    assert (final_a.status, final_b.status) == ("completed", "incomplete")
    by_id = {s.attributes[A.GEN_AI_RESPONSE_ID]: s for s in spans.all()}
    assert set(by_id) == {"resp_a", "resp_b"}
    span_a, span_b = by_id["resp_a"].attributes, by_id["resp_b"].attributes
    assert span_a[A.GEN_AI_REQUEST_MODEL] == "gpt-4.1"
    assert A.FP_FAILURE_CATEGORY not in span_a
    assert span_a[A.FP_STREAM_CHUNKS] == len(a)
    assert span_b[A.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert span_b[A.FP_FAILURE_CATEGORY] == "truncation"
    assert span_b[A.FP_STREAM_CHUNKS] == len(b)


def test_a_steered_response_is_unjudged_and_its_successor_is_a_call(spans, server):
    first = events("resp_1", deltas=("Once",), final="incomplete")
    first[-1]["response"]["incomplete_details"] = {"reason": "steered"}
    successor = events("resp_2", deltas=("Shorter",))
    successor[0]["response"]["previous_response_id"] = "resp_1"

    def script(message: dict[str, Any]) -> list[Any]:
        if message["type"] == "response.create":
            return first[:3]
        if message["type"] == "response.steer":
            accepted = {"type": "response.steer.accepted", "previous_response_id": "resp_1"}
            return [accepted, *first[3:], *successor]
        return []

    server.script = script
    tracer = STATE.provider.get_tracer("app")
    with client(server).responses.connect() as connection:
        with tracer.start_as_current_span("app") as app:
            connection.response.create(model="gpt-4.1", input="Tell me a story")
        for event in connection:
            if event.type == "response.output_text.delta":
                break
        connection.response.steer(input="make it short", previous_response_id="resp_1")
        read_until_final(connection, count=2)  # the steered one, then its successor
    steered, after = sorted(spans.all(), key=lambda s: s.start_time)
    assert steered.attributes[A.GEN_AI_RESPONSE_ID] == "resp_1"
    assert A.FP_FAILURE_CATEGORY not in steered.attributes  # not an empty or cut output
    assert after.attributes[A.GEN_AI_RESPONSE_ID] == "resp_2"
    assert after.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4.1"  # the settings it inherits
    assert A.FP_FAILURE_CATEGORY not in after.attributes
    assert after.attributes[A.FP_INPUT_HASH] != steered.attributes[A.FP_INPUT_HASH]
    # both under what was current when the application sent the request
    assert steered.parent.span_id == after.parent.span_id == app.get_span_context().span_id


def test_a_request_without_generation_is_no_call_and_keeps_the_lane_in_order(spans, server):
    prepared = events("resp_0", deltas=())
    prepared[-1]["response"]["output"] = []
    server.script = answer(prepared, events("resp_1"))
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="context", generate=False)
        connection.response.create(model="gpt-4.1", input="Say hello", previous_response_id="x")
        read_until_final(connection, count=2)
    span = spans.one()  # not an empty output for the prepared one
    assert span.attributes[A.GEN_AI_RESPONSE_ID] == "resp_1"
    assert A.FP_FAILURE_CATEGORY not in span.attributes


def test_messages_sent_before_the_connection_opens_are_calls(spans, server):
    server.script = answer(events("resp_1"))
    manager = client(server).responses.connect()
    manager.send({"type": "response.create", "model": "gpt-4.1", "input": "Say hello"})
    with manager as connection:
        read_until_final(connection)
    assert spans.one().attributes[A.GEN_AI_RESPONSE_ID] == "resp_1"


def test_a_lost_socket_fails_the_responses_under_way(spans, server):
    server.script = answer([*events("resp_1")[:3], DROP])
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="Say hello")
        with pytest.raises(ConnectionClosedError):
            read_until_final(connection)
    span = spans.one()
    attrs = span.attributes
    assert attrs[A.FP_FAILURE_CATEGORY] == "exception"
    assert attrs[A.ERROR_TYPE] == "websockets.exceptions.ConnectionClosedError"
    assert attrs[A.FP_STREAM_CHUNKS] == 3
    assert span.status.status_code == StatusCode.ERROR


def test_async_connections_record_lost_and_closed_responses_alike(spans, server):
    scripts = [[*events("resp_1")[:3], DROP], events("resp_2")[:3]]
    server.script = lambda message: scripts.pop(0) if message["type"] == "response.create" else []

    async def run() -> None:
        c = client(server, is_async=True)
        async with c.responses.connect() as connection:
            await connection.response.create(model="gpt-4.1", input="lost")
            with pytest.raises(ConnectionClosedError):
                async for _event in connection:
                    pass
        async with c.responses.connect() as connection:
            await connection.response.create(model="gpt-4.1", input="closed")
            async for event in connection:
                if event.type == "response.output_text.delta":
                    break

    asyncio.run(run())
    lost, closed = sorted(spans.all(), key=lambda s: s.start_time)
    assert lost.attributes[A.FP_FAILURE_CATEGORY] == "exception"
    assert lost.attributes[A.FP_STREAM_CHUNKS] == 3
    assert closed.attributes[A.FP_STREAM_CLOSED_EARLY] is True
    assert A.FP_FAILURE_CATEGORY not in closed.attributes


def test_after_a_reconnect_the_new_socket_is_watched_too(spans, server):
    server.script = answer([*events("resp_1")[:3], DROP], events("resp_2"))
    opened: list[Any] = []

    def reconnecting(event: Any) -> None:
        # The application asks again once the library has reconnected (a
        # create sent while it reconnects is queued and sent after).
        ask = threading.Timer(
            0.05, lambda: opened[0].response.create(model="gpt-4.1", input="again")
        )
        ask.start()

    manager = client(server).responses.connect(on_reconnecting=reconnecting, initial_delay=0.01)
    with manager as connection:
        opened.append(connection)
        connection.response.create(model="gpt-4.1", input="first")
        # the library reconnects: the application reads on, and sees no error
        seen = read_until_final(connection)
    assert seen[-1].response.id == "resp_2"
    lost, answered = sorted(spans.all(), key=lambda s: s.start_time)
    assert lost.attributes[A.FP_FAILURE_CATEGORY] == "exception"  # its response never came
    assert lost.attributes[A.FP_STREAM_CHUNKS] == 3
    assert answered.attributes[A.GEN_AI_RESPONSE_ID] == "resp_2"
    assert A.FP_FAILURE_CATEGORY not in answered.attributes


def test_a_request_the_socket_cannot_send_fails_with_the_error_the_application_gets(spans, server):
    server.script = answer([DROP])
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="first")
        with pytest.raises(ConnectionClosedError):
            connection.recv()
        with pytest.raises(ConnectionClosedError):
            connection.response.create(model="gpt-4.1", input="second")
    lost, unsent = sorted(spans.all(), key=lambda s: s.start_time)
    for span in (lost, unsent):
        assert span.attributes[A.FP_FAILURE_CATEGORY] == "exception"
        assert span.attributes[A.ERROR_TYPE] == "websockets.exceptions.ConnectionClosedError"
    assert A.FP_STREAM_CHUNKS not in lost.attributes  # nothing arrived


def test_closing_the_connection_ends_a_response_unjudged(spans, server):
    server.script = answer(events("resp_1")[:3])
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="Say hello")
        for event in connection:
            if event.type == "response.output_text.delta":
                break
    attrs = spans.one().attributes
    assert attrs[A.FP_STREAM_CLOSED_EARLY] is True
    assert A.FP_FAILURE_CATEGORY not in attrs
    assert attrs[A.GEN_AI_RESPONSE_ID] == "resp_1"


def test_shutdown_ends_a_response_still_under_way(spans, server):
    server.script = answer([])
    connection = client(server).responses.connect().enter()
    try:
        connection.response.create(model="gpt-4.1", input="Say hello")
        faultprint.shutdown()
    finally:
        connection.close()
    [span] = spans.exporter.get_finished_spans()
    assert span.attributes[A.FP_STREAM_CLOSED_EARLY] is True


def test_a_response_ended_by_a_shutdown_records_nothing_more_when_it_finishes(spans, server):
    """Reconfigured while a response and a request are under way: their later
    events are not taken for new responses (successors) of the new pipeline."""
    server.script = answer(events("resp_1"), events("resp_2"))
    with client(server).responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="first")
        for event in connection:
            if event.type == "response.output_text.delta":
                break
        connection.response.create(model="gpt-4.1", input="second")
        faultprint.shutdown()  # ends both, unjudged
        ended = {
            s.attributes.get(A.GEN_AI_RESPONSE_ID) for s in spans.exporter.get_finished_spans()
        }
        assert ended == {"resp_1", None}  # the second was still waiting for its response
        exporter = InMemorySpanExporter()
        faultprint.configure(exporter=exporter, use_global_provider=False, handle_sigterm=False)
        read_until_final(connection, count=2)
        connection.response.create(model="gpt-4.1", input="third")  # a new call, recorded
    assert faultprint.flush(5.0)
    [third] = exporter.get_finished_spans()
    assert third.attributes[A.FP_STREAM_CLOSED_EARLY] is True


def test_a_request_inside_an_observed_function_is_that_functions_call(spans, server):
    server.script = answer(events("resp_1"))
    c = client(server)

    @faultprint.observe(model="gpt-4.1")
    def ask(connection: Any) -> str:
        connection.response.create(model="gpt-4.1", input="Say hello")
        return "".join(e.delta for e in read_until_final(connection) if e.type.endswith("delta"))

    with c.responses.connect() as connection:
        assert ask(connection) == "Hello!"
    span = spans.one()
    assert span.attributes[A.FP_CALL_SITE].endswith("ask")


def test_requests_never_answered_are_bounded(spans, server, monkeypatch):
    monkeypatch.setattr(_websocket, "MAX_WAITING", 2)
    server.script = answer()
    with client(server).responses.connect() as connection:
        for n in range(3):
            connection.response.create(model="gpt-4.1", input=f"q{n}")
        ended = spans.all()
        assert len(ended) == 1 and ended[0].attributes[A.FP_STREAM_CLOSED_EARLY] is True
    assert len(spans.all()) == 3  # the other two when the connection closed


def test_an_instrumented_connection_is_the_librarys_own(server):
    manager = client(server).responses.connect()
    assert isinstance(manager, responses_module.ResponsesConnectionManager)
    assert type(manager).__name__ == "ResponsesConnectionManager"


def test_beta_responses_are_instrumented_too(spans, server):
    http = responder(200, {**response("resp_h", "completed", output=[])})
    c = client(server, handler=http)
    c.beta.responses.create(model="gpt-4.1", input="Say hello")
    assert spans.one().attributes[A.FP_FAILURE_CATEGORY] == "empty_output"
    spans.clear()
    server.script = answer(events("resp_1"))
    with c.beta.responses.connect() as connection:
        connection.response.create(model="gpt-4.1", input="Say hello")
        read_until_final(connection)
    assert spans.one().attributes[A.GEN_AI_RESPONSE_ID] == "resp_1"


# --- any sequence of messages ------------------------------------------------------
LANE = st.one_of(st.sampled_from(["a", "b"]), JSON)
CREATE = st.fixed_dictionaries(
    {"type": st.just("response.create"), "model": st.sampled_from(["gpt-4.1", "gpt-4o"])},
    optional={"stream_id": LANE, "generate": st.one_of(st.booleans(), JSON), "input": JSON},
)
SERVER_EVENT = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "response.created",
                "response.in_progress",
                "response.output_text.delta",
                "response.output_item.done",
                "response.completed",
                "response.incomplete",
                "response.failed",
                "response.steer.accepted",
                "error",
            ]
        )
    },
    optional={
        "stream_id": LANE,
        "response": st.one_of(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["resp_1", "resp_2"]), "object": st.just("response")},
                optional={"status": JSON, "output": JSON, "model": JSON},
            ),
            JSON,
        ),
        "delta": JSON,
        "item": JSON,
        "error": JSON,
        "status": JSON,
    },
)
MESSAGES = st.lists(
    st.one_of(
        st.tuples(st.just("send"), CREATE),
        st.tuples(st.just("event"), SERVER_EVENT),
        st.tuples(st.just("shutdown"), st.none()),  # faultprint's, the connection goes on
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def exported():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    faultprint.configure(exporter=exporter, use_global_provider=False, handle_sigterm=False)
    yield exporter
    faultprint.shutdown()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages=MESSAGES)
def test_every_call_started_on_a_socket_ends_once_whatever_the_server_sends(
    exported, monkeypatch, messages
):
    """Parsed by the library's own parser, any sequence of sends and events leaves
    no call open once the connection closes, and ends none twice."""
    from faultprint.integrations._common import MethodWrapper

    started = []
    wrapper = MethodWrapper(
        provider="openai", operation="chat", endpoint="responses", server_address=None, options={}
    )
    start, begin_stream = wrapper.start, _websocket._begin_stream

    def counted(result: Any) -> Any:
        call = result[0] if isinstance(result, tuple) else result
        if call is not None:
            started.append(call.span.get_span_context().span_id)
        return result

    monkeypatch.setattr(wrapper, "start", lambda kwargs: counted(start(kwargs)))
    monkeypatch.setattr(_websocket, "_begin_stream", lambda *a: counted(begin_stream(*a)))
    exported.clear()
    calls = _websocket.SocketCalls(wrapper)
    parse = responses_module.ResponsesConnection.parse_event
    for kind, message in messages:
        if kind == "send":
            calls.sent(json.dumps(message))
        elif kind == "shutdown":
            calls.end_all()
        else:
            calls.received(parse(None, json.dumps(message)))
    calls.closed()
    assert faultprint.flush(5.0)
    ended = [s.context.span_id for s in exported.get_finished_spans()]
    assert sorted(ended) == sorted(started)
