"""Promo codes in Postgres, mirrored into Redis where holds take their uses.

Postgres has each code as the organizer made it and ``used_count``, the confirmed orders
that used it (the committer keeps it). Redis has the same code in the event's promo hash
(``keys.promo``, under the event's hash tag so hold.lua takes a use and the tickets in one
step) and its live count of uses: holds with the code plus confirmed orders with it.
:func:`arm` writes every code of an event into Redis again, its count only when Redis has
none (after a loss the live holds are gone, and Postgres's count is the confirmed uses).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from onsale import keys
from onsale.connections import RedisClient
from onsale.events.catalog import get as get_event
from onsale.promo.errors import PromoRejected, PromoRejection
from onsale.promo.models import PromoIn, PromoOut

_INSERT = """
INSERT INTO promo_codes (id, event_id, code, discount_type, discount_value, max_uses,
                         valid_from, valid_until, tier_ids)
VALUES ($1, $2, $3, $4::discount_type, $5, $6, $7, $8, $9::uuid[])
RETURNING *
"""
_OF_EVENT = "SELECT * FROM promo_codes WHERE event_id = $1 ORDER BY created_at, code"


def _ms(t: datetime | None) -> int:
    return int(t.timestamp() * 1000) if t else 0


def mirror(row: asyncpg.Record | dict[str, Any]) -> str:
    """A code's Redis value: ``kind|value|max_uses|from_ms|until_ms|tier ids`` (see
    ``keys.promo``; hold.lua parses it)."""
    kind = "p" if row["discount_type"] == "percentage" else "a"
    tiers = " ".join(str(t) for t in row["tier_ids"] or ())
    return "|".join(
        (kind, str(row["discount_value"]), str(row["max_uses"] or 0),
         str(_ms(row["valid_from"])), str(_ms(row["valid_until"])), tiers)
    )  # fmt: skip


def _out(row: asyncpg.Record, uses: int) -> PromoOut:
    percent = row["discount_type"] == "percentage"
    return PromoOut(
        id=str(row["id"]),
        code=row["code"],
        percent_off=row["discount_value"] if percent else None,
        amount_off=None if percent else row["discount_value"],
        max_uses=row["max_uses"],
        tier_ids=[str(t) for t in row["tier_ids"]] if row["tier_ids"] is not None else None,
        starts_at=row["valid_from"],
        ends_at=row["valid_until"],
        uses=uses,
        created_at=row["created_at"],
    )


async def create(pool: asyncpg.Pool, redis: RedisClient, event_id: str, data: PromoIn) -> PromoOut:
    """A new code of the event, in Postgres and Redis; refused whole (nothing written) when
    invalid or taken."""
    problems = data.problems()
    event = await get_event(pool, event_id)
    tiers = {t.id for t in event.tiers}
    unknown = [t for t in data.tier_ids or () if t not in tiers]
    if unknown:
        problems.append(f"tier_ids: not tiers of this event: {', '.join(unknown[:5])}")
    if problems:
        raise PromoRejected(PromoRejection.INVALID, "; ".join(problems))
    code = data.code.upper()
    percent = data.percent_off is not None
    async with pool.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                _INSERT, uuid.uuid4(), uuid.UUID(event.id), code,
                "percentage" if percent else "fixed_amount",
                data.percent_off if percent else data.amount_off, data.max_uses,
                data.starts_at, data.ends_at,
                [uuid.UUID(t) for t in data.tier_ids] if data.tier_ids is not None else None,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise PromoRejected(
                PromoRejection.CODE_TAKEN, f"This event has a code {code} already."
            ) from None
        assert row is not None
        # Before the commit: if Redis fails, the code is in neither.
        await redis.hset(keys.promo(event.id), code, mirror(row))
        await redis.hsetnx(keys.promo(event.id), code + ":used", 0)
    return _out(row, 0)


async def listing(pool: asyncpg.Pool, redis: RedisClient, event_id: str) -> list[PromoOut]:
    """The event's codes with their uses: Redis's live count (holds and confirmed orders),
    or Postgres's confirmed uses for a code Redis does not have."""
    event = await get_event(pool, event_id)
    rows = await pool.fetch(_OF_EVENT, uuid.UUID(event.id))
    if not rows:
        return []
    counts = await redis.hmget(keys.promo(event.id), [r["code"] + ":used" for r in rows])
    return [
        _out(r, int(c) if c is not None else r["used_count"])
        for r, c in zip(rows, counts, strict=True)
    ]


async def arm(pool: asyncpg.Pool, redis: RedisClient, event_id: str) -> int:
    """Every code of the event into Redis (idempotent; a live count is never reset, a
    missing one starts at Postgres's confirmed uses). Returns how many codes."""
    rows = await pool.fetch(_OF_EVENT, uuid.UUID(event_id))
    if not rows:
        return 0
    key = keys.promo(event_id)
    await redis.hset(key, mapping={r["code"]: mirror(r) for r in rows})
    for r in rows:
        await redis.hsetnx(key, r["code"] + ":used", r["used_count"])
    return len(rows)
