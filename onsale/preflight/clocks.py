"""Clocks: this host, Redis (``TIME``) and Postgres (``clock_timestamp()``) within a second.

Holds and admissions end by Redis's clock (the scripts read ``TIME``), Postgres stamps
orders, and each gateway judges admission tokens (60 s of leeway), its rate-limit windows
and Stripe's webhook signatures by its own: a second apart is what NTP keeps them within.
Each offset is taken against the midpoint of the round trip, so a slow network does not
read as a skew.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import asyncpg

from onsale.connections import RedisClient
from onsale.preflight.result import Check, fail, passed

#: Largest offset allowed between any two of the clocks.
MAX_SKEW_S = 1.0

Clock = Callable[[], float]


async def _offset(clock: Clock, read: Callable[[], Awaitable[float]]) -> tuple[float, float]:
    """(their time - ours at the midpoint, round trip) in seconds."""
    before = clock()
    theirs = await read()
    after = clock()
    return theirs - (before + after) / 2, after - before


def _verdict(name: str, what: str, offset: float, rtt: float) -> Check:
    detail = (
        f"{what} is {abs(offset):.3f} s {'ahead of' if offset > 0 else 'behind'} this "
        f"host (round trip {rtt * 1000:.0f} ms)"
    )
    if abs(offset) > MAX_SKEW_S:
        return fail(
            name,
            detail,
            "run NTP (chrony or systemd-timesyncd) on every host and "
            "check it is synchronised (chronyc tracking, timedatectl)",
        )
    return passed(name, detail)


async def redis_clock(redis: RedisClient, clock: Clock = time.time) -> tuple[Check, float]:
    """The verdict, and Redis's offset from this host in seconds."""

    async def read() -> float:
        seconds, micros = await redis.time()
        return float(seconds) + float(micros) / 1e6

    offset, rtt = await _offset(clock, read)
    return _verdict("clock.redis", "Redis's clock", offset, rtt), offset


async def postgres_clock(conn: asyncpg.Connection, clock: Clock = time.time) -> tuple[Check, float]:
    """The verdict, and Postgres's offset from this host in seconds."""

    async def read() -> float:
        return float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())"))

    offset, rtt = await _offset(clock, read)
    return _verdict("clock.postgres", "Postgres's clock", offset, rtt), offset


def between(redis_offset: float, postgres_offset: float) -> Check:
    """Redis against Postgres, from their offsets to this host: each may be within a second
    of it and still two apart."""
    gap = redis_offset - postgres_offset
    detail = f"Redis and Postgres are {abs(gap):.3f} s apart"
    if abs(gap) > MAX_SKEW_S:
        return fail("clock.agree", detail, "run NTP on the Redis and Postgres hosts")
    return passed("clock.agree", detail)
