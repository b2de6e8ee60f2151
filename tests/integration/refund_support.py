"""Paid orders to refund, and what Stripe and Postgres say about them afterwards."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.api_support import create, iso, paid_order
from tests.integration.stripe_support import client as stripe_client

Client = AsyncTestClient[Litestar]


async def event_with_orders(
    client: Client,
    admin: dict[str, str],
    stripe_url: str,
    *,
    orders: int = 1,
    qty: int = 2,
    capacity: int = 10,
    tag: str = "buyer",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An open event and ``orders`` paid orders of ``qty`` tickets each."""
    event = await create(
        client,
        admin,
        tiers=[{"name": "GA", "price": 4500, "capacity": capacity, "per_order_limit": 6}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60},
    )
    tier = event["tiers"][0]["id"]
    paid = []
    for i in range(orders):
        order = await paid_order(client, stripe_url, event["id"], tier, qty, f"{tag}{i}")
        assert order is not None
        paid.append(order)
    return event, paid


async def stripe_refunds(stripe_url: str, payment_intent_id: str) -> list[Any]:
    async with stripe_client(stripe_url) as api:
        page = await api.v1.refunds.list_async(
            params={"payment_intent": payment_intent_id, "limit": 100}
        )
        return list(page.data)


async def in_postgres(pool: asyncpg.Pool, order_id: str) -> tuple[str | None, list[str]]:
    """The order's status and its tickets' statuses in Postgres."""
    status = await pool.fetchval("SELECT status::text FROM orders WHERE id = $1::uuid", order_id)
    rows = await pool.fetch(
        "SELECT status::text AS s FROM tickets WHERE order_id = $1::uuid ORDER BY id", order_id
    )
    return status, [r["s"] for r in rows]


async def outbox_of(pool: asyncpg.Pool, order_id: str, kind: str) -> int:
    found: int = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE order_id = $1::uuid AND kind = $2", order_id, kind
    )
    return found
