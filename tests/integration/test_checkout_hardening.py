"""Checkout and payment against a determined buyer and a racing Stripe (issue 8: defects 3,
4, 6, 7 and 12), through the public API with real Redis, Postgres and the Stripe emulator."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout.models import PaidIntent
from onsale.config import Settings
from onsale.errors import ApiError, Code
from onsale.gateway.app import create_app
from onsale.gateway.services import Services
from onsale.inventory import Inventory
from tests.integration.api_support import BUYER, bearer, checkout, fresh_window, hold_for
from tests.integration.api_support import event as event_body
from tests.integration.stripe_support import client as stripe_client
from tests.integration.stripe_support import intent_of, pay, signed

Client = AsyncTestClient[Litestar]


async def webhook(client: Client, event_type: str, intent: dict[str, Any]) -> Any:
    body, headers = signed(event_type, intent)
    return await client.post("/api/webhooks/stripe", content=body, headers=headers)


async def status_of(client: Client, order: dict[str, Any]) -> Any:
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    return r.json()


async def refunds_of(stripe_url: str, payment_intent_id: str) -> int:
    async with stripe_client(stripe_url) as api:
        refunds = await api.v1.refunds.list_async(params={"limit": 100})
    return [x.payment_intent for x in refunds.data].count(payment_intent_id)


async def test_refused_checkouts_leave_nothing_behind(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event, hold, _ = await hold_for(client, admin)
    tagged = f"{{ev:{event['id']}}}*"
    before = set(await redis.keys(tagged))
    for i in range(200):
        made_up = f"{event['id']}.{uuid.uuid4().hex}"
        r = await checkout(client, made_up, f"key-{i}")
        assert (r.status_code, r.json()["code"]) == (409, "hold_expired")
        r = await checkout(client, str(uuid.uuid4()) + "." + uuid.uuid4().hex, f"key-{i}")
        assert r.status_code == 409
    assert set(await redis.keys(tagged)) == before
    # A real checkout's idempotency record expires: a while after its hold would have.
    r = await checkout(client, hold["hold_id"], "real")
    assert r.status_code == 201, r.text
    records = [k for k in await redis.keys(tagged) if ":idem:" in k]
    assert len(records) == 1
    assert 0 < await redis.ttl(records[0]) <= 60 + 3600


async def test_checkouts_are_rate_limited_per_client(settings: Settings, redis: Any) -> None:
    for counter in await redis.keys(keys.CHECKOUT_LIMIT + "*"):  # other tests' checkouts
        await redis.delete(counter)
    low = msgspec.structs.replace(
        settings, security=msgspec.structs.replace(settings.security, checkouts_per_minute=5)
    )
    async with AsyncTestClient(app=create_app(low)) as c:
        fresh_window()
        codes = []
        for i in range(7):
            r = await checkout(c, f"{uuid.uuid4()}.{uuid.uuid4().hex}", f"k{i}")
            codes.append(r.status_code)
        assert codes[:5] == [409] * 5 and codes[5:] == [429, 429]
        assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("name", ["Ada\u0000Lovelace", "Ada\x07", "Ada\nLovelace", "\u0085"])
async def test_control_characters_are_refused(
    client: Client, admin: dict[str, str], name: str
) -> None:
    _, hold, _ = await hold_for(client, admin)
    r = await checkout(client, hold["hold_id"], "ctl", {"email": "ada@example.com", "name": name})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    r = await checkout(client, hold["hold_id"], "ctl2", {"email": "a\u0000@b.c", "name": "Ada"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    # The test event, valid but for its title (its dates are good whatever the day).
    r = await client.post("/api/events", json=event_body(title=f"Show {name}"), headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    assert "title" in r.json()["detail"]


async def test_a_failure_notice_racing_the_success_never_wins(
    client: Client, admin: dict[str, str], stripe_url: str, app_services: Services
) -> None:
    """``payment_failed`` (an earlier attempt) has read the pending order when ``succeeded``
    confirms it; the failure must not overwrite the confirmation."""
    event, hold, _ = await hold_for(client, admin)
    order = (await checkout(client, hold["hold_id"], "race")).json()
    assert await pay(stripe_url, order["payment"]["payment_intent_id"]) == "succeeded"
    intent = intent_of(event["id"], order)
    checkout_ = app_services.checkout
    load = checkout_.load
    raced: list[str] = []

    async def read_then_lose_the_race(event_id: str, order_id: str) -> Any:
        found = await load(event_id, order_id)
        if not raced:  # the failure notice has read the order: now the success lands
            paid = PaidIntent(intent["id"], intent["amount"], intent["currency"])
            checkout_.load = load  # type: ignore[method-assign]
            raced.append(str((await checkout_.confirm(event_id, order_id, paid))[1]))
        return found

    checkout_.load = read_then_lose_the_race  # type: ignore[method-assign]
    try:
        r = await webhook(client, "payment_intent.payment_failed", intent)
    finally:
        checkout_.load = load  # type: ignore[method-assign]
    assert (r.status_code, raced) == (200, ["confirmed"])
    body = await status_of(client, order)
    assert (body["status"], len(body["tickets"])) == ("confirmed", 2)


async def test_a_refund_is_recorded_before_stripe_and_never_retakes(
    client: Client, admin: dict[str, str], stripe_url: str, redis: Any, app_services: Services
) -> None:
    event, hold, _ = await hold_for(client, admin, capacity=2)
    order = (await checkout(client, hold["hold_id"], "refunding")).json()
    pi = order["payment"]["payment_intent_id"]
    inventory = Inventory(redis)
    await inventory.release(event["id"], hold["hold_id"])
    other = await inventory.hold(event["id"], {event["tiers"][0]["id"]: 2})
    assert await pay(stripe_url, pi) == "succeeded"
    payments = app_services.payments
    real_refund = payments.refund

    async def stripe_down(*_: Any) -> str:
        raise ApiError(Code.PAYMENT_PROVIDER_ERROR)

    payments.refund = stripe_down
    try:
        r = await webhook(client, "payment_intent.succeeded", intent_of(event["id"], order))
        assert r.status_code == 502
    finally:
        payments.refund = real_refund
    assert (await status_of(client, order))["status"] == "refunding"
    # The tickets come free again before Stripe redelivers: still refunded, never re-taken.
    await inventory.release(event["id"], other.hold_id)
    r = await webhook(client, "payment_intent.succeeded", intent_of(event["id"], order))
    assert r.status_code == 200, r.text
    assert (await status_of(client, order))["status"] == "refunded"
    assert (await inventory.levels(event["id"]))[0].sold == 0
    assert await refunds_of(stripe_url, pi) == 1


async def test_a_payment_that_does_not_match_its_order_is_refunded(
    client: Client, admin: dict[str, str], stripe_url: str, redis: Any
) -> None:
    event, hold, _ = await hold_for(client, admin)
    order = (await checkout(client, hold["hold_id"], "short")).json()
    pi = order["payment"]["payment_intent_id"]
    assert await pay(stripe_url, pi) == "succeeded"
    # Another PaymentIntent (paid, a cent) naming this order: given back, the order untouched.
    async with stripe_client(stripe_url) as api:
        foreign = await api.v1.payment_intents.create_async(
            params={"amount": 1, "currency": "usd", "metadata": {"order_id": order["order_id"]}}
        )
    assert await pay(stripe_url, foreign.id) == "succeeded"
    stolen = {**intent_of(event["id"], order), "id": foreign.id}
    assert (await webhook(client, "payment_intent.succeeded", stolen)).status_code == 200
    assert (await status_of(client, order))["status"] == "pending"
    assert await refunds_of(stripe_url, foreign.id) == 1
    # The order's own intent, but not the amount or currency it asked for: refunded.
    for wrong in ({"amount_received": order["amount"] - 1}, {"currency": "eur"}):
        intent = {**intent_of(event["id"], order), **wrong}
        assert (await webhook(client, "payment_intent.succeeded", intent)).status_code == 200
    body = await status_of(client, order)
    assert (body["status"], body["tickets"]) == ("refunded", [])
    assert await refunds_of(stripe_url, pi) == 1
    levels = (await Inventory(redis).levels(event["id"]))[0]
    assert (levels.sold, levels.held) == (0, 0)
    metrics = (await client.get("/metrics")).text
    assert 'onsale_webhooks_total{outcome="mismatch"}' in metrics


async def test_a_free_order_whose_hold_ran_out_answers_409(
    client: Client, admin: dict[str, str], app_services: Services
) -> None:
    """The hold is live when checkout looks, gone (and the tier sold out) when it confirms."""
    event, hold, _ = await hold_for(client, admin, price=0, capacity=2)
    inventory = app_services.checkout.inventory
    looked = inventory.live_hold

    async def look_then_lose(event_id: str, hold_id: str) -> Any:
        """Runs in the gateway's event loop: its own Redis client, not the test's."""
        redis = inventory.redis
        found = await looked(event_id, hold_id)
        data = keys.holds_data(event_id)
        record = await redis.hget(data, hold_id)
        await redis.hset(data, hold_id, "1|" + record.split("|", 1)[1])
        await redis.zadd(keys.holds_expiry(event_id), {hold_id: 1})
        rival = Inventory(inventory.redis)
        await rival.sweep(event_id)
        await rival.hold(event_id, {event["tiers"][0]["id"]: 2})
        return found

    inventory.live_hold = look_then_lose
    try:
        r = await checkout(client, hold["hold_id"], "free-late", BUYER)
    finally:
        inventory.live_hold = looked
    assert (r.status_code, r.json()["code"]) == (409, "hold_expired")
    r = await checkout(client, hold["hold_id"], "free-late", BUYER)  # no order was left behind
    assert (r.status_code, r.json()["code"]) == (409, "hold_expired")


async def test_a_checkout_cut_off_midway_is_finished_by_its_retry(
    client: Client, admin: dict[str, str], redis: Any, stripe_url: str
) -> None:
    """The first request claimed the order, then died before saving its PaymentIntent (a
    killed worker): the buyer's retry completes it instead of answering 409 until expiry."""
    event, hold, _ = await hold_for(client, admin)
    first = await checkout(client, hold["hold_id"], "cut")
    assert first.status_code == 201
    orders = keys.orders(event["id"])
    record = msgspec.json.decode(await redis.hget(orders, first.json()["order_id"]))
    record.update(payment_intent_id=None, client_secret=None)
    record["created_ms"] -= 60_000  # claimed a minute ago, never finished
    await redis.hset(orders, first.json()["order_id"], msgspec.json.encode(record))
    again = await checkout(client, hold["hold_id"], "cut")
    assert again.status_code == 201, again.text
    # Stripe answers the intent's idempotency key with the same intent; the emulator makes a
    # new one, which is just as payable (the buyer never saw the first).
    assert again.json()["payment"]["payment_intent_id"].startswith("pi_")
    assert await pay(stripe_url, again.json()["payment"]["payment_intent_id"]) == "succeeded"
    r = await webhook(client, "payment_intent.succeeded", intent_of(event["id"], again.json()))
    assert r.status_code == 200
    assert (await status_of(client, again.json()))["status"] == "confirmed"
