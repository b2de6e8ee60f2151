"""Cancelling an event with paid orders: every one refunded once, even when cut off."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.config import Settings
from onsale.gateway.services import Services
from tests.integration.api_support import paid_order, reconciled
from tests.integration.commit_support import drained, running
from tests.integration.refund_support import (
    event_with_orders,
    in_postgres,
    outbox_of,
    stripe_refunds,
)

Client = AsyncTestClient[Litestar]


async def test_cancel_refunds_every_paid_order_once(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    redis: Any,
    settings: Settings,
    stripe_url: str,
    database_url: str,
    app_services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event, committed = await event_with_orders(
        client, admin, stripe_url, orders=2, qty=2, capacity=20, tag="cancel-a"
    )
    event_id = event["id"]
    committer = Committer(redis, database_url, CommitterOptions(events=(event_id,)))
    async with running(committer):
        await drained(redis, event_id)
    # Paid a moment ago: confirmed in Redis, not yet in Postgres.
    tier = event["tiers"][0]["id"]
    late = [await paid_order(client, stripe_url, event_id, tier, 1, f"cancel-b{i}") for i in (0, 1)]
    orders = [*committed, *(o for o in late if o is not None)]
    assert len(orders) == 4

    # Stripe fails after the first refund: the cancellation is cut off midway.
    payments = app_services.checkout.payments
    assert payments is not None
    real, calls = payments.refund, []

    async def flaky(payment_intent_id: str, order_id: str) -> str:
        calls.append(order_id)
        if len(calls) > 1:
            raise CheckoutRejected(CheckoutRejection.PAYMENT_FAILED, "stripe is down")
        return await real(payment_intent_id, order_id)

    monkeypatch.setattr(payments, "refund", flaky)
    r = await client.post(f"/api/events/{event_id}/cancel", headers=admin)
    assert (r.status_code, r.json()["code"]) == (502, "payment_provider_error"), r.text
    assert await redis.hget(keys.onsale(event_id), "closes_ms") == "1"
    assert (await client.get(f"/api/events/{event_id}")).json()["status"] == "cancelled"
    monkeypatch.setattr(payments, "refund", real)

    for _ in range(2):  # finished by cancelling again; a third time changes nothing
        r = await client.post(f"/api/events/{event_id}/cancel", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json() == {"refunded_orders": 4, "voided_tickets": 6}
    for order in orders:
        assert len(await stripe_refunds(stripe_url, order["payment"]["payment_intent_id"])) == 1
        status, tickets = await in_postgres(pool, order["order_id"])
        assert status == "refunded" and tickets and set(tickets) == {"refunded"}
        assert await outbox_of(pool, order["order_id"], "order_refunded") == 1
    async with running(Committer(redis, database_url, CommitterOptions(events=(event_id,)))):
        await drained(redis, event_id)
    await reconciled(pool, redis, settings, event_id)
