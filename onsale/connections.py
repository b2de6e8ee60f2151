"""The Redis client every onsale process uses, configured in one place."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster


def redis_client(url: str, *, cluster: bool = False, max_connections: int = 64) -> Any:
    """A client with a blocking pool: a burst beyond ``max_connections`` waits, never fails.

    No per-command socket timeout: redis-py implements it with a timer per read, which cost
    about 15% of the client CPU of every hold (bench inventory). A dead Redis still fails
    fast (connect timeout, connection reset); a hung one is what /readyz, with its
    own deadline, reports.
    """
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": None,
        "socket_connect_timeout": 2,
    }
    if cluster:
        return RedisCluster.from_url(url, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10, **options
    )
    return aioredis.Redis.from_pool(pool)
