"""An application calling OpenAI through one instrumentation, exporting OTLP.

Run as a script so that every instrumentation gets a fresh process: the
OpenTelemetry tracer provider and the instrumentors patch global state.

    python openai_app.py MODE ENDPOINT [TARGET]

MODE is ``faultprint`` (faultprint's SDK and ``instrument_openai``),
``openllmetry`` (``opentelemetry-instrumentation-openai``) or
``openinference`` (``openinference-instrumentation-openai``). The client is
the real OpenAI library on a mock HTTP transport that answers with the
provider's real response and error bodies (SCENARIOS); TARGET ``azure``
makes it an ``AzureOpenAI`` client of an Azure OpenAI resource (default
``openai``: the OpenAI API). Prints one JSON line
per scenario: its name and the exception type it raised, if any.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import httpx2
import openai
from pipeline import setup_pipeline


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1735689600,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0aa8d3e20b",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    }


def _error(message: str, etype: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


#: name -> (HTTP status, body): what the OpenAI API answers in each case
SCENARIOS: dict[str, tuple[int, dict[str, Any]]] = {
    "ok": (200, _completion({"role": "assistant", "content": "Paris.", "refusal": None}, "stop")),
    "truncated": (
        200,
        _completion({"role": "assistant", "content": "The history of", "refusal": None}, "length"),
    ),
    "filtered": (
        200,
        _completion({"role": "assistant", "content": None, "refusal": None}, "content_filter"),
    ),
    "refused": (
        200,
        _completion(
            {"role": "assistant", "content": None, "refusal": "I'm sorry, I can't help with that."},
            "stop",
        ),
    ),
    "empty": (200, _completion({"role": "assistant", "content": "", "refusal": None}, "stop")),
    "rate_limited": (
        429,
        _error(
            "Rate limit reached for gpt-4o-mini in organization org-Xy12 on tokens per min "
            "(TPM): Limit 200000, Used 199500, Requested 1200. Please try again in 210ms. "
            "Visit https://platform.openai.com/account/rate-limits to learn more.",
            "tokens",
            "rate_limit_exceeded",
        ),
    ),
    "context_too_long": (
        400,
        _error(
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 130211 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        ),
    ),
    "server_error": (
        500,
        _error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
    ),
}


def client_for(status: int, body: dict[str, Any], target: str = "openai") -> openai.OpenAI:
    """A real OpenAI client of TARGET whose every request gets STATUS and BODY."""
    payload = json.dumps(body).encode()

    def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "application/json", "x-request-id": "req_123"}
        return httpx2.Response(status, content=payload, headers=headers)

    http_client = httpx2.Client(transport=httpx2.MockTransport(answer))
    if target == "azure":
        return openai.AzureOpenAI(
            api_key="azure-test-key",
            azure_endpoint="https://shop-eastus.openai.azure.com",
            api_version="2024-10-21",
            max_retries=0,
            http_client=http_client,
        )
    return openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=http_client,
    )


def setup(mode: str, endpoint: str) -> Callable[[], bool]:
    """Install MODE's instrumentation; returns a function that flushes and shuts down."""
    provider, done = setup_pipeline(mode, endpoint)
    if mode == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif mode == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor

        OIInstrumentor().instrument(tracer_provider=provider)
    elif mode != "faultprint":
        raise SystemExit(f"unknown mode {mode!r}")
    return done


def main() -> int:
    """Run every scenario once under the chosen instrumentation."""
    mode, endpoint = sys.argv[1], sys.argv[2]
    target = sys.argv[3] if len(sys.argv) > 3 else "openai"
    done = setup(mode, endpoint)
    for name, (status, body) in SCENARIOS.items():
        client = client_for(status, body, target)
        if mode == "faultprint":
            import faultprint

            faultprint.instrument_openai(client)
        raised = ""
        try:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Question for the {name} case"}],
            )
        except openai.OpenAIError as exc:
            raised = type(exc).__name__
        print(json.dumps({"scenario": name, "raised": raised}), flush=True)
    return 0 if done() else 1


if __name__ == "__main__":
    sys.exit(main())
