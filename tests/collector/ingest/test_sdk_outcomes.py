"""What the real SDK records for calls whose outcome is not a plain success or
raise, as the collector stores it: a call the caller cancelled, a validation
error (pydantic's or jsonschema's) the application raised, an output check
that met no output.

The spans go through OTLP encoding and the collector's real classification
and fingerprinting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import faultprint
import jsonschema
import pydantic
import pytest
from faultprint_collector.ingest import records_from_request
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def configured(**options: Any) -> InMemorySpanExporter:
    """faultprint set up anew (with OPTIONS) to export into a fresh in-memory exporter."""
    exporter = InMemorySpanExporter()  # configure() shuts the previous exporter down
    faultprint.configure(
        exporter=exporter,
        use_global_provider=False,
        handle_sigterm=False,
        schedule_delay=0.05,
        **options,
    )
    return exporter


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    yield configured()
    faultprint.shutdown(timeout=2.0)


def stored(exporter: InMemorySpanExporter) -> list[Any]:
    """The calls the collector stores for what was exported, in the order they started."""
    assert faultprint.flush(5.0)
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
    exporter.clear()
    return records_from_request(encode_spans(spans), "p").records


# --- cancelled -----------------------------------------------------------------------
@faultprint.observe(model="m")
async def slow_answer() -> str:
    await asyncio.sleep(10)
    return "never"


@faultprint.observe(model="m")
def interrupted_answer() -> str:
    raise KeyboardInterrupt


@faultprint.observe(model="m")
def streamed_answer():
    yield "Hel"
    yield "lo"


def test_a_cancelled_call_is_stored_without_a_verdict_as_a_stream_closed_early(exporter):
    async def cancel() -> None:
        task = asyncio.create_task(slow_answer())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel())
    with pytest.raises(KeyboardInterrupt):
        interrupted_answer()
    stream = streamed_answer()
    next(stream)
    stream.close()
    cancelled, interrupted, closed = stored(exporter)
    assert closed.attributes["faultprint.stream.closed_early"] == "true"
    for record in (cancelled, interrupted, closed):
        # no failure of the model: not counted against it, no failure mode
        assert (record.status, record.is_failure, record.category) == ("ok", 0, "")
        assert (record.error_type, record.message, record.fingerprint) == ("", "", 0)
    assert cancelled.attributes["faultprint.cancelled"] == "asyncio.exceptions.CancelledError"
    assert interrupted.attributes["faultprint.cancelled"] == "KeyboardInterrupt"


# --- a validation error raised by the application ---------------------------------
class Invoice(pydantic.BaseModel):
    customer: str
    total: float


@faultprint.observe(model="m")
def extract_invoice(text: str) -> Invoice:
    return Invoice.model_validate_json(text)


def raise_from(*outputs: str) -> None:
    for output in outputs:
        with pytest.raises(pydantic.ValidationError):
            extract_invoice(output)


def test_validation_errors_raised_are_grouped_by_kind_and_path_never_by_value(exporter):
    raise_from(
        '{"customer": "Jane Doe, 12 Main St"}',
        '{"customer": "John Roe, 7 High St"}',
        '{"customer": "Jane Doe", "total": "lots"}',
    )
    jane, john, unparsed = stored(exporter)
    assert jane.category == john.category == "exception"
    assert jane.fingerprint == john.fingerprint != 0
    assert unparsed.fingerprint != jane.fingerprint  # another kind: another mode
    for record in (jane, john, unparsed):
        assert "Doe" not in record.message and "Roe" not in record.message
        assert "lots" not in record.message
    assert jane.message == "1 validation error for Invoice\ntotal\n  Field required [type=missing]"
    assert "missing@total" in json.loads(jane.components)["errors"]


def test_a_validation_error_is_the_same_mode_with_capture_on_or_off(exporter):
    raise_from('{"customer": "Jane Doe, 12 Main St"}')
    (without,) = stored(exporter)
    capturing = configured(capture_content=True)
    raise_from('{"customer": "Jane Doe, 12 Main St"}')
    (with_content,) = stored(capturing)
    assert "input_value" in with_content.message
    assert with_content.fingerprint == without.fingerprint


# --- a JSON schema's error raised by the application ------------------------------
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
        },
    },
}


@faultprint.observe(model="m")
def check_order(text: str) -> None:
    jsonschema.validate(json.loads(text), ORDER_SCHEMA)


def raise_schema_errors(*outputs: str) -> None:
    for output in outputs:
        with pytest.raises(jsonschema.ValidationError):
            check_order(output)


def test_schema_errors_raised_are_grouped_by_rule_and_path_never_by_value(exporter):
    raise_schema_errors(
        '{"items": [{"name": "Jane Doe", "price": "12 Main St"}]}',
        '{"items": [{"name": "a", "price": 1}, {"name": "John Roe", "price": "7 High St"}]}',
        '{"items": [{"name": "Jane Doe"}]}',
    )
    jane, john, missing = stored(exporter)
    assert jane.category == john.category == missing.category == "exception"
    # another value, at another position: the same rule broken, the same mode
    assert jane.fingerprint == john.fingerprint != 0
    assert jane.message == john.message
    assert missing.fingerprint != jane.fingerprint  # another rule: another mode
    for record in (jane, john, missing):
        text = " ".join([record.message, *record.attributes.values()])
        assert "Doe" not in text and "Roe" not in text and "Main St" not in text
    assert jane.message.startswith("<value> is not of type 'number'\n")
    assert json.loads(jane.components)["errors"] == ["type@items.*.price"]
    assert json.loads(missing.components)["errors"] == ["required@items.*.price"]


def test_a_schema_error_is_the_same_mode_with_capture_on_or_off(exporter):
    raise_schema_errors('{"items": [{"name": "Jane Doe", "price": "12 Main St"}]}')
    (without,) = stored(exporter)
    capturing = configured(capture_content=True)
    raise_schema_errors('{"items": [{"name": "John Roe", "price": "7 High St"}]}')
    (with_content,) = stored(capturing)
    assert "'7 High St' is not of type 'number'" in with_content.message
    assert with_content.fingerprint == without.fingerprint


# --- an output check that met no output --------------------------------------------
def test_no_output_where_a_check_expected_one_is_one_failure_mode(exporter):
    @faultprint.observe(model="m", json=True)
    def ask(question: str) -> str | None:
        # message.content of a refusal or a reply that only calls tools
        return None if question != "broken" else '{"answer": '

    ask("a")
    ask("b")
    ask("broken")
    first, second, cut = stored(exporter)
    assert first.category == second.category == cut.category == "invalid_output"
    assert first.fingerprint == second.fingerprint != cut.fingerprint
    assert "no_output" in json.loads(first.components)["errors"]


def test_a_type_expression_check_groups_by_kind_and_path(exporter):
    class Item(pydantic.BaseModel):
        name: str
        price: float

    @faultprint.observe(model="m", expect=list[Item])
    def items(text: str) -> str:
        return text

    items('[{"name": "a", "price": 1}, {"name": "b"}]')
    items('[{"name": "c"}]')
    items('[{"name": "d", "price": 2}]')
    first, second, valid = stored(exporter)
    assert valid.is_failure == 0
    assert first.category == second.category == "invalid_output"
    assert first.fingerprint == second.fingerprint
    assert "missing@*.price" in json.loads(first.components)["errors"]


# --- in-app frames named by the module the code runs as ------------------------------
WORKER = """
import faultprint

@faultprint.observe(model="m")
def summarise(i):
    return score(i)

def score(i):
    raise ValueError(f"bad score {i}")
"""


def _worker_failure(exporter: InMemorySpanExporter, path: str, module: str) -> Any:
    """The stored failure of WORKER's code, compiled from PATH and run as MODULE."""
    names: dict[str, Any] = {"__name__": module}
    exec(compile(WORKER, path, "exec"), names)
    with pytest.raises(ValueError):
        names["summarise"](1)
    (record,) = stored(exporter)
    return record


def test_a_script_is_one_module_wherever_it_is_deployed(exporter):
    """An image's /app/worker.py and a CI checkout's /home/ci/shop/worker.py,
    run as scripts or imported as top-level modules: one failure mode. Named
    by path alone, the checkout's directory made the second shop.worker."""
    for module in ("__main__", "worker"):  # two call sites: __main__.summarise, worker.summarise
        found = {
            _worker_failure(exporter, path, module).fingerprint
            for path in ("/app/worker.py", "/home/ci/shop/worker.py", "/srv/rel-2.0/worker.py")
        }
        assert len(found) == 1, module


def test_modules_of_a_package_read_as_their_paths_do(exporter):
    """The module the SDK sends is cut as a path is: a package's modules keep
    the fingerprints a traceback alone gives them."""
    from faultprint_collector.fingerprinting import in_app_frames

    record = _worker_failure(exporter, "/srv/app/src/shop/worker.py", "shop.worker")
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/src/shop/worker.py", line 9, in score\n'
        "ValueError: bad score 1\n"
    )
    assert in_app_frames(tb, modules={"/srv/app/src/shop/worker.py": "shop.worker"}) == (
        in_app_frames(tb)
    )
    assert in_app_frames(tb) == ["shop.worker.score"]
    elsewhere = _worker_failure(exporter, "/elsewhere/shop/worker.py", "shop.worker")
    assert record.fingerprint == elsewhere.fingerprint
