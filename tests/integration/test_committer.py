"""The write-behind committer against real Redis and Postgres: exactly once, idempotent,
through a killed committer and a Postgres outage, with poison entries dead-lettered."""

from __future__ import annotations

import logging
import random
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.bench.orders import synthetic_order
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.models import Item, Order, OrderStatus, encode
from onsale.checkout.stream import OrderStreams, lag
from onsale.checkout.writer import COPY, METHODS, WRITERS, batch_rows, create_temp_tables
from onsale.db import create_pool, migrate
from onsale.embedded import EmbeddedPostgres
from onsale.events.models import Event
from tests.integration.commit_support import (
    committer_process,
    counts,
    create_event,
    drained,
    forget,
    own_redis,
    running,
    sell,
    sold,
    until,
)
from tests.integration.process_support import clean_env, onsale


@pytest.fixture
async def event(pool: asyncpg.Pool, redis: Any) -> AsyncIterator[Event]:
    created = await create_event(pool, redis)
    yield created
    await forget(redis, created.id)


def options(event: Event, **kw: Any) -> CommitterOptions:
    return CommitterOptions(events=(event.id,), **kw)


@pytest.mark.parametrize("method", METHODS)
async def test_orders_committed_once_with_items_and_tickets(
    redis: Any, pool: asyncpg.Pool, database_url: str, event: Event, method: str
) -> None:
    orders = await sell(redis, event, 120)
    before = await lag(redis, event.id)
    assert before.pending == 120 and before.oldest_ms >= 0 and before.committed == 0

    async with running(Committer(redis, database_url, options(event, method=method))) as c:
        after = await drained(redis, event.id)
    assert c.committed == 120 and c.dead == 0
    assert after.committed == 120 and after.in_flight == 0 and after.oldest_ms == 0
    assert after.last_id and after.last_commit_ms > 0 and after.batch > 0

    n_orders, n_items, tickets = await counts(pool, event.id)
    assert n_orders == 120
    assert n_items == sum(len(o.items) for o in orders)
    assert tickets == await sold(redis, event.id)
    order = orders[0]
    row = await pool.fetchrow("SELECT * FROM orders WHERE id = $1", uuid.UUID(order.order_id))
    assert row is not None
    assert (row["status"], row["amount"], row["email"], row["payment_intent_id"]) == (
        "confirmed", order.amount, order.email, order.payment_intent_id,
    )  # fmt: skip
    assert row["confirmed_at"] is not None and str(row["event_id"]) == event.id
    ticket = order.tickets[0]
    t = await pool.fetchrow("SELECT * FROM tickets WHERE id = $1", uuid.UUID(ticket.ticket_id))
    assert t is not None
    assert (t["qr_secret"], str(t["tier_id"]), t["attendee_name"], t["attendee_email"]) == (
        ticket.qr, ticket.tier_id, order.name, order.email,
    )  # fmt: skip
    assert t["status"] == "valid" and str(t["order_id"]) == order.order_id


async def test_the_same_entries_twice_change_nothing(
    redis: Any, pool: asyncpg.Pool, database_url: str, event: Event
) -> None:
    orders = await sell(redis, event, 40)
    async with running(Committer(redis, database_url, options(event))):
        await drained(redis, event.id)
        first = await counts(pool, event.id)
        stamps = await pool.fetch("SELECT id, updated_at FROM orders WHERE event_id = $1 "
                                  "ORDER BY id", uuid.UUID(event.id))  # fmt: skip
        # The same orders on the stream again, as a replay or a second confirm would put them.
        for order in orders:
            await redis.xadd(
                keys.orders_stream(event.id), {"order": order.order_id, "data": encode(order)}
            )
        again = await drained(redis, event.id)
    assert again.committed == 80
    assert await counts(pool, event.id) == first
    assert await pool.fetch("SELECT id, updated_at FROM orders WHERE event_id = $1 "
                            "ORDER BY id", uuid.UUID(event.id)) == stamps  # fmt: skip
    # And the writers themselves, twice over the same rows, both ways.
    conn = await asyncpg.connect(database_url)
    try:
        await create_temp_tables(conn)
        for method in METHODS:
            await WRITERS[method](conn, batch_rows(orders))
    finally:
        await conn.close()
    assert await counts(pool, event.id) == first


async def test_a_refund_is_final(
    redis: Any, pool: asyncpg.Pool, database_url: str, event: Event
) -> None:
    (kept,) = await sell(redis, event, 1)  # confirmed, then refunded
    late = synthetic_order(event, random.Random(3))  # its "confirmed" arrives after the refund
    stream = keys.orders_stream(event.id)

    async def append(order: Order, status: OrderStatus) -> None:
        order.status = status
        await redis.xadd(stream, {"order": order.order_id, "data": encode(order)})
        await drained(redis, event.id)

    async with running(Committer(redis, database_url, options(event))):
        await drained(redis, event.id)
        await append(kept, OrderStatus.REFUNDED)
        await append(kept, OrderStatus.CONFIRMED)  # a stale entry must not undo the refund
        tickets, late.tickets = late.tickets, []
        await append(late, OrderStatus.REFUNDED)
        late.tickets = tickets
        await append(late, OrderStatus.CONFIRMED)
    for order in (kept, late):
        oid = uuid.UUID(order.order_id)
        status = await pool.fetchval("SELECT status::text FROM orders WHERE id = $1", oid)
        assert status == "refunded"
        statuses = await pool.fetch(
            "SELECT status::text AS s, count(*) AS n FROM tickets WHERE order_id = $1 "
            "GROUP BY status",
            oid,
        )
        assert [(r["s"], r["n"]) for r in statuses] == [("refunded", len(order.tickets))]


async def test_malformed_entries_go_to_the_dead_letters(
    redis: Any,
    pool: asyncpg.Pool,
    database_url: str,
    event: Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="onsale.committer")
    stream = keys.orders_stream(event.id)
    good = await sell(redis, event, 3)
    stranger = synthetic_order(event, random.Random(5))  # of a tier Postgres does not know
    stranger.items, stranger.tickets = [Item(str(uuid.uuid4()), 1, 100)], []
    bad = [
        {"order": "x", "data": "not json"},
        {"order": stranger.order_id, "data": encode(stranger).decode()},
        {"order": "no-data"},
    ]
    for fields in bad:
        await redis.xadd(stream, fields)
    more = await sell(redis, event, 3, seed=2)

    async with running(Committer(redis, database_url, options(event, max_attempts=2))) as c:
        after = await drained(redis, event.id)
    assert c.dead == 3 and after.dead == 3
    n_orders, _, _ = await counts(pool, event.id)
    assert n_orders == len(good) + len(more)
    dead = await redis.xrange(keys.dead_letters(event.id))
    reasons = " | ".join(fields["reason"] for _, fields in dead)
    assert len(dead) == 3
    assert "undecodable order" in reasons and "no data field" in reasons
    assert "ForeignKeyViolationError" in reasons and "after 2 attempts" in reasons
    assert {fields.get("data") for _, fields in dead} >= {"not json"}
    assert sum("DEAD LETTER" in r.getMessage() for r in caplog.records) == 3


async def test_entries_of_a_dead_consumer_are_reclaimed(
    redis: Any, pool: asyncpg.Pool, database_url: str, event: Event
) -> None:
    await sell(redis, event, 30)
    ghost = OrderStreams(redis, "ghost")  # takes a batch and dies without acknowledging
    await ghost.ensure_groups([event.id])
    taken = await ghost.read([event.id], 100, 0)
    assert len(taken) == 30 and (await lag(redis, event.id)).in_flight == 30
    # One of them deleted meanwhile (Redis 6.2 reclaims it as a nil): acknowledged, not stuck.
    await redis.xdel(keys.orders_stream(event.id), taken[0].id)

    quick = options(event, claim_idle_ms=100)
    async with running(Committer(redis, database_url, quick)):
        after = await drained(redis, event.id)
    assert after.in_flight == 0 and after.committed == 30
    assert (await counts(pool, event.id))[0] == 29
    assert not await redis.xpending_range(
        keys.orders_stream(event.id), keys.COMMITTERS, "-", "+", 10
    )


async def test_committers_side_by_side_share_the_work(
    redis: Any, pool: asyncpg.Pool, database_url: str, event: Event
) -> None:
    small = options(event, batch=50)
    async with (
        running(Committer(redis, database_url, small)) as one,
        running(Committer(redis, database_url, small)) as two,
    ):
        assert one.streams.consumer != two.streams.consumer
        await sell(redis, event, 600)
        after = await drained(redis, event.id)
    # Each entry went to exactly one of them: together they committed each order once.
    assert one.committed + two.committed == 600 == after.committed
    assert (await counts(pool, event.id))[2] == await sold(redis, event.id)


async def test_a_killed_committer_loses_nothing_and_duplicates_nothing(
    redis: Any, redis_url: str, pool: asyncpg.Pool, database_url: str, event: Event
) -> None:
    orders = await sell(redis, event, 5000)
    eid = uuid.UUID(event.id)

    async def committed() -> int:
        n: int = await pool.fetchval("SELECT count(*) FROM orders WHERE event_id = $1", eid)
        return n

    first = committer_process(redis_url, database_url, "--event", event.id, "--batch", "100")
    try:

        async def midway() -> bool:
            return await committed() > 0 and (await lag(redis, event.id)).in_flight > 0

        await until(midway, "the first committer to be half-way", timeout=60)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    at_kill = await committed()
    assert 0 < at_kill < 5000, "the committer must die in the middle of the orders"

    args = ["--event", event.id, "--batch", "500", "--claim-idle", "0.2"]
    second = committer_process(redis_url, database_url, *args)
    try:
        after = await drained(redis, event.id, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        _, log = second.communicate(timeout=30)
    assert second.returncode == 0, log
    assert "stopped" in log

    n_orders, n_items, tickets = await counts(pool, event.id)
    assert n_orders == 5000 and await committed() == 5000
    assert n_items == sum(len(o.items) for o in orders)
    assert tickets == await sold(redis, event.id)
    assert after.committed == 5000 and after.in_flight == 0


async def test_a_postgres_outage_loses_nothing(
    redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="onsale.committer")
    # A Postgres of its own to stop and start. Not under pytest's basetemp (0700): as root
    # the server runs as nobody.
    root = Path(tempfile.mkdtemp(prefix="onsale-outage-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root, database="outage", durable=False)
    event: Event | None = None
    try:
        url = server.start()
        await migrate.apply(url)
        pg = await create_pool(url)
        try:
            event = await create_event(pg, redis)
        finally:
            await pg.close()
        quick = options(event, max_backoff_s=0.2)
        async with running(Committer(redis, url, quick)) as c:
            await sell(redis, event, 50)
            await drained(redis, event.id)

            server.stop()
            await sell(redis, event, 150, seed=1)  # the on-sale goes on
            await until(lambda: _at_least(c, 3), "a few failed retries")
            assert (await lag(redis, event.id)).pending >= 150
            downs = [r for r in caplog.records if "unavailable" in r.getMessage()]
            assert len(downs) == 1, "one line when Postgres goes away, not one per retry"
            assert downs[0].levelno == logging.ERROR

            server.start()
            after = await drained(redis, event.id)
        assert sum("is back" in r.getMessage() for r in caplog.records) == 1
        assert after.committed == 200
        pg = await create_pool(url)
        try:
            n_orders, _, tickets = await counts(pg, event.id)
        finally:
            await pg.close()
        assert n_orders == 200
        assert tickets == await sold(redis, event.id)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        if event is not None:
            await forget(redis, event.id)


async def _at_least(c: Committer, retries: int) -> bool:
    return c.retries >= retries


async def test_stats_and_readyz_tell_the_lag(
    client: AsyncTestClient[Litestar],
    admin: dict[str, str],
    redis: Any,
    database_url: str,
    event: Event,
) -> None:
    await sell(redis, event, 3)
    stats = (await client.get(f"/api/events/{event.id}/stats", headers=admin)).json()
    assert stats["committer_lag"]["pending"] == 3 and stats["committer_lag"]["oldest_ms"] >= 0
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["committer_lag"]["pending"] >= 3

    async with running(Committer(redis, database_url, options(event, method=COPY))):
        await drained(redis, event.id)
    stats = (await client.get(f"/api/events/{event.id}/stats", headers=admin)).json()
    assert stats["committer_lag"] == {"pending": 0, "oldest_ms": 0}
    assert stats["orders"] == {"confirmed": 3, "committed": 3}


async def test_a_new_event_is_read_at_once(
    redis_url: str, pool: asyncpg.Pool, database_url: str
) -> None:
    """Arming a new event reaches a running committer of every event without a poll: a
    ticket bought a second after the event was created is in Postgres moments later."""
    async with own_redis(redis_url) as mine:
        # The periodic re-read is an hour away: only noticing the change itself can help.
        every_event = CommitterOptions(refresh_s=3600, block_ms=100)
        async with running(Committer(mine, database_url, every_event)):
            for _ in range(2):  # the second one surely after the committer's first read
                event = await create_event(pool, mine)
                await sell(mine, event, 3)
                await drained(mine, event.id, timeout=20)
                n_orders, _, tickets = await counts(pool, event.id)
                assert n_orders == 3 and tickets == await sold(mine, event.id)


def test_committer_requires_its_settings() -> None:
    done = onsale("committer", env=clean_env())
    assert done.returncode == 2
    assert done.stderr == (
        "onsale: missing required environment variable(s): ONSALE_REDIS_URL, ONSALE_DATABASE_URL\n"
    )
