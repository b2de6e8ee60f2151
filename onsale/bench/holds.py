"""The three ways to take one ticket from a hot tier that ``onsale bench inventory`` compares.

- ``redis_lua``: the engine's own :meth:`Inventory.hold` (one Lua script) against Redis.
- ``pg_pessimistic``: approach A of the research report, a row lock held to commit.
- ``pg_optimistic``: approach B, a version check and retry.

Each has a client-side :class:`~onsale.bench.harness.Session` (run in the load processes)
and a :class:`Store` (run by the coordinator) that creates, counts and drops hot tiers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Protocol

import asyncpg
import redis.asyncio as aioredis

from onsale import keys
from onsale.bench.harness import Exhausted, Session
from onsale.connections import Lanes, redis_client
from onsale.inventory import HoldRejected, Inventory, Rejection, TierSpec
from onsale.scripts import Scripts

REDIS_LUA = "redis_lua"
PG_PESSIMISTIC = "pg_pessimistic"
PG_OPTIMISTIC = "pg_optimistic"
APPROACHES = (REDIS_LUA, PG_PESSIMISTIC, PG_OPTIMISTIC)

TIER = "hot"
ONE_TICKET = {TIER: 1}
#: Far beyond any run, so no hold expires (and returns tickets) while we count.
HOLD_SECONDS = 24 * 3600
_GONE = (Rejection.SOLD_OUT, Rejection.INSUFFICIENT_INVENTORY)

# The bench's own table, in whatever database it is pointed at; not part of the app schema.
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_tiers (
    id text PRIMARY KEY,
    quantity_total integer NOT NULL,
    quantity_sold integer NOT NULL DEFAULT 0,
    version integer NOT NULL DEFAULT 0
)
"""
LOCK_ROW = "SELECT quantity_sold FROM bench_tiers WHERE id = $1 FOR UPDATE"
TAKE_IF_FITS = """
UPDATE bench_tiers SET quantity_sold = quantity_sold + $2
WHERE id = $1 AND quantity_sold + $2 <= quantity_total
"""
CAP = """
UPDATE bench_tiers SET quantity_total = quantity_sold + $2 WHERE id = $1 RETURNING quantity_total
"""
READ_SOLD = "SELECT quantity_sold FROM bench_tiers WHERE id = $1"
READ_VERSION = "SELECT quantity_sold, quantity_total, version FROM bench_tiers WHERE id = $1"
TAKE_IF_VERSION = """
UPDATE bench_tiers SET quantity_sold = quantity_sold + $2, version = version + 1
WHERE id = $1 AND version = $3 AND quantity_sold + $2 <= quantity_total
"""


class RedisLua:
    """One Redis client whose pool has a connection per client, as a gateway would size it."""

    def __init__(self, url: str, clients: int) -> None:
        self.clients = clients
        self.redis = redis_client(url, max_connections=clients)
        # As the gateway calls it: the scripts over lanes of their own.
        self.lanes = Lanes(self.redis.connection_pool, clients)
        self.inventory = Inventory(self.redis, scripts=Scripts(self.redis, self.lanes))

    async def open(self) -> None:
        # Concurrent pings open every pooled connection before the clock starts.
        await asyncio.gather(*(self.redis.ping() for _ in range(self.clients)))

    async def take(self, client: int, target: str) -> int:
        try:
            await self.inventory.hold(target, ONE_TICKET)
        except HoldRejected as exc:
            if exc.reason in _GONE:
                raise Exhausted from None
            raise
        return 1

    async def close(self) -> None:
        await self.lanes.aclose()
        await self.redis.aclose()


class _Postgres:
    """One asyncpg connection per client: every buyer has its own transaction."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.conns: list[asyncpg.Connection] = []

    async def open(self) -> None:
        self.conns = list(
            await asyncio.gather(*(asyncpg.connect(self.url) for _ in range(self.clients)))
        )

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.conns))
        self.conns = []


class PgPessimistic(_Postgres):
    """BEGIN; SELECT ... FOR UPDATE; UPDATE ... WHERE it fits; COMMIT."""

    async def take(self, client: int, target: str) -> int:
        conn = self.conns[client]
        # Approach A as the report writes it: the read takes the lock, the guard decides.
        async with conn.transaction():
            await conn.fetchval(LOCK_ROW, target)
            status = await conn.execute(TAKE_IF_FITS, target, 1)
        if status != "UPDATE 1":
            raise Exhausted
        return 1


class PgOptimistic(_Postgres):
    """Read the version, UPDATE only if unchanged and it fits; retry on 0 rows."""

    async def take(self, client: int, target: str) -> int:
        conn = self.conns[client]
        attempts = 0
        while True:
            attempts += 1
            row = await conn.fetchrow(READ_VERSION, target)
            assert row is not None
            sold, total, version = row[0], row[1], row[2]
            if sold + 1 > total:
                raise Exhausted
            if await conn.execute(TAKE_IF_VERSION, target, 1, version) == "UPDATE 1":
                return attempts


def make_session(approach: str, url: str, clients: int) -> Session:
    """The harness's session factory (module level, so load processes can unpickle it)."""
    kinds: dict[str, Callable[[str, int], Session]] = {
        REDIS_LUA: RedisLua,
        PG_PESSIMISTIC: PgPessimistic,
        PG_OPTIMISTIC: PgOptimistic,
    }
    return kinds[approach](url, clients)


class Store(Protocol):
    """The coordinator's view of one backend: hot tiers to create, count and drop."""

    async def create(self, capacity: int) -> str: ...

    async def taken(self, target: str) -> int:
        """Tickets the store itself says are gone (held or sold) from ``target``."""
        ...

    async def cap(self, target: str, extra: int) -> int:
        """Close the sale: capacity becomes what is taken now plus ``extra``; returns it."""
        ...

    async def drop(self, target: str) -> None: ...

    async def describe(self) -> str: ...

    async def aclose(self) -> None: ...


class RedisStore:
    """Hot tiers as armed events, one tier each, in the engine's own key layout."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self.inventory = Inventory(self.redis)

    async def create(self, capacity: int) -> str:
        event_id = f"bench-{uuid.uuid4().hex}"
        await self.inventory.arm(event_id, HOLD_SECONDS, [TierSpec(TIER, capacity)])
        return event_id

    async def taken(self, target: str) -> int:
        (level,) = await self.inventory.levels(target)
        return level.held + level.sold

    async def cap(self, target: str, extra: int) -> int:
        while True:
            capacity = await self.taken(target) + extra
            try:
                # Re-arming updates the capacity in one script, atomically with the holds.
                await self.inventory.arm(target, HOLD_SECONDS, [TierSpec(TIER, capacity)])
                return capacity
            except HoldRejected as exc:  # holds overtook us between the read and the arm
                if exc.reason != Rejection.CAPACITY_BELOW_TAKEN:
                    raise

    async def drop(self, target: str) -> None:
        await self.redis.unlink(*keys.inventory_keys(target))
        await self.redis.srem(keys.ARMED_EVENTS, target)

    async def describe(self) -> str:
        version = (await self.redis.info("server")).get("redis_version", "?")
        try:
            conf = await self.redis.config_get("append*")
        except aioredis.ResponseError:  # CONFIG may be disabled on managed Redis.
            return f"Redis {version}"
        if conf.get("appendonly") != "yes":
            return f"Redis {version} (no AOF)"
        return f"Redis {version} (AOF, appendfsync {conf.get('appendfsync')})"

    async def aclose(self) -> None:
        await self.redis.aclose()


class PgStore:
    """Hot tiers as rows of ``bench_tiers``, created here rather than by the migrations."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> PgStore:
        conn = await asyncpg.connect(url)
        await conn.execute(CREATE_TABLE)
        return cls(conn)

    async def create(self, capacity: int) -> str:
        tier_id = uuid.uuid4().hex
        await self.conn.execute(
            "INSERT INTO bench_tiers (id, quantity_total) VALUES ($1, $2)", tier_id, capacity
        )
        return tier_id

    async def taken(self, target: str) -> int:
        return int(await self.conn.fetchval(READ_SOLD, target))

    async def cap(self, target: str, extra: int) -> int:
        # One statement on the locked row: no hold can slip in between the read and the write.
        return int(await self.conn.fetchval(CAP, target, extra))

    async def drop(self, target: str) -> None:
        await self.conn.execute("DELETE FROM bench_tiers WHERE id = $1", target)
        # Each hold left a dead row version; clear them so the next cell starts clean.
        await self.conn.execute("VACUUM bench_tiers")

    async def describe(self) -> str:
        row = await self.conn.fetchrow(
            "SELECT current_setting('server_version'), current_setting('fsync'),"
            " current_setting('synchronous_commit')"
        )
        assert row is not None
        version, fsync, sync_commit = row[0], row[1], row[2]
        durable = "durable commits" if fsync == "on" and sync_commit != "off" else "NOT durable"
        return f"Postgres {version}, {durable} (fsync={fsync}, synchronous_commit={sync_commit})"

    async def aclose(self) -> None:
        await self.conn.close()
