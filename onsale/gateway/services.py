"""The connections a gateway process holds, opened at startup and injected into handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio.cluster import RedisCluster

from onsale import signing
from onsale.config import Settings
from onsale.db import create_pool
from onsale.inventory import Inventory

log = logging.getLogger("onsale.gateway")

#: How often each gateway process returns expired holds to the pool.
SWEEP_EVERY_S = 1.0


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: Any
    pool: asyncpg.Pool
    inventory: Inventory
    signing_key: Ed25519PrivateKey


def redis_client(settings: Settings) -> Any:
    if settings.redis.cluster:
        return RedisCluster.from_url(settings.redis.url, decode_responses=True)
    return aioredis.Redis.from_url(
        settings.redis.url, decode_responses=True, max_connections=settings.redis.max_connections
    )


async def _sweep_forever(inventory: Inventory) -> None:
    """Expired holds go back to the pool even when nobody asks for a hold."""
    while True:
        try:
            await inventory.sweep_all()
        except (aioredis.RedisError, OSError) as exc:
            log.warning("hold sweep failed: %s", exc)
        await asyncio.sleep(SWEEP_EVERY_S)


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    key = signing.load(settings.security.signing_key)
    redis = redis_client(settings)
    # The pool connects lazily (min_size=0): a gateway starts, and says "not ready",
    # while Postgres is down, instead of failing to start.
    pool = await create_pool(settings.database.url, min_size=0, max_size=settings.database.pool_max)
    inventory = Inventory(redis)
    sweeper = asyncio.create_task(_sweep_forever(inventory))
    try:
        yield Services(settings, redis, pool, inventory, key)
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await pool.close()
        await redis.aclose()
