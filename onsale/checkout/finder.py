"""An order as its buyer sees it, wherever it is now: Redis, then Postgres.

A confirmed order is in Redis at once and in Postgres after the committer, so Redis is
asked first and the buyer never waits for the write-behind; an order committed long ago
(Redis forgot it) is read from Postgres, the system of record.
"""

from __future__ import annotations

import uuid

import asyncpg

from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.checkout.models import Order, OrderOut, TicketOut
from onsale.checkout.orders import Checkout


class OrderFinder:
    def __init__(self, checkout: Checkout, pool: asyncpg.Pool) -> None:
        self.checkout = checkout
        self.pool = pool

    async def recent(self, event_id: str, order_id: str) -> Order | None:
        """The order's record in Redis, while it has one."""
        return await self.checkout.load(event_id, order_id)

    async def find(self, event_id: str, order_id: str) -> OrderOut:
        """The order, else ``order_not_found``."""
        order = await self.recent(event_id, order_id)
        if order is not None:
            return OrderOut(
                order_id=order.order_id,
                status=str(order.status),
                email=order.email,
                amount=order.amount,
                currency=order.currency,
                tickets=[TicketOut(t.ticket_id, t.tier_id, t.qr) for t in order.tickets],
                event_id=order.event_id,
                name=order.name,
                discount=order.discount,
                promo_code=order.promo_code or None,
            )
        row = await self.pool.fetchrow(
            "SELECT o.*, p.code AS promo_code FROM orders o"
            " LEFT JOIN promo_codes p ON p.id = o.promo_code_id WHERE o.id = $1",
            uuid.UUID(order_id),
        )
        if row is None:
            raise CheckoutRejected(CheckoutRejection.ORDER_NOT_FOUND)
        tickets = await self.pool.fetch(
            "SELECT id, tier_id, qr_secret FROM tickets WHERE order_id = $1 ORDER BY id", row["id"]
        )
        return OrderOut(
            order_id=order_id,
            status=row["status"],
            email=row["email"],
            amount=row["amount"],
            currency=row["currency"],
            tickets=[TicketOut(str(t["id"]), str(t["tier_id"]), t["qr_secret"]) for t in tickets],
            event_id=str(row["event_id"]),
            name=row["name"],
            discount=row["discount"],
            promo_code=row["promo_code"],
        )
