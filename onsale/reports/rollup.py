"""The read model's upkeep: per event per minute rollups, kept by the committer.

Sales: after the committer's transactions, the minutes their orders fall in (the minute of
sale: ``confirmed_at``, else ``created_at``) are counted again from ``orders`` and
``order_items`` and replace their rollup rows. A recount, not an increment, so a replayed
batch, a refund or a reclaimed entry leaves the same figures; one advisory lock per event
orders the recounts of concurrent committers, so the last one always sees every commit.

Funnel: the waiting room's and checkout's counters as Redis has them at that moment
(cumulative), one row per event per minute. No Lua script writes anything for reports:

- joined: places given (the pre-queue's size before opening, the sequence after it);
- admitted: the waiting room's admissions;
- held: holds made (live ones plus finished ones);
- checkouts: orders made at checkout (pending or final);
- paid: entries on the orders stream but the refunds of late payments.

Both are batched: at most once per ``every_s`` (a second), and once more when the committer
has nothing to do, so they cost a launch next to nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any, cast

import asyncpg

from onsale import keys

log = logging.getLogger("onsale.reports")

#: Minutes and quarter hours are counted from this origin (UTC), whatever the time zone.
ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
SALE_TIME = "coalesce(o.confirmed_at, o.created_at)"
MINUTE_OF_SALE = f"date_bin('1 minute', {SALE_TIME}, {ORIGIN})"

#: Order ids kept for a later recount while Postgres refuses one; past this, the oldest are
#: dropped (``onsale`` reports then lag until those minutes see another order).
MAX_PENDING = 200_000

_TOUCHED = f"""
SELECT DISTINCT o.event_id, {MINUTE_OF_SALE} AS minute FROM orders o
WHERE o.id = ANY($1::uuid[])
"""
_EVENT_MINUTES = (
    f"SELECT DISTINCT o.event_id, {MINUTE_OF_SALE} AS minute FROM orders o WHERE o.event_id = $1"
)

_DELETE_SALES = """
DELETE FROM report_sales r USING unnest($1::uuid[], $2::timestamptz[]) AS t (event_id, minute)
WHERE r.event_id = t.event_id AND r.minute = t.minute
"""
_DELETE_TIERS = """
DELETE FROM report_tier_sales r
USING unnest($1::uuid[], $2::timestamptz[]) AS t (event_id, minute)
WHERE r.event_id = t.event_id AND r.minute = t.minute
"""
# One pass over the orders of the touched minutes (by the orders_sale_time index).
_INSERT_SALES = f"""
INSERT INTO report_sales
    (event_id, minute, orders, tickets, revenue, discount, refunded_orders, refunded)
SELECT t.event_id, t.minute,
       count(*) FILTER (WHERE o.status = 'confirmed'),
       coalesce(sum(q.tickets) FILTER (WHERE o.status = 'confirmed'), 0),
       coalesce(sum(o.amount) FILTER (WHERE o.status = 'confirmed'), 0),
       coalesce(sum(o.discount) FILTER (WHERE o.status = 'confirmed'), 0),
       count(*) FILTER (WHERE o.status = 'refunded'),
       coalesce(sum(o.amount) FILTER (WHERE o.status = 'refunded'), 0)
FROM unnest($1::uuid[], $2::timestamptz[]) AS t (event_id, minute)
JOIN orders o ON o.event_id = t.event_id
     AND {SALE_TIME} >= t.minute AND {SALE_TIME} < t.minute + interval '1 minute'
CROSS JOIN LATERAL (
    SELECT coalesce(sum(i.quantity), 0) AS tickets FROM order_items i WHERE i.order_id = o.id
) q
WHERE o.status IN ('confirmed', 'refunded')
GROUP BY t.event_id, t.minute
"""
_INSERT_TIERS = f"""
INSERT INTO report_tier_sales (event_id, minute, tier_id, tickets, revenue)
SELECT t.event_id, t.minute, i.tier_id, sum(i.quantity), sum(i.quantity * i.unit_price)
FROM unnest($1::uuid[], $2::timestamptz[]) AS t (event_id, minute)
JOIN orders o ON o.event_id = t.event_id
     AND {SALE_TIME} >= t.minute AND {SALE_TIME} < t.minute + interval '1 minute'
JOIN order_items i ON i.order_id = o.id
WHERE o.status = 'confirmed'
GROUP BY t.event_id, t.minute, i.tier_id
"""
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('onsale.report:' || $1::uuid::text))"
# The counters only grow; a late or out-of-order reading never lowers a minute's figure.
_FUNNEL = f"""
INSERT INTO report_funnel (event_id, minute, joined, admitted, held, checkouts, paid)
SELECT e, date_bin('1 minute', now(), {ORIGIN}), j, a, h, c, p
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
     AS f (e, j, a, h, c, p)
WHERE EXISTS (SELECT 1 FROM events WHERE id = f.e)
ON CONFLICT (event_id, minute) DO UPDATE SET
    joined = greatest(report_funnel.joined, EXCLUDED.joined),
    admitted = greatest(report_funnel.admitted, EXCLUDED.admitted),
    held = greatest(report_funnel.held, EXCLUDED.held),
    checkouts = greatest(report_funnel.checkouts, EXCLUDED.checkouts),
    paid = greatest(report_funnel.paid, EXCLUDED.paid)
"""


async def recount(conn: asyncpg.Connection, touched: Iterable[tuple[Any, Any]]) -> int:
    """Count the given (event, minute)s again from the orders; returns how many."""
    pairs = sorted(set(touched))
    if not pairs:
        return 0
    events = [p[0] for p in pairs]
    minutes = [p[1] for p in pairs]
    async with conn.transaction():
        # A statement of its own, so the recount's snapshot is taken after the lock: it then
        # sees the commits of the committer that held it before.
        for event_id in sorted(set(events)):
            await conn.execute(_LOCK, event_id)
        await conn.execute(_DELETE_SALES, events, minutes)
        await conn.execute(_DELETE_TIERS, events, minutes)
        await conn.execute(_INSERT_SALES, events, minutes)
        await conn.execute(_INSERT_TIERS, events, minutes)
    return len(pairs)


async def recount_orders(conn: asyncpg.Connection, order_ids: list[str]) -> int:
    """Recount the minutes of these orders (as stored: a refund keeps its sale's minute)."""
    rows = await conn.fetch(_TOUCHED, order_ids)
    return await recount(conn, [(r["event_id"], r["minute"]) for r in rows])


async def recount_written(pool: asyncpg.Pool, order_ids: list[str]) -> None:
    """:func:`recount_orders` for orders written to Postgres outside the committer (a refund,
    an event's cancellation, ``onsale recover``), after their transaction. Best effort: the
    write stands whatever the report's fate; a failure is logged (:func:`rebuild` repairs)."""
    if not order_ids:
        return
    try:
        async with pool.acquire() as conn:
            await recount_orders(cast(asyncpg.Connection, conn), order_ids)
    except Exception as exc:  # a report must never fail the refund or recovery it follows
        log.warning("report rollups of %d order(s) not recounted (%s: %s)", len(order_ids),
                    type(exc).__name__, exc)  # fmt: skip


async def rebuild(conn: asyncpg.Connection, event_id: str) -> int:
    """Every minute of one event counted again (after a bulk load, or to repair)."""
    rows = await conn.fetch(_EVENT_MINUTES, uuid.UUID(event_id))
    return await recount(conn, [(r["event_id"], r["minute"]) for r in rows])


async def funnel_counts(redis: Any, event_ids: list[str]) -> list[tuple[int, ...]]:
    """(joined, admitted, held, checkouts, paid) of each event, read in one round trip per
    event (its keys share a slot)."""
    out: list[tuple[int, ...]] = []
    for event_id in event_ids:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.queue_state(event_id), "frozen", "seq", "admitted")
            pipe.zcard(keys.queue_pre(event_id))
            pipe.hlen(keys.holds_done(event_id))
            pipe.zcard(keys.holds_expiry(event_id))
            pipe.hlen(keys.orders(event_id))
            pipe.xlen(keys.orders_stream(event_id))
            pipe.hget(keys.order_counts(event_id), "refunded")
            (
                (frozen, seq, admitted),
                pre,
                done,
                live,
                orders,
                entries,
                refunded,
            ) = await pipe.execute()
        joined = int(seq or 0) if frozen == "1" or frozen == b"1" else int(pre)
        paid = max(int(entries) - int(refunded or 0), 0)
        out.append((joined, int(admitted or 0), int(done) + int(live), int(orders), paid))
    return out


async def record_funnel(conn: asyncpg.Connection, redis: Any, event_ids: list[str]) -> None:
    """This minute's funnel counters of the events (idempotent: the greater reading wins)."""
    if not event_ids:
        return
    counts = await funnel_counts(redis, event_ids)
    columns = list(zip(*counts, strict=True))
    await conn.execute(_FUNNEL, [uuid.UUID(e) for e in event_ids], *[list(c) for c in columns])


class Rollups:
    """The committer's side: orders committed are noted, and every ``every_s`` (or when the
    committer is idle) their minutes are recounted and their events' funnels recorded."""

    def __init__(self, redis: Any, every_s: float = 1.0) -> None:
        self.redis = redis
        self.every_s = every_s
        self._orders: dict[str, None] = {}  # insertion-ordered set: oldest dropped first
        self._events: set[str] = set()
        self._at = time.monotonic()

    def note(self, event_ids: Iterable[str], order_ids: Iterable[str]) -> None:
        self._events.update(event_ids)
        self._orders.update(dict.fromkeys(order_ids))
        while len(self._orders) > MAX_PENDING:
            del self._orders[next(iter(self._orders))]

    @property
    def pending(self) -> bool:
        return bool(self._orders or self._events)

    async def maybe_flush(self, conn: asyncpg.Connection, *, idle: bool = False) -> bool:
        """Flush when due (or ``idle`` and anything is pending); never raises: a failed
        flush keeps what it had for the next one. True when it flushed."""
        if not self.pending or (not idle and time.monotonic() - self._at < self.every_s):
            return False
        self._at = time.monotonic()
        orders, events = list(self._orders), sorted(self._events)
        try:
            await recount_orders(conn, orders)
            await record_funnel(conn, self.redis, events)
        except Exception as exc:  # reports must never stop the committer
            log.warning("report rollups not updated (%s: %s); trying again with the next "
                        "batch", type(exc).__name__, exc)  # fmt: skip
            return False
        for order_id in orders:
            self._orders.pop(order_id, None)
        self._events.difference_update(events)
        return True
