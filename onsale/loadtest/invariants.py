"""The invariants a load test checks once the committer has drained, as one pure function
over the state read from Redis, Postgres and (through reconcile) Stripe."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from onsale.checkout.payments import Payments
from onsale.checkout.reconcile import reconcile_event
from onsale.checkout.stream import lag
from onsale.inventory import Inventory


class TierState(msgspec.Struct, frozen=True):
    tier_id: str
    capacity: int
    #: Redis: tickets sold and held.
    sold: int
    held: int
    #: Postgres: valid or used tickets of the tier.
    tickets: int


class State(msgspec.Struct, frozen=True):
    tiers: list[TierState]
    #: Stream entries not yet committed (0 once drained).
    pending: int
    #: Every difference ``onsale reconcile`` found (paid orders missing or doubled, ...).
    differences: list[str]
    #: Succeeded PaymentIntents and confirmed orders in Postgres.
    payments: int = 0
    confirmed: int = 0


class Check(msgspec.Struct, frozen=True):
    """One invariant's verdict: PASS (``ok``), FAIL, or SKIP (``skipped``: it could not be
    checked, and ``detail`` says why)."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False

    @property
    def verdict(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.ok else "FAIL"


def passed(checks: list[Check], strict: bool = False) -> bool:
    """No FAIL, and with ``strict`` no SKIP either."""
    return all(c.ok or (c.skipped and not strict) for c in checks)


def check(state: State) -> list[Check]:
    """PASS or FAIL per invariant, each with what it saw."""

    def tiers(bad: list[str], good: str) -> str:
        return "; ".join(bad) if bad else good

    redis_over = [
        f"tier {t.tier_id}: sold {t.sold} + held {t.held} > capacity {t.capacity}"
        for t in state.tiers
        if t.sold + t.held > t.capacity
    ]
    pg_over = [
        f"tier {t.tier_id}: {t.tickets} tickets > capacity {t.capacity}"
        for t in state.tiers
        if t.tickets > t.capacity
    ]
    mismatch = [
        f"tier {t.tier_id}: Redis sold {t.sold}, Postgres tickets {t.tickets}"
        for t in state.tiers
        if t.sold != t.tickets
    ]
    sold = sum(t.sold for t in state.tiers)
    cap = sum(t.capacity for t in state.tiers)
    return [
        Check("committer drained", state.pending == 0, f"{state.pending} entries pending"),
        Check(
            "no oversell in Redis (sold+held <= capacity)",
            not redis_over,
            tiers(redis_over, f"sold {sold} of {cap}"),
        ),
        Check(
            "no oversell in Postgres (tickets <= capacity)",
            not pg_over,
            tiers(pg_over, f"{sum(t.tickets for t in state.tiers)} tickets of {cap}"),
        ),
        Check(
            "Postgres tickets == Redis sold, per tier",
            not mismatch,
            tiers(mismatch, f"{len(state.tiers)} tier(s) equal"),
        ),
        Check(
            "every paid order confirmed exactly once, reconcile clean",
            not state.differences,
            "; ".join(state.differences[:5]) + (" ..." if len(state.differences) > 5 else "")
            or f"{state.payments} payments, {state.confirmed} confirmed orders",
        ),
    ]


_TICKETS_SQL = """
SELECT t.id::text AS id,
       count(k.id) FILTER (WHERE k.status IN ('valid', 'used')) AS tickets
FROM ticket_tiers t LEFT JOIN tickets k ON k.tier_id = t.id
WHERE t.event_id = $1 GROUP BY t.id
"""


async def gather(
    conn: asyncpg.Connection, redis: Any, payments: Payments | None, event_id: str
) -> State:
    """The state of one event; without ``payments`` (no Stripe) reconcile is skipped."""
    eid = uuid.UUID(event_id)
    levels = await Inventory(redis).levels(event_id)
    tickets = {r["id"]: int(r["tickets"]) for r in await conn.fetch(_TICKETS_SQL, eid)}
    tiers = [
        TierState(lv.tier_id, lv.capacity, lv.sold, lv.held, tickets.get(lv.tier_id, 0))
        for lv in levels
    ]
    pending = (await lag(redis, event_id)).pending
    confirmed = await conn.fetchval(
        "SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'confirmed'", eid
    )
    if payments is None:
        return State(tiers, pending, [], confirmed=int(confirmed))
    report = await reconcile_event(conn, redis, payments, event_id)
    return State(tiers, pending, report.differences, report.payments, int(confirmed))
