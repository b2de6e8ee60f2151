"""Access codes: a presale's keys, generated in bulk, kept only as digests.

A code is 12 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown as
``XXXX-XXXX-XXXX``: 59 random bits, so a plain SHA-256 (over the event id and the code)
is a safe digest. Postgres keeps every code's digest, ``max_uses`` and tiers (migration
0006); Redis keeps the same under the event's hash tag (``keys.access_codes``) with the
live count of uses, which ``lua/queue_join.lua`` takes atomically when a visitor first
uses a code (then bound to them: ``keys.access_visitors``). :func:`restore` writes every
code of an event into Redis again (arming, ``onsale recover``), never lowering a live
count; after a Redis loss the uses start again from nothing, as the waiting room does.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import Meta

from onsale import keys
from onsale.connections import RedisClient
from onsale.events.catalog import get as get_event
from onsale.events.catalog import parse_id
from onsale.events.errors import EventRejected, EventRejection

#: Unambiguous to read aloud or type from paper: no 0/O, 1/I/L.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 12
GROUP = 4
#: What one request may generate: a page of codes to hand out, not a dump of the table.
MAX_COUNT = 5000


class AccessCodesIn(msgspec.Struct, forbid_unknown_fields=True):
    count: Annotated[int, Meta(ge=1, le=MAX_COUNT)]
    max_uses: Annotated[int, Meta(ge=1, le=1_000_000)]
    #: A presale admission by these codes may hold only these tiers (``None``: every tier).
    tier_ids: Annotated[list[str], Meta(min_length=1, max_length=50)] | None = None


class AccessCodesOut(msgspec.Struct):
    #: Shown once: only their digests are kept.
    codes: list[str]
    batch_id: str


class AccessBatch(msgspec.Struct):
    batch_id: str
    created_at: datetime
    count: int
    max_uses: int
    tier_ids: list[str] | None
    #: Uses taken (live, from Redis), and codes used at least once.
    uses: int
    used_codes: int


class AccessSummary(msgspec.Struct):
    batches: list[AccessBatch]
    codes: int
    uses: int


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def normalize(code: str) -> str:
    """What a buyer typed, as generated: case, spaces and dashes do not matter."""
    return "".join(c for c in code.upper() if c not in " -\t")


def digest(event_id: str, code: str) -> str:
    """The code's digest, as stored (Postgres and Redis) and sent to the join script (which
    finds no code for anything else a buyer types)."""
    plain = normalize(code)
    return hashlib.sha256(f"{event_id}:{plain}".encode()).hexdigest()


def _mirror(code_hash: str, max_uses: int, tier_ids: Sequence[Any] | None) -> dict[str, Any]:
    return {
        f"{code_hash}:max": max_uses,
        f"{code_hash}:tiers": " ".join(str(t) for t in tier_ids or ()),
    }


async def _load(redis: RedisClient, event_id: str, rows: Sequence[Any]) -> None:
    """Codes into Redis: their limits set, their uses kept (0 for a new code)."""
    key = keys.access_codes(event_id)
    mapping: dict[str, Any] = {}
    for r in rows:
        mapping |= _mirror(r["code_hash"], r["max_uses"], r["tier_ids"])
    async with redis.pipeline(transaction=False) as pipe:
        for r in rows:
            pipe.hsetnx(key, f"{r['code_hash']}:uses", 0)
        if mapping:
            pipe.hset(key, mapping=mapping)
        await pipe.execute()


async def create(
    pool: asyncpg.Pool, redis: RedisClient, event_id: str, data: AccessCodesIn
) -> AccessCodesOut:
    """``count`` new codes of the event, each good for ``max_uses`` visitors; all or none."""
    event = await get_event(pool, event_id)
    if event.status == "cancelled":
        raise EventRejected(EventRejection.CANCELLED)
    tiers = {t.id for t in event.tiers}
    unknown = [t for t in data.tier_ids or () if t not in tiers]
    if unknown:
        raise EventRejected(
            EventRejection.INVALID, f"tier_ids: not tiers of this event: {', '.join(unknown[:5])}"
        )
    tier_ids = sorted(set(data.tier_ids)) if data.tier_ids else None
    codes = list({new_code() for _ in range(data.count)})
    while len(codes) < data.count:  # a repeat among 2^59 is near impossible, but be exact
        codes = list({*codes, new_code()})
    batch = uuid.uuid4()
    rows = [
        {"code_hash": digest(event.id, c), "max_uses": data.max_uses, "tier_ids": tier_ids}
        for c in codes
    ]
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            """INSERT INTO access_codes (event_id, batch_id, code_hash, max_uses, tier_ids)
               VALUES ($1, $2, $3, $4, $5::uuid[])""",
            [(parse_id(event.id), batch, r["code_hash"], data.max_uses, tier_ids) for r in rows],
        )
        # Inside the transaction: if Redis refuses, no code exists anywhere.
        await _load(redis, event.id, rows)
    return AccessCodesOut(codes=codes, batch_id=str(batch))


async def summary(pool: asyncpg.Pool, redis: RedisClient, event_id: str) -> AccessSummary:
    """The event's codes by batch, with their uses; never the codes themselves."""
    rows = await pool.fetch(
        """SELECT batch_id, min(created_at) AS created_at, max_uses, tier_ids,
                  array_agg(code_hash) AS hashes
           FROM access_codes WHERE event_id = $1
           GROUP BY batch_id, max_uses, tier_ids ORDER BY min(created_at), batch_id""",
        parse_id(event_id),
    )
    key = keys.access_codes(event_id)
    batches = []
    for r in rows:
        uses = [int(u or 0) for u in await redis.hmget(key, [f"{h}:uses" for h in r["hashes"]])]
        batches.append(
            AccessBatch(
                batch_id=str(r["batch_id"]),
                created_at=r["created_at"],
                count=len(r["hashes"]),
                max_uses=r["max_uses"],
                tier_ids=[str(t) for t in r["tier_ids"]] if r["tier_ids"] else None,
                uses=sum(uses),
                used_codes=sum(1 for u in uses if u > 0),
            )
        )
    return AccessSummary(
        batches=batches, codes=sum(b.count for b in batches), uses=sum(b.uses for b in batches)
    )


async def restore(pool: asyncpg.Pool, redis: RedisClient, event_id: str) -> int:
    """Every code of the event into Redis again (idempotent); returns how many."""
    rows = await pool.fetch(
        "SELECT code_hash, max_uses, tier_ids FROM access_codes WHERE event_id = $1",
        parse_id(event_id),
    )
    await _load(redis, event_id, rows)
    return len(rows)
