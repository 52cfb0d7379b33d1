"""Realistic GenAI spans as OTLP protobuf, for the ingest benchmarks.

About one call in ten fails, spread over every failure category with
messages that carry variable parts (ids, numbers, quoted values), so the
collector's classification and fingerprinting do their real work.
"""

from __future__ import annotations

import json
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MODELS = [
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001"),
]
CALL_SITES = [
    "app.support.answer_ticket",
    "app.search.rewrite_query",
    "app.extract.invoice_fields",
    "app.agent.plan_step",
    "app.summarise.thread",
]
STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/support.py", line {line}, in answer_ticket\n'
    "    reply = client.chat.completions.create(**kwargs)\n"
    '  File "/srv/app/llm.py", line {line2}, in create\n'
    "    raise {etype}(msg)\n"
)


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        kv = KeyValue(key=key)
        kv.value.array_value.values.extend(AnyValue(string_value=str(v)) for v in value)
        return kv
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _failure(rng: random.Random, attrs: dict[str, object], span: Span) -> None:
    """Turn ATTRS/SPAN into one of many failure modes."""
    mode = rng.randrange(9)
    n = rng.randrange(100_000)
    if mode == 0:  # raised exception with a stack
        etype = rng.choice(["KeyError", "ValueError", "RuntimeError"])
        msg = rng.choice(
            [f"'item_{n}'", f"invalid literal for int() with base 10: '{n}x'", "pool exhausted"]
        )
        ev = span.events.add(name="exception", time_unix_nano=span.end_time_unix_nano)
        ev.attributes.extend(
            [
                _kv("exception.type", etype),
                _kv("exception.message", msg),
                _kv(
                    "exception.stacktrace",
                    STACK.format(line=n % 400, line2=n % 90, etype=etype),
                ),
            ]
        )
        attrs["error.type"] = etype
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=msg))
    elif mode == 1:  # provider API error
        status, code, msg = rng.choice(
            [
                (429, "rate_limit_exceeded", f"Rate limit reached for requests: {n} RPM"),
                (400, "context_length_exceeded", f"maximum context length is {n} tokens"),
                (529, "overloaded_error", "Overloaded"),
                (401, "invalid_api_key", f"Incorrect API key provided: sk-proj-{n:08d}abcdefgh"),
            ]
        )
        attrs.update(
            {
                "error.type": "APIStatusError",
                "http.response.status_code": status,
                "faultprint.error.code": code,
                "faultprint.failure.message": msg,
            }
        )
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=msg))
    elif mode == 2:
        attrs["error.type"] = "APITimeoutError"
        span.status.CopyFrom(
            Status(code=Status.STATUS_CODE_ERROR, message=f"Request timed out after {n} ms")
        )
    elif mode == 3:  # output check failed
        attrs["faultprint.failure.category"] = "invalid_output"
        attrs["faultprint.failure.detail"] = json.dumps(
            {"errors": [{"kind": "missing", "path": f"items.{n % 7}.price"}]}
        )
        attrs["faultprint.failure.message"] = f"1 validation error: items.{n % 7}.price missing"
    elif mode == 4:
        attrs["faultprint.failure.category"] = "refusal"
        attrs["faultprint.output"] = "I'm sorry, but I can't help with that request."
    elif mode == 5:
        attrs["gen_ai.response.finish_reasons"] = ["length"]
    elif mode == 6:
        attrs["faultprint.failure.category"] = "empty_output"
    elif mode == 7:
        attrs["gen_ai.response.finish_reasons"] = ["content_filter"]
    else:
        attrs["faultprint.failure.category"] = "tool_error"
        attrs["faultprint.failure.message"] = f"unknown tool 'lookup_{n % 5}' requested"


def build_request(
    rng: random.Random, spans: int, failure_rate: float = 0.1
) -> ExportTraceServiceRequest:
    """One OTLP export request with SPANS GenAI spans of one service."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        [
            _kv("service.name", rng.choice(["support-bot", "search", "billing"])),
            _kv("service.version", f"1.{rng.randrange(20)}.0"),
            _kv("deployment.environment.name", "production"),
            _kv("telemetry.sdk.language", "python"),
        ]
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "faultprint"
    base = time.time_ns() - rng.randrange(10**12)
    for i in range(spans):
        provider, req_model, resp_model = rng.choice(MODELS)
        span = ss.spans.add()
        span.trace_id = rng.randbytes(16)
        span.span_id = rng.randbytes(8)
        span.parent_span_id = rng.randbytes(8)
        span.name = f"chat {req_model}"
        span.kind = Span.SPAN_KIND_CLIENT
        span.start_time_unix_nano = base + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(50, 5000) * 1_000_000
        attrs: dict[str, object] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": req_model,
            "gen_ai.response.model": resp_model,
            "gen_ai.response.id": f"chatcmpl-{rng.randrange(10**12)}",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": rng.randrange(10, 4000),
            "gen_ai.usage.output_tokens": rng.randrange(1, 800),
            "server.address": "api.example.com",
            "faultprint.contract": "1",
            "faultprint.call_site": rng.choice(CALL_SITES),
            "faultprint.input_hash": f"{rng.randrange(2000):016x}",
        }
        if rng.random() < failure_rate:
            _failure(rng, attrs, span)
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return req
