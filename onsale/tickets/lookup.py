"""A buyer's ticket, found for its QR image: among its order's, in Redis, then Postgres."""

from __future__ import annotations

import uuid

import asyncpg

from onsale.checkout.finder import OrderFinder
from onsale.tickets.errors import TicketRejected, TicketRejection


class TicketFinder:
    def __init__(self, orders: OrderFinder, pool: asyncpg.Pool) -> None:
        self.orders = orders
        self.pool = pool

    async def payload(self, event_id: str, order_id: str, ticket_id: str) -> str:
        """The QR payload of a ticket of this order (whose token the caller verified), else
        ``ticket_not_found``."""
        # A confirmed order's tickets are in Redis at once, in Postgres after the committer:
        # look in Redis first, so the buyer never waits for the write-behind.
        order = await self.orders.recent(event_id, order_id)
        if order is not None:
            for t in order.tickets:
                if t.ticket_id == ticket_id:
                    return t.qr
        try:
            ticket = uuid.UUID(ticket_id)
        except ValueError:
            raise TicketRejected(TicketRejection.NOT_FOUND) from None
        row = await self.pool.fetchrow(
            "SELECT order_id, qr_secret FROM tickets WHERE id = $1", ticket
        )
        if row is None or str(row["order_id"]) != order_id:
            raise TicketRejected(TicketRejection.NOT_FOUND)
        payload: str = row["qr_secret"]
        return payload
