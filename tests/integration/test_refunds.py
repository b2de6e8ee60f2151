"""Refunds end to end against localstripe: Stripe, Redis, Postgres, check-in, reconcile."""

from __future__ import annotations

import asyncio
import uuid
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
from onsale.inventory import Inventory
from onsale.mail.render import Renderer
from tests.integration.accounts_support import login, make_user
from tests.integration.api_support import bearer, checkout, hold_for, reconciled
from tests.integration.commit_support import drained, running
from tests.integration.refund_support import (
    event_with_orders,
    in_postgres,
    outbox_of,
    stripe_refunds,
)
from tests.integration.stripe_support import client as stripe_client
from tests.integration.stripe_support import signed

Client = AsyncTestClient[Litestar]


async def _order(client: Client, order: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _available(redis: Any, event_id: str) -> tuple[int, int]:
    level = (await Inventory(redis).levels(event_id))[0]
    return level.sold, level.capacity - level.sold - level.held


async def test_refund_end_to_end(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    redis: Any,
    settings: Settings,
    stripe_url: str,
    database_url: str,
    app_services: Services,
) -> None:
    event, (order, kept) = await event_with_orders(
        client, admin, stripe_url, orders=2, qty=2, tag="refund-e2e"
    )
    event_id, order_id = event["id"], order["order_id"]
    committer = Committer(redis, database_url, CommitterOptions(events=(event_id,)))
    async with running(committer):
        await drained(redis, event_id)
        tickets = (await _order(client, order))["tickets"]
        assert (await in_postgres(pool, order_id))[0] == "confirmed"

        r = await client.post(
            f"/api/orders/{order_id}/refund",
            json={"reason": "asked", "return_to_sale": False},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "refunded" and r.json()["order_id"] == order_id
        assert (await _order(client, order))["status"] == "refunded"
        assert await in_postgres(pool, order_id) == ("refunded", ["refunded", "refunded"])
        refunds = await stripe_refunds(stripe_url, order["payment"]["payment_intent_id"])
        assert len(refunds) == 1
        assert await outbox_of(pool, order_id, "order_refunded") == 1
        row = await pool.fetchrow(
            "SELECT * FROM outbox WHERE order_id = $1::uuid AND kind = 'order_refunded'", order_id
        )
        mail = await Renderer(app_services.order_tokens, "http://x", "t@x").message(pool, row)
        assert mail["To"] == "refund-e2e0@example.com" and "Refunded" in mail["Subject"]
        text = mail.get_body(preferencelist=("plain",))
        assert text is not None and "asked" in text.get_content()

        again = await client.post(
            f"/api/orders/{order_id}/refund", json={"reason": "again"}, headers=admin
        )
        assert (again.status_code, again.json()["code"]) == (409, "already_refunded")
        assert len(await stripe_refunds(stripe_url, order["payment"]["payment_intent_id"])) == 1

        # The door refuses its tickets; the manifest says they are refunded.
        scan = await client.post(
            "/api/checkin", json={"event_id": event_id, "qr": tickets[0]["qr"]}, headers=admin
        )
        assert (scan.status_code, scan.json()["code"]) == (409, "ticket_not_valid")
        r = await client.get(f"/api/events/{event_id}/checkin/manifest", headers=admin)
        rows = {t["ticket_id"]: t["status"] for t in r.json()["tickets"]}
        assert {rows[t["ticket_id"]] for t in tickets} == {"refunded"}
        # Not back on sale: still sold.
        assert await _available(redis, event_id) == (4, 6)
        await drained(redis, event_id)
    assert (await in_postgres(pool, kept["order_id"]))[0] == "confirmed"
    await reconciled(pool, redis, settings, event_id)


async def test_refund_before_commit_returns_tickets_to_sale(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    redis: Any,
    settings: Settings,
    stripe_url: str,
    database_url: str,
) -> None:
    event, (order,) = await event_with_orders(
        client, admin, stripe_url, orders=1, qty=3, capacity=4, tag="refund-back"
    )
    event_id, order_id = event["id"], order["order_id"]
    assert await _available(redis, event_id) == (3, 1)
    # Not committed yet: the refund writes it to Postgres itself.
    r = await client.post(
        f"/api/orders/{order_id}/refund",
        json={"reason": "resale", "return_to_sale": True},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded"
    assert await in_postgres(pool, order_id) == ("refunded", ["cancelled"] * 3)
    assert await _available(redis, event_id) == (0, 4)  # never above capacity
    # Holdable again: all four.
    hold = await Inventory(redis).hold(event_id, {event["tiers"][0]["id"]: 4}, owner="")
    assert hold.hold_id
    await Inventory(redis).release(event_id, hold.hold_id)

    # The committer's late "confirmed" entry changes nothing.
    committer = Committer(redis, database_url, CommitterOptions(events=(event_id,)))
    async with running(committer):
        await drained(redis, event_id)
    assert await in_postgres(pool, order_id) == ("refunded", ["cancelled"] * 3)
    assert len(await stripe_refunds(stripe_url, order["payment"]["payment_intent_id"])) == 1
    await reconciled(pool, redis, settings, event_id)


async def test_refund_authorization(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, stripe_url: str
) -> None:
    event, (order,) = await event_with_orders(client, admin, stripe_url, tag="refund-auth")
    path = f"/api/orders/{order['order_id']}/refund"
    other = await login(client, (await make_user(pool, "organizer"))["email"])
    r = await client.post(path, json={"reason": "x"}, headers=other)
    assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
    staff = await login(client, (await make_user(pool, "staff"))["email"])
    r = await client.post(path, json={"reason": "x"}, headers=staff)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.post(path, json={"reason": "x"})
    assert r.status_code == 401
    r = await client.post(f"/api/orders/{uuid.uuid4()}/refund", json={}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
    assert (await _order(client, order))["status"] == "confirmed"
    assert event["id"]


async def test_a_pending_order_is_not_refunded(
    client: Client, admin: dict[str, str], stripe_url: str
) -> None:
    _, hold, _ = await hold_for(client, admin)
    r = await checkout(client, hold["hold_id"], "refund-pending")
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/orders/{r.json()['order_id']}/refund", json={}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "order_not_paid")


async def test_charge_refunded_webhook_refunds_the_order(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    redis: Any,
    settings: Settings,
    stripe_url: str,
) -> None:
    event, (order,) = await event_with_orders(client, admin, stripe_url, tag="refund-hook")
    pi = order["payment"]["payment_intent_id"]
    # Refunded in Stripe's dashboard: the charge, without our metadata.
    async with stripe_client(stripe_url) as api:
        await api.v1.refunds.create_async(params={"payment_intent": pi})
    charge = {
        "object": "charge",
        "id": f"ch_{uuid.uuid4().hex[:20]}",
        "payment_intent": pi,
        "refunded": True,
    }
    body, headers = signed("charge.refunded", charge)
    r = await client.post("/api/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert (await _order(client, order))["status"] == "refunded"
    assert (await in_postgres(pool, order["order_id"]))[0] == "refunded"
    assert len(await stripe_refunds(stripe_url, pi)) == 1
    await reconciled(pool, redis, settings, event["id"])


async def test_refund_of_an_order_redis_has_forgotten(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    redis: Any,
    settings: Settings,
    stripe_url: str,
    database_url: str,
) -> None:
    event, (order,) = await event_with_orders(
        client, admin, stripe_url, qty=2, capacity=5, tag="refund-old"
    )
    event_id, order_id = event["id"], order["order_id"]
    async with running(Committer(redis, database_url, CommitterOptions(events=(event_id,)))):
        await drained(redis, event_id)
    # Committed long ago: Redis no longer has its record, Postgres does.
    await redis.hdel(keys.orders(event_id), order_id)
    r = await client.post(
        f"/api/orders/{order_id}/refund",
        json={"reason": "old", "return_to_sale": True},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded" and len(r.json()["tickets"]) == 2
    assert await in_postgres(pool, order_id) == ("refunded", ["cancelled", "cancelled"])
    assert await _available(redis, event_id) == (0, 5)
    assert len(await stripe_refunds(stripe_url, order["payment"]["payment_intent_id"])) == 1
    again = await client.post(f"/api/orders/{order_id}/refund", json={}, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "already_refunded")
    await reconciled(pool, redis, settings, event_id)


async def test_a_refund_cut_off_after_stripe_is_finished_once(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    redis: Any,
    settings: Settings,
    stripe_url: str,
    app_services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event, (order,) = await event_with_orders(
        client, admin, stripe_url, qty=1, capacity=3, tag="refund-cut"
    )
    event_id, order_id = event["id"], order["order_id"]
    pi = order["payment"]["payment_intent_id"]
    payments = app_services.checkout.payments
    assert payments is not None
    real = payments.refund

    async def lost_answer(payment_intent_id: str, key: str) -> str:
        await real(payment_intent_id, key)  # Stripe refunded it; the answer never came back
        raise CheckoutRejected(CheckoutRejection.PAYMENT_FAILED, "connection reset")

    monkeypatch.setattr(payments, "refund", lost_answer)
    path = f"/api/orders/{order_id}/refund"
    r = await client.post(path, json={"reason": "x", "return_to_sale": True}, headers=admin)
    assert r.status_code == 502, r.text
    assert (await _order(client, order))["status"] == "refunding"
    assert await _available(redis, event_id) == (1, 2)
    monkeypatch.setattr(payments, "refund", real)

    # Asked again, concurrently: finished once, as first asked (back on sale).
    answers = await asyncio.gather(
        *(client.post(path, json={"reason": "y"}, headers=admin) for _ in range(3))
    )
    assert {a.status_code for a in answers} <= {200, 409}
    assert 200 in {a.status_code for a in answers}
    assert len(await stripe_refunds(stripe_url, pi)) == 1
    assert await in_postgres(pool, order_id) == ("refunded", ["cancelled"])
    assert await _available(redis, event_id) == (0, 3)
    assert await outbox_of(pool, order_id, "order_refunded") == 1
    await reconciled(pool, redis, settings, event_id)
