"""The Redis client every onsale process uses, configured in one place."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

#: The Redis client every onsale module takes: one server or a Redis Cluster, decoding replies
#: to str. redis-py's annotations of async replies (``Awaitable[T] | T``) are not precise
#: enough for mypy strict, so the alias names the role rather than the class.
RedisClient = Any


def redis_client(url: str, *, cluster: bool = False, max_connections: int = 64) -> RedisClient:
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
        return _Cluster.from_url(url, in_flight=max_connections, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10, **options
    )
    return aioredis.Redis.from_pool(pool)


class _Cluster(RedisCluster):
    """A cluster client whose bursts wait, like the single Redis's blocking pool.

    redis-py's cluster client has no blocking pool: past ``max_connections`` to a node it
    fails the command (MaxConnectionsError). At most ``in_flight`` commands run at once
    here, so no node ever needs more connections than that.
    """

    def __init__(self, *args: Any, in_flight: int = 64, **kwargs: Any) -> None:
        # Pipelines (the rate limiter's) do not pass through execute_command: headroom.
        kwargs.setdefault("max_connections", 2 * in_flight)
        super().__init__(*args, **kwargs)
        self._in_flight = asyncio.Semaphore(in_flight)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._in_flight:
            # Before its first command the client knows no slots and sends a burst to one
            # node; the MOVED replies then reset connections in use, and their commands are
            # retried (a hold taken twice). Learning the slots first costs nothing after.
            await self.initialize()
            return await super().execute_command(*args, **kwargs)


def bulk(value: Any) -> bytes:
    """One RESP bulk string (commands here carry only str, bytes and int arguments)."""
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def pack(args: tuple[Any, ...] | list[Any]) -> bytes:
    """A command in RESP: redis-py's packer cost a tenth of a queue poll's CPU.
    A command name of two words ("SCRIPT LOAD") is two arguments, as redis-py sends it."""
    words = [*str(args[0]).split(), *args[1:]]
    return b"*%d\r\n" % len(words) + b"".join(bulk(a) for a in words)


class Lanes:
    """Redis connections of their own for the hot path: one command, one reply.

    redis-py's pool checks every connection it hands out (a read syscall) and wraps every
    command in retries and hooks; on a queue poll that was a fifth of the gateway's CPU
    (``bench queue``). A lane is a plain connection taken from a free list.
    """

    def __init__(self, pool: Any, size: int) -> None:
        self._make = pool.make_connection
        self._idle: list[Any] = []
        self._open: set[Any] = set()
        self._slots = asyncio.Semaphore(size)

    async def call(self, *args: Any) -> Any:
        return await self.call_packed(pack(args))

    async def call_packed(self, packed: bytes) -> Any:
        """One command already in RESP (see :func:`pack`), one reply."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else self._new()
            try:
                await self._send(conn, packed)
            except (RedisConnectionError, OSError):
                # The command did not go out (and every script is idempotent anyway: hold ids
                # are chosen here, confirms are per order): after a Redis restart every
                # idle lane is dead. Drop them all and try once more on a fresh connection.
                await self._drop_idle()
                conn = self._new()
                await self._send(conn, packed)
            try:
                reply = await conn.read_response()
            except ResponseError:
                self._idle.append(conn)  # an error reply: the connection is fine
                raise
            except BaseException:
                # Anything else (reset, cancellation mid-reply): the connection's state is
                # unknown, so it is never used again.
                self._open.discard(conn)
                await conn.disconnect()
                raise
            self._idle.append(conn)
            return reply

    async def _send(self, conn: Any, packed: bytes) -> None:
        try:
            await conn.send_packed_command(packed)
        except BaseException:
            self._open.discard(conn)
            await conn.disconnect()
            raise

    async def _drop_idle(self) -> None:
        for conn in self._idle:
            self._open.discard(conn)
            await conn.disconnect()
        self._idle.clear()

    def _new(self) -> Any:
        conn = self._make()
        self._open.add(conn)
        return conn

    async def aclose(self) -> None:
        for conn in self._open:
            await conn.disconnect()
        self._open.clear()
        self._idle.clear()
