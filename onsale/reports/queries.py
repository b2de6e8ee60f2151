"""An event's report and the platform's, read from the rollups (rollup.py) and a few indexed
queries of orders and tickets. Postgres only: a report never touches Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from onsale.events import catalog
from onsale.events.models import Event
from onsale.reports.models import (
    Checkin,
    EventReport,
    FastEvent,
    Funnel,
    Minute,
    PlatformReport,
    PromoUse,
    QuarterHour,
    Sales,
    TierMinute,
    TierSales,
    TopEvent,
)
from onsale.reports.period import Period
from onsale.reports.rollup import ORIGIN, SALE_TIME

#: Events in the platform report's lists.
TOP = 10

_SALES = """
SELECT minute, orders, tickets, revenue, discount, refunded_orders, refunded
FROM report_sales WHERE event_id = $1 AND minute >= $2 AND minute < $3 ORDER BY minute
"""
_TIERS = """
SELECT minute, tier_id, tickets, revenue
FROM report_tier_sales WHERE event_id = $1 AND minute >= $2 AND minute < $3
ORDER BY minute, tier_id
"""
_FUNNEL_AT = """
SELECT joined, admitted, held, checkouts, paid FROM report_funnel
WHERE event_id = $1 AND minute < $2 ORDER BY minute DESC LIMIT 1
"""
_SOLD = "SELECT coalesce(sum(tickets), 0) FROM report_sales WHERE event_id = $1"
# Per quarter hour: one index-only count per quarter between the first and the last
# check-in, cheaper than bucketing every row (no function per row, no hash).
_CHECKINS = f"""
WITH span AS (
    SELECT min(checked_in_at) AS lo, max(checked_in_at) AS hi FROM tickets
    WHERE event_id = $1 AND checked_in_at IS NOT NULL AND checked_in_at >= $2 AND checked_in_at < $3
)
SELECT q.at, c.n
FROM span, generate_series(date_bin('15 minutes', span.lo, {ORIGIN}), span.hi,
                           interval '15 minutes') AS q (at)
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM tickets t
    WHERE t.event_id = $1 AND t.checked_in_at IS NOT NULL
      AND t.checked_in_at >= greatest(q.at, $2)
      AND t.checked_in_at < least(q.at + interval '15 minutes', $3)
) c
WHERE c.n > 0
ORDER BY q.at
"""
_PROMOS = f"""
SELECT p.code, count(*) AS uses, sum(o.discount)::bigint AS discount,
       sum(o.amount)::bigint AS revenue
FROM orders o JOIN promo_codes p ON p.id = o.promo_code_id
WHERE o.event_id = $1 AND o.promo_code_id IS NOT NULL AND o.status = 'confirmed'
  AND {SALE_TIME} >= $2 AND {SALE_TIME} < $3
GROUP BY p.code ORDER BY uses DESC, p.code
"""


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def event_report(
    pool: asyncpg.Pool, event_id: str, period: Period, now: datetime | None = None
) -> EventReport:
    """The report of one event (``EventRejected`` ``not_found`` if there is none)."""
    event = await catalog.get(pool, event_id)
    eid = uuid.UUID(event.id)
    low, high = period.minutes()

    async def rollups() -> tuple[list[asyncpg.Record], list[asyncpg.Record], Funnel, int]:
        async with pool.acquire() as conn:
            minutes = await conn.fetch(_SALES, eid, low, high)
            tiers = await conn.fetch(_TIERS, eid, low, high)
            funnel = await _funnel(conn, eid, period)
            return minutes, tiers, funnel, int(await conn.fetchval(_SOLD, eid))

    async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
        async with pool.acquire() as conn:
            return list(await conn.fetch(sql, eid, *args))

    # The two scans of orders and tickets run side by side with the rollups' small reads:
    # the report takes the longest of them, not their sum.
    (minutes, tiers, funnel, sold_ever), checkins, promos = await asyncio.gather(
        rollups(), fetch(_CHECKINS, period.low, period.high), fetch(_PROMOS, low, high)
    )
    sales = _sales(event, minutes, tiers)
    checked_in = sum(r["n"] for r in checkins)
    ended = event.ends_at or event.starts_at
    after = (now or datetime.now(UTC)) >= ended
    return EventReport(
        event_id=event.id,
        title=event.title,
        currency=event.currency,
        sales=sales,
        funnel=funnel,
        velocity=[Minute(r["minute"], r["tickets"], r["revenue"]) for r in minutes],
        checkin=Checkin(
            checked_in=checked_in,
            rate=_rate(checked_in, sold_ever),
            by_quarter_hour=[QuarterHour(r["at"], r["n"]) for r in checkins],
            # Over the whole event: a no-show is a ticket sold and never scanned.
            no_show_rate=round(1 - _rate(checked_in, sold_ever), 4)
            if after and sold_ever and period.start is None and period.end is None
            else None,
        ),
        promo_codes=[PromoUse(r["code"], r["uses"], r["discount"], r["revenue"]) for r in promos],
        tier_velocity=[TierMinute(r["minute"], str(r["tier_id"]), r["tickets"]) for r in tiers],
        from_=period.start,
        to=period.end,
    )


def _sales(event: Event, minutes: list[asyncpg.Record], tiers: list[asyncpg.Record]) -> Sales:
    orders = sum(r["orders"] for r in minutes)
    revenue = sum(r["revenue"] for r in minutes)
    by_tier: dict[str, list[int]] = {t.id: [0, 0] for t in event.tiers}
    for r in tiers:
        totals = by_tier.setdefault(str(r["tier_id"]), [0, 0])
        totals[0] += r["tickets"]
        totals[1] += r["revenue"]
    names = {t.id: t.name for t in event.tiers}
    return Sales(
        tickets_sold=sum(r["tickets"] for r in minutes),
        orders=orders,
        revenue=revenue,
        refunded=sum(r["refunded"] for r in minutes),
        average_order_value=round(revenue / orders) if orders else 0,
        by_tier=[
            TierSales(tid, names.get(tid, ""), sold, value)
            for tid, (sold, value) in by_tier.items()
        ],
        refunded_orders=sum(r["refunded_orders"] for r in minutes),
        discount=sum(r["discount"] for r in minutes),
    )


async def _funnel(conn: Any, eid: uuid.UUID, period: Period) -> Funnel:
    """The counters are cumulative: a period's figures are the last reading before its end
    less the last one before its start."""
    _, high = period.minutes()
    end = await conn.fetchrow(_FUNNEL_AT, eid, high)
    if end is None:
        return Funnel(0, 0, 0, 0, 0)
    figures = [int(v) for v in end.values()]
    if period.start is not None:
        start = await conn.fetchrow(_FUNNEL_AT, eid, period.minutes()[0])
        if start is not None:
            figures = [max(a - int(b), 0) for a, b in zip(figures, start.values(), strict=True)]
    return Funnel(*figures)


_PLATFORM = """
SELECT coalesce(sum(revenue), 0) AS gmv, coalesce(sum(orders), 0) AS orders,
       coalesce(sum(tickets), 0) AS tickets
FROM report_sales WHERE minute >= $1 AND minute < $2
"""
_GMV_BY_CURRENCY = """
SELECT e.currency, sum(r.revenue) AS revenue
FROM report_sales r JOIN events e ON e.id = r.event_id
WHERE r.minute >= $1 AND r.minute < $2
GROUP BY e.currency HAVING sum(r.revenue) <> 0 ORDER BY revenue DESC, e.currency
"""
_COUNTS = """
SELECT (SELECT count(*) FROM events WHERE created_at >= $1 AND created_at < $2) AS events,
       (SELECT count(*) FROM users WHERE role = 'organizer'
          AND created_at >= $1 AND created_at < $2) AS organizers
"""
_TOP = """
SELECT r.event_id, e.title, sum(r.revenue) AS revenue
FROM report_sales r JOIN events e ON e.id = r.event_id
WHERE r.minute >= $1 AND r.minute < $2
GROUP BY r.event_id, e.title HAVING sum(r.revenue) > 0
ORDER BY revenue DESC, r.event_id LIMIT $3
"""
# Tickets over the span of sale, first minute to last (at least one minute).
_FASTEST = """
SELECT r.event_id, e.title,
       sum(r.tickets) * 60.0 / (extract(epoch FROM max(r.minute) - min(r.minute)) / 60 + 1)
           AS per_hour
FROM report_sales r JOIN events e ON e.id = r.event_id
WHERE r.minute >= $1 AND r.minute < $2 AND r.tickets > 0
GROUP BY r.event_id, e.title
ORDER BY per_hour DESC, r.event_id LIMIT $3
"""


async def platform_report(pool: asyncpg.Pool, period: Period) -> PlatformReport:
    """GMV, orders and tickets sold in the period; events and organizers created in it (all
    of them without one); the top-grossing and fastest-selling events."""
    low, high = period.minutes()
    async with pool.acquire() as conn:
        totals = await conn.fetchrow(_PLATFORM, low, high)
        by_currency = await conn.fetch(_GMV_BY_CURRENCY, low, high)
        counts = await conn.fetchrow(_COUNTS, period.low, period.high)
        top = await conn.fetch(_TOP, low, high, TOP)
        fastest = await conn.fetch(_FASTEST, low, high, TOP)
    assert totals is not None and counts is not None  # aggregates: always one row
    return PlatformReport(
        gmv=int(totals["gmv"]),
        orders=int(totals["orders"]),
        tickets=int(totals["tickets"]),
        events=counts["events"],
        organizers=counts["organizers"],
        top_events=[TopEvent(str(r["event_id"]), r["title"], int(r["revenue"])) for r in top],
        fastest_selling=[
            FastEvent(str(r["event_id"]), r["title"], round(float(r["per_hour"]), 1))
            for r in fastest
        ],
        gmv_by_currency={r["currency"].strip(): int(r["revenue"]) for r in by_currency},
        from_=period.start,
        to=period.end,
    )
