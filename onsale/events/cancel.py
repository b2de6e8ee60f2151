"""Cancelling an event: the sale ends at once, and the event is marked cancelled.

With ``refunds`` (the gateway's route), every paid order is then refunded and its tickets
voided (onsale/events/cancellation.py: in batches, resumable by cancelling again, never
twice), after the sale has ended and the event is marked cancelled. Without it an event
with paid orders is refused (``has_paid_orders``), in Postgres (committed orders) and in
Redis (sold tickets, committed or not) alike.

Order: the event's row is locked, Redis's cancel script runs inside the transaction (it
closes the waiting room, ends admissions, releases holds and takes what is left off sale,
atomically, or refuses having changed nothing), then Postgres marks the event cancelled and
commits. If the commit fails after the script ran, Redis is cancelled and Postgres is not:
the organizer got an error, and cancelling again (idempotent: the script finds nothing left
to do) makes both agree. Nothing is put back: a cancelled sale must not reopen by accident.
"""

from __future__ import annotations

import asyncpg

from onsale import keys
from onsale.checkout.refunds import Refunds
from onsale.events.cancellation import refund_all
from onsale.events.catalog import parse_id
from onsale.events.errors import EventRejected, EventRejection
from onsale.events.models import Cancelled
from onsale.inventory import Inventory


async def cancel(
    pool: asyncpg.Pool, inventory: Inventory, event_id: str, refunds: Refunds | None = None
) -> Cancelled:
    eid = parse_id(event_id)
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.fetchval("SELECT status FROM events WHERE id = $1 FOR UPDATE", eid)
        if status is None:
            raise EventRejected(EventRejection.NOT_FOUND)
        paid = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'confirmed'", eid
        )
        if paid and refunds is None:
            raise _paid(paid)
        reply = await inventory.scripts.run(
            "cancel",
            [*keys.inventory_keys(event_id), keys.onsale(event_id)],
            [inventory.now(), "1" if refunds is not None else "0"],
        )
        if reply[0] != "ok" and reply[1] == "has_paid_orders":
            raise _paid(None, int(reply[2]))
        # Any other refusal is an event never armed (or lost by Redis): Postgres alone
        # decides, and `onsale recover` arms a cancelled event closed.
        await conn.execute(
            "UPDATE events SET status = 'cancelled', updated_at = now() WHERE id = $1", eid
        )
        await conn.execute(
            "UPDATE onsales SET paused = true, updated_at = now() WHERE event_id = $1", eid
        )
    if refunds is None:
        return Cancelled(refunded_orders=0, voided_tickets=0)
    orders, tickets = await refund_all(pool, refunds, event_id)
    return Cancelled(refunded_orders=orders, voided_tickets=tickets)


def _paid(orders: int | None, tickets: int = 0) -> EventRejected:
    what = f"{orders} paid order(s)" if orders else f"{tickets} sold ticket(s)"
    return EventRejected(
        EventRejection.HAS_PAID_ORDERS,
        f"this event has {what}: cancelling it needs refunds of paid orders, which are not "
        "available yet",
    )
