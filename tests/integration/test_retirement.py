"""Ended events leave the armed set, so the per-second work stays flat; a late payment of
a retired event still reaches Postgres. In a Redis database of their own: retirement and
an every-event committer walk all armed events, and the session's others are not theirs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.config import Settings
from onsale.events import retirement
from onsale.events.retirement import RetiredScan, Retirer
from onsale.gateway.app import create_app
from onsale.gateway.services import tick
from onsale.inventory import Inventory
from onsale.queue.room import WaitingRoom
from tests.integration.api_support import admitted, bearer, create, iso
from tests.integration.commit_support import (
    drained,
    own_redis,
    running,
    until,
    url_with_db,
)
from tests.integration.stripe_support import pay, signed

Client = AsyncTestClient[Litestar]
BUYER = {"email": "ada@example.com", "name": "Ada Lovelace"}


@pytest.fixture
async def mine(redis_url: str) -> AsyncIterator[Any]:
    async with own_redis(redis_url) as client:
        yield client


@pytest.fixture
async def gateway(settings: Settings, mine: Any) -> AsyncIterator[Client]:
    """A gateway on the same Redis database as ``mine``."""
    own = msgspec.structs.replace(
        settings, redis=msgspec.structs.replace(settings.redis, url=url_with_db(settings.redis.url))
    )
    async with AsyncTestClient(app=create_app(own)) as c:
        yield c


class CountingInventory(Inventory):
    """Which events a tick sweeps."""

    def __init__(self, redis: Any) -> None:
        super().__init__(redis)
        self.swept: list[str] = []

    async def sweep(self, event_id: str, limit: int = 10_000) -> int:
        self.swept.append(event_id)
        return await super().sweep(event_id, limit)


async def walked_by_tick(redis: Any, pool: asyncpg.Pool | None = None) -> list[str]:
    """One tick, as a gateway runs it (retiring ended events when it is its round); the
    events it swept."""
    await redis.delete(keys.RETIRE_LOCK)  # the test gateway's own tick may hold the round
    inventory = CountingInventory(redis)
    await tick(inventory, WaitingRoom(redis), Retirer(redis, pool, every_s=0.001))
    return inventory.swept


async def pending_order(c: Client, admin: dict[str, str], event_id: str, tier_id: str) -> Any:
    """Admitted, one ticket held, checked out (a PaymentIntent), then the hold let go: an
    order whose payment will arrive after its hold."""
    token = (await admitted(c, event_id))["admission_token"]
    body = {"items": [{"tier_id": tier_id, "quantity": 1}]}
    hold = await c.post(f"/api/events/{event_id}/holds", json=body, headers=bearer(token))
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["hold_id"]
    order = await c.post(
        f"/api/holds/{hold_id}/checkout", json=BUYER, headers={"Idempotency-Key": hold_id}
    )
    assert order.status_code == 201, order.text
    released = await c.delete(f"/api/holds/{hold_id}", headers=bearer(token))
    assert released.status_code == 204, released.text
    return order.json()


async def admissions_end(redis: Any, event_id: str) -> None:
    """Every live admission of the event runs out now (as if its time had come)."""
    active = await redis.zrange(keys.queue_active(event_id), 0, -1)
    if active:
        await redis.zadd(keys.queue_active(event_id), dict.fromkeys(active, 1))


async def paid_late(c: Client, stripe_url: str, event_id: str, order: dict[str, Any]) -> None:
    pi = order["payment"]["payment_intent_id"]
    assert await pay(stripe_url, pi) == "succeeded"
    intent = {
        "id": pi,
        "amount": order["amount"],
        "amount_received": order["amount"],
        "currency": order["currency"].lower(),
        "metadata": {"event_id": event_id, "order_id": order["order_id"]},
    }
    body, headers = signed("payment_intent.succeeded", intent)
    r = await c.post("/api/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 200, r.text


async def order_status(pool: asyncpg.Pool, order_id: str) -> str | None:
    status: str | None = await pool.fetchval(
        "SELECT status::text FROM orders WHERE id = $1", uuid.UUID(order_id)
    )
    return status


async def test_an_ended_event_is_retired_and_a_late_payment_still_reaches_postgres(
    gateway: Client,
    admin: dict[str, str],
    mine: Any,
    pool: asyncpg.Pool,
    database_url: str,
    stripe_url: str,
) -> None:
    c = gateway
    event = await create(
        c, admin,
        tiers=[{"name": "GA", "price": 4500, "capacity": 2}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60},
    )  # fmt: skip
    event_id, tier_id = event["id"], event["tiers"][0]["id"]
    late_confirm = await pending_order(c, admin, event_id, tier_id)
    late_refund = await pending_order(c, admin, event_id, tier_id)
    # Never more shoppers than tickets: the next buyer waits for these admissions to end.
    await admissions_end(mine, event_id)
    bought = await pending_order(c, admin, event_id, tier_id)
    await paid_late(c, stripe_url, event_id, bought)  # free tickets: it takes one again

    async with running(Committer(mine, database_url, CommitterOptions(block_ms=100))) as com:
        await drained(mine, event_id)
        assert await order_status(pool, bought["order_id"]) == "confirmed"

        # Live: the tick walks it, and nothing retires it.
        assert event_id in await walked_by_tick(mine, pool)
        assert await mine.sismember(keys.ARMED_EVENTS, event_id)
        metrics = (await c.get("/metrics")).text
        assert f'event="{event_id}"' in metrics

        # The show starts (Postgres has the start time) and the admissions run out.
        await pool.execute(
            "UPDATE events SET starts_at = now() - interval '1 minute' WHERE id = $1",
            uuid.UUID(event_id),
        )
        await admissions_end(mine, event_id)

        # One tick retires it; from then on neither the tick nor a scrape walk it.
        assert event_id in await walked_by_tick(mine, pool)
        assert not await mine.sismember(keys.ARMED_EVENTS, event_id)
        assert await mine.zscore(keys.RETIRED_EVENTS, event_id)
        assert event_id not in await walked_by_tick(mine, pool)
        metrics = (await c.get("/metrics")).text
        assert f'event="{event_id}"' not in metrics
        assert "onsale_events_retired 1.0" in metrics

        async def let_go() -> bool:
            return event_id not in com.events

        await until(let_go, "the committer to stop reading the retired event")

        # A payment whose hold ran out arrives: the tickets are taken again (a confirmed
        # entry), then one with none left (a refund entry). The committer sees both.
        await paid_late(c, stripe_url, event_id, late_confirm)
        await paid_late(c, stripe_url, event_id, late_refund)

        async def both_in_postgres() -> bool:
            statuses = [
                await order_status(pool, o["order_id"]) for o in (late_confirm, late_refund)
            ]
            return statuses == ["confirmed", "refunded"]

        await until(both_in_postgres, "the late payments to reach Postgres")
        await drained(mine, event_id)
    tickets = await pool.fetchval(
        "SELECT count(*) FROM tickets WHERE event_id = $1 AND status = 'valid'",
        uuid.UUID(event_id),
    )
    assert tickets == 2
    # Drained and ended again: the next round retires it again.
    await walked_by_tick(mine, pool)
    assert not await mine.sismember(keys.ARMED_EVENTS, event_id)
    assert await mine.zscore(keys.RETIRED_EVENTS, event_id)


async def test_retirement_needs_an_end_and_nothing_live(mine: Any, pool: asyncpg.Pool) -> None:
    from tests.integration.commit_support import create_event, sell

    event = await create_event(pool, mine)
    assert await retirement.retire_ended(mine, pool) == []  # on sale, starts in 30 days
    closes_ms = await mine.hget(keys.onsale(event.id), "closes_ms")
    assert closes_ms == "0"
    await mine.hset(keys.onsale(event.id), "closes_ms", 1)  # the sale has closed

    # Sold, and the committer has not written it: not idle.
    await sell(mine, event, 2)
    assert await retirement.retire_ended(mine, pool) == []
    assert (await retirement.activity(mine, event.id)).uncommitted
    # A live hold: not idle either.
    await mine.delete(keys.orders_stream(event.id))
    hold = await Inventory(mine).hold(event.id, {event.tiers[0].id: 1})
    assert await retirement.retire_ended(mine, pool) == []
    await Inventory(mine).release(event.id, hold.hold_id)
    # Ended and idle: retired, once, however many gateways ask.
    assert await retirement.retire_ended(mine, pool) == [event.id]
    assert await retirement.retire_ended(mine, pool) == []
    generation = await mine.get(keys.ARMED_GENERATION)

    # A retired event with nothing to do stays retired; one with a live hold comes back.
    scan = RetiredScan(mine)
    assert await scan.step() == []
    hold = await Inventory(mine).hold(event.id, {event.tiers[0].id: 1})
    assert await scan.step() == [event.id]
    assert await mine.sismember(keys.ARMED_EVENTS, event.id)
    assert await mine.get(keys.ARMED_GENERATION) != generation
    assert await mine.zscore(keys.RETIRED_EVENTS, event.id) is None


async def _a_later_millisecond(redis: Any) -> None:
    """Returns once Redis's clock has moved to a later millisecond than when called."""
    seconds, micros = await redis.time()
    start = seconds * 1000 + micros // 1000
    deadline = time.monotonic() + 5
    while True:
        seconds, micros = await redis.time()
        if seconds * 1000 + micros // 1000 > start:
            return
        assert time.monotonic() < deadline, "Redis's clock stands still"


async def test_the_retired_set_is_bounded(mine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retirement, "MAX_RETIRED", 3)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    await mine.sadd(keys.ARMED_EVENTS, *ids)
    for event_id in ids:
        await mine.hset(keys.onsale(event_id), "closes_ms", 1)  # closed long ago
        # The set is scored by the millisecond of retirement: two in one millisecond tie
        # (and then sort by id), so each retires in a millisecond of its own.
        await _a_later_millisecond(mine)
        assert await retirement.retire_ended(mine) == [event_id]
    assert await mine.zcard(keys.RETIRED_EVENTS) == 3
    assert await mine.zrange(keys.RETIRED_EVENTS, 0, -1) == ids[2:]
    assert await retirement.retired_since(mine, 0) == ids[2:]


class HangingPool:
    """A Postgres that does not answer (an outage while connecting)."""

    async def fetch(self, *args: Any) -> Any:
        await asyncio.Event().wait()


async def test_a_postgres_outage_does_not_hold_up_the_tick(mine: Any) -> None:
    closed, live = str(uuid.uuid4()), str(uuid.uuid4())
    await mine.sadd(keys.ARMED_EVENTS, closed, live)
    await mine.hset(keys.onsale(closed), "closes_ms", 1)
    started = time.monotonic()
    retired = await retirement.retire_ended(mine, HangingPool())  # type: ignore[arg-type]
    assert time.monotonic() - started < retirement.POSTGRES_TIMEOUT_S + 5
    assert retired == [closed]  # by the sale's close alone
    assert await mine.sismember(keys.ARMED_EVENTS, live)
