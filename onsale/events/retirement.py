"""Retiring ended events from the armed set, so that per-second work stays flat.

Every gateway's tick, ``/metrics``, ``/readyz`` and the committers walk
``keys.ARMED_EVENTS``; without retirement that is every event ever created. An event is
retired (moved to the bounded ``keys.RETIRED_EVENTS``) when it has **ended** (its sale has
closed, or the event has started or was cancelled) and it is **idle**: no live hold, no
live admission, and every entry of its orders stream acknowledged by a committer.

Who does what:

- a gateway's tick, every :data:`RETIRE_EVERY_S` and one gateway at a time
  (:class:`Retirer`), retires ended idle events;
- the committers look at a slice of the retired events every second
  (:class:`RetiredScan`) and bring back any that is not idle any more, e.g. a late
  payment's confirmation or refund appended to its stream; the committers then read that
  stream again, and the tick retires the event again once it is drained.

Every move is one idempotent script (``lua/retire_move.lua``), so any number of gateways
and committers may race.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from typing import TypeVar

import asyncpg
import msgspec

from onsale import keys, scripts
from onsale.connections import RedisClient
from onsale.queue.room import expire_rooms

log = logging.getLogger("onsale.retirement")

#: How often one gateway (whichever takes the round) looks for events to retire.
RETIRE_EVERY_S = 30.0
#: Retired ids kept; the oldest beyond are forgotten (``--event`` still names them).
MAX_RETIRED = 50_000
#: Retired events a committer looks at per round, and how often.
SCAN_SLICE = 200
SCAN_EVERY_S = 1.0
#: How long a round waits for Postgres to say which events have started.
POSTGRES_TIMEOUT_S = 1.0
#: Scripts in flight at once in a round: the hot path shares the connections.
_CONCURRENCY = 16

T = TypeVar("T")


class Activity(msgspec.Struct, frozen=True):
    """What could still change an event, as its Redis state says now."""

    event_id: str
    now_ms: int
    #: 0: none (the schedule has no close, or Redis has no start time).
    closes_ms: int = 0
    starts_ms: int = 0
    holds: int = 0
    admissions: int = 0
    #: Stream entries that no committer has acknowledged yet.
    uncommitted: bool = False

    @property
    def idle(self) -> bool:
        """Nothing live and everything committed: retiring changes nothing anyone sees."""
        return not (self.holds or self.admissions or self.uncommitted)

    @property
    def over(self) -> bool:
        """The sale has closed or the event has started, by Redis's schedule."""
        return any(0 < t <= self.now_ms for t in (self.closes_ms, self.starts_ms))


async def _bounded(calls: Iterable[Awaitable[T]]) -> list[T]:
    slots = asyncio.Semaphore(_CONCURRENCY)

    async def one(call: Awaitable[T]) -> T:
        async with slots:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def activity(redis: RedisClient, event_id: str) -> Activity:
    reply = await scripts.run(
        redis,
        "event_activity",
        [
            keys.onsale(event_id),
            keys.holds_expiry(event_id),
            keys.queue_active(event_id),
            keys.orders_stream(event_id),
        ],
        [keys.COMMITTERS],
    )
    now, closes, starts, holds, admissions, uncommitted = (int(x) for x in reply)
    return Activity(event_id, now, closes, starts, holds, admissions, bool(uncommitted))


async def activities(redis: RedisClient, event_ids: Sequence[str]) -> list[Activity]:
    return await _bounded(activity(redis, e) for e in event_ids)


async def _move(redis: RedisClient, direction: str, event_ids: Sequence[str]) -> int:
    if not event_ids:
        return 0
    moved = await scripts.run(
        redis,
        "retire_move",
        [keys.ARMED_EVENTS, keys.RETIRED_EVENTS, keys.ARMED_GENERATION],
        [direction, MAX_RETIRED, *event_ids],
    )
    return int(moved)


async def revive(redis: RedisClient, event_ids: Sequence[str]) -> int:
    """Back into the armed set (only ids that are retired); how many came back."""
    return await _move(redis, "revive", event_ids)


_STARTED = """
SELECT id::text FROM events
WHERE id = ANY($1::uuid[]) AND (starts_at <= now() OR status = 'cancelled')
"""


async def _started(pool: asyncpg.Pool | None, event_ids: Sequence[str]) -> set[str]:
    """Of these events, those that started or were cancelled (Postgres has the start time,
    Redis only the sale's schedule); none when Postgres cannot say."""
    ids = []
    for e in event_ids:
        try:
            ids.append(str(uuid.UUID(e)))
        except ValueError:
            continue
    if pool is None or not ids:
        return set()
    try:
        # Bounded: the tick that asks also sweeps holds and admits buyers, and must not
        # wait for a Postgres that is away (a connection attempt alone can take a minute).
        async with asyncio.timeout(POSTGRES_TIMEOUT_S):
            return {r[0] for r in await pool.fetch(_STARTED, ids)}
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("retirement: Postgres unavailable (%s); judging by the sale's close", exc)
        return set()


async def retire_ended(redis: RedisClient, pool: asyncpg.Pool | None = None) -> list[str]:
    """Retire every armed event that has ended and is idle; returns their ids."""
    armed = sorted(await redis.smembers(keys.ARMED_EVENTS))
    idle = [a for a in await activities(redis, armed) if a.idle]
    started = await _started(pool, [a.event_id for a in idle if not a.over])
    ended = [a.event_id for a in idle if a.over or a.event_id in started]
    if not ended:
        return []
    await _move(redis, "retire", ended)
    # A late entry or hold may have come between the look and the move: look again, and
    # bring back at once what is not idle (later ones are the committers' scan's).
    busy = [a.event_id for a in await activities(redis, ended) if not a.idle]
    await revive(redis, busy)
    retired = [e for e in ended if e not in set(busy)]
    # Their waiting rooms are over: the visitors' state goes in a day. A revived event's
    # room is left as it is until a later round retires the event.
    await expire_rooms(redis, retired)
    if retired:
        log.info("retired %d ended event(s) from the armed set: %s", len(retired),
                 ", ".join(retired[:10]) + (" ..." if len(retired) > 10 else ""))  # fmt: skip
    return retired


async def retired_since(redis: RedisClient, since_ms: int) -> list[str]:
    """Ids retired at or after ``since_ms`` (epoch ms), oldest first."""
    found: list[str] = await redis.zrangebyscore(keys.RETIRED_EVENTS, since_ms, "+inf")
    return found


class Retirer:
    """A gateway's part: at most one round per :data:`RETIRE_EVERY_S` over all gateways
    (a lock with that expiry, never released: the next round waits for it to lapse)."""

    def __init__(
        self, redis: RedisClient, pool: asyncpg.Pool | None, every_s: float = RETIRE_EVERY_S
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.every_s = every_s
        self._token = secrets.token_hex(8)
        self._last = -float("inf")

    async def maybe_run(self) -> list[str]:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return []
        self._last = now
        lock_ms = max(1, int(self.every_s * 1000))
        if not await self.redis.set(keys.RETIRE_LOCK, self._token, nx=True, px=lock_ms):
            return []  # another gateway has this round
        return await retire_ended(self.redis, self.pool)


class RetiredScan:
    """A committer's part: a slice of the retired events per call, round-robin, bringing
    back those with something to do (entries to commit, live holds or admissions)."""

    def __init__(self, redis: RedisClient, slice_: int = SCAN_SLICE) -> None:
        self.redis = redis
        self.slice = slice_
        self._pos = 0

    async def step(self) -> list[str]:
        """Look at the next slice; returns the ids brought back."""
        ids: list[str] = await self.redis.zrange(
            keys.RETIRED_EVENTS, self._pos, self._pos + self.slice - 1
        )
        self._pos = 0 if len(ids) < self.slice else self._pos + self.slice
        busy = [a.event_id for a in await activities(self.redis, ids) if not a.idle]
        if busy and await revive(self.redis, busy):
            log.info("brought back %d retired event(s) with work to do: %s", len(busy),
                     ", ".join(busy[:10]))  # fmt: skip
        return busy
