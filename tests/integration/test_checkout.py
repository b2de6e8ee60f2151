"""Checkout, payment through localstripe and webhooks, on real Redis and Postgres."""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.inventory import Inventory
from tests.integration.api_support import BUYER, bearer, checkout, hold_for
from tests.integration.stripe_support import intent_of, pay, signed

Client = AsyncTestClient[Litestar]


async def test_checkout_is_idempotent(client: Client, admin: dict[str, str]) -> None:
    _, hold, _ = await hold_for(client, admin)
    first = await checkout(client, hold["hold_id"], "k1")
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["status"] == "pending" and order["amount"] == 9000
    assert order["payment"]["provider"] == "stripe"
    assert order["payment"]["payment_intent_id"].startswith("pi_")
    again = await checkout(client, hold["hold_id"], "k1")
    assert (again.status_code, again.json()) == (201, order)
    other_body = await checkout(client, hold["hold_id"], "k1", {**BUYER, "name": "Eve"})
    assert (other_body.status_code, other_body.json()["code"]) == (409, "idempotency_conflict")
    # Another key, the same request: still one order for the hold.
    twin = await checkout(client, hold["hold_id"], "k2")
    assert twin.json()["order_id"] == order["order_id"]
    assert twin.json()["payment"] == order["payment"]


async def test_checkout_errors(client: Client, admin: dict[str, str]) -> None:
    event, hold, _ = await hold_for(client, admin)
    r = await client.post(f"/api/holds/{hold['hold_id']}/checkout", json=BUYER)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    for bad in ({"email": "nope", "name": "x"}, {"email": "a@b.c"}, {"name": "x"}):
        r = await checkout(client, hold["hold_id"], "bad", bad)
        assert r.status_code in (400, 422) and r.json()["code"] == "invalid_request"
    for unknown in (f"{event['id']}.{uuid.uuid4().hex}", "garbage", str(uuid.uuid4())):
        r = await checkout(client, unknown, "k")
        assert (r.status_code, r.json()["code"]) == (409, "hold_expired")


async def test_expired_hold_cannot_check_out(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event, hold, _ = await hold_for(client, admin)
    # Age the hold by hand: expire it in its record and let the sweep return it.
    data = keys.holds_data(event["id"])
    record = await redis.hget(data, hold["hold_id"])
    await redis.hset(data, hold["hold_id"], "1|" + record.split("|", 1)[1])
    await redis.zadd(keys.holds_expiry(event["id"]), {hold["hold_id"]: 1})
    r = await checkout(client, hold["hold_id"], "late")
    assert (r.status_code, r.json()["code"]) == (409, "hold_expired")


async def test_free_orders_confirm_at_once(client: Client, admin: dict[str, str]) -> None:
    _, hold, _ = await hold_for(client, admin, price=0)
    r = await checkout(client, hold["hold_id"], "free")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "confirmed" and order["payment"] is None and order["amount"] == 0
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    body = r.json()
    assert body["status"] == "confirmed" and len(body["tickets"]) == 2
    assert all(t["qr"].startswith(f"ticket:{t['ticket_id']}:v1:") for t in body["tickets"])


async def webhook(client: Client, event_type: str, intent: dict[str, Any], **kw: Any) -> Any:
    body, headers = signed(event_type, intent, **kw)
    return await client.post("/api/webhooks/stripe", content=body, headers=headers)


async def test_paid_order_is_confirmed_once(
    client: Client, admin: dict[str, str], stripe_url: str, redis: Any
) -> None:
    event, hold, _ = await hold_for(client, admin)
    order = (await checkout(client, hold["hold_id"], "pay")).json()
    pi = order["payment"]["payment_intent_id"]
    assert await pay(stripe_url, pi) == "succeeded"
    intent = intent_of(event["id"], order)
    body, headers = signed("payment_intent.succeeded", intent)
    for _ in range(3):  # Stripe may deliver the same event more than once
        r = await client.post("/api/webhooks/stripe", content=body, headers=headers)
        assert r.status_code == 200, r.text
    again = await webhook(client, "payment_intent.succeeded", intent)  # a new event, same PI
    assert again.status_code == 200
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.json()["status"] == "confirmed" and len(r.json()["tickets"]) == 2
    entries = await redis.xrange(keys.orders_stream(event["id"]))
    assert [e[1]["order"] for e in entries] == [order["order_id"]]
    levels = await Inventory(redis).levels(event["id"])
    assert (levels[0].sold, levels[0].held) == (2, 0)
    # A failure notice arriving late changes nothing.
    assert (await webhook(client, "payment_intent.payment_failed", intent)).status_code == 200
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.json()["status"] == "confirmed"


async def test_webhook_signatures(client: Client, admin: dict[str, str]) -> None:
    event, hold, _ = await hold_for(client, admin)
    order = (await checkout(client, hold["hold_id"], "sig")).json()
    intent = intent_of(event["id"], order)
    import time

    for kw in ({"secret": "whsec_forged"}, {"at": int(time.time()) - 3600}):
        r = await webhook(client, "payment_intent.succeeded", intent, **kw)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_signature")
    body, headers = signed("payment_intent.succeeded", intent)
    tampered = body.replace(b'"payment_intent.succeeded"', b'"payment_intent.succeeded" ')
    r = await client.post("/api/webhooks/stripe", content=tampered, headers=headers)
    assert r.status_code == 400
    r = await client.post("/api/webhooks/stripe", content=body)
    assert r.status_code == 400
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.json()["status"] == "pending"  # nothing confirmed without a valid signature


async def test_failed_payment_releases_the_hold(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event, hold, _ = await hold_for(client, admin)
    order = (await checkout(client, hold["hold_id"], "fail")).json()
    intent = intent_of(event["id"], order)
    assert (await webhook(client, "payment_intent.payment_failed", intent)).status_code == 200
    levels = await Inventory(redis).levels(event["id"])
    assert levels[0].held == 0
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.json()["status"] == "failed"
    # The buyer pays after all, with another card: the tickets are taken again.
    assert (await webhook(client, "payment_intent.succeeded", intent)).status_code == 200
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.json()["status"] == "confirmed"
    assert (await Inventory(redis).levels(event["id"]))[0].sold == 2


async def test_late_payment_without_tickets_is_refunded(
    client: Client, admin: dict[str, str], stripe_url: str, redis: Any
) -> None:
    event, hold, _ = await hold_for(client, admin, capacity=2)
    order = (await checkout(client, hold["hold_id"], "late")).json()
    pi = order["payment"]["payment_intent_id"]
    # The hold is released (its time ran out) and someone else buys every ticket.
    await Inventory(redis).release(event["id"], hold["hold_id"])
    other = await Inventory(redis).hold(event["id"], {event["tiers"][0]["id"]: 2})
    await Inventory(redis).confirm(event["id"], other.hold_id, str(uuid.uuid4()), "{}")
    assert await pay(stripe_url, pi) == "succeeded"
    intent = intent_of(event["id"], order)
    assert (await webhook(client, "payment_intent.succeeded", intent)).status_code == 200
    assert (await webhook(client, "payment_intent.succeeded", intent)).status_code == 200
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.json()["status"] == "refunded" and r.json()["tickets"] == []
    from tests.integration.stripe_support import client as stripe_client

    async with stripe_client(stripe_url) as api:
        refunds = await api.v1.refunds.list_async()
    assert [x.payment_intent for x in refunds.data].count(pi) == 1
    levels = (await Inventory(redis).levels(event["id"]))[0]
    assert levels.sold == 2  # not oversold
    entries = await redis.xrange(keys.orders_stream(event["id"]))
    assert json.loads(entries[-1][1]["data"])["status"] == "refunded"
    stats = await client.get(f"/api/events/{event['id']}/stats", headers=admin)
    assert stats.json()["orders"]["confirmed"] == 1  # the other buyer's; not the refund


async def test_order_token_guards_the_order(client: Client, admin: dict[str, str]) -> None:
    _, hold, _ = await hold_for(client, admin, price=0)
    order = (await checkout(client, hold["hold_id"], "tok")).json()
    path = f"/api/orders/{order['order_id']}"
    for headers in ({}, bearer("o1.x.y.z"), bearer(order["order_token"] + "x")):
        r = await client.get(path, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "order_token_invalid")
    _, hold2, _ = await hold_for(client, admin, price=0)
    other = (await checkout(client, hold2["hold_id"], "tok2")).json()
    r = await client.get(path, headers=bearer(other["order_token"]))
    assert r.status_code == 401
