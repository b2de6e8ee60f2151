"""Paid orders rebuilt from their PaymentIntents, with the tickets checkout would issue."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale.checkout.models import Item, Order, OrderStatus, Ticket
from onsale.events import catalog
from onsale.events.models import Event, Tier
from onsale.tickets import qr

#: Combinations tried when telling an order's tiers from its amount.
_SEARCH_BUDGET = 200_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def tickets(key: Ed25519PrivateKey, order: Order) -> list[Ticket]:
    """An order's tickets exactly as ``Checkout._tickets`` issues them."""
    out: list[Ticket] = []
    for item in order.items:
        for _ in range(item.quantity):
            tid = qr.ticket_id(order.order_id, len(out))
            out.append(Ticket(tid, item.tier_id, qr.sign(key, tid, order.event_id)))
    return out


def items_from_metadata(value: str, tiers: Sequence[Tier]) -> list[Item] | None:
    """``"<tier_id> <qty> ..."`` (a hold record's items) as items; None if malformed."""
    by_id, words = {t.id: t for t in tiers}, value.split()
    if not words or len(words) % 2:
        return None
    items = []
    for tier_id, qty in zip(words[::2], words[1::2], strict=True):
        if tier_id not in by_id or not qty.isdigit() or int(qty) < 1:
            return None
        items.append(Item(tier_id, int(qty), by_id[tier_id].price))
    return items


def items_from_amount(amount: int, tiers: Sequence[Tier], most: int) -> list[Item] | None:
    """The one combination of priced tickets, within each tier's limit and ``most`` in all,
    whose prices add up to ``amount``; None when there is none or more than one (or the
    search is too large to tell). Free tickets in a paid order cannot be told at all."""
    priced = [t for t in tiers if t.price > 0]
    found: list[list[int]] = []
    budget = _SEARCH_BUDGET

    def walk(i: int, left: int, total: int, qty: list[int]) -> None:
        nonlocal budget
        budget -= 1
        if len(found) > 1 or budget < 0:
            return
        if left == 0:
            found.append(qty + [0] * (len(priced) - len(qty)))
            return
        if i == len(priced):
            return
        t = priced[i]
        limit = t.per_order_limit or catalog.DEFAULT_TIER_LIMIT
        for q in range(min(left // t.price, limit, t.capacity, most - total) + 1):
            walk(i + 1, left - q * t.price, total + q, [*qty, q])

    walk(0, amount, 0, [])
    if len(found) != 1 or budget < 0 or amount <= 0:
        return None
    return [Item(t.id, q, t.price) for t, q in zip(priced, found[0], strict=True) if q]


def _clean(text: Any) -> str:
    return _CONTROL.sub("", str(text or ""))[:254]


def rebuild(intent: Any, metadata: dict[str, str], event: Event, items: list[Item]) -> Order:
    """A paid order as checkout had it, from its PaymentIntent; confirmed, without tickets."""
    data = intent.to_dict() if hasattr(intent, "to_dict") else dict(intent)
    shipping = data.get("shipping") or {}
    created = int(data.get("created") or time.time())
    return Order(
        order_id=metadata["order_id"],
        event_id=event.id,
        hold_id=metadata.get("hold_id", ""),
        email=_clean(metadata.get("email") or data.get("receipt_email")),
        name=_clean(metadata.get("name") or shipping.get("name")),
        amount=int(data["amount"]),
        currency=str(data["currency"]).upper(),
        items=items,
        status=OrderStatus.CONFIRMED,
        payment_intent_id=str(data["id"]),
        created_ms=created * 1000,
        confirmed_ms=int(time.time() * 1000),
        visitor_id=metadata.get("visitor_id", ""),
        promo_code=_clean(metadata.get("promo_code")).upper()[:40],
        discount=_discount(metadata.get("discount")),
    )


def _discount(value: str | None) -> int:
    """The discount checkout put in the metadata (minor units), 0 if none or malformed."""
    return int(value) if value and value.isdigit() and len(value) < 16 else 0
