"""The orders of ``onsale bench commit`` (and of the committer's tests): a bench event in
both stores and its removal, synthetic confirmed orders, confirms at a steady rate through
the real path (a hold, then the confirm script), and Postgres checked against Redis."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from onsale import keys
from onsale.checkout.models import Item, Order, OrderStatus, Ticket, encode
from onsale.events import catalog
from onsale.events.models import Event, EventIn
from onsale.inventory import Inventory


async def bench_event(
    pool: asyncpg.Pool,
    redis: Any,
    prices: Sequence[int] = (1000, 2000, 3000, 4000),
    capacity: int = 10_000_000,
    title: str = "bench commit",
) -> Event:
    """A fresh event on sale now, a tier per price, in Postgres and armed in Redis."""
    now = datetime.now(UTC)
    doc = {
        "title": title,
        "starts_at": (now + timedelta(days=30)).isoformat(),
        "currency": "USD",
        "tiers": [
            {"name": f"tier {i}", "price": price, "capacity": capacity}
            for i, price in enumerate(prices)
        ],
        "onsale": {"opens_at": now.isoformat(), "admit_per_minute": 1000},
    }
    return await catalog.create(pool, redis, Inventory(redis), msgspec.convert(doc, EventIn))


async def drop(pool: asyncpg.Pool, redis: Any, event_id: str) -> None:
    """The bench's event, gone from both stores (the servers may be someone's own)."""
    await redis.delete(
        *keys.inventory_keys(event_id), *keys.queue_keys(event_id), keys.orders(event_id),
        keys.commit_state(event_id), keys.dead_letters(event_id),
    )  # fmt: skip
    await redis.srem(keys.ARMED_EVENTS, event_id)
    eid = uuid.UUID(event_id)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM tickets WHERE event_id = $1", eid)
        await conn.execute("DELETE FROM orders WHERE event_id = $1", eid)
        await conn.execute("DELETE FROM events WHERE id = $1", eid)


def synthetic_order(event: Event, rng: random.Random, hold_id: str = "") -> Order:
    """A confirmed order of 1 to 4 tickets over one or two tiers."""
    order_id = str(uuid.uuid4())
    counts: dict[str, int] = {}
    tiers = rng.sample(event.tiers, min(2, len(event.tiers)))
    for _ in range(rng.randint(1, 4)):
        tier = rng.choice(tiers)
        counts[tier.id] = counts.get(tier.id, 0) + 1
    prices = {t.id: t.price for t in event.tiers}
    items = [Item(tier, qty, prices[tier]) for tier, qty in counts.items()]
    tickets = [
        Ticket(tid, tier, f"ticket:{tid}:v1:bench")
        for tier, qty in counts.items()
        for tid in (str(uuid.uuid4()) for _ in range(qty))
    ]
    now = int(time.time() * 1000)
    return Order(
        order_id=order_id,
        event_id=event.id,
        hold_id=hold_id or str(uuid.uuid4()),
        email="buyer@example.com",
        name="Bench Buyer",
        amount=sum(i.quantity * i.unit_price for i in items),
        currency="USD",
        items=items,
        status=OrderStatus.CONFIRMED,
        payment_intent_id=f"pi_bench_{order_id}",
        created_ms=now,
        confirmed_ms=now,
        tickets=tickets,
    )


async def check(pool: asyncpg.Pool, redis: Any, event_id: str, orders: int) -> list[str]:
    """What is wrong in Postgres after a drain: missing or extra orders, tickets != sold."""
    eid = uuid.UUID(event_id)
    problems = []
    found = await pool.fetchval("SELECT count(*) FROM orders WHERE event_id = $1", eid)
    if found != orders:
        problems.append(f"{found} orders in Postgres, {orders} confirmed")
    levels = await Inventory(redis).levels(event_id)
    if any(lv.sold for lv in levels):  # the throughput part does not sell through Redis
        rows = await pool.fetch(
            "SELECT tier_id, count(*) AS n FROM tickets WHERE event_id = $1 GROUP BY tier_id",
            eid,
        )
        tickets = {str(r["tier_id"]): r["n"] for r in rows}
        for lv in levels:
            if tickets.get(lv.tier_id, 0) != lv.sold:
                problems.append(f"tier {lv.tier_id}: sold {lv.sold}, {tickets.get(lv.tier_id)}")
    return problems


async def confirm_at_rate(
    inventory: Inventory, event: Event, rate: int, seconds: float
) -> tuple[int, float]:
    """Hold then confirm, ``rate`` orders a second for ``seconds``: (confirmed, elapsed)."""
    rng = random.Random(11)
    slots = asyncio.Semaphore(64)
    done = 0

    async def one() -> None:
        nonlocal done
        async with slots:
            order = synthetic_order(event, rng)
            items = [(i.tier_id, i.quantity) for i in order.items]
            hold = await inventory.hold(event.id, items)
            order.hold_id = hold.hold_id
            await inventory.confirm(event.id, hold.hold_id, order.order_id, encode(order))
            done += 1

    started, launched = time.monotonic(), 0
    async with asyncio.TaskGroup() as group:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            for _ in range(due - launched):
                group.create_task(one())
            launched = due
            await asyncio.sleep(0.005)
    return done, time.monotonic() - started
