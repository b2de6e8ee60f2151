"""Refunding every paid order of a cancelled event: in batches, resumable, never twice.

Run after the sale has ended (onsale/events/cancel.py). Each order goes through
:class:`~onsale.checkout.refunds.Refunds` (marked ``refunding`` first, Stripe's idempotency
key per order, Postgres and the refund e-mail in one transaction, then Redis), so a
cancellation cut off midway is finished by cancelling again: orders already refunded are
skipped, orders left ``refunding`` are carried through, and none is refunded twice.

Two places are read, batch by batch: the event's Redis order records (confirmed orders the
committer has not written yet, and refunds cut off midway) and Postgres's confirmed orders
(committed ones, also those Redis has forgotten).
"""

from __future__ import annotations

import logging
import uuid

import asyncpg
import msgspec

from onsale import keys
from onsale.checkout.models import OrderStatus
from onsale.checkout.refunds import RefundRejected, Refunds

log = logging.getLogger("onsale.events")

#: Orders read at a time, from Redis and from Postgres.
BATCH = 100
REASON = "the event was cancelled"

_CONFIRMED = """
SELECT id FROM orders WHERE event_id = $1 AND status = 'confirmed' AND id > $2
ORDER BY id LIMIT $3
"""
_TOTALS = """
SELECT (SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'refunded') AS orders,
       (SELECT count(*) FROM tickets WHERE event_id = $1 AND status IN ('refunded', 'cancelled'))
           AS tickets
"""


class _Status(msgspec.Struct):
    status: str = ""


_status = msgspec.json.Decoder(_Status).decode


async def refund_all(pool: asyncpg.Pool, refunds: Refunds, event_id: str) -> tuple[int, int]:
    """Refund every paid order of the event; (refunded orders, voided tickets) of the event
    in all, so that cancelling again answers the same."""
    redis = refunds.redis
    cursor: int | str = 0
    while True:
        cursor, batch = await redis.hscan(keys.orders(event_id), cursor, count=BATCH)
        for order_id, raw in batch.items():
            try:
                status = _status(raw).status
            except msgspec.DecodeError:
                continue
            if status in (OrderStatus.CONFIRMED, OrderStatus.REFUNDING):
                await _refund(refunds, event_id, str(order_id))
        if not int(cursor):
            break
    eid, last = uuid.UUID(event_id), uuid.UUID(int=0)
    while rows := await pool.fetch(_CONFIRMED, eid, last, BATCH):
        for row in rows:
            await _refund(refunds, event_id, str(row["id"]))
        last = rows[-1]["id"]
    totals = await pool.fetchrow(_TOTALS, eid)
    assert totals is not None
    return int(totals["orders"]), int(totals["tickets"])


async def _refund(refunds: Refunds, event_id: str, order_id: str) -> None:
    try:
        await refunds.refund(event_id, order_id, reason=REASON, return_to_sale=False)
    except RefundRejected as exc:  # refunded meanwhile (a concurrent cancel): done
        log.info("cancel: order %s of event %s: %s", order_id, event_id, exc.reason)
