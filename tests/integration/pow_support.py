"""The bot tax in tests: fetch a challenge, solve it as a browser would (ALTCHA's solver)."""

from __future__ import annotations

from typing import Any

import altcha
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


async def snapshot(redis: Any, event_id: str) -> dict[str, Any]:
    """Every Redis key of an event with its content: what a refused join must not change."""
    out: dict[str, Any] = {}
    async for key in redis.scan_iter(match=keys.tag(event_id) + "*"):
        kind = await redis.type(key)
        if kind == "string":
            out[key] = await redis.get(key)
        elif kind == "hash":
            out[key] = await redis.hgetall(key)
        elif kind == "set":
            out[key] = await redis.smembers(key)
        elif kind == "zset":
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = kind
    return out
