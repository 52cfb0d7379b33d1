"""Labelled corpus of failed model calls, produced by real libraries.

Every record comes from actually running the ``shopapp`` application code
(this folder): real openai / anthropic clients answering from a scripted
HTTP transport with the providers' real error bodies, real json / pydantic /
jsonschema errors on realistically broken model outputs, refusals,
truncations, tool-call errors and ordinary bugs, each with its real
traceback. Every record is labelled with its true failure mode ("mode"), as
an engineer triaging the incidents would file them: one mode = one thing to
fix. Ids, numbers, user names, quoted values and models vary per instance.

    python bench/fingerprint_corpus.py --seed 7 --scale 1.0 > corpus.jsonl

Records follow the ``faultprint fingerprint`` input format plus ``mode``. A
deterministic share of records carries no ``category`` (as records from
other sources would), so category inference is exercised too.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anthropic
import httpx2
import jsonschema
import openai
import pydantic
from shopapp import agent, extract, orders, reviews, summarize
from shopapp.errors import (
    ModelOutputError,
    ToolArgumentsError,
    UnknownToolError,
)
from shopapp.transport import (
    anthropic_client,
    json_response,
    openai_client,
    raising,
    script,
)

OPENAI_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "gpt-4o-2024-08-06"]
ANTHROPIC_MODELS = [
    "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-20241022",
    "claude-sonnet-4-20250514",
    "claude-opus-4-1-20250805",
]
NAMES = ["alice", "bob", "carol", "dmitri", "eve", "fatima", "gus", "hiro", "ines", "jon"]
FULL_NAMES = ["Alice Moreau", "Bob Stone", "Carol King", "Dmitri Petrov", "Eve Adams", "Hiro Sato"]
CITIES = ["Berlin", "Austin", "Lyon", "Osaka", "Leeds", "Turin"]
WORDS = ["fast", "broken", "great", "slow", "refund", "late", "missing", "cheap", "blue", "nice"]


def rid(
    rng: random.Random, n: int = 24, alphabet: str = string.ascii_letters + string.digits
) -> str:
    """A random id body."""
    return "".join(rng.choice(alphabet) for _ in range(n))


# --- provider responses ---------------------------------------------------------------


def oa_completion(
    content: str | None,
    finish: str = "stop",
    refusal: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    model: str = "gpt-4o",
) -> dict:
    """An OpenAI chat completion body."""
    return {
        "id": "chatcmpl-" + rid(random.Random(hash(content) & 0xFFFF), 29),
        "object": "chat.completion",
        "created": 1_732_700_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "tool_calls": tool_calls,
                },
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200},
    }


def an_message(
    text: str, stop: str = "end_turn", model: str = "claude-3-5-sonnet-20241022"
) -> dict:
    """An Anthropic message body."""
    return {
        "id": "msg_01" + rid(random.Random(len(text)), 22),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 300, "output_tokens": 200},
    }


def oa_error(message: str, etype: str, code: str | None, param: str | None = None) -> dict:
    """An OpenAI error body."""
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def an_error(etype: str, message: str) -> dict:
    """An Anthropic error body."""
    return {"type": "error", "error": {"type": etype, "message": message}}


# --- running the app and recording the failure ---------------------------------------------


def classify_exception(exc: BaseException) -> str:
    """The category an SDK would record for this exception."""
    if isinstance(exc, ModelOutputError):
        return exc.category
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        return "api_error"
    if isinstance(
        exc, json.JSONDecodeError | pydantic.ValidationError | jsonschema.ValidationError
    ):
        return "invalid_output"
    if isinstance(exc, UnknownToolError | ToolArgumentsError):
        return "tool_error"
    return "exception"


def run(
    call: Callable[[], Any],
    *,
    function: str,
    provider: str,
    model: str,
    output: str | None = None,
    finish_reason: str = "",
) -> dict[str, Any]:
    """Run ``call``, which must fail; return the failure record."""
    try:
        call()
    except Exception as exc:  # the point is to record it
        rec: dict[str, Any] = {
            "category": classify_exception(exc),
            "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc),
            "stacktrace": traceback.format_exc(),
            "function": function,
            "provider": provider,
            "model": model,
        }
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            rec["status_code"] = status
        out = getattr(exc, "output", None)
        if out is not None or output is not None:
            rec["output"] = out if out is not None else output
        if finish_reason:
            rec["finish_reason"] = finish_reason
        if isinstance(exc, ModelOutputError):
            # the SDK records the outcome, not an exception, for these
            rec["error_type"] = ""
            rec["message"] = ""
            rec["stacktrace"] = ""
        return rec
    raise AssertionError(f"{function}: the scenario did not fail")


# --- scenarios: one function per true failure mode -----------------------------------------

Scenario = Callable[[random.Random], dict[str, Any]]
#: (true mode, how many records at scale 1, scenario); several scenarios may
#: produce the same mode (a fenced and a prose-wrapped JSON answer)
SCENARIOS: list[tuple[str, int, Scenario]] = []


def mode(name: str, weight: int) -> Callable[[Scenario], Scenario]:
    """Register a scenario producing records of the failure mode ``name``."""

    def deco(fn: Scenario) -> Scenario:
        SCENARIOS.append((name, weight, fn))
        return fn

    return deco


SUMMARIZE = "shopapp.summarize.summarize_ticket"
EXTRACT = "shopapp.extract.extract_order"
EXTRACT_STRICT = "shopapp.extract.extract_order_strict"
REVIEWS = "shopapp.reviews.classify_review"
AGENT = "shopapp.agent.run_agent_step"
ORDERS = "shopapp.orders"


def _summarize(rng: random.Random, handler: Any, model: str = "") -> dict[str, Any]:
    model = model or rng.choice(OPENAI_MODELS)
    script(handler)
    ticket = f"Ticket #{rng.randint(1000, 99999)} from {rng.choice(NAMES)}: {rng.choice(WORDS)}"
    return run(
        lambda: summarize.summarize_ticket(openai_client(), model, ticket),
        function=SUMMARIZE,
        provider="openai",
        model=model,
    )


@mode("summarize/429 rate limit tokens", 300)
def _(rng: random.Random) -> dict[str, Any]:
    m = rng.choice(OPENAI_MODELS)
    limit = rng.choice([30000, 200000, 450000, 800000])
    used = limit - rng.randint(1, 5000)
    req = rng.randint(500, 9000)
    msg = (
        f"Rate limit reached for {m} in organization org-{rid(rng, 24)} on tokens per min (TPM): "
        f"Limit {limit}, Used {used}, Requested {req}. Please try again in "
        f"{rng.randint(1, 900) / 100}s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more."
    )
    return _summarize(
        rng,
        json_response(
            429,
            oa_error(msg, "tokens", "rate_limit_exceeded"),
            {"x-request-id": "req_" + rid(rng, 32)},
        ),
        m,
    )


@mode("summarize/429 rate limit requests", 60)
def _(rng: random.Random) -> dict[str, Any]:
    m = rng.choice(OPENAI_MODELS)
    msg = (
        f"Rate limit reached for {m} in organization org-{rid(rng, 24)} on requests per min "
        f"(RPM): Limit {rng.choice([500, 5000])}, Used {rng.randint(500, 5000)}, Requested 1. "
        f"Please try again in {rng.randint(10, 900)}ms. Visit "
        "https://platform.openai.com/account/rate-limits to learn more."
    )
    return _summarize(rng, json_response(429, oa_error(msg, "requests", "rate_limit_exceeded")), m)


@mode("summarize/429 insufficient quota", 25)
def _(rng: random.Random) -> dict[str, Any]:
    msg = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors."
    )
    return _summarize(
        rng, json_response(429, oa_error(msg, "insufficient_quota", "insufficient_quota"))
    )


@mode("summarize/400 context length", 120)
def _(rng: random.Random) -> dict[str, Any]:
    limit = rng.choice([8192, 16385, 128000])
    msg = (
        f"This model's maximum context length is {limit} tokens. However, your messages resulted "
        f"in {limit + rng.randint(1, 90000)} tokens. Please reduce the length of the messages."
    )
    return _summarize(
        rng,
        json_response(
            400, oa_error(msg, "invalid_request_error", "context_length_exceeded", "messages")
        ),
    )


@mode("summarize/401 invalid api key", 15)
def _(rng: random.Random) -> dict[str, Any]:
    msg = (
        f"Incorrect API key provided: sk-proj-{rid(rng, 4)}****{rid(rng, 4)}. You can find your "
        "API key at https://platform.openai.com/account/api-keys."
    )
    return _summarize(
        rng, json_response(401, oa_error(msg, "invalid_request_error", "invalid_api_key"))
    )


@mode("summarize/500 server error", 40)
def _(rng: random.Random) -> dict[str, Any]:
    msg = (
        "The server had an error while processing your request. Sorry about that! You can retry "
        "your request, or contact us through our help center at help.openai.com if the error "
        f"persists. (Please include the request ID req_{rid(rng, 32, '0123456789abcdef')} in your "
        "message.)"
    )
    return _summarize(rng, json_response(500, oa_error(msg, "server_error", None)))


@mode("summarize/400 invalid temperature", 12)
def _(rng: random.Random) -> dict[str, Any]:
    t = rng.choice([2.5, 3, 4.2, -1])
    msg = (
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
        f"but got {t} instead."
    )
    if t < 0:
        msg = (
            "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, "
            f"but got {t} instead."
        )
    return _summarize(
        rng, json_response(400, oa_error(msg, "invalid_request_error", None, "temperature"))
    )


@mode("summarize/timeout", 90)
def _(rng: random.Random) -> dict[str, Any]:
    return _summarize(
        rng, raising(lambda r: httpx2.ReadTimeout("The read operation timed out", request=r))
    )


@mode("summarize/connection error", 20)
def _(rng: random.Random) -> dict[str, Any]:
    return _summarize(
        rng,
        raising(
            lambda r: httpx2.ConnectError(
                f"[Errno 111] Connection refused to {rng.randint(10, 250)}.0."
                f"{rng.randint(0, 255)}.7",
                request=r,
            )
        ),
    )


@mode("summarize/truncation", 150)
def _(rng: random.Random) -> dict[str, Any]:
    text = f"The customer {rng.choice(FULL_NAMES)} reports that the {rng.choice(WORDS)} order"
    rec = _summarize(rng, json_response(200, oa_completion(text, "length")))
    rec["finish_reason"] = "length"
    return rec


@mode("summarize/content filter", 18)
def _(rng: random.Random) -> dict[str, Any]:
    rec = _summarize(rng, json_response(200, oa_completion("", "content_filter")))
    rec["finish_reason"] = "content_filter"
    return rec


# extraction (anthropic + json + pydantic) --------------------------------------------


def _order(rng: random.Random, n_items: int | None = None) -> dict[str, Any]:
    n = n_items or rng.randint(1, 5)
    return {
        "order_id": f"ord_{rid(rng, 10)}",
        "customer": {"name": rng.choice(FULL_NAMES), "email": f"{rng.choice(NAMES)}@example.com"},
        "items": [
            {
                "sku": f"SKU-{rng.randint(1, 999)}",
                "quantity": rng.randint(1, 9),
                "price": round(rng.uniform(1, 300), 2),
            }
            for _ in range(n)
        ],
    }


def _extract(rng: random.Random, handler: Any, *, strict: bool = False) -> dict[str, Any]:
    model = rng.choice(ANTHROPIC_MODELS)
    script(handler)
    text = f"{rng.choice(FULL_NAMES)} wants {rng.randint(1, 9)} x SKU-{rng.randint(1, 999)}"
    fn = extract.extract_order_strict if strict else extract.extract_order
    return run(
        lambda: fn(anthropic_client(), model, text),
        function=EXTRACT_STRICT if strict else EXTRACT,
        provider="anthropic",
        model=model,
    )


def _extract_output(rng: random.Random, text: str, *, strict: bool = False, stop: str = "end_turn"):
    rec = _extract(rng, json_response(200, an_message(text, stop)), strict=strict)
    rec.setdefault("output", text)
    return rec


@mode("extract/529 overloaded", 200)
def _(rng: random.Random) -> dict[str, Any]:
    return _extract(
        rng,
        json_response(
            529,
            an_error("overloaded_error", "Overloaded"),
            {"request-id": "req_011C" + rid(rng, 20)},
        ),
    )


@mode("extract/429 rate limit", 70)
def _(rng: random.Random) -> dict[str, Any]:
    msg = (
        f"This request would exceed the rate limit for your organization "
        f"({rid(rng, 8, '0123456789abcdef')}-{rid(rng, 4, '0123456789abcdef')}-4f1e-9c1a-"
        f"{rid(rng, 12, '0123456789abcdef')}) of {rng.choice([40000, 80000, 400000])} input tokens "
        "per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can "
        "see the response headers for current usage."
    )
    return _extract(rng, json_response(429, an_error("rate_limit_error", msg)))


@mode("extract/400 prompt too long", 45)
def _(rng: random.Random) -> dict[str, Any]:
    n = rng.randint(200001, 400000)
    return _extract(
        rng,
        json_response(
            400,
            an_error("invalid_request_error", f"prompt is too long: {n} tokens > 200000 maximum"),
        ),
    )


@mode("extract/400 max_tokens too large", 10)
def _(rng: random.Random) -> dict[str, Any]:
    m = rng.choice(ANTHROPIC_MODELS)
    msg = (
        f"max_tokens: {rng.choice([100000, 128000, 70000])} > {rng.choice([8192, 32000, 64000])}, "
        f"which is the maximum allowed number of output tokens for {m}"
    )
    return _extract(rng, json_response(400, an_error("invalid_request_error", msg)))


@mode("extract/401 authentication", 8)
def _(rng: random.Random) -> dict[str, Any]:
    return _extract(rng, json_response(401, an_error("authentication_error", "invalid x-api-key")))


@mode("extract/timeout", 35)
def _(rng: random.Random) -> dict[str, Any]:
    return _extract(rng, raising(lambda r: httpx2.ReadTimeout("timed out", request=r)))


@mode("extract/wrapped json", 160)
def _(rng: random.Random) -> dict[str, Any]:
    body = json.dumps(_order(rng), indent=rng.choice([None, 2]))
    return _extract_output(rng, f"```json\n{body}\n```")


@mode("extract/wrapped json", 70)
def _(rng: random.Random) -> dict[str, Any]:
    body = json.dumps(_order(rng))
    lead = rng.choice(
        [
            "Here is the extracted order:",
            "Sure! Here's the JSON:",
            f"I found {rng.randint(1, 5)} items for {rng.choice(FULL_NAMES)}:",
        ]
    )
    return _extract_output(rng, f"{lead}\n\n{body}")


@mode("extract/truncation", 50)
def _(rng: random.Random) -> dict[str, Any]:
    body = json.dumps(_order(rng, rng.randint(6, 12)))
    rec = _extract(
        rng, json_response(200, an_message(body[: rng.randint(40, len(body) - 5)], "max_tokens"))
    )
    rec["finish_reason"] = "max_tokens"
    return rec


@mode("extract/refusal", 60)
def _(rng: random.Random) -> dict[str, Any]:
    text = rng.choice(
        [
            "I'm sorry, but I can't help with extracting personal data from this message.",
            f"I can't assist with that request, {rng.choice(FULL_NAMES)}.",
            "I apologize, but I'm not able to process this order because it appears to contain "
            f"payment card number {rng.randint(4000, 4999)}-XXXX.",
            "Sorry, I cannot comply with this request.",
        ]
    )
    rec = _extract_output(rng, text)
    return rec


@mode("extract/malformed json (python style)", 30)
def _(rng: random.Random) -> dict[str, Any]:
    order = _order(rng)
    # python repr (single quotes) or a trailing comma
    text = str(order) if rng.random() < 0.5 else json.dumps(order)[:-1] + ",}"
    return _extract_output(rng, text)


@mode("extract/missing item price", 110)
def _(rng: random.Random) -> dict[str, Any]:
    order = _order(rng)
    for item in rng.sample(order["items"], rng.randint(1, len(order["items"]))):
        del item["price"]
    return _extract_output(rng, json.dumps(order))


@mode("extract/price not a number", 40)
def _(rng: random.Random) -> dict[str, Any]:
    order = _order(rng)
    item = rng.choice(order["items"])
    item["price"] = rng.choice(["twelve dollars", "$" + str(rng.randint(1, 99)), "N/A", "about 5"])
    return _extract_output(rng, json.dumps(order))


@mode("extract/missing customer email", 25)
def _(rng: random.Random) -> dict[str, Any]:
    order = _order(rng)
    del order["customer"]["email"]
    return _extract_output(rng, json.dumps(order))


@mode("extract/items not a list", 6)
def _(rng: random.Random) -> dict[str, Any]:
    order = _order(rng)
    order["items"] = order["items"][0]
    return _extract_output(rng, json.dumps(order))


@mode("extract_strict/truncated json", 30)
def _(rng: random.Random) -> dict[str, Any]:
    # a streamed answer cut by a dropped connection: no max_tokens stop reason
    body = json.dumps(_order(rng, rng.randint(4, 8)))
    return _extract_output(rng, body[: rng.randint(30, len(body) - 3)], strict=True)


@mode("extract_strict/wrapped json (fenced)", 25)
def _(rng: random.Random) -> dict[str, Any]:
    return _extract_output(rng, f"```json\n{json.dumps(_order(rng))}\n```", strict=True)


@mode("extract_strict/quantity not an integer", 20)
def _(rng: random.Random) -> dict[str, Any]:
    order = _order(rng)
    for item in order["items"]:
        item["quantity"] = rng.choice(["two", "3 units", "a few", 2.5])
    return _extract_output(rng, json.dumps(order), strict=True)


# reviews (openai + jsonschema) -----------------------------------------------------------


def _review(rng: random.Random, content: str | None, refusal: str | None = None) -> dict[str, Any]:
    model = rng.choice(OPENAI_MODELS)
    script(json_response(200, oa_completion(content, refusal=refusal, model=model)))
    review = f"{rng.choice(WORDS)} product, {rng.choice(WORDS)} delivery by {rng.choice(NAMES)}"
    rec = run(
        lambda: reviews.classify_review(openai_client(), model, review),
        function=REVIEWS,
        provider="openai",
        model=model,
    )
    if content is not None and "output" not in rec:
        rec["output"] = content
    return rec


def _good_review(rng: random.Random) -> dict[str, Any]:
    return {
        "sentiment": rng.choice(["positive", "neutral", "negative"]),
        "score": round(rng.random(), 2),
        "topics": rng.sample(WORDS, rng.randint(1, 3)),
    }


@mode("reviews/missing sentiment", 80)
def _(rng: random.Random) -> dict[str, Any]:
    r = _good_review(rng)
    del r["sentiment"]
    return _review(rng, json.dumps(r))


@mode("reviews/sentiment not in enum", 55)
def _(rng: random.Random) -> dict[str, Any]:
    r = _good_review(rng)
    r["sentiment"] = rng.choice(["mixed", "Positive", "very positive", "angry", "NEGATIVE"])
    return _review(rng, json.dumps(r))


@mode("reviews/score out of range", 30)
def _(rng: random.Random) -> dict[str, Any]:
    r = _good_review(rng)
    r["score"] = rng.choice([rng.randint(2, 10), round(rng.uniform(1.1, 5), 1)])
    return _review(rng, json.dumps(r))


@mode("reviews/score is a string", 20)
def _(rng: random.Random) -> dict[str, Any]:
    r = _good_review(rng)
    r["score"] = rng.choice(["0.8", "high", "4/5", "85%"])
    return _review(rng, json.dumps(r))


@mode("reviews/extra property", 15)
def _(rng: random.Random) -> dict[str, Any]:
    r = _good_review(rng)
    r[rng.choice(["reasoning", "confidence", "summary", "language"])] = rng.choice(WORDS)
    return _review(rng, json.dumps(r))


@mode("reviews/provider refusal", 35)
def _(rng: random.Random) -> dict[str, Any]:
    return _review(
        rng,
        None,
        refusal=rng.choice(
            [
                "I'm sorry, I can't help with that.",
                "I can't assist with classifying this content.",
                f"I'm unable to analyze reviews mentioning {rng.choice(FULL_NAMES)}.",
            ]
        ),
    )


@mode("reviews/empty output", 25)
def _(rng: random.Random) -> dict[str, Any]:
    return _review(rng, "")


# agent (openai tool calls) -----------------------------------------------------------------


def _agent(rng: random.Random, name: str, arguments: str) -> dict[str, Any]:
    model = rng.choice(OPENAI_MODELS)
    call = {
        "id": "call_" + rid(rng, 24),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    script(json_response(200, oa_completion(None, "tool_calls", tool_calls=[call], model=model)))
    q = f"Where is order {rng.randint(10000, 99999)} for {rng.choice(NAMES)}?"
    return run(
        lambda: agent.run_agent_step(openai_client(), model, q),
        function=AGENT,
        provider="openai",
        model=model,
    )


@mode("agent/unknown tool", 45)
def _(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(
        [
            "get_order_status",
            "search_orders",
            "lookup_customer",
            "track_package",
            "browser",
            "python",
            "lookupOrder",
        ]
    )
    return _agent(rng, name, json.dumps({"order_id": str(rng.randint(1, 9999))}))


@mode("agent/lookup_order missing order_id", 40)
def _(rng: random.Random) -> dict[str, Any]:
    return _agent(
        rng, "lookup_order", json.dumps({"id": rng.randint(1, 99999), "include_items": True})
    )


@mode("agent/refund amount not a number", 18)
def _(rng: random.Random) -> dict[str, Any]:
    args = {
        "order_id": f"ord_{rid(rng, 8)}",
        "amount": rng.choice(["full", "all of it", "$12"]),
        "reason": rng.choice(WORDS),
    }
    return _agent(rng, "refund", json.dumps(args))


@mode("agent/refund arguments not json", 12)
def _(rng: random.Random) -> dict[str, Any]:
    return _agent(rng, "refund", "{order_id: " + str(rng.randint(1, 999)) + ", amount: 12}")


# ordinary bugs ----------------------------------------------------------------------


def _bug(rng: random.Random, call: Callable[[], Any], function: str) -> dict[str, Any]:
    return run(call, function=function, provider="", model=rng.choice(OPENAI_MODELS))


@mode("orders/unknown sku in price table", 90)
def _(rng: random.Random) -> dict[str, Any]:
    items = [{"sku": f"SKU-{rng.randint(3, 999)}", "quantity": 1}]
    return _bug(rng, lambda: orders.order_total(items), f"{ORDERS}.order_total")


@mode("orders/reply is None", 50)
def _(rng: random.Random) -> dict[str, Any]:
    return _bug(rng, lambda: orders.render_reply(None), f"{ORDERS}.render_reply")


@mode("orders/quantity not an int", 40)
def _(rng: random.Random) -> dict[str, Any]:
    text = rng.choice(["two", "3 pcs", "", "1.5", "x" + str(rng.randint(1, 9))])
    return _bug(rng, lambda: orders.parse_quantity(text), f"{ORDERS}.parse_quantity")


@mode("orders/no ratings", 12)
def _(rng: random.Random) -> dict[str, Any]:
    return _bug(rng, lambda: orders.average_rating([]), f"{ORDERS}.average_rating")


@mode("orders/order not found", 45)
def _(rng: random.Random) -> dict[str, Any]:
    oid = f"ord_{rid(rng, 10)}"
    who = rng.choice([rng.choice(NAMES), f"{rng.choice(NAMES)}@example.com"])
    return _bug(rng, lambda: orders.find_order({}, oid, who), f"{ORDERS}.find_order")


@mode("orders/out of stock", 30)
def _(rng: random.Random) -> dict[str, Any]:
    sku, wh = f"SKU-{rng.randint(1, 999)}", rng.choice(CITIES)
    want = rng.randint(5, 50)
    return _bug(
        rng,
        lambda: orders.reserve_stock(sku, wh, want, want - rng.randint(1, 4)),
        f"{ORDERS}.reserve_stock",
    )


# --- generation -------------------------------------------------------------------


def generate(
    seed: int = 7, scale: float = 1.0, drop_category: float = 0.3, per_mode: int = 0
) -> list[dict[str, Any]]:
    """All records, shuffled deterministically; each has its true ``mode``.

    ``per_mode`` > 0 makes exactly that many records per scenario (fixtures).
    """
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for name, weight, scenario in SCENARIOS:
        count = per_mode or max(2, round(weight * scale))
        for _ in range(count):
            rec = scenario(rng)
            rec["mode"] = name
            if rng.random() < drop_category:
                rec.pop("category", None)
            records.append(rec)
    rng.shuffle(records)
    return records


def main() -> None:
    """Write the corpus as JSON Lines on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every mode's count")
    parser.add_argument("--drop-category", type=float, default=0.3)
    parser.add_argument("--per-mode", type=int, default=0, help="exactly N records per scenario")
    args = parser.parse_args()
    out = sys.stdout
    for rec in generate(args.seed, args.scale, args.drop_category, args.per_mode):
        out.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()


# --- generic log lines (for the --lines path) -------------------------------------------

_MONTHS = ["Jan", "Feb", "Mar", "Jun", "Jul", "Nov", "Dec"]


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _hdfs_head(rng: random.Random, level: str, comp: str) -> str:
    return (
        f"0811{rng.randint(10, 11)} {rng.randint(0, 235959):06d} {rng.randint(1, 40000)} "
        f"{level} {comp}:"
    )


def _syslog_head(rng: random.Random, proc: str) -> str:
    return (
        f"{rng.choice(_MONTHS)} {rng.randint(1, 28):2d} {rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} LabSZ "
        f"{proc}[{rng.randint(100, 32000)}]:"
    )


def _log_ts(r: random.Random) -> str:
    """A python-logging style timestamp: 2024-05-01 13:06:50,123."""
    day = f"{r.randint(2023, 2025)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
    clock = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
    return f"{day} {clock},{r.randint(0, 999):03d}"


def _blk(rng: random.Random) -> str:
    return f"blk_{rng.choice(['', '-'])}{rng.randint(10**17, 10**19)}"


LogTemplate = Callable[[random.Random], str]
LOG_TEMPLATES: dict[str, tuple[int, LogTemplate]] = {
    "hdfs/receiving block": (
        300,
        lambda r: (
            f"{_hdfs_head(r, 'INFO', 'dfs.DataNode$DataXceiver')} "
            f"Receiving block {_blk(r)} src: /{_ip(r)}:{r.randint(1024, 65000)} "
            f"dest: /{_ip(r)}:50010"
        ),
    ),
    "hdfs/received block": (
        250,
        lambda r: (
            f"{_hdfs_head(r, 'INFO', 'dfs.DataNode$PacketResponder')} "
            f"Received block {_blk(r)} of size {r.randint(1000, 67108864)} from /{_ip(r)}"
        ),
    ),
    "hdfs/responder terminating": (
        250,
        lambda r: (
            f"{_hdfs_head(r, 'INFO', 'dfs.DataNode$PacketResponder')} "
            f"PacketResponder {r.randint(0, 2)} for block {_blk(r)} terminating"
        ),
    ),
    "hdfs/addStoredBlock": (
        200,
        lambda r: (
            f"{_hdfs_head(r, 'INFO', 'dfs.FSNamesystem')} BLOCK* "
            f"NameSystem.addStoredBlock: blockMap updated: {_ip(r)}:50010 is added to "
            f"{_blk(r)} size {r.randint(1000, 67108864)}"
        ),
    ),
    "hdfs/allocateBlock": (
        120,
        lambda r: (
            f"{_hdfs_head(r, 'INFO', 'dfs.FSNamesystem')} BLOCK* "
            "NameSystem.allocateBlock: /user/root/rand/_temporary/"
            f"_task_{r.randint(10**11, 10**12)}"
            f"_m_{r.randint(0, 9999):06d}_0/part-{r.randint(0, 9999):05d}. {_blk(r)}"
        ),
    ),
    "hdfs/deleting block": (
        90,
        lambda r: (
            f"{_hdfs_head(r, 'INFO', 'dfs.FSDataset')} Deleting block "
            f"{_blk(r)} file /mnt/hadoop/dfs/data/current/subdir{r.randint(0, 63)}/{_blk(r)}"
        ),
    ),
    "hdfs/exception serving": (
        30,
        lambda r: (
            f"{_hdfs_head(r, 'WARN', 'dfs.DataNode$DataXceiver')} "
            f"{_ip(r)}:50010:Got exception while serving {_blk(r)} to /{_ip(r)}:"
        ),
    ),
    "ssh/failed password invalid user": (
        200,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} Failed password for "
            f"invalid user {r.choice([*NAMES, 'admin', 'oracle', 'test'])} from "
            f"{_ip(r)} port {r.randint(1024, 65000)} ssh2"
        ),
    ),
    "ssh/invalid user": (
        150,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} Invalid user "
            f"{r.choice([*NAMES, 'admin', 'oracle', 'test'])} from {_ip(r)}"
        ),
    ),
    "ssh/failed password root": (
        150,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} Failed password for root "
            f"from {_ip(r)} port {r.randint(1024, 65000)} ssh2"
        ),
    ),
    "ssh/accepted password": (
        60,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} Accepted password for "
            f"{r.choice(NAMES)} from {_ip(r)} port {r.randint(1024, 65000)} ssh2"
        ),
    ),
    "ssh/reverse mapping": (
        120,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} reverse mapping checking getaddrinfo "
            f"for {r.choice(['ns', 'mail', 'host'])}{r.randint(1, 99)}."
            f"{r.choice(['example', 'isp'])}.com [{_ip(r)}] failed - POSSIBLE BREAK-IN ATTEMPT!"
        ),
    ),
    "ssh/received disconnect": (
        150,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} Received disconnect from {_ip(r)}: 11: Bye Bye [preauth]"
        ),
    ),
    "ssh/pam auth failure": (
        60,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} pam_unix(sshd:auth): authentication "
            f"failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={_ip(r)}"
        ),
    ),
    "ssh/pam auth failure with user": (
        60,
        lambda r: (
            f"{_syslog_head(r, 'sshd')} pam_unix(sshd:auth): "
            f"authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
            f"rhost={_ip(r)}  user={r.choice(NAMES)}"
        ),
    ),
    "ssh/connection closed": (
        80,
        lambda r: f"{_syslog_head(r, 'sshd')} Connection closed by {_ip(r)} [preauth]",
    ),
    "apache/client denied": (
        80,
        lambda r: (
            f"[{r.choice(['Sun', 'Mon', 'Tue'])} {r.choice(_MONTHS)} "
            f"{r.randint(1, 28):02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:"
            f"{r.randint(0, 59):02d} 2005] [error] [client {_ip(r)}] Directory index "
            f"forbidden by rule: /var/www/html/{r.choice(WORDS)}/"
        ),
    ),
    "apache/jk2 init": (
        60,
        lambda r: (
            f"[{r.choice(['Sun', 'Mon', 'Tue'])} {r.choice(_MONTHS)} "
            f"{r.randint(1, 28):02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:"
            f"{r.randint(0, 59):02d} 2005] [notice] jk2_init() Found child {r.randint(1000, 9999)} "
            f"in scoreboard slot {r.randint(1, 12)}"
        ),
    ),
    "app/user login failed": (
        120,
        lambda r: (
            f"{r.randint(2023, 2025)}-{r.randint(1, 12):02d}-"
            f"{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:"
            f"{r.randint(0, 59):02d}Z WARN auth: login failed for user "
            f"{r.choice(NAMES)} from {_ip(r)}: bad password"
        ),
    ),
    "app/request done": (
        250,
        lambda r: (
            f"{r.randint(2023, 2025)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
            f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z INFO "
            f"http: request_id={rid(r, 12)} method=GET path=/api/orders/{r.randint(1, 99999)} "
            f"status=200 duration={r.randint(1, 900)}ms"
        ),
    ),
    "app/slow query": (
        60,
        lambda r: (
            f"{_log_ts(r)} "
            f"WARNING db: slow query on table {r.choice(['orders', 'users', 'items'])} took "
            f"{r.randint(1, 30)}.{r.randint(0, 9)}s"
        ),
    ),
    "app/cache miss": (
        90,
        lambda r: (
            f"{_log_ts(r)} "
            f"DEBUG cache: miss for key 'session:{rid(r, 16)}' in region "
            f"{r.choice(['eu-west-1', 'us-east-2'])}"
        ),
    ),
    "app/upload stored": (
        50,
        lambda r: (
            f"{_log_ts(r)} "
            f"INFO storage: stored s3://uploads-{r.choice(['prod', 'dev'])}/"
            f"{r.randint(2020, 2025)}/"
            f"{rid(r, 8)}.png ({r.randint(1, 900)} KB) for {r.choice(NAMES)}@example.com"
        ),
    ),
    "app/worker started": (
        40,
        lambda r: (
            f"{_log_ts(r)} "
            f"INFO worker: worker {r.randint(1, 64)} started with pid {r.randint(100, 99999)} on "
            f"host ip-{r.randint(10, 99)}-{r.randint(0, 255)}-{r.randint(0, 255)}-"
            f"{r.randint(0, 255)}"
        ),
    ),
    "kernel/oom": (
        30,
        lambda r: (
            f"{_syslog_head(r, 'kernel')} Out of memory: Kill process {r.randint(100, 99999)} "
            f"({r.choice(['java', 'python3', 'postgres', 'node'])}) score {r.randint(100, 999)} "
            "or sacrifice child"
        ),
    ),
}


def generate_log_lines(seed: int = 11, scale: float = 1.0) -> list[tuple[str, str]]:
    """(line, true template name) pairs, shuffled deterministically."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for name, (weight, make) in LOG_TEMPLATES.items():
        for _ in range(max(2, round(weight * scale))):
            out.append((make(rng), name))
    rng.shuffle(out)
    return out
