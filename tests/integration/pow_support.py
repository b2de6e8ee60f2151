"""The bot tax in tests: fetch a challenge, solve it as a browser would (ALTCHA's solver)."""

from __future__ import annotations

from typing import Any

import altcha
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys

Client = AsyncTestClient[Litestar]


async def challenge(client: Client, event_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/events/{event_id}/challenge")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def solve(made: dict[str, Any]) -> str:
    """The ALTCHA payload (base64 JSON) a solved challenge gives, as the widget sends it."""
    parsed = altcha.Challenge.from_dict(made)
    solution = altcha.solve_challenge(parsed, timeout=30)
    assert solution is not None
    return altcha.Payload(parsed, solution).to_base64()


async def solved(client: Client, event_id: str) -> str:
    return solve(await challenge(client, event_id))


async def snapshot(redis: Any, event_id: str) -> dict[bytes, bytes]:
    """Every Redis key of an event with its serialized value (``DUMP``): what a refused join
    must not change. Read by a client of its own that leaves values as bytes (the room may
    keep binary ones)."""
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    raw = aioredis.Redis.from_pool(aioredis.ConnectionPool(pool.connection_class, **kwargs))
    try:
        out: dict[bytes, bytes] = {}
        async for key in raw.scan_iter(match=keys.tag(event_id) + "*", count=1000):
            out[key] = await raw.dump(key)
        return out
    finally:
        await raw.aclose()
