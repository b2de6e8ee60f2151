"""Redis restarted from its append-only file (``appendfsync always``), after SIGTERM and after
SIGKILL, in the middle of an on-sale: holds, sales, admissions and an unacknowledged
committer backlog are all there afterwards, and a gateway and a committer carry on."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.stream import OrderStreams, lag
from onsale.config import Settings
from onsale.embedded import EmbeddedRedis
from onsale.gateway.app import create_app
from tests.integration.api_support import BUYER, Client, admitted, bearer, create, iso
from tests.integration.commit_support import counts, drained, sold

Snapshot = dict[str, Any]


@pytest.fixture(scope="module")
def durable_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of its own that fsyncs its AOF before every reply. For the module:
    it outlives each test's clean-up of the events it created (tests/conftest.py)."""
    root = Path(tempfile.mkdtemp(prefix="onsale-aof-"))
    server = EmbeddedRedis(root, durable=True, appendfsync="always")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def own_settings(settings: Settings, durable_redis: EmbeddedRedis) -> Settings:
    """The session's settings (the same signing key: admissions stay valid) on that Redis."""
    return msgspec.structs.replace(
        settings, redis=msgspec.structs.replace(settings.redis, url=durable_redis.url)
    )


async def snapshot(redis: Any) -> Snapshot:
    """Every key of the server and what it holds, read type by type (not DUMP: its bytes
    may differ with an encoding while the content is the same)."""
    out: Snapshot = {}
    async for key in redis.scan_iter(count=1000):
        kind = await redis.type(key)
        value: Any
        if kind == "string":
            value = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "set":
            value = sorted(await redis.smembers(key))
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "stream":
            groups = [
                {k: v for k, v in g.items() if k != "lag"} for g in await redis.xinfo_groups(key)
            ]
            pending = [
                (p["message_id"], p["consumer"], p["times_delivered"])
                for g in groups
                for p in await redis.xpending_range(key, g["name"], "-", "+", 10_000)
            ]
            value = (await redis.xrange(key), groups, pending)
        else:
            raise AssertionError(f"{key}: a {kind} this test does not read")
        out[key] = (kind, value, await redis.pttl(key) > 0)
    return out


async def hold(client: Client, event_id: str, token: str, tier_id: str, qty: int) -> str:
    body = {"items": [{"tier_id": tier_id, "quantity": qty}]}
    r = await client.post(f"/api/events/{event_id}/holds", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    hold_id: str = r.json()["hold_id"]
    return hold_id


async def buy(client: Client, hold_id: str) -> None:
    r = await client.post(
        f"/api/holds/{hold_id}/checkout", json=BUYER, headers={"Idempotency-Key": hold_id}
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "confirmed", r.text


async def restarted(server: EmbeddedRedis, sig: signal.Signals) -> None:
    """Stopped by ``sig`` (SIGTERM: an orderly shutdown; SIGKILL: a crash), then started
    again on the same data directory."""
    assert server.proc is not None
    server.proc.send_signal(sig)
    assert server.proc.wait(timeout=30) in (0, -signal.SIGKILL)
    server.start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_everything_survives_a_restart_and_work_goes_on(
    own_settings: Settings,
    durable_redis: EmbeddedRedis,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    database_url: str,
    sig: signal.Signals,
) -> None:
    url = durable_redis.url
    # An on-sale in progress, through the gateway: four admitted buyers, one with a live
    # hold, two who bought (free tickets: confirmed at checkout, onto the stream; their
    # admission ends with the purchase), one yet to choose.
    async with AsyncTestClient(app=create_app(own_settings)) as client:
        event = await create(
            client,
            admin,
            tiers=[{"name": "Free", "price": 0, "capacity": 100, "per_order_limit": 6}],
            onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 600},
        )
        event_id, tier = event["id"], event["tiers"][0]["id"]
        tokens = [(await admitted(client, event_id))["admission_token"] for _ in range(4)]
        live = await hold(client, event_id, tokens[0], tier, 2)
        for token in tokens[1:3]:
            await buy(client, await hold(client, event_id, token, tier, 3))
    # The gateway is stopped (its periodic tick would change the room meanwhile).

    redis = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        # A committer took one sale and died without acknowledging it; the other is unread.
        ghost = OrderStreams(redis, "ghost")
        await ghost.ensure_groups([event_id])
        assert len(await ghost.read([event_id], 1, 0)) == 1
        before_lag = await lag(redis, event_id)
        assert (before_lag.pending, before_lag.in_flight) == (2, 1)
        before = await snapshot(redis)
    finally:
        await redis.aclose()
    assert contents(before, event_id) == (1, 2, 2, 1, 1)

    await restarted(durable_redis, sig)

    redis = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        assert await snapshot(redis) == before
        # A gateway on the restarted Redis: the live hold is bought, the admission of the
        # buyer yet to choose still lets them hold, a newcomer gets in and buys.
        async with AsyncTestClient(app=create_app(own_settings)) as client:
            await buy(client, live)
            newcomer = (await admitted(client, event_id))["admission_token"]
            await buy(client, await hold(client, event_id, newcomer, tier, 1))
            await hold(client, event_id, tokens[3], tier, 1)
        # A committer on the restarted Redis: the backlog, the ghost's entry and the new
        # sales reach Postgres, once each.
        committer = Committer(
            redis, database_url, CommitterOptions(events=(event_id,), claim_idle_ms=100)
        )
        stop = asyncio.Event()
        task = asyncio.create_task(committer.run(stop))
        try:
            after = await drained(redis, event_id)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        assert after.committed == 4 and after.dead == 0 and after.in_flight == 0
        n_orders, _, tickets = await counts(pool, event_id)
        assert n_orders == 4
        assert tickets == await sold(redis, event_id) == {tier: 3 + 3 + 2 + 1}
    finally:
        await redis.aclose()


def contents(before: Snapshot, event_id: str) -> tuple[int, ...]:
    """Live holds, admissions, stream entries, consumer groups and pending entries in a
    snapshot: what the test means it to hold (else an empty Redis would "survive" too)."""
    holds = before[keys.holds_data(event_id)][1]
    admissions = before[keys.queue_active(event_id)][1]
    stream, groups, pending = before[keys.orders_stream(event_id)][1]
    return len(holds), len(admissions), len(stream), len(groups), len(pending)
