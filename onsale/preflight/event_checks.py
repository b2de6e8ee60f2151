"""One event (``--event``): armed in Redis, tiers as in Postgres, a schedule that opens or
is open, admission and holds sized for its capacity, committers reading its stream, and
nothing in its dead letters. Read-only: HGETALL, SISMEMBER, XINFO, XLEN, SELECTs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from redis.exceptions import ResponseError

from onsale import keys
from onsale.connections import RedisClient
from onsale.inventory import Inventory
from onsale.preflight.result import Check, fail, passed, warn

#: A committer reads every armed stream at least every half second (its block time); one
#: not seen for this long is gone.
COMMITTER_IDLE_MS = 10_000
#: Holds shorter than this leave no time for 3-D Secure; longer ones keep tickets from
#: the queue when buyers walk away.
HOLD_MIN_S, HOLD_MAX_S = 120, 1200

_EVENT_SQL = """
SELECT e.title, o.opens_at, o.closes_at, o.admit_per_minute, o.max_active, o.hold_seconds,
       o.paused
FROM events e LEFT JOIN onsales o ON o.event_id = e.id WHERE e.id = $1
"""
_TIERS_SQL = "SELECT id::text, name, capacity, price FROM ticket_tiers WHERE event_id = $1"


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000) if value is not None else 0


def _when(ms: int, now_ms: int) -> str:
    minutes = abs(ms - now_ms) / 60_000
    span = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    return f"in {span}" if ms > now_ms else f"{span} ago"


async def checks(conn: asyncpg.Connection, redis: RedisClient, event_id: str) -> list[Check]:
    try:
        eid = uuid.UUID(event_id)
    except ValueError:
        return [fail("event", f"{event_id!r} is not an event id", "pass the event's UUID")]
    row = await conn.fetchrow(_EVENT_SQL, eid)
    if row is None:
        return [fail("event", f"no event {event_id} in Postgres", "check the id")]
    if row["opens_at"] is None:
        return [fail("event", f"{row['title']}: no on-sale in Postgres", "give it an on-sale")]
    armed = await redis.sismember(keys.ARMED_EVENTS, event_id)
    schedule: dict[str, str] = await redis.hgetall(keys.onsale(event_id))
    if not armed or not schedule or not await redis.exists(keys.inventory(event_id)):
        return [
            fail(
                "event.armed",
                f"{row['title']} ({event_id}) is not armed in Redis: nobody can queue or buy",
                f"run `onsale recover --event {event_id}` (it arms the event from Postgres)",
            )
        ]
    found = [passed("event.armed", f"{row['title']} ({event_id}) is armed")]
    levels = await Inventory(redis).levels(event_id)
    found.append(_tiers(levels, await conn.fetch(_TIERS_SQL, eid)))
    now_ms = int(time.time() * 1000)
    found.append(_schedule(row, schedule, now_ms))
    capacity = sum(lv.capacity for lv in levels)
    found.append(_admission(schedule, capacity))
    found.append(_hold(int(schedule.get("hold_seconds", row["hold_seconds"]))))
    found.append(await _committers(redis, event_id))
    found.append(await _dead_letters(redis, event_id))
    return found


def _tiers(levels: list[Any], rows: list[asyncpg.Record]) -> Check:
    redis_tiers = {lv.tier_id: (lv.capacity, lv.price) for lv in levels}
    pg_tiers = {r["id"]: (r["capacity"], r["price"]) for r in rows}
    if redis_tiers == pg_tiers:
        total = sum(c for c, _ in pg_tiers.values())
        return passed("event.tiers", f"{len(pg_tiers)} tiers, {total} tickets, as in Postgres")
    differ = sorted(set(redis_tiers) ^ set(pg_tiers)) + sorted(
        t for t in set(redis_tiers) & set(pg_tiers) if redis_tiers[t] != pg_tiers[t]
    )
    return fail(
        "event.tiers",
        f"Redis and Postgres differ on tier(s) {', '.join(differ)} (capacity or price)",
        "stop: find which is right before the launch, then "
        "`onsale recover --event` rebuilds Redis from Postgres",
    )


def _schedule(row: asyncpg.Record, schedule: dict[str, str], now_ms: int) -> Check:
    opens, closes = int(schedule.get("opens_ms", 0)), int(schedule.get("closes_ms", 0))
    if abs(opens - _ms(row["opens_at"])) > 1000 or (
        row["closes_at"] is not None and abs(closes - _ms(row["closes_at"])) > 1000
    ):
        return fail(
            "event.schedule",
            "Redis and Postgres disagree on the on-sale's opening or closing",
            "PATCH /api/events/<id>/onsale again to write both",
        )
    if closes and closes <= now_ms:
        return fail(
            "event.schedule",
            f"the sale closed {_when(closes, now_ms)}",
            "move closes_at (PATCH /api/events/<id>/onsale) or pick the right event",
        )
    if schedule.get("paused") == "1":
        return warn(
            "event.schedule",
            "admissions are paused",
            'unpause with PATCH /api/events/<id>/onsale {"paused": false}',
        )
    state = "opens" if opens > now_ms else "opened"
    return passed("event.schedule", f"{state} {_when(opens, now_ms)}")


def _admission(schedule: dict[str, str], capacity: int) -> Check:
    rate = int(schedule.get("admit_per_minute", 0))
    cap = int(schedule.get("max_active", 0))
    hold_min = int(schedule.get("hold_seconds", 600)) / 60
    detail = f"{rate} admitted/min, max active {cap or 'unlimited'}, {capacity} tickets"
    if rate <= 0:
        return fail("event.admission", detail, "set admit_per_minute above 0")
    if cap and cap > capacity * 4:
        return warn(
            "event.admission",
            detail + ": far more buyers shopping than tickets",
            "lower max_active to about the tickets left (x2 for abandonment)",
        )
    if not cap and rate * hold_min > capacity * 4:
        return warn(
            "event.admission",
            detail + ": in one hold time the room admits over 4x the tickets, with no cap",
            "set max_active",
        )
    return passed("event.admission", detail)


def _hold(seconds: int) -> Check:
    if seconds < HOLD_MIN_S:
        return warn(
            "event.hold",
            f"holds last {seconds} s",
            f"give buyers at least {HOLD_MIN_S} s (card entry and 3-D Secure)",
        )
    if seconds > HOLD_MAX_S:
        return warn(
            "event.hold",
            f"holds last {seconds} s: abandoned carts keep tickets long",
            f"{HOLD_MAX_S} s or less",
        )
    return passed("event.hold", f"holds last {seconds} s")


async def _committers(redis: RedisClient, event_id: str) -> Check:
    """Consumers of the event's stream seen lately; before its first order there are none
    (Redis makes a consumer at its first delivery), so then a connection blocked in
    XREADGROUP (CLIENT LIST, sampled over about a second) with the event's group in place
    shows a committer waiting for it."""
    stream = keys.orders_stream(event_id)
    try:
        consumers: list[dict[str, Any]] = await redis.xinfo_consumers(stream, keys.COMMITTERS)
        group = True
    except ResponseError:
        consumers, group = [], False  # no group: no committer has followed this event
    alive = [c for c in consumers if int(c.get("idle", 1 << 62)) < COMMITTER_IDLE_MS]
    if alive:
        return passed("event.committers", f"{len(alive)} committer(s) reading its orders")
    fix = "start `onsale committer` (two, for a launch)"
    if not group:
        return fail("event.committers", "no committer has followed this event", fix)
    waiting = await _readers(redis)
    if waiting is None:
        return warn(
            "event.committers",
            "no order yet, and CLIENT LIST is refused: cannot tell whether a committer is waiting",
            "check the committers' logs",
        )
    if waiting:
        return passed(
            "event.committers",
            f"no order yet; {waiting} connection(s) waiting in XREADGROUP on the streams",
        )
    return fail(
        "event.committers",
        f"no committer read its orders in the last "
        f"{COMMITTER_IDLE_MS // 1000} s, and none is waiting on the streams",
        fix,
    )


async def _readers(redis: RedisClient, samples: int = 4, every_s: float = 0.25) -> int | None:
    """Connections whose current or last command is XREADGROUP (a committer blocks in it
    for half a second at a time); None where CLIENT LIST is not allowed."""
    most = 0
    for i in range(samples):
        try:
            clients: list[dict[str, Any]] = await redis.client_list()
        except ResponseError:
            return None
        most = max(most, sum(1 for c in clients if c.get("cmd") == "xreadgroup"))
        if most:
            return most
        if i + 1 < samples:
            await asyncio.sleep(every_s)
    return most


async def _dead_letters(redis: RedisClient, event_id: str) -> Check:
    dead = int(await redis.xlen(keys.dead_letters(event_id)))
    if dead:
        return fail(
            "event.dead_letters",
            f"{dead} order(s) in {keys.dead_letters(event_id)}",
            "fix their cause and write them (runbook: After the launch)",
        )
    return passed("event.dead_letters", "none")
