"""ONSALE_REDIS_CLUSTER=1: the engine unchanged on a real three-primary Redis Cluster, with
events on different nodes: a thousand holders at once (also after SCRIPT FLUSH everywhere),
and buyers from join to orders in Postgres through the committer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.payments import Payments
from onsale.checkout.reconcile import reconcile_event
from onsale.config import Settings
from onsale.connections import redis_client
from onsale.gateway.app import create_app
from onsale.inventory import Hold, HoldRejected, Inventory, Rejection
from onsale.scripts import sha
from tests.integration.api_support import create, iso, paid_order
from tests.integration.cluster_support import node_of, redis_cluster
from tests.integration.commit_support import counts, drained, running, sold

Client = AsyncTestClient[Litestar]

HOLDERS = 1_200
CAPACITY = 100
CLIENTS = 4


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with redis_cluster() as ports:
        yield ports


@pytest.fixture(scope="module")
def cluster_settings(settings: Settings, cluster_ports: list[int]) -> Settings:
    """The session's settings (Postgres, Stripe, keys) with ONSALE_REDIS_CLUSTER=1."""
    url = f"redis://127.0.0.1:{cluster_ports[0]}"
    redis = msgspec.structs.replace(settings.redis, url=url, cluster=True)
    return msgspec.structs.replace(settings, redis=redis)


@pytest.fixture(scope="module")
async def cluster(cluster_settings: Settings) -> AsyncIterator[Any]:
    client = redis_client(cluster_settings.redis.url, cluster=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
async def cluster_client(cluster_settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(cluster_settings)) as c:
        yield c


async def node(cluster: Any, event_id: str) -> int:
    """Which primary serves the event's keys, by the cluster's own hashing."""
    slot = int(await cluster.execute_command("CLUSTER KEYSLOT", keys.inventory(event_id)))
    return node_of(slot)


async def spread(
    client: Client, admin: dict[str, str], cluster: Any, nodes: int, **changes: Any
) -> list[dict[str, Any]]:
    """Events made by the app until ``nodes`` primaries serve one each; one per primary."""
    found: dict[int, dict[str, Any]] = {}
    for _ in range(60):
        event = await create(client, admin, **changes)
        found.setdefault(await node(cluster, event["id"]), event)
        if len(found) == nodes:
            return [found[n] for n in sorted(found)]
    raise AssertionError(f"events on {len(found)} primaries only")


async def test_the_gateway_is_ready_on_a_cluster(cluster_client: Client) -> None:
    r = await cluster_client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["redis"] == "ok"


@pytest.mark.parametrize("flush", [False, True], ids=["scripts-loaded", "after-script-flush"])
async def test_exactly_capacity_holds_succeed_on_every_node(
    cluster_client: Client,
    admin: dict[str, str],
    cluster: Any,
    cluster_settings: Settings,
    cluster_ports: list[int],
    flush: bool,
) -> None:
    tier = {"name": "GA", "price": 1000, "capacity": CAPACITY, "per_order_limit": 1}
    events = await spread(cluster_client, admin, cluster, len(cluster_ports), tiers=[tier])
    # Several gateways' clients, each with its own connections to every node.
    clients = [redis_client(cluster_settings.redis.url, cluster=True) for _ in range(CLIENTS)]
    primaries = [aioredis.Redis(port=p, decode_responses=True) for p in cluster_ports]
    try:
        inventories = [Inventory(c) for c in clients]
        if flush:
            # Every node forgets the scripts the app used to arm the events: every EVALSHA
            # in flight meets NOSCRIPT, and must load the script where it runs, and retry.
            for primary in primaries:
                await primary.script_flush()
                assert await primary.script_exists(sha("holds")) == [False]
        calls = [
            inventories[i % CLIENTS].hold(event["id"], {event["tiers"][0]["id"]: 1})
            for event in events
            for i in range(HOLDERS)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for n, event in enumerate(events):
            mine = results[n * HOLDERS : (n + 1) * HOLDERS]
            held = [r for r in mine if isinstance(r, Hold)]
            refused = [r for r in mine if isinstance(r, HoldRejected)]
            failed = [r for r in mine if isinstance(r, BaseException) and r not in refused]
            assert not failed, failed[:3]
            assert len(held) + len(refused) == HOLDERS
            assert len({h.hold_id for h in held}) == CAPACITY
            assert Counter(r.reason for r in refused) == {Rejection.SOLD_OUT: HOLDERS - CAPACITY}
            [level] = await inventories[0].levels(event["id"])
            assert (level.capacity, level.held, level.sold) == (CAPACITY, CAPACITY, 0)
        # Holds asked for together go in batches (``holds``, scripts.Batches).
        for primary in primaries:
            assert await primary.script_exists(sha("holds")) == [True]
    finally:
        for c in [*clients, *primaries]:
            await c.aclose()


async def test_buyers_on_events_on_different_nodes_reach_postgres(
    cluster_client: Client,
    admin: dict[str, str],
    cluster: Any,
    cluster_settings: Settings,
    pool: asyncpg.Pool,
    stripe_url: str,
) -> None:
    capacity, buyers = 4, 6
    events = await spread(
        cluster_client,
        admin,
        cluster,
        2,
        tiers=[{"name": "GA", "price": 2500, "capacity": capacity, "per_order_limit": 1}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 600_000, "hold_seconds": 120},
    )
    ids = tuple(e["id"] for e in events)
    options = CommitterOptions(events=ids, block_ms=100)
    committer = Committer(cluster, cluster_settings.database.url, options)
    async with running(committer):
        orders = await asyncio.gather(
            *(
                paid_order(cluster_client, stripe_url, e["id"], e["tiers"][0]["id"], 1, f"c{n}-{i}")
                for n, e in enumerate(events)
                for i in range(buyers)
            )
        )
        for event_id in ids:
            await drained(cluster, event_id)
    assert len([o for o in orders if o]) == capacity * len(events)

    payments = Payments(cluster_settings.stripe)
    try:
        for event in events:
            tier = event["tiers"][0]["id"]
            [level] = await Inventory(cluster).levels(event["id"])
            assert (level.sold, level.held) == (capacity, 0)
            assert await sold(cluster, event["id"]) == {tier: capacity}
            assert await counts(pool, event["id"]) == (capacity, capacity, {tier: capacity})
            async with pool.acquire() as conn:
                report = await reconcile_event(conn, cluster, payments, event["id"])
            assert report.differences == [], report.text()
    finally:
        await payments.aclose()


async def test_retirement_and_early_check_in_look_ups_on_a_cluster(
    cluster: Any, cluster_settings: Settings, pool: asyncpg.Pool
) -> None:
    """The retirement scripts (global keys in one slot, an event's keys in another) and
    check-in's look-up of uncommitted orders, on events of whatever nodes they land on."""
    from onsale.checkout.models import decode_order
    from onsale.checkout.stream import find_uncommitted
    from onsale.events import retirement
    from tests.integration.commit_support import create_event, sell, until

    events = [await create_event(pool, cluster) for _ in range(3)]
    for event in events:
        (order,) = await sell(cluster, event, 1)
        found = await find_uncommitted(cluster, event.id, [order.tickets[0].ticket_id])
        assert [decode_order(f).order_id for f in found] == [order.order_id]
    every_event = CommitterOptions(block_ms=100, refresh_s=3600)
    ids = {e.id for e in events}
    async with running(Committer(cluster, cluster_settings.database.url, every_event)) as c:
        for event in events:
            await drained(cluster, event.id)
            await cluster.hset(keys.onsale(event.id), "closes_ms", 1)
        assert ids <= set(await retirement.retire_ended(cluster, pool))
        assert not ids & set(await cluster.smembers(keys.ARMED_EVENTS))

        async def let_go() -> bool:
            return not ids & set(c.events)

        await until(let_go, "the committer to stop reading the retired events")
        # A late entry on a retired event: brought back, read, written.
        await sell(cluster, events[0], 1, seed=1)

        async def two_orders() -> bool:
            return (await counts(pool, events[0].id))[0] == 2

        await until(two_orders, "the late entry to reach Postgres")
    assert await cluster.sismember(keys.ARMED_EVENTS, events[0].id)
