"""What the committer tests share: events, sales through the real confirm path, committers
running in-process or as ``onsale committer`` processes, and polls with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from onsale.bench.orders import bench_event, synthetic_order
from onsale.checkout.committer import Committer
from onsale.checkout.models import Order, encode
from onsale.checkout.stream import CommitLag, lag
from onsale.connections import redis_client
from onsale.events.models import Event
from onsale.inventory import Inventory
from tests.integration.inventory_support import forget as forget  # the one forget, re-exported

T = TypeVar("T")


async def create_event(
    pool: asyncpg.Pool, redis: Any, prices: tuple[int, ...] = (4500, 15000)
) -> Event:
    return await bench_event(pool, redis, prices, capacity=100_000, title="committer test")


#: A Redis database of their own for tests that walk every armed event (a committer that
#: reads them all, the retirement of ended events): the session's others are not theirs.
OWN_DB = 7


def url_with_db(url: str, db: int = OWN_DB) -> str:
    """The same Redis server, another numbered database."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        query = urllib.parse.urlencode(
            [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "db"] + [("db", db)]
        )
        return urllib.parse.urlunsplit(parts._replace(query=query))
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


@contextlib.asynccontextmanager
async def own_redis(redis_url: str) -> AsyncIterator[Any]:
    """A client of :data:`OWN_DB`, emptied before and after."""
    client = redis_client(url_with_db(redis_url))
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


async def sell(redis: Any, event: Event, n: int, seed: int = 0) -> list[Order]:
    """``n`` orders of 1 to 4 tickets, each held then confirmed by the real scripts."""
    inventory, rng = Inventory(redis), random.Random(seed)
    orders = [synthetic_order(event, rng) for _ in range(n)]
    slots = asyncio.Semaphore(50)

    async def one(order: Order) -> None:
        async with slots:
            hold = await inventory.hold(event.id, [(i.tier_id, i.quantity) for i in order.items])
            order.hold_id = hold.hold_id
            done = await inventory.confirm(event.id, hold.hold_id, order.order_id, encode(order))
            assert not done.duplicate

    await asyncio.gather(*(one(o) for o in orders))
    return orders


async def until(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy, or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def drained(redis: Any, event_id: str, timeout: float = 30.0) -> CommitLag:
    async def check() -> CommitLag | None:
        now = await lag(redis, event_id)
        return now if now.pending == 0 else None

    return await until(check, f"the committer to drain event {event_id}", timeout)


@contextlib.asynccontextmanager
async def running(committer: Committer) -> AsyncIterator[Committer]:
    """A committer in this event loop, stopped (its batch finished) on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(committer.run(stop))
    try:
        yield committer
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def committer_process(redis_url: str, database_url: str, *args: str) -> subprocess.Popen[str]:
    """``onsale committer`` as an operator runs it; its log goes to a pipe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_")}
    env |= {"ONSALE_REDIS_URL": redis_url, "ONSALE_DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "onsale", "committer", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def counts(pool: asyncpg.Pool, event_id: str) -> tuple[int, int, dict[str, int]]:
    """(orders, order items, valid tickets per tier) of an event in Postgres."""
    eid = uuid.UUID(event_id)
    orders = await pool.fetchval("SELECT count(*) FROM orders WHERE event_id = $1", eid)
    items = await pool.fetchval(
        "SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id "
        "WHERE o.event_id = $1",
        eid,
    )
    rows = await pool.fetch(
        "SELECT tier_id, count(*) AS n FROM tickets WHERE event_id = $1 AND status = 'valid' "
        "GROUP BY tier_id",
        eid,
    )
    return orders, items, {str(r["tier_id"]): r["n"] for r in rows}


async def sold(redis: Any, event_id: str) -> dict[str, int]:
    return {lv.tier_id: lv.sold for lv in await Inventory(redis).levels(event_id) if lv.sold}
