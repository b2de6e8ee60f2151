"""Stripe's deliveries for one order race each other: succeeded, failed, and redeliveries of
both, all at once, signed as Stripe signs them. Whatever the interleaving, each order ends
with exactly one stream entry if any payment succeeded (none otherwise), the tier's sold
count is the confirmed orders' tickets, and the order's status is the right one.

Raced two ways: concurrently into a gateway on the test's loop (``asyncio.gather``), and over TCP
into a real ``onsale serve`` with two worker processes, so that two gateways handle
deliveries of the same order at the same moment. Hypothesis picks how many orders, which
deliveries each gets, and the order they are sent in.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.config import Settings
from onsale.gateway.app import create_app
from tests.conftest import ADMIN_TOKEN
from tests.integration.api_support import admitted, bearer, checkout, create, iso
from tests.integration.asgi_support import on_this_loop
from tests.integration.inventory_support import CREATED, forget
from tests.integration.page_support import paying_gateway
from tests.integration.stripe_support import intent_of, signed

Client = AsyncTestClient[Litestar]

SUCCEEDED, FAILED = "payment_intent.succeeded", "payment_intent.payment_failed"
#: One delivery: a Stripe event (its type), sent once or redelivered (the same signed body,
#: the same Stripe event id) a second time.
KINDS = (SUCCEEDED, FAILED, SUCCEEDED + "*2", FAILED + "*2")
QTY = 2

deliveries = st.lists(st.sampled_from(KINDS), min_size=1, max_size=6)
schedules = st.lists(deliveries, min_size=1, max_size=6)


@pytest.fixture(scope="module")
async def sale(client: Client, redis: aioredis.Redis) -> AsyncIterator[dict[str, Any]]:
    """One event for the module's races (kept past each test's clean-up, forgotten after)."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = await create(
        client,
        admin,
        starts_at=iso(30 * 86400),
        tiers=[{"name": "GA", "price": 4500, "capacity": 100_000}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 600},
    )
    CREATED[:] = [c for c in CREATED if c[1] != body["id"]]
    yield body
    await forget(redis, body["id"])


@pytest.fixture(scope="module")
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway on this loop: the deliveries ``asyncio.gather`` sends interleave in it."""
    async with on_this_loop(create_app(settings)) as http:
        yield http


@pytest.fixture(scope="module")
def two_gateways(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, stripe_url: str
) -> Iterator[str]:
    """``onsale serve --workers 2`` on the session's Redis, Postgres and Stripe emulator."""
    log = tmp_path_factory.mktemp("races") / "serve.log"
    with paying_gateway(log, settings.redis.url, settings.database.url, stripe_url) as base:
        yield base


async def pending_order(client: Client, event: dict[str, Any]) -> dict[str, Any]:
    """A buyer's order, checked out and awaiting payment (its PaymentIntent exists)."""
    token = (await admitted(client, event["id"]))["admission_token"]
    body = {"items": [{"tier_id": event["tiers"][0]["id"], "quantity": QTY}]}
    r = await client.post(f"/api/events/{event['id']}/holds", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    r = await checkout(client, r.json()["hold_id"], uuid.uuid4().hex)
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    assert order["status"] == "pending", order
    return order


def signed_deliveries(event_id: str, order: dict[str, Any], kinds: list[str]) -> list[Any]:
    out = []
    for kind in kinds:
        kind, _, times = kind.partition("*")
        body, headers = signed(kind, intent_of(event_id, order))
        out += [(body, headers)] * int(times or 1)
    return out


async def settled(redis: aioredis.Redis, event: dict[str, Any], orders: list[Any]) -> None:
    """Each order as its deliveries say, and the stream and sold count with it."""
    event_id = event["id"]
    entries = await redis.xrange(keys.orders_stream(event_id))
    on_stream: dict[str, int] = {}
    for _, fields in entries:
        on_stream[fields["order"]] = on_stream.get(fields["order"], 0) + 1
    for order, kinds in orders:
        paid = any(k.startswith(SUCCEEDED) for k in kinds)
        raw = await redis.hget(keys.orders(event_id), order["order_id"])
        status = json.loads(raw)["status"] if raw else None
        assert status == ("confirmed" if paid else "failed"), (order["order_id"], kinds, status)
        assert on_stream.get(order["order_id"], 0) == (1 if paid else 0), (kinds, on_stream)
    confirmed = sum(n for n in on_stream.values())
    sold = await redis.hget(keys.inventory(event_id), f"{event['tiers'][0]['id']}:sold")
    assert int(sold or 0) == QTY * confirmed
    assert all(n == 1 for n in on_stream.values()), on_stream


async def race(
    post: Any, redis: aioredis.Redis, client: Client, event: dict[str, Any], plan: Any
) -> None:
    schedule, shuffle = plan
    orders = [(await pending_order(client, event), kinds) for kinds in schedule]
    sends = [d for order, kinds in orders for d in signed_deliveries(event["id"], order, kinds)]
    shuffle.shuffle(sends)
    answers = await asyncio.gather(
        *(post("/api/webhooks/stripe", content=body, headers=headers) for body, headers in sends)
    )
    for r in answers:
        assert r.status_code == 200, r.text
    await settled(redis, event, orders)


RACES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@RACES
@given(plan=st.tuples(schedules, st.randoms(use_true_random=False)))
async def test_deliveries_race_in_one_gateway(
    plan: Any,
    client: Client,
    redis: aioredis.Redis,
    sale: dict[str, Any],
    gateway: httpx.AsyncClient,
) -> None:
    await race(gateway.post, redis, client, sale, plan)


@RACES
@given(plan=st.tuples(schedules, st.randoms(use_true_random=False)))
async def test_deliveries_race_across_gateway_processes(
    plan: Any, client: Client, redis: aioredis.Redis, sale: dict[str, Any], two_gateways: str
) -> None:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=two_gateways, limits=limits, timeout=30) as http:
        await race(http.post, redis, client, sale, plan)


async def test_many_orders_each_raced_every_way(
    client: Client, redis: aioredis.Redis, sale: dict[str, Any], gateway: httpx.AsyncClient
) -> None:
    """Scale: 20 orders, each with every kind of delivery twice over, all sent at once."""
    schedule = [list(KINDS) * 2 for _ in range(20)]
    await race(gateway.post, redis, client, sale, (schedule, random.Random(18)))
