"""Order bookkeeping: ordinary application code, with ordinary bugs."""

from __future__ import annotations

from .errors import InventoryError, OrderNotFound

PRICE_TABLE = {"SKU-1": 9.5, "SKU-2": 20.0}


def price_of(sku: str) -> float:
    return PRICE_TABLE[sku]


def order_total(items: list[dict]) -> float:
    """Sum of quantity times unit price."""
    return sum(price_of(i["sku"]) * i["quantity"] for i in items)


def render_reply(reply: object) -> str:
    return reply.content.strip()  # type: ignore[attr-defined]


def parse_quantity(text: str) -> int:
    return int(text)


def average_rating(ratings: list[int]) -> float:
    return sum(ratings) / len(ratings)


def find_order(orders: dict, order_id: str, customer: str) -> dict:
    if order_id not in orders:
        raise OrderNotFound(f"order {order_id} not found for customer {customer}")
    return orders[order_id]


def reserve_stock(sku: str, warehouse: str, wanted: int, available: int) -> None:
    if wanted > available:
        raise InventoryError(
            f"SKU {sku} out of stock in warehouse {warehouse}: wanted {wanted}, have {available}"
        )
