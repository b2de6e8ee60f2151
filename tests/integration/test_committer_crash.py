"""A committer that dies at the worst moment, deterministically: its batch is committed in
Postgres and not yet acknowledged in Redis. Another committer reclaims the entries and
writes them again; nothing is duplicated, lost or dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from onsale import keys
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.stream import Entry, lag
from onsale.events.models import Event
from tests.integration.commit_support import (
    counts,
    create_event,
    drained,
    forget,
    running,
    sell,
    sold,
)


class Crash(Exception):
    """The committer's process dying between its commit and its acknowledgement."""


@pytest.fixture
async def event(pool: asyncpg.Pool, redis: Any) -> AsyncIterator[Event]:
    created = await create_event(pool, redis)
    yield created
    await forget(redis, created.id)


async def orders_in_postgres(pool: asyncpg.Pool, event_id: str) -> int:
    n: int = await pool.fetchval(
        "SELECT count(*) FROM orders WHERE event_id = $1", uuid.UUID(event_id)
    )
    return n


async def mails_in_postgres(pool: asyncpg.Pool, event_id: str) -> tuple[int, int]:
    """(confirmation e-mails, distinct orders they are for) of the event's orders."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT m.order_id) AS orders FROM outbox m "
        "JOIN orders o ON o.id = m.order_id WHERE o.event_id = $1",
        uuid.UUID(event_id),
    )
    assert row is not None
    return row["n"], row["orders"]


async def test_a_crash_between_commit_and_ack_is_reclaimed_once(
    redis: Any, pool: asyncpg.Pool, database_url: str, event: Event
) -> None:
    orders = await sell(redis, event, 200)
    seen: dict[str, Any] = {}

    async def crash(batch: list[Entry]) -> None:
        # The batch is in Postgres (committed: another connection sees it) and every one
        # of its entries is still pending in Redis: then the process dies.
        seen["batch"] = len(batch)
        seen["in_postgres"] = await orders_in_postgres(pool, event.id)
        seen["in_flight"] = (await lag(redis, event.id)).in_flight
        raise Crash

    first = Committer(redis, database_url, CommitterOptions(events=(event.id,), batch=50))
    first.after_commit = crash
    with pytest.raises(Crash):
        await asyncio.wait_for(first.run(asyncio.Event()), 30)
    assert seen == {"batch": 50, "in_postgres": 50, "in_flight": 50}
    left = await lag(redis, event.id)
    assert left.in_flight == 50 and left.pending == 200 and left.committed == 0
    assert first.committed == 0, "nothing was acknowledged"

    # A second committer, which takes entries idle for 0.1 s as a dead committer's.
    quick = CommitterOptions(events=(event.id,), claim_idle_ms=100)
    async with running(Committer(redis, database_url, quick)) as second:
        after = await drained(redis, event.id)

    # Nothing lost, nothing twice: each order once, its items and tickets once, and one
    # confirmation e-mail per order, although 50 of them were written twice.
    n_orders, n_items, tickets = await counts(pool, event.id)
    assert n_orders == 200
    assert n_items == sum(len(o.items) for o in orders)
    assert tickets == await sold(redis, event.id)
    assert await mails_in_postgres(pool, event.id) == (200, 200)
    # Nothing dead-lettered, nothing left pending; the reclaimed entries acknowledged once.
    assert second.dead == 0 and after.dead == 0
    assert await redis.xlen(keys.dead_letters(event.id)) == 0
    assert after.in_flight == 0 and after.committed == 200 == second.committed
    assert not await redis.xpending_range(
        keys.orders_stream(event.id), keys.COMMITTERS, "-", "+", 10
    )
