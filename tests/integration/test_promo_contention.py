"""A code with 100 uses shared with a thousand buyers at once: exactly 100 get it.

Every call is a real EVALSHA of hold.lua on real Redis, from several clients (as several
gateways) with pools of connections, so the scripts really interleave at the server. The
tickets and the use are taken together: when tickets run out first, the code's uses stop
with them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from onsale import keys
from onsale.connections import redis_client
from onsale.inventory import Hold, HoldRejected, Inventory, Rejection, ReleaseOutcome, TierSpec
from tests.integration.inventory_support import forget

pytestmark = pytest.mark.slow

BUYERS = 1_000
USES = 100
CLIENTS = 4
CODE = "SHARED"


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    made = [redis_client(redis_url, max_connections=50) for _ in range(CLIENTS)]
    yield made
    for client in made:
        await client.aclose()


@pytest.fixture
async def event(redis: aioredis.Redis) -> AsyncIterator[str]:
    event_id = str(uuid.uuid4())
    yield event_id
    await forget(redis, event_id)


async def _armed(redis: aioredis.Redis, event: str, capacity: int) -> None:
    await Inventory(redis).arm(event, 600, [TierSpec("ga", capacity, 0, 1000)])
    await redis.hset(keys.promo(event), mapping={CODE: f"a|300|{USES}|0|0|", f"{CODE}:used": 0})


async def _rush(clients: list[aioredis.Redis], event: str, n: int, qty: int = 1) -> list[Any]:
    engines = [Inventory(c) for c in clients]
    calls = [
        engines[i % len(engines)].hold(event, [("ga", qty)], owner=f"b{i}", promo_code=CODE)
        for i in range(n)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    odd = [r for r in results if not isinstance(r, Hold | HoldRejected)]
    assert not odd, odd[:3]
    return results


async def _state(redis: aioredis.Redis, event: str) -> tuple[int, int, int]:
    used = int(await redis.hget(keys.promo(event), f"{CODE}:used") or 0)
    held = int(await redis.hget(keys.inventory(event), "ga:held") or 0)
    return used, held, await redis.hlen(keys.holds_promo(event))


async def test_a_thousand_buyers_share_a_hundred_uses(
    clients: list[aioredis.Redis], redis: aioredis.Redis, event: str
) -> None:
    await _armed(redis, event, capacity=10_000)
    results = await _rush(clients, event, BUYERS, qty=2)
    won = [r for r in results if isinstance(r, Hold)]
    why = Counter(
        (r.reason, r.tier_id) for r in results if isinstance(r, HoldRejected)
    )  # fmt: skip
    assert len(won) == USES
    assert why == Counter({(Rejection.PROMO_INVALID, "used_up"): BUYERS - USES})
    assert all(h.discount == 300 and h.amount == 1700 for h in won)
    # Each winner's tickets and nobody else's: both or neither.
    assert await _state(redis, event) == (USES, 2 * USES, USES)

    # Thirty give their use back while four hundred more try: never more than a hundred.
    engine = Inventory(clients[0])
    releases = [engine.release(event, h.hold_id) for h in won[:30]]
    rush = _rush(clients, event, 400, qty=2)
    released, again = await asyncio.gather(asyncio.gather(*releases), rush)
    assert all(r is ReleaseOutcome.RELEASED for r in released)
    assert sum(isinstance(r, Hold) for r in again) <= 30
    used, held, live = await _state(redis, event)
    assert used == live <= USES and held == 2 * live
    # Once the releases are done, another crowd takes what is left: exactly a hundred again.
    await _rush(clients, event, 400, qty=2)
    assert await _state(redis, event) == (USES, 2 * USES, USES)


async def test_when_tickets_run_out_first_the_uses_stop_with_them(
    clients: list[aioredis.Redis], redis: aioredis.Redis, event: str
) -> None:
    await _armed(redis, event, capacity=60)
    results = await _rush(clients, event, BUYERS)
    won = [r for r in results if isinstance(r, Hold)]
    assert len(won) == 60
    assert await _state(redis, event) == (60, 60, 60)
