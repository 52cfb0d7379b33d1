"""Order extraction with the Anthropic messages API and pydantic."""

from __future__ import annotations

import json

import anthropic
import pydantic

from .errors import ModelOutputError


class Item(pydantic.BaseModel):
    sku: str
    quantity: int
    price: float


class Customer(pydantic.BaseModel):
    name: str
    email: str


class Order(pydantic.BaseModel):
    order_id: str
    customer: Customer
    items: list[Item]


def _ask(client: anthropic.Anthropic, model: str, text: str) -> str:
    message = client.messages.create(
        model=model,
        max_tokens=1024,
        messages=[{"role": "user", "content": f"Extract the order as JSON:\n{text}"}],
    )
    if message.stop_reason == "max_tokens":
        out = "".join(b.text for b in message.content if b.type == "text")
        raise ModelOutputError("truncation", "extraction hit max_tokens", out)
    return "".join(b.text for b in message.content if b.type == "text")


def extract_order(client: anthropic.Anthropic, model: str, text: str) -> Order:
    """The order described in ``text``: json.loads, then pydantic validation."""
    raw = _ask(client, model, text)
    data = json.loads(raw)
    return Order.model_validate(data)


def extract_order_strict(client: anthropic.Anthropic, model: str, text: str) -> Order:
    """Same, but pydantic parses the JSON itself (model_validate_json)."""
    raw = _ask(client, model, text)
    return Order.model_validate_json(raw)
