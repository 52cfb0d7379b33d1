"""Background responses (``responses.create(background=True)``) on OpenAI's real
client: the call stays open until its outcome is seen, and is judged on it."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import faultprint
import pytest
from faultprint import attributes as A
from faultprint.integrations._background import BACKGROUND
from opentelemetry.trace import StatusCode

from tests.sdk.providers import (
    FAILED_RESPONSE,
    RESPONSE,
    RESPONSE_EVENTS,
    openai_client,
    sse,
)

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")


def background(status: str, **fields) -> dict:
    """A background response as OpenAI returns it in ``status``."""
    return {**RESPONSE, "status": status, "incomplete_details": None, "output": [], **fields}


COMPLETED_RESPONSE = background(
    "completed",
    output=RESPONSE["output"],
    usage=RESPONSE["usage"],
)


def answers(*bodies: dict, seen: list | None = None):
    """A transport handler answering successive requests with ``bodies``, in order."""
    queue = [json.dumps(b).encode() for b in bodies]

    def handler(request):
        if seen is not None:
            seen.append(f"{request.method} {request.url.path}")
        return httpx2.Response(
            200, content=queue.pop(0), headers={"content-type": "application/json"}
        )

    return handler


@pytest.mark.parametrize(
    ("final", "category", "reasons"),
    [
        (COMPLETED_RESPONSE, None, ("completed",)),
        ({**RESPONSE, "background": True}, "truncation", ("max_output_tokens",)),
        (FAILED_RESPONSE, "api_error", ("failed",)),
    ],
    ids=["completed", "incomplete", "failed"],
)
def test_openai_background_call_ends_with_its_outcome(spans, final, category, reasons):
    seen: list = []
    handler = answers(background("queued"), background("in_progress"), final, seen=seen)
    client = faultprint.instrument_openai(openai_client(handler))
    # create(background=True) answers at once, before the model has written anything
    assert client.responses.create(model="gpt-4.1", input="Write", background=True).status == (
        "queued"
    )
    assert spans.all() == []  # not an empty output: the call is still open
    assert client.responses.retrieve(RESPONSE["id"]).status == "in_progress"
    assert spans.all() == []
    before_final = time.time_ns()
    assert client.responses.retrieve(RESPONSE["id"]).status == final["status"]
    assert seen == ["POST /v1/responses", *[f"GET /v1/responses/{RESPONSE['id']}"] * 2]
    span = spans.one()
    a = span.attributes
    assert a.get(A.FP_FAILURE_CATEGORY) == category
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == reasons
    assert a[A.GEN_AI_RESPONSE_ID] == RESPONSE["id"]
    assert a[A.FP_CALL_SITE] == "openai.chat"
    assert span.end_time >= before_final  # the call lasted until its outcome was seen
    assert (span.status.status_code is StatusCode.ERROR) == (category is not None)
    assert len(BACKGROUND) == 0


def test_openai_async_background_call_ends_with_its_outcome(spans):
    handler = answers(background("in_progress"), {**RESPONSE, "background": True})
    client = faultprint.instrument_openai(openai_client(handler, is_async=True))

    async def main():
        await client.responses.create(model="gpt-4.1", input="Write", background=True)
        assert spans.all() == []
        return await client.responses.retrieve(RESPONSE["id"])

    assert asyncio.run(main()).status == "incomplete"
    assert spans.one().attributes[A.FP_FAILURE_CATEGORY] == "truncation"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_openai_background_call_ends_when_a_retrieved_stream_ends(spans, is_async):
    events = [
        {
            "type": "response.in_progress",
            "sequence_number": 1,
            "response": background("in_progress"),
        },
        *RESPONSE_EVENTS[1:3],
        {"type": "response.completed", "sequence_number": 4, "response": COMPLETED_RESPONSE},
    ]
    stream_body = sse(events, named=True)

    def handler(request):
        if request.method == "POST":
            return httpx2.Response(200, json=background("queued"))
        return httpx2.Response(
            200, content=stream_body, headers={"content-type": "text/event-stream"}
        )

    client = faultprint.instrument_openai(openai_client(handler, is_async=is_async))

    async def read_async():
        await client.responses.create(model="gpt-4.1", input="Write", background=True)
        stream = await client.responses.retrieve(RESPONSE["id"], stream=True)
        assert type(stream) is openai.AsyncStream  # still the library's own stream
        return [event.type async for event in stream]

    def read():
        client.responses.create(model="gpt-4.1", input="Write", background=True)
        stream = client.responses.retrieve(RESPONSE["id"], stream=True)
        assert type(stream) is openai.Stream
        assert spans.all() == []
        return [event.type for event in stream]

    kinds = asyncio.run(read_async()) if is_async else read()
    assert kinds[-1] == "response.completed"
    a = spans.one().attributes
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)
    assert A.FP_FAILURE_CATEGORY not in a


def test_openai_cancelled_background_call_is_not_judged(spans):
    client = faultprint.instrument_openai(
        openai_client(answers(background("queued"), background("cancelled")))
    )
    client.responses.create(model="gpt-4.1", input="Write", background=True)
    assert client.responses.cancel(RESPONSE["id"]).status == "cancelled"
    span = spans.one()
    assert span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("cancelled",)
    assert A.FP_FAILURE_CATEGORY not in span.attributes  # the application stopped it
    assert span.status.status_code is not StatusCode.ERROR


def test_openai_background_call_without_its_outcome_ends_at_shutdown(spans):
    client = faultprint.instrument_openai(openai_client(answers(background("queued"))))
    client.responses.create(model="gpt-4.1", input="Write", background=True)
    assert spans.all() == []
    faultprint.shutdown()
    (span,) = spans.exporter.get_finished_spans()
    assert span.attributes[A.GEN_AI_RESPONSE_ID] == RESPONSE["id"]
    assert A.FP_FAILURE_CATEGORY not in span.attributes  # no outcome seen: no verdict
    assert A.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes
    assert len(BACKGROUND) == 0


def test_held_background_calls_are_bounded(spans, monkeypatch):
    monkeypatch.setattr(BACKGROUND, "limit", 2)
    ids = [f"resp_{i}" for i in range(3)]
    client = faultprint.instrument_openai(
        openai_client(answers(*(background("queued", id=i) for i in ids)))
    )
    for _ in ids:
        client.responses.create(model="gpt-4.1", input="Write", background=True)
    # the oldest ends unresolved once a third is held
    assert [s.attributes[A.GEN_AI_RESPONSE_ID] for s in spans.all()] == ["resp_0"]
    assert len(BACKGROUND) == 2
    BACKGROUND.end_all()
    assert sorted(s.attributes[A.GEN_AI_RESPONSE_ID] for s in spans.all()) == ids


BACKGROUND_APP = """
import json, os, signal, sys, time
import faultprint, httpx2, openai
from faultprint._config import STATE
url, mode, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
faultprint.configure(endpoint=url, schedule_delay=60, use_global_provider=False)
transport = httpx2.MockTransport(
    lambda request: httpx2.Response(200, content=body, headers={"content-type": "application/json"})
)
client = faultprint.instrument_openai(
    openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx2.Client(transport=transport))
)
client.responses.create(model="gpt-4.1", input="Write", background=True)
if mode == "fork":
    pid = os.fork()
    if pid == 0:
        faultprint.shutdown()  # the child's exit: the parent's held call is not its to end
        os._exit(0)
    os.waitpid(pid, 0)
    print(faultprint.stats()["exported"], flush=True)
    sys.exit(0)
if mode == "exit":
    sys.exit(0)
if mode.startswith("sigterm in the queue's lock"):
    if mode == "sigterm in the queue's lock":
        faultprint.observe(model="m")(lambda: "done")()  # the export thread runs
    with STATE.queue._lock:  # as inside stats(), defer() or a drop count
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize("mode", ["exit", "sigterm", "sigterm in the queue's lock", "fork"])
def test_background_call_without_its_outcome_is_exported_when_the_process_ends(receiver, mode):

    queued = json.dumps(background("queued"))
    proc = subprocess.Popen(
        [sys.executable, "-c", BACKGROUND_APP, receiver.url, mode, queued],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if mode == "sigterm":
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            pytest.fail("the process did not end")
    assert proc.returncode == (-signal.SIGTERM if "sigterm" in mode else 0)
    if mode == "fork":
        assert out.strip() == "0"  # the child exported nothing of the parent's
    # once: by the process that made the call
    (span,) = [s for s in receiver.received if A.GEN_AI_RESPONSE_ID in s["attributes"]]
    assert span["attributes"][A.GEN_AI_RESPONSE_ID] == RESPONSE["id"]
    assert A.FP_FAILURE_CATEGORY not in span["attributes"]


def test_sigterm_before_the_export_thread_runs_still_ends_the_process(receiver):
    # The handler ends the held call, whose span would start the export thread
    # under the lock the interrupted thread holds: bounded, never a hang.

    mode = "sigterm in the queue's lock, before any export"
    queued = json.dumps(background("queued"))
    done = subprocess.run(
        [sys.executable, "-c", BACKGROUND_APP, receiver.url, mode, queued],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == -signal.SIGTERM


def test_retrieving_a_response_this_process_did_not_create_records_nothing(spans):
    client = faultprint.instrument_openai(openai_client(answers(COMPLETED_RESPONSE)))
    assert client.responses.retrieve(RESPONSE["id"]).status == "completed"
    assert spans.all() == []
