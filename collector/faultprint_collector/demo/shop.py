"""A small simulated application that calls a language model.

Nothing here talks to a network: ``FakeModel`` plays the model and, when it
misbehaves, produces the broken *output* (cut-off JSON, a missing field, a
refusal, a provider error …). The application code then fails the way real
code does — ``json.loads`` raises on cut-off JSON, pydantic rejects a
missing price — so every failure faultprint records comes from a real code
path, not from a hand-typed message.

Version ``acme-chat-2025-06`` fails about 8% of calls in three consistent
modes (and mostly on the same inputs); version ``acme-chat-2025-09`` fails
about 5% of calls, spread over many erratic modes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faultprint
from pydantic import BaseModel

MODEL = "acme-chat"
PROVIDER = "acme"
VERSION_A = "acme-chat-2025-06"
VERSION_B = "acme-chat-2025-09"

# version -> call site -> fault -> probability per call at that site; the
# rest succeed. Version A: 8% in three modes; version B: 5% over fourteen.
FAULTS: dict[str, dict[str, dict[str, float]]] = {
    VERSION_A: {
        "extract_invoice": {"cut_json": 0.12, "missing_price": 0.09},
        "summarise_ticket": {},
        "route_ticket": {"rate_limit": 0.03},
    },
    VERSION_B: {
        "extract_invoice": {
            "wrapped_json": 0.01,
            "extra_data": 0.008,
            "bad_quantity": 0.01,
            "missing_customer": 0.008,
            "total_not_number": 0.008,
            "zero_quantity": 0.008,
            "empty": 0.006,
            "timeout": 0.006,
        },
        "summarise_ticket": {
            "refusal": 0.01,
            "truncated_summary": 0.01,
            "content_filter": 0.008,
            "empty": 0.006,
            "overloaded": 0.008,
            "context_length": 0.006,
        },
        "route_ticket": {"unknown_intent": 0.015, "timeout": 0.007, "overloaded": 0.008},
    },
}


class LineItem(BaseModel):
    """One invoice line."""

    sku: str
    quantity: int
    price: float


class Invoice(BaseModel):
    """What the model must extract from a document."""

    invoice_id: str
    customer: str
    items: list[LineItem]
    total: float


class ProviderError(Exception):
    """An HTTP error from the model provider, as its client library raises it."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(f"Error code: {status_code} - {body!r}")
        self.status_code = status_code
        self.body = body


class ProviderTimeout(TimeoutError):
    """The provider did not answer in time."""


@dataclass
class Completion:
    """What the fake model returns."""

    text: str
    finish_reason: str = "stop"
    refusal: str | None = None


class FakeModel:
    """Plays a model version; RNG decides when and how it misbehaves."""

    def __init__(self, version: str, seed: int) -> None:
        self.version = version
        self.rng = random.Random(f"{version}:{seed}")

    def pick_fault(self, site: str, doc_id: int) -> str | None:
        """Which fault (if any) this call suffers.

        The older version is *consistent*: 85% of its faults are tied to the
        input (the same document breaks the same way); the newer one is
        erratic and random.
        """
        faults = FAULTS[self.version][site]
        total = sum(faults.values())
        if self.version == VERSION_A and self.rng.random() < 0.85:
            roll = random.Random(f"{site}:{doc_id}").random()
        else:
            roll = self.rng.random()
        if roll >= total:
            return None
        for name, p in faults.items():
            if roll < p:
                return name
            roll -= p
        return None

    def _invoice(self, doc_id: int) -> dict[str, Any]:
        rng = self.rng
        items: list[dict[str, Any]] = [
            {
                "sku": f"SKU-{rng.randint(1000, 9999)}",
                "quantity": rng.randint(1, 9),
                "price": round(rng.uniform(1, 300), 2),
            }
            for _ in range(rng.randint(1, 4))
        ]
        return {
            "invoice_id": f"INV-{doc_id:06d}",
            "customer": rng.choice(["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger D."]),
            "items": items,
            "total": round(sum(i["quantity"] * i["price"] for i in items), 2),
        }

    def _raise_provider(self, fault: str) -> None:
        request_id = f"req_{self.rng.getrandbits(64):016x}"
        if fault == "rate_limit":
            used = self.rng.randint(29000, 29999)
            raise ProviderError(
                429,
                {
                    "error": {
                        "message": f"Rate limit reached for requests in organization "
                        f"org-{self.rng.getrandbits(40):010x} on tokens per min (TPM): "
                        f"Limit 30000, Used {used}, Requested {self.rng.randint(200, 900)}. "
                        f"Please try again in {self.rng.uniform(0.2, 3):.1f}s. ({request_id})",
                        "type": "tokens",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                },
            )
        if fault == "overloaded":
            raise ProviderError(
                529,
                {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                    "request_id": request_id,
                },
            )
        if fault == "context_length":
            tokens = self.rng.randint(128_001, 190_000)
            raise ProviderError(
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is 128000 tokens. "
                        f"However, your messages resulted in {tokens} tokens.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
            )
        if fault == "timeout":
            raise ProviderTimeout(f"Request timed out after {self.rng.choice([30, 60])}.0s")

    def extract(self, doc_id: int) -> Completion:
        """Return invoice JSON for a document (sometimes broken)."""
        fault = self.pick_fault("extract_invoice", doc_id)
        if fault in ("rate_limit", "overloaded", "context_length", "timeout"):
            self._raise_provider(fault)
        invoice = self._invoice(doc_id)
        if fault == "missing_price":
            del invoice["items"][self.rng.randrange(len(invoice["items"]))]["price"]
        elif fault == "bad_quantity":
            invoice["items"][0]["quantity"] = self.rng.choice(["two", "a few", "3 boxes"])
        elif fault == "missing_customer":
            del invoice["customer"]
        elif fault == "total_not_number":
            invoice["total"] = f"{invoice['total']} EUR"
        elif fault == "zero_quantity":
            invoice["items"][0]["quantity"] = 0
        text = json.dumps(invoice)
        if fault == "cut_json":
            return Completion(text[: self.rng.randint(20, len(text) - 5)], "stop")
        if fault == "wrapped_json":
            return Completion(f"Here is the extracted invoice:\n{text}")
        if fault == "extra_data":
            return Completion(text + "\n" + json.dumps({"note": "totals verified"}))
        if fault == "empty":
            return Completion("", "stop")
        return Completion(text)

    def summarise(self, doc_id: int) -> Completion:
        """Return a ticket summary (sometimes broken)."""
        fault = self.pick_fault("summarise_ticket", doc_id)
        if fault in ("rate_limit", "overloaded", "context_length", "timeout"):
            self._raise_provider(fault)
        words = self.rng.randint(12, 40)
        text = f"Customer reports issue #{doc_id} with their order; " + "details " * words
        if fault == "refusal":
            return Completion("I'm sorry, but I can't help with that request.")
        if fault == "truncated_summary":
            return Completion(text[: len(text) // 2], "length")
        if fault == "content_filter":
            return Completion("", "content_filter")
        if fault == "empty":
            return Completion("", "stop")
        return Completion(text.strip())

    def classify(self, doc_id: int) -> Completion:
        """Return an intent label (sometimes a label the app does not know)."""
        fault = self.pick_fault("route_ticket", doc_id)
        if fault in ("rate_limit", "overloaded", "context_length", "timeout"):
            self._raise_provider(fault)
        if fault == "unknown_intent":
            return Completion(self.rng.choice(["billing_dispute", "chargeback", "legal_threat"]))
        return Completion(self.rng.choice(list(INTENT_ROUTES)))


INTENT_ROUTES = {"refund": "billing", "delivery": "logistics", "account": "support"}


def extract_invoice(model: FakeModel, doc_id: int) -> Invoice:
    """Extract an invoice from a document (parses the model's JSON)."""
    completion = model.extract(doc_id)
    faultprint.current_call().set_output(completion.text, finish_reason=completion.finish_reason)
    data = json.loads(completion.text)
    invoice = Invoice.model_validate(data)
    # unit prices for the ledger; a zero quantity breaks the division
    for item in data["items"]:
        item["unit_share"] = item["price"] / item["quantity"]
    return invoice


def summarise_ticket(model: FakeModel, doc_id: int) -> str:
    """Summarise a support ticket."""
    completion = model.summarise(doc_id)
    faultprint.current_call().set_output(completion.text, finish_reason=completion.finish_reason)
    return completion.text


def route_ticket(model: FakeModel, doc_id: int) -> str:
    """Classify a ticket's intent and route it to a team."""
    completion = model.classify(doc_id)
    faultprint.current_call().set_output(completion.text, finish_reason=completion.finish_reason)
    return INTENT_ROUTES[completion.text]


def instrumented(version: str) -> list[Callable[..., Any]]:
    """The application's model calls, decorated for one model version."""
    decorate = faultprint.observe(model=MODEL, provider=PROVIDER, version=version)
    return [decorate(extract_invoice), decorate(summarise_ticket), decorate(route_ticket)]


def run_traffic(
    calls: int,
    seed: int = 7,
    documents: int = 1500,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Make CALLS model calls, alternating the two versions; return failures seen."""
    rng = random.Random(seed)
    models = {v: FakeModel(v, seed) for v in (VERSION_A, VERSION_B)}
    functions = {v: instrumented(v) for v in models}
    raised = {VERSION_A: 0, VERSION_B: 0}
    for i in range(calls):
        version = VERSION_A if i % 2 == 0 else VERSION_B
        model = models[version]
        doc_id = rng.randrange(documents)
        fn = functions[version][rng.randrange(3)]
        try:
            fn(model, doc_id)
        except Exception:
            raised[version] += 1
        if progress is not None:
            progress(i + 1)
    return raised
