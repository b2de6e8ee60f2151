"""Tickets sold a moment ago: confirmed in Redis, not yet in Postgres.

The committer is write-behind, so a buyer who walks from the box office to the door may
arrive before their order does. Check-in then finds the order on the event's stream and
commits it at once with the committer's own idempotent writer: the committer writing it
again later changes nothing (tickets are inserted only once, a status only moves forward),
and the check-in itself stays the one conditional ``UPDATE`` in Postgres.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import cast

import asyncpg
import msgspec

from onsale import keys
from onsale.checkout.models import Order, OrderStatus, decode_order
from onsale.checkout.stream import find_uncommitted
from onsale.checkout.writer import (
    ROW_ERRORS,
    Malformed,
    describe,
    merge,
    prepared,
    write_executemany,
)
from onsale.connections import RedisClient

log = logging.getLogger("onsale.checkin")


class _Status(msgspec.Struct):
    """An order record's status only: whatever else it carries, now or later."""

    status: str = ""


_status = msgspec.json.Decoder(_Status).decode


async def _current_status(
    redis: RedisClient, event_id: str, order_ids: list[str]
) -> dict[str, str]:
    """The orders' status in their Redis record, the latest word on them (a refund after
    the confirmation shows there first)."""
    raw = await redis.hmget(keys.orders(event_id), order_ids)
    found = {}
    for order_id, record in zip(order_ids, raw, strict=True):
        if record is not None:
            try:
                found[order_id] = _status(record).status
            except msgspec.DecodeError:
                continue
    return found


def _confirmed_orders(event_id: str, wanted: set[str], raws: Iterable[str]) -> list[Order]:
    orders: dict[str, Order] = {}
    for raw in raws:
        try:
            order = decode_order(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if (
            order.event_id == event_id
            and order.status is OrderStatus.CONFIRMED
            and any(t.ticket_id in wanted for t in order.tickets)
        ):
            orders.setdefault(order.order_id, order)  # newest first: the first one seen
    return list(orders.values())


async def commit_recent(
    pool: asyncpg.Pool, redis: RedisClient, event_id: str, ticket_ids: Iterable[str]
) -> int:
    """Commit the confirmed, not yet committed orders of these tickets; how many were.

    Orders whose Redis record says anything but confirmed (refunding, refunded) are left
    to the committer: a ticket is never made valid here that the stream later takes back.
    """
    wanted = set(ticket_ids)
    orders = _confirmed_orders(
        event_id, wanted, await find_uncommitted(redis, event_id, sorted(wanted))
    )
    if not orders:
        return 0
    status = await _current_status(redis, event_id, [o.order_id for o in orders])
    orders = [o for o in orders if status.get(o.order_id, "confirmed") == "confirmed"]
    try:
        batch = prepared(orders)
    except Malformed as exc:
        log.warning("check-in: an uncommitted order of event %s is malformed: %s", event_id, exc)
        return 0
    if not batch:
        return 0
    async with pool.acquire() as conn:
        try:
            # One transaction, as the committer's; executemany needs no temporary tables
            # on this pooled connection (a proxy of one: the writer needs nothing else).
            await write_executemany(cast(asyncpg.Connection, conn), merge(batch))
        except ROW_ERRORS as exc:
            # The committer will fail the same rows and dead-letter them, loudly.
            log.warning("check-in: could not commit orders of event %s early: %s", event_id,
                        describe(exc))  # fmt: skip
            return 0
    log.info("check-in committed %d order(s) of event %s ahead of the committer", len(batch),
             event_id)  # fmt: skip
    return len(batch)
