"""Per-call cost of faultprint against baselines measured in the same run.

1. ``@faultprint.observe`` on a no-op function vs a bare OpenTelemetry span
   carrying six GenAI attributes, both under one TracerProvider whose export
   queue drops the spans (target: ratio <= 1.2).
2. ``instrument_openai`` vs the raw OpenAI client call on an in-process mock
   transport (target: added cost <= 5%).

Medians of several rounds; prints ratios. Run:
``/work/venv/bin/python bench/sdk_overhead.py [--rounds 9] [--calls 20000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable

import faultprint
from faultprint._export import DiscardingExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 34,
}


def per_call_ns(fn: Callable[[], object], calls: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def rounds_median(
    fns: dict[str, Callable[[], object]], calls: int, rounds: int
) -> dict[str, float]:
    """Interleave the candidates per round so drift hits them equally."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(per_call_ns(fn, calls))
    return {k: statistics.median(v) for k, v in samples.items()}


def bench_decorator(calls: int, rounds: int) -> float:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    faultprint.configure(
        tracer_provider=provider,
        exporter=DiscardingExporter(),
        handle_sigterm=False,
        max_queue_size=1_000_000,
    )
    tracer = provider.get_tracer("bench")

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def decorated() -> None:
        return None

    def bare() -> None:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=ATTRS
        ):
            return None

    for fn in (decorated, bare):  # warm up
        per_call_ns(fn, calls // 10)
    result = rounds_median({"bare span": bare, "@observe": decorated}, calls, rounds)
    faultprint.flush(10)
    ratio = result["@observe"] / result["bare span"]
    print(
        f"decorator: bare span {result['bare span'] / 1000:.2f} µs/call, "
        f"@observe no-op {result['@observe'] / 1000:.2f} µs/call, "
        f"ratio {ratio:.3f} (target <= 1.2)"
    )
    faultprint.shutdown()
    return ratio


CHAT_RESPONSE = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
}


def bench_openai(calls: int, rounds: int) -> float | None:
    try:
        import openai
    except ImportError:
        print("openai: not installed, skipped")
        return None
    from faultprint.integrations._openai import mock_http_client

    body = json.dumps(CHAT_RESPONSE).encode()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    faultprint.configure(
        tracer_provider=provider,
        exporter=DiscardingExporter(),
        handle_sigterm=False,
        max_queue_size=1_000_000,
    )

    def client() -> openai.OpenAI:
        return openai.OpenAI(
            api_key="sk-test", base_url="http://mock/v1", http_client=mock_http_client(200, body)
        )

    raw = client()
    instrumented = faultprint.instrument_openai(client(), version="v1")
    messages = [{"role": "user", "content": "Say hello"}]

    def raw_call() -> object:
        return raw.chat.completions.create(model="gpt-4o-mini", messages=messages)

    def inst_call() -> object:
        return instrumented.chat.completions.create(model="gpt-4o-mini", messages=messages)

    tracer = provider.get_tracer("bench")

    def raw_in_bare_span() -> object:
        # Reference point: the least any span-based capture can add.
        with tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=ATTRS
        ):
            return raw.chat.completions.create(model="gpt-4o-mini", messages=messages)

    n = max(200, calls // 20)
    fns = {"raw": raw_call, "instrumented": inst_call, "raw+bare span": raw_in_bare_span}
    for fn in fns.values():
        per_call_ns(fn, n // 5)
    result = rounds_median(fns, n, rounds)
    faultprint.shutdown()
    ratio = result["instrumented"] / result["raw"]
    span_ratio = result["raw+bare span"] / result["raw"]
    print(
        f"openai: raw client {result['raw'] / 1000:.1f} µs/call, "
        f"instrumented {result['instrumented'] / 1000:.1f} µs/call, "
        f"added cost {100 * (ratio - 1):+.1f}% (target <= 5%); "
        f"a bare span around the raw call adds {100 * (span_ratio - 1):+.1f}%"
    )
    return ratio


def main() -> None:
    """Run both benchmarks and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    bench_decorator(args.calls, args.rounds)
    bench_openai(args.calls, args.rounds)


if __name__ == "__main__":
    main()
