"""What the reports tests share: an event sold through the real path and committed (so the
committer keeps its rollups), and the same figures computed by plain SQL."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from onsale.checkout.committer import Committer, CommitterOptions
from onsale.events.models import Event
from tests.integration.commit_support import create_event, drained, running, sell, until


async def sold_and_committed(
    pool: asyncpg.Pool, redis: Any, database_url: str, orders: int, seed: int = 0
) -> Event:
    """An event with ``orders`` orders held, confirmed and committed by a real committer,
    whose rollups have caught up."""
    event = await create_event(pool, redis)
    committer = Committer(redis, database_url, CommitterOptions(events=(event.id,), block_ms=50))
    committer.rollups.every_s = 0.05
    async with running(committer):
        await sell(redis, event, orders, seed=seed)
        await drained(redis, event.id)

        async def rolled() -> bool:
            n = await pool.fetchval(
                "SELECT coalesce(sum(orders), 0) FROM report_sales WHERE event_id = $1",
                uuid.UUID(event.id),
            )
            return bool(n == orders)

        await until(rolled, "the committer's rollups")
    return event


def minute(at: datetime) -> str:
    """A minute as the report gives it (ISO 8601, UTC)."""
    return at.astimezone(UTC).replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")


async def plain_sales(
    conn: asyncpg.Connection, event_id: str, low: datetime, high: datetime
) -> dict[str, Any]:
    """The sales part of the report, by plain SQL over orders and order_items."""
    eid = uuid.UUID(event_id)
    when = "coalesce(o.confirmed_at, o.created_at)"
    orders = await conn.fetch(
        f"SELECT o.id, o.status::text AS status, o.amount, {when} AS at FROM orders o "
        f"WHERE o.event_id = $1 AND {when} >= $2 AND {when} < $3",
        eid,
        low,
        high,
    )
    items = await conn.fetch(
        f"SELECT i.order_id, i.tier_id::text AS tier, i.quantity, i.unit_price FROM order_items i "
        f"JOIN orders o ON o.id = i.order_id WHERE o.event_id = $1 AND o.status = 'confirmed' "
        f"AND {when} >= $2 AND {when} < $3",
        eid,
        low,
        high,
    )
    confirmed = [o for o in orders if o["status"] == "confirmed"]
    revenue = sum(o["amount"] for o in confirmed)
    by_tier: dict[str, list[int]] = {}
    for i in items:
        t = by_tier.setdefault(i["tier"], [0, 0])
        t[0] += i["quantity"]
        t[1] += i["quantity"] * i["unit_price"]
    at = {o["id"]: o["at"] for o in confirmed}
    velocity: dict[str, list[int]] = {}
    for o in confirmed:
        velocity.setdefault(minute(o["at"]), [0, 0])[1] += o["amount"]
    for i in items:
        velocity[minute(at[i["order_id"]])][0] += i["quantity"]
    return {
        "tickets_sold": sum(i["quantity"] for i in items),
        "orders": len(confirmed),
        "revenue": revenue,
        "refunded": sum(o["amount"] for o in orders if o["status"] == "refunded"),
        "average_order_value": round(revenue / len(confirmed)) if confirmed else 0,
        "by_tier": by_tier,
        "velocity": sorted((k, v[0], v[1]) for k, v in velocity.items()),
    }


def parse_csv(body: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    return rows[0], rows[1:]
