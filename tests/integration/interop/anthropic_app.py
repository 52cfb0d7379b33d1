"""An application calling Anthropic through one instrumentation, exporting OTLP.

Run as a script so that every instrumentation gets a fresh process: the
OpenTelemetry tracer provider and the instrumentors patch global state.

    python anthropic_app.py MODE ENDPOINT

MODE is ``faultprint`` (faultprint's SDK and ``instrument_anthropic``),
``openllmetry`` (``opentelemetry-instrumentation-anthropic``) or
``openinference`` (``openinference-instrumentation-anthropic``). The client
is the real Anthropic library on a mock HTTP transport that answers with the
provider's real message and error bodies (SCENARIOS). Under OpenInference the
library also traces its own calls, as it does by default, on the global
provider: each call then makes two spans, OpenInference's and the library's,
its child. Under OpenLLMetry, whose span and the library's are two roots that
nothing but timing links, the library's own tracing is turned off. Prints one
JSON line per scenario: its name and the exception type it raised, if any.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
from pipeline import setup_pipeline


def _message(content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 9},
    }


def _error(etype: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": etype, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


#: name -> (HTTP status, body): what the Anthropic API answers in each case
SCENARIOS: dict[str, tuple[int, dict[str, Any]]] = {
    "ok": (200, _message([{"type": "text", "text": "Paris."}], "end_turn")),
    "truncated": (200, _message([{"type": "text", "text": "The history of"}], "max_tokens")),
    "refused": (200, _message([], "refusal")),
    "empty": (200, _message([], "end_turn")),
    "overloaded": (529, _error("overloaded_error", "Overloaded")),
    "rate_limited": (
        429,
        _error(
            "rate_limit_error",
            "This request would exceed the rate limit for your organization "
            "(5d2a1c9e-0b7f-4f4e-9a51-2c8f6f1d3b21) of 50,000 input tokens per minute. "
            "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        ),
    ),
    "prompt_too_long": (
        400,
        _error("invalid_request_error", "prompt is too long: 210466 tokens > 200000 maximum"),
    ),
    "server_error": (500, _error("api_error", "Internal server error")),
}


def client_for(status: int, body: dict[str, Any], own_spans: bool) -> anthropic.Anthropic:
    """A real Anthropic client whose every request gets STATUS and BODY
    (tracing its own calls when OWN_SPANS)."""
    payload = json.dumps(body).encode()

    def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "application/json", "request-id": "req_011CSHoEeqs5C35K2"}
        return httpx2.Response(status, content=payload, headers=headers)

    return anthropic.Anthropic(
        api_key="sk-ant-test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
        open_telemetry=None if own_spans else False,
    )


def setup(mode: str, endpoint: str) -> Callable[[], bool]:
    """Install MODE's instrumentation; returns a function that flushes and shuts down."""
    provider, done = setup_pipeline(mode, endpoint)
    if mode == "openllmetry":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=provider)
    elif mode == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor as OI

        OI().instrument(tracer_provider=provider)
    elif mode != "faultprint":
        raise SystemExit(f"unknown mode {mode!r}")
    return done


def main() -> int:
    """Run every scenario once under the chosen instrumentation."""
    mode, endpoint = sys.argv[1], sys.argv[2]
    done = setup(mode, endpoint)
    for name, (status, body) in SCENARIOS.items():
        client = client_for(status, body, own_spans=mode == "openinference")
        if mode == "faultprint":
            import faultprint

            faultprint.instrument_anthropic(client)
        raised = ""
        try:
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=256,
                messages=[{"role": "user", "content": f"Question for the {name} case"}],
            )
        except anthropic.AnthropicError as exc:
            raised = type(exc).__name__
        print(json.dumps({"scenario": name, "raised": raised}), flush=True)
    return 0 if done() else 1


if __name__ == "__main__":
    sys.exit(main())
