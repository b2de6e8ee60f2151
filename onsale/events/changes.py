"""Changing an event while it runs: its details and tiers, its on-sale schedule and metering.

Postgres and Redis must never disagree silently. Each change takes the event's row lock,
writes Postgres, then runs its Redis script *inside* the transaction, and commits last:

- Redis refuses (a capacity below the tickets held and sold, a schedule change after the
  opening): the exception rolls Postgres back, and neither has changed;
- Redis fails (down, a timeout): the same, and the client gets ``503``;
- the commit fails after Redis took the change: Redis is put back as Postgres has it
  (:func:`_restore`); if even that fails it is logged as an error naming the event, and
  re-sending the same change (idempotent) makes both agree.

A capacity change is one script (``lua/arm.lua``) that checks ``capacity >= held + sold``
and sets the capacity in one step, so no hold racing it can oversell.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from onsale import keys
from onsale.connections import RedisClient
from onsale.events.catalog import load, onsale_mapping, parse_id, reveal_seeds
from onsale.events.errors import EventRejected, EventRejection
from onsale.events.models import Event, EventPatch, OnsalePatch, Tier, TierPatch, out_of_range
from onsale.inventory import HoldRejected, Inventory, TierSpec
from onsale.scripts import Scripts

log = logging.getLogger("onsale.events")


def _ms(t: datetime | None) -> int:
    return int(t.timestamp() * 1000) if t else 0


async def _locked(conn: Any, event_id: uuid.UUID) -> Event:
    """The event, its row locked until the transaction ends (changes to one event queue up);
    ``event_not_found``, or ``event_cancelled`` once nothing about it may change."""
    status = await conn.fetchval("SELECT status FROM events WHERE id = $1 FOR UPDATE", event_id)
    if status is None:
        raise EventRejected(EventRejection.NOT_FOUND)
    if status == "cancelled":
        raise EventRejected(EventRejection.CANCELLED)
    return (await load(conn, "WHERE e.id = $1", [event_id]))[0]


async def _transact(
    pool: asyncpg.Pool,
    event_id: uuid.UUID,
    change: Callable[[Any, Event], Awaitable[Event | None]],
    restore: Callable[[Event], Awaitable[None]],
) -> Event:
    """``change(conn, before)`` writes Postgres and then Redis, returning the event after (or
    ``None`` when it touched no Redis); Redis is put back if the commit then fails."""
    before: Event | None = None
    touched = True
    try:
        async with pool.acquire() as conn, conn.transaction():
            before = await _locked(conn, event_id)
            after = await change(conn, before)
            if after is None:
                touched = False
                after = (await load(conn, "WHERE e.id = $1", [event_id]))[0]
    except EventRejected:
        raise  # a refusal: Redis refuses before it changes anything
    except Exception:
        if before is not None and touched:
            await _restore(before, restore)
        raise
    return after


async def _restore(before: Event, restore: Callable[[Event], Awaitable[None]]) -> None:
    try:
        await restore(before)
        log.warning("event %s: Postgres did not commit; Redis put back as it was", before.id)
    except Exception:
        log.exception("event %s: Postgres did not commit and Redis could not be put back: "
                      "send the change again", before.id)  # fmt: skip


def _specs(event: Event) -> list[TierSpec]:
    return [TierSpec(t.id, t.capacity, t.per_order_limit or 0, t.price) for t in event.tiers]


async def _arm(redis: RedisClient, inventory: Inventory, event: Event) -> None:
    """The event's tiers (capacity, limit, price) and on-sale hash into Redis; the capacity
    check against held + sold is the arm script's, atomic."""
    try:
        await inventory.arm(event.id, event.onsale.hold_seconds, _specs(event))
    except HoldRejected as exc:
        name = next((t.name for t in event.tiers if t.id == exc.tier_id), exc.tier_id)
        raise EventRejected(
            EventRejection.CAPACITY_BELOW_TAKEN,
            f"tier {name!r}: {exc.available} ticket(s) are held or sold already",
            facts={"tier_id": exc.tier_id, "taken": exc.available},
        ) from None
    await redis.hset(keys.onsale(event.id), mapping=onsale_mapping(event))


def _sale_opens(event: Event, tier: Tier) -> datetime:
    opens = event.onsale.opens_at
    return max(opens, tier.sale_starts_at) if tier.sale_starts_at else opens


def _tier_problems(event: Event, tiers: list[TierPatch], now: datetime) -> list[str]:
    """What is wrong with these tier changes; a price change after the sale opened raises."""
    by_id = {t.id: t for t in event.tiers}
    names = {t.id: t.name for t in event.tiers}
    out: list[str] = []
    for i, t in enumerate(tiers):
        if t.id is None:
            if t.name is None or t.price is None or t.capacity is None:
                out.append(f"tiers[{i}]: a new tier needs name, price and capacity")
            names[f"new-{i}"] = t.name or ""
            continue
        current = by_id.get(t.id)
        if current is None:
            out.append(f"tiers[{i}].id: no tier {t.id!r} in this event")
            continue
        if t.name is not None:
            names[t.id] = t.name
        if t.price is not None and t.price != current.price and now >= _sale_opens(event, current):
            raise EventRejected(
                EventRejection.SALE_STARTED,
                f"tier {current.name!r}: its sale has opened, so its price cannot change",
                facts={"tier_id": t.id},
            )
    folded = [n.casefold() for n in names.values()]
    if len(set(folded)) != len(folded):
        out.append("tier names must be unique within an event")
    if len(names) > 50:
        out.append("an event has at most 50 tiers")
    return out


def _event_problems(event: Event, patch: EventPatch) -> list[str]:
    out = out_of_range({"starts_at": patch.starts_at})
    if patch.starts_at is not None:
        if patch.starts_at <= event.onsale.opens_at:
            out.append("starts_at must be after the on-sale opens")
        if event.ends_at and patch.starts_at >= event.ends_at:
            out.append("starts_at must be before ends_at")
    return out


async def _write_tiers(conn: Any, event: Event, tiers: list[TierPatch]) -> None:
    position = len(event.tiers)
    for t in tiers:
        if t.id is None:
            await conn.execute(
                """INSERT INTO ticket_tiers (id, event_id, position, name, description, price,
                                             capacity, per_order_limit)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                uuid.uuid4(), uuid.UUID(event.id), position, t.name, t.description or "",
                t.price, t.capacity, t.per_order_limit,
            )  # fmt: skip
            position += 1
            continue
        fields = {k: v for k, v in msgspec.structs.asdict(t).items() if v is not None}
        fields.pop("id")
        if fields:
            sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(fields))
            await conn.execute(
                f"UPDATE ticket_tiers SET {sets} WHERE id = $1", uuid.UUID(t.id), *fields.values()
            )


async def patch_event(
    pool: asyncpg.Pool, redis: RedisClient, inventory: Inventory, event_id: str, patch: EventPatch
) -> Event:
    """Change an event's details and tiers (see the module's docstring for the order)."""
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not None}
    if not changes:
        raise EventRejected(EventRejection.INVALID, "give at least one of title, description, "
                            "venue, starts_at, tiers")  # fmt: skip
    eid = parse_id(event_id)

    async def change(conn: Any, before: Event) -> Event | None:
        problems = _event_problems(before, patch)
        problems += _tier_problems(before, patch.tiers or [], datetime.now(UTC))
        if problems:
            raise EventRejected(EventRejection.INVALID, "; ".join(problems))
        columns: dict[str, Any] = {}
        for name in ("title", "description", "starts_at"):
            if name in changes:
                columns[name] = changes[name]
        if patch.venue is not None:
            v = patch.venue
            columns |= {"venue_name": v.name, "venue_city": v.city, "venue_country": v.country,
                        "venue_address": v.address}  # fmt: skip
        if columns:
            sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(columns))
            await conn.execute(
                f"UPDATE events SET {sets}, updated_at = now() WHERE id = $1",
                eid, *columns.values(),
            )  # fmt: skip
        if patch.tiers:
            await _write_tiers(conn, before, patch.tiers)
        if not patch.tiers and patch.starts_at is None:
            return None  # nothing Redis knows of
        after = (await load(conn, "WHERE e.id = $1", [eid]))[0]
        await _arm(redis, inventory, after)
        return after

    async def restore(before: Event) -> None:
        await _arm(redis, inventory, before)

    try:
        event = await _transact(pool, eid, change, restore)
    except asyncpg.UniqueViolationError:
        raise EventRejected(EventRejection.INVALID, "tier names must be unique") from None
    return (await reveal_seeds(redis, [event]))[0]


def _schedule_problems(event: Event, opens: datetime, closes: datetime | None,
                       presale: datetime | None) -> list[str]:  # fmt: skip
    out = out_of_range({"opens_at": opens, "closes_at": closes, "presale_opens_at": presale})
    if closes and closes <= opens:
        out.append("closes_at must be after opens_at")
    if opens >= event.starts_at:
        out.append("opens_at must be before the event starts")
    if presale and presale >= opens:
        out.append("presale_opens_at must be before opens_at")
    return out


def _check_schedule(before: Event, changes: dict[str, Any]) -> None:
    """Refuse a schedule change once the sale opened (by this clock; the schedule script
    checks again by Redis's) or one that does not make sense; a past ``opens_at`` is now."""
    now = datetime.now(UTC)
    if now >= before.onsale.opens_at:
        raise EventRejected(EventRejection.SALE_STARTED, "the sale has opened: its schedule "
                            "can no longer change")  # fmt: skip
    presale = before.onsale.presale_opens_at
    if "presale_opens_at" in changes and presale and now >= presale:
        raise EventRejected(EventRejection.SALE_STARTED, "the presale has opened: its opening "
                            "can no longer change")  # fmt: skip
    # A time already past opens the sale now (the console's "open now").
    if "opens_at" in changes:
        changes["opens_at"] = max(changes["opens_at"], now)
    o = before.onsale
    problems = _schedule_problems(
        before,
        changes.get("opens_at", o.opens_at),
        changes.get("closes_at", o.closes_at),
        changes.get("presale_opens_at", o.presale_opens_at),
    )
    if problems:
        raise EventRejected(EventRejection.INVALID, "; ".join(problems))


async def patch_onsale(
    pool: asyncpg.Pool, redis: RedisClient, event_id: str, patch: OnsalePatch
) -> Event:
    """Change the metering (any time: the waiting room reads it from Redis at its next
    decision) and the schedule (only before the sale opens: ``sale_started`` after)."""
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not None}
    if not changes:
        raise EventRejected(EventRejection.INVALID, "give at least one of admit_per_minute, "
                            "max_active, paused, pow_difficulty, opens_at, closes_at, "
                            "hold_seconds, presale_opens_at")  # fmt: skip
    eid = parse_id(event_id)
    scripts = Scripts(redis)

    async def change(conn: Any, before: Event) -> Event | None:
        # A schedule sent again as it is (a form saved whole) is no change, even once open.
        for name in OnsalePatch.SCHEDULE:
            if name in changes and changes[name] == getattr(before.onsale, name):
                del changes[name]
        schedule = any(name in changes for name in OnsalePatch.SCHEDULE)
        if not changes:
            return None
        if schedule:
            _check_schedule(before, changes)
        sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(changes))
        await conn.execute(
            f"UPDATE onsales SET {sets}, updated_at = now() WHERE event_id = $1",
            eid, *changes.values(),
        )  # fmt: skip
        after = (await load(conn, "WHERE e.id = $1", [eid]))[0]
        if schedule:
            # The check "not opened yet" again, by Redis's clock and the pre-queue's freeze,
            # atomically with the change: a freeze cannot slip in between.
            o = after.onsale
            args = [0, _ms(o.opens_at), _ms(o.closes_at), o.hold_seconds, _ms(o.presale_opens_at)]
            keys_ = [keys.onsale(after.id), keys.queue_state(after.id), keys.inventory(after.id)]
            reply = await scripts.run("schedule", keys_, args)
            if reply != "ok":
                raise EventRejected(EventRejection(reply[1]))
        await redis.hset(keys.onsale(after.id), mapping=onsale_mapping(after))
        return after

    async def restore(before: Event) -> None:
        await redis.hset(keys.onsale(before.id), mapping=onsale_mapping(before))
        hold_ms = before.onsale.hold_seconds * 1000
        await redis.hset(keys.inventory(before.id), "hold_ms", hold_ms)

    event = await _transact(pool, eid, change, restore)
    return (await reveal_seeds(redis, [event]))[0]
