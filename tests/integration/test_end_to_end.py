"""The whole flow on real Redis, Postgres and localstripe: join, admit, hold, checkout,
pay, webhook, committer, tickets, check-in, reconcile; and 500 buyers for 50 tickets."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.config import Settings
from onsale.inventory import Inventory
from onsale.tickets import qr
from tests.integration.api_support import admitted, bearer, create, iso, paid_order, reconciled
from tests.integration.commit_support import drained, running
from tests.integration.stripe_support import intent_of, pay, signed
from tests.qr_support import decode_png

Client = AsyncTestClient[Litestar]


async def test_one_buyer_from_join_to_check_in(
    client: Client,
    admin: dict[str, str],
    redis: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    stripe_url: str,
    database_url: str,
) -> None:
    event = await create(
        client,
        admin,
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 120},
    )
    ga = event["tiers"][0]["id"]
    place = await admitted(client, event["id"])
    body = {"items": [{"tier_id": ga, "quantity": 2}]}
    hold = await client.post(
        f"/api/events/{event['id']}/holds", json=body, headers=bearer(place["admission_token"])
    )
    checkout = await client.post(
        f"/api/holds/{hold.json()['hold_id']}/checkout",
        json={"email": "grace@example.com", "name": "Grace Hopper"},
        headers={"Idempotency-Key": "e2e"},
    )
    order = checkout.json()
    pi = order["payment"]["payment_intent_id"]
    assert await pay(stripe_url, pi) == "succeeded"
    intent = intent_of(event["id"], order)
    payload, headers = signed("payment_intent.succeeded", intent)
    assert (await client.post("/api/webhooks/stripe", content=payload, headers=headers)).is_success

    committer = Committer(redis, database_url, CommitterOptions(events=(event["id"],)))
    async with running(committer):
        await drained(redis, event["id"])
    row = await pool.fetchrow("SELECT status, amount FROM orders WHERE id = $1::uuid",
                              order["order_id"])  # fmt: skip
    assert dict(row) == {"status": "confirmed", "amount": 9000}

    mine = await client.get(
        f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"])
    )
    tickets = mine.json()["tickets"]
    assert mine.json()["status"] == "confirmed" and len(tickets) == 2
    jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]
    public = jwt.PyJWK(jwks[0]).key
    assert isinstance(public, Ed25519PublicKey)
    for ticket in tickets:
        image = await client.get(
            f"/api/tickets/{ticket['ticket_id']}/qr.png", headers=bearer(order["order_token"])
        )
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        scanned = decode_png(image.content)
        assert scanned == ticket["qr"]
        assert qr.verify(public, scanned, event["id"]) == ticket["ticket_id"]

    scan = {"event_id": event["id"], "qr": tickets[0]["qr"]}
    first = await client.post("/api/checkin", json=scan, headers=admin)
    assert first.status_code == 200, first.text
    assert first.json()["attendee_name"] == "Grace Hopper"
    second = await client.post("/api/checkin", json=scan, headers=admin)
    assert (second.status_code, second.json()["code"]) == (409, "already_checked_in")
    assert second.json()["checked_in_at"] == first.json()["checked_in_at"]

    await reconciled(pool, redis, settings, event["id"])


async def test_five_hundred_buyers_for_fifty_tickets(
    client: Client,
    admin: dict[str, str],
    redis: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    stripe_url: str,
    database_url: str,
) -> None:
    event = await create(
        client,
        admin,
        tiers=[{"name": "Last tickets", "price": 2500, "capacity": 50, "per_order_limit": 1}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 600_000, "hold_seconds": 120},
    )
    tier = event["tiers"][0]["id"]
    committer = Committer(redis, database_url, CommitterOptions(events=(event["id"],)))
    async with running(committer):
        orders = await asyncio.gather(
            *(paid_order(client, stripe_url, event["id"], tier, 1, f"b{i}") for i in range(500))
        )
        await drained(redis, event["id"])
    paid = [o for o in orders if o]
    assert len(paid) == 50

    level = (await Inventory(redis).levels(event["id"]))[0]
    assert (level.sold, level.held) == (50, 0)
    tickets = await pool.fetchval(
        "SELECT count(*) FROM tickets WHERE event_id = $1::uuid AND status = 'valid'", event["id"]
    )
    confirmed = await pool.fetchval(
        "SELECT count(*) FROM orders WHERE event_id = $1::uuid AND status = 'confirmed'",
        event["id"],
    )
    assert (tickets, confirmed) == (50, 50)
    assert await redis.xlen(keys.orders_stream(event["id"])) == 50
    await reconciled(pool, redis, settings, event["id"])
