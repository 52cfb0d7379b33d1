"""Content capture: per call or global, redacted before it is bounded."""

from __future__ import annotations

import faultprint
import pytest
from faultprint import attributes as A
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def configure(spans, **options) -> None:
    """Configure again with ``options``; ``spans`` then reads the new pipeline."""
    spans.exporter = InMemorySpanExporter()
    faultprint.configure(
        exporter=spans.exporter, use_global_provider=False, handle_sigterm=False, **options
    )


@faultprint.observe(model="m")
def echo(prompt: str) -> str:
    return prompt


@pytest.mark.parametrize(
    "secret",
    [
        "Bearer abcdefghijklmnopqrstuvwxyz0123",
        "sk-proj-abcdefghijklmnopqrstuvwxyz",
        "api_key=abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_a_secret_cut_by_the_limit_is_still_redacted(spans, secret):
    configure(spans, capture_content=True, max_content_chars=50)
    # the limit falls a few characters into the secret
    echo("y" * 36 + " " + secret)
    attrs = spans.one().attributes
    for key in (A.FP_INPUT_TEXT, A.FP_OUTPUT_TEXT):
        assert "abcd" not in attrs[key]
        assert "y" * 36 in attrs[key]
        assert "truncated" in attrs[key]


def test_long_texts_are_bounded_and_the_cut_is_marked(spans):
    configure(spans, capture_content=True, max_content_chars=100)
    echo("z" * 100_000)
    captured_out = spans.one().attributes[A.FP_OUTPUT_TEXT]
    assert captured_out == "z" * 100 + "…[truncated 99900 chars]"


def test_short_texts_are_kept_whole(spans):
    configure(spans, capture_content=True, max_content_chars=100)
    echo("short and sweet")
    assert spans.one().attributes[A.FP_OUTPUT_TEXT] == "short and sweet"


def test_a_failing_redaction_hook_records_a_placeholder_never_the_text(spans):
    def broken(text: str) -> str:
        raise RuntimeError("redactor bug")

    configure(spans, capture_content=True, redact=broken)
    assert echo("top secret plan") == "top secret plan"
    attrs = spans.one().attributes
    assert attrs[A.FP_INPUT_TEXT] == "[redaction failed]"
    assert attrs[A.FP_OUTPUT_TEXT] == "[redaction failed]"


def test_a_limit_below_the_configured_one_bounds_further(spans):
    from faultprint._capture import captured

    configure(spans, capture_content=True, max_content_chars=10, redact=False)
    assert captured("abcdefghijklmnop", 5) == "abcde…[truncated 11 chars]"
    assert captured("abcdefghijklmnop", 500) == "abcdefghij…[truncated 6 chars]"


def test_capture_per_decorator_overrides_configure(spans):
    @faultprint.observe(model="m", capture_content=True)
    def on(prompt: str) -> str:
        return "answer"

    @faultprint.observe(model="m", capture_content=False)
    def off(prompt: str) -> str:
        return "answer"

    on("question")
    off("question")
    on_default, off_default = spans.all()
    spans.clear()
    configure(spans, capture_content=True)
    off("question")
    off_global_on = spans.one()
    assert on_default.attributes[A.FP_INPUT_TEXT] == '["question"]'
    assert on_default.attributes[A.FP_OUTPUT_TEXT] == "answer"
    for span in (off_default, off_global_on):
        assert A.FP_INPUT_TEXT not in span.attributes
        assert A.FP_OUTPUT_TEXT not in span.attributes


def test_captured_text_utf8_cannot_encode_is_kept_escaped(spans, caplog):
    """Half an emoji in a prompt or an output: the captured text keeps it as an
    escape, and the span encodes to OTLP whole, with no error in the logs."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    configure(spans, capture_content=True)
    echo("half an emoji: \ud83d")
    span = spans.one()
    assert span.attributes[A.FP_OUTPUT_TEXT] == "half an emoji: \\ud83d"
    assert "\\ud83d" in span.attributes[A.FP_INPUT_TEXT]
    with caplog.at_level("ERROR"):
        (scope,) = encode_spans([span]).resource_spans[0].scope_spans
    assert caplog.records == []
    stored = {kv.key: kv.value.string_value for kv in scope.spans[0].attributes}
    assert stored[A.FP_OUTPUT_TEXT] == "half an emoji: \\ud83d"


@pytest.mark.parametrize("returned", [None, b"bytes", 42])
def test_a_redaction_hook_returning_no_text_records_a_placeholder(spans, returned):
    configure(spans, capture_content=True, redact=lambda text: returned)
    assert echo("top secret plan") == "top secret plan"
    attrs = spans.one().attributes
    assert attrs[A.FP_INPUT_TEXT] == "[redaction failed]"
    assert attrs[A.FP_OUTPUT_TEXT] == "[redaction failed]"
