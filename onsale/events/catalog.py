"""Events in Postgres, armed into Redis: create, read, list, stats (changes: changes.py)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from onsale import keys
from onsale.checkout.stream import lag
from onsale.connections import RedisClient
from onsale.events.errors import EventRejected, EventRejection
from onsale.events.models import (
    CommitterLag,
    Event,
    EventIn,
    EventPage,
    Onsale,
    OrderCounts,
    QueueCounts,
    Stats,
    Tier,
    TierStats,
    Venue,
)
from onsale.inventory import HoldRejected, Inventory, TierSpec
from onsale.queue import shuffle
from onsale.queue.room import WaitingRoom

_EVENT_SQL = """
SELECT e.*, o.opens_at, o.closes_at, o.admit_per_minute, o.max_active, o.hold_seconds, o.paused,
       o.shuffle_seed, o.presale_opens_at, o.pow_difficulty
FROM events e JOIN onsales o ON o.event_id = e.id
"""
_TIERS_SQL = "SELECT * FROM ticket_tiers WHERE event_id = ANY($1::uuid[]) ORDER BY position"


def _ms(t: datetime | None) -> int:
    return int(t.timestamp() * 1000) if t else 0


def parse_id(value: str) -> uuid.UUID:
    """An event id from a path; anything but a UUID is simply not found."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise EventRejected(EventRejection.NOT_FOUND) from None


#: Tickets one admission may hold or buy, per tier without a per-order limit.
DEFAULT_TIER_LIMIT = 10


def buyer_limit(event: Event) -> int:
    """What one admission may buy in all: the tiers' per-order limits added up."""
    return sum(t.per_order_limit or DEFAULT_TIER_LIMIT for t in event.tiers)


def onsale_mapping(event: Event) -> dict[str, int | str]:
    """The on-sale hash (``keys.onsale``) of an event as Postgres has it."""
    o = event.onsale
    cancelled = event.status == "cancelled"
    return {
        "opens_ms": _ms(o.opens_at),
        # A cancelled sale is closed since ever (see lua/cancel.lua).
        "closes_ms": 1 if cancelled else _ms(o.closes_at),
        # Retirement reads the show's start here, without asking Postgres.
        "starts_ms": _ms(event.starts_at),
        "admit_per_minute": o.admit_per_minute,
        "max_active": o.max_active or 0,
        "hold_seconds": o.hold_seconds,
        "paused": int(o.paused or cancelled),
        "currency": event.currency,
        "buyer_limit": buyer_limit(event),
        # 0: no presale (lua/_queue.lua); access codes then do nothing.
        "presale_ms": _ms(o.presale_opens_at),
        # -1: the gateways' default (onsale/botgate reads it at most once a second).
        "pow_difficulty": -1 if o.pow_difficulty is None else o.pow_difficulty,
    }


async def arm(redis: RedisClient, inventory: Inventory, event: Event, seed: str) -> None:
    """Load an event's tiers, schedule and fair-start seed into Redis (idempotent)."""
    specs = [TierSpec(t.id, t.capacity, t.per_order_limit or 0, t.price) for t in event.tiers]
    try:
        await inventory.arm(event.id, event.onsale.hold_seconds, specs)
    except HoldRejected as exc:
        raise EventRejected(EventRejection.CAPACITY_BELOW_TAKEN, str(exc)) from None
    await redis.hset(keys.onsale(event.id), mapping=onsale_mapping(event))
    await WaitingRoom(redis).seed(event.id, seed)


async def seed_of(pool: asyncpg.Pool, event_id: str) -> str:
    seed: str = await pool.fetchval(
        "SELECT shuffle_seed FROM onsales WHERE event_id = $1", parse_id(event_id)
    )
    return seed


async def create(
    pool: asyncpg.Pool, redis: RedisClient, inventory: Inventory, data: EventIn
) -> Event:
    problems = data.problems()
    if problems:
        raise EventRejected(EventRejection.INVALID, "; ".join(problems))
    event_id = uuid.uuid4()
    seed = shuffle.new_seed()
    venue = data.venue
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO events (id, title, description, venue_name, venue_address, venue_city,
                                   venue_country, starts_at, ends_at, currency)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            event_id, data.title, data.description, venue and venue.name,
            venue and venue.address, venue and venue.city, venue and venue.country,
            data.starts_at, data.ends_at, data.currency,
        )  # fmt: skip
        await conn.executemany(
            """INSERT INTO ticket_tiers (id, event_id, position, name, description, price,
                                         capacity, per_order_limit, sale_starts_at, sale_ends_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            [
                (uuid.uuid4(), event_id, i, t.name, t.description, t.price, t.capacity,
                 t.per_order_limit, t.sale_starts_at, t.sale_ends_at)
                for i, t in enumerate(data.tiers)
            ],
        )  # fmt: skip
        o = data.onsale
        await conn.execute(
            """INSERT INTO onsales (event_id, opens_at, closes_at, admit_per_minute, max_active,
                                    hold_seconds, shuffle_seed, armed_at, pow_difficulty)
               VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8)""",
            event_id, o.opens_at, o.closes_at, o.admit_per_minute, o.max_active, o.hold_seconds,
            seed, o.pow_difficulty,
        )  # fmt: skip
        event = (await load(conn, "WHERE e.id = $1", [event_id]))[0]
        # Armed inside the transaction: if Redis refuses, nothing is written to Postgres.
        await arm(redis, inventory, event, seed)
    return event


async def load(conn: Any, where: str, args: list[Any], tail: str = "") -> list[Event]:
    rows = await conn.fetch(f"{_EVENT_SQL} {where} {tail}", *args)
    tiers: dict[uuid.UUID, list[Tier]] = {}
    for t in await conn.fetch(_TIERS_SQL, [r["id"] for r in rows]):
        tiers.setdefault(t["event_id"], []).append(
            Tier(
                id=str(t["id"]),
                name=t["name"],
                price=t["price"],
                capacity=t["capacity"],
                per_order_limit=t["per_order_limit"],
                description=t["description"],
                sale_starts_at=t["sale_starts_at"],
                sale_ends_at=t["sale_ends_at"],
            )
        )
    return [_event(r, tiers.get(r["id"], [])) for r in rows]


def _event(r: asyncpg.Record, tiers: list[Tier]) -> Event:
    venue = None
    if r["venue_name"]:
        venue = Venue(
            name=r["venue_name"],
            city=r["venue_city"],
            country=r["venue_country"],
            address=r["venue_address"],
        )
    return Event(
        id=str(r["id"]),
        title=r["title"],
        description=r["description"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        venue=venue,
        currency=r["currency"],
        status=r["status"],
        tiers=tiers,
        onsale=Onsale(
            opens_at=r["opens_at"],
            closes_at=r["closes_at"],
            admit_per_minute=r["admit_per_minute"],
            max_active=r["max_active"],
            hold_seconds=r["hold_seconds"],
            paused=r["paused"],
            shuffle_commitment=shuffle.commitment(r["shuffle_seed"] or ""),
            # Never by this process's clock: see reveal_seeds.
            shuffle_seed=None,
            presale_opens_at=r["presale_opens_at"],
            presale_commitment=shuffle.commitment(shuffle.presale_seed(r["shuffle_seed"] or "")),
            pow_difficulty=r["pow_difficulty"],
        ),
        created_at=r["created_at"],
    )


async def reveal_seeds(redis: RedisClient, events: list[Event]) -> list[Event]:
    """The events, each with its fair-start seed once Redis has frozen its pre-queue, so that
    anyone can recompute the order. Redis's clock decides the freeze, so Redis's state decides
    the reveal: a seed out before the freeze would let a joiner keep only lucky visitor ids."""
    room = WaitingRoom(redis)
    seeds = await room.revealed_seeds([e.id for e in events])
    presale_seeds = await room.revealed_seeds([e.id for e in events], presale=True)
    for e in events:
        e.onsale.shuffle_seed = seeds.get(e.id)
        e.onsale.presale_seed = presale_seeds.get(e.id)
    return events


async def get(pool: asyncpg.Pool, event_id: str) -> Event:
    async with pool.acquire() as conn:
        found = await load(conn, "WHERE e.id = $1", [parse_id(event_id)])
    if not found:
        raise EventRejected(EventRejection.NOT_FOUND)
    return found[0]


def _cursor(event: Event) -> str:
    raw = f"{event.starts_at.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        starts, event_id = raw.split("|")
        return datetime.fromisoformat(starts), uuid.UUID(event_id)
    except (ValueError, UnicodeDecodeError):
        raise EventRejected(EventRejection.INVALID, "cursor is not one this API issued") from None


async def listing(
    pool: asyncpg.Pool,
    *,
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    city: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> EventPage:
    """Events by start time (then id), keyset-paginated so deep pages stay cheap."""
    where, args = ["e.status <> 'cancelled'"], []  # type: list[str], list[Any]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if starts_after:
        where.append(f"e.starts_at >= {arg(starts_after)}")
    if starts_before:
        where.append(f"e.starts_at < {arg(starts_before)}")
    if city:
        where.append(f"lower(e.venue_city) = lower({arg(city)})")
    if cursor:
        after_time, after_id = _uncursor(cursor)
        where.append(f"(e.starts_at, e.id) > ({arg(after_time)}, {arg(after_id)})")
    tail = f"ORDER BY e.starts_at, e.id LIMIT {arg(limit + 1)}"
    async with pool.acquire() as conn:
        events = await load(conn, "WHERE " + " AND ".join(where), args, tail)
    more = len(events) > limit
    items = events[:limit]
    return EventPage(items=items, next_cursor=_cursor(items[-1]) if more else None)


async def stats(
    pool: asyncpg.Pool, inventory: Inventory, event_id: str, queue: QueueCounts
) -> Stats:
    event = await get(pool, event_id)
    levels = {lv.tier_id: lv for lv in await inventory.levels(event.id)}
    tiers = []
    revenue = 0
    for t in event.tiers:
        lv = levels.get(t.id)
        held, sold = (lv.held, lv.sold) if lv else (0, 0)
        revenue += sold * t.price
        available = max(t.capacity - held - sold, 0)
        tiers.append(TierStats(t.id, t.name, t.capacity, sold, held, available))
    # Every stream entry is a confirmed order but for the refunds of late payments.
    entries = await inventory.redis.xlen(keys.orders_stream(event.id))
    refunded = await inventory.redis.hget(keys.order_counts(event.id), "refunded")
    confirmed = entries - int(refunded or 0)
    async with pool.acquire() as conn:
        committed = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'confirmed'",
            parse_id(event.id),
        )
    behind = await lag(inventory.redis, event.id)
    return Stats(
        queue=queue,
        tiers=tiers,
        orders=OrderCounts(confirmed=confirmed, committed=committed),
        revenue=revenue,
        currency=event.currency,
        committer_lag=CommitterLag(pending=behind.pending, oldest_ms=behind.oldest_ms),
    )
