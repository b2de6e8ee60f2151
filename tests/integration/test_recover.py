"""``onsale recover`` on real Redis, Postgres and the Stripe emulator: an event sold through
the real flow loses every Redis key, and comes back with nothing oversold or lost."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys, signing
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.models import Item, Order
from onsale.checkout.payments import Payments
from onsale.checkout.recover import candidates, recover_event
from onsale.config import Settings
from onsale.embedded import EmbeddedStripe
from onsale.inventory import Inventory
from tests.integration.api_support import admitted, bearer, create, iso, reconciled
from tests.integration.commit_support import counts, drained, running
from tests.integration.process_support import clean_env, onsale
from tests.integration.stripe_support import client as stripe_client
from tests.integration.stripe_support import pay, signed

Client = AsyncTestClient[Litestar]

TIERS = [
    {"name": "General Admission", "price": 4500, "capacity": 6, "per_order_limit": 4},
    {"name": "VIP", "price": 15000, "capacity": 2, "per_order_limit": 2},
]
FAST = {"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 120}


def env(settings: Settings, stripe_url: str) -> dict[str, str]:
    return clean_env(
        ONSALE_REDIS_URL=settings.redis.url,
        ONSALE_DATABASE_URL=settings.database.url,
        ONSALE_STRIPE_SECRET_KEY=EmbeddedStripe.SECRET_KEY,
        ONSALE_STRIPE_API_BASE=stripe_url,
        # The gateway's key: recovered tickets must verify like the ones it issued.
        ONSALE_SIGNING_KEY=settings.security.signing_key,
    )


async def hold(client: Client, event_id: str, tier_id: str, quantity: int) -> Any:
    """A fresh admission, then a hold; the response."""
    place = await admitted(client, event_id)
    body = {"items": [{"tier_id": tier_id, "quantity": quantity}]}
    return await client.post(
        f"/api/events/{event_id}/holds", json=body, headers=bearer(place["admission_token"])
    )


async def buy(
    client: Client, stripe_url: str, event_id: str, tier_id: str, quantity: int, who: str
) -> dict[str, Any]:
    """Admitted, held, checked out, paid, and Stripe's webhook delivered: a confirmed order."""
    r = await hold(client, event_id, tier_id, quantity)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/api/holds/{r.json()['hold_id']}/checkout",
        json={"email": f"{who}@example.com", "name": who},
        headers={"Idempotency-Key": f"recover-{who}-{uuid.uuid4().hex}"},
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    pi = order["payment"]["payment_intent_id"]
    assert await pay(stripe_url, pi) == "succeeded"
    async with stripe_client(stripe_url) as api:
        intent = (await api.v1.payment_intents.retrieve_async(pi)).to_dict()
    payload, headers = signed("payment_intent.succeeded", intent)
    r = await client.post("/api/webhooks/stripe", content=payload, headers=headers)
    assert r.status_code == 200, r.text
    return order


async def paid_elsewhere(
    settings: Settings, stripe_url: str, event: dict[str, Any], amount: int, *, refund: bool,
    quantity: int | None = None,
) -> str:  # fmt: skip
    """A payment whose order Redis alone knew (say, a refunded late payment): Stripe only.

    With ``quantity`` (of the first tier) its metadata names the items, as checkout's do;
    without, it has only the ids, as PaymentIntents made before checkout named them.
    """
    order_id = str(uuid.uuid4())
    tier = event["tiers"][0]
    payments = Payments(settings.stripe)
    try:
        if quantity is None:
            metadata = {"order_id": order_id, "event_id": event["id"]}
            intent = await payments.client.v1.payment_intents.create_async(
                params={"amount": amount, "currency": "usd", "metadata": metadata}
            )
            pi = intent.id
        else:
            order = Order(
                order_id=order_id, event_id=event["id"], hold_id="", email="late@example.com",
                name="Late", amount=amount, currency="USD",
                items=[Item(tier["id"], quantity, tier["price"])],
                created_ms=int(time.time() * 1000),
            )  # fmt: skip
            pi, _ = await payments.create_intent(order)
        assert await pay(stripe_url, pi) == "succeeded"
        if refund:
            await payments.refund(pi, order_id)
    finally:
        await payments.aclose()
    return order_id


async def lose_redis_state(redis: Any, event_id: str) -> None:
    """Every key with the event's hash tag, and its place in the armed set."""
    found = [k async for k in redis.scan_iter(match=keys.tag(event_id) + "*", count=1000)]
    assert keys.inventory(event_id) in found
    await redis.delete(*found)
    await redis.srem(keys.ARMED_EVENTS, event_id)


async def test_an_event_comes_back_from_postgres_and_stripe(
    client: Client,
    admin: dict[str, str],
    redis: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    stripe_url: str,
    database_url: str,
) -> None:
    event = await create(client, admin, tiers=TIERS, onsale=FAST | {"opens_at": iso(-1)})
    eid = event["id"]
    ga, vip = (t["id"] for t in event["tiers"])
    committer = Committer(redis, database_url, CommitterOptions(events=(eid,)))
    async with running(committer):
        await buy(client, stripe_url, eid, ga, 2, "ada")
        await buy(client, stripe_url, eid, vip, 1, "bob")
        await drained(redis, eid)
    # Paid and confirmed in Redis, never committed: Stripe is its only other record.
    late = await buy(client, stripe_url, eid, ga, 2, "cy")
    mine = await client.get(f"/api/orders/{late['order_id']}", headers=bearer(late["order_token"]))
    issued = {(t["ticket_id"], t["tier_id"], t["qr"]) for t in mine.json()["tickets"]}
    assert len(issued) == 2
    refunded = await paid_elsewhere(settings, stripe_url, event, 4500, refund=True)

    await lose_redis_state(redis, eid)
    done = onsale("recover", "--event", eid, env=env(settings, stripe_url))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[1/1] recovering event {eid} ..." in done.stderr
    assert (
        f"event {eid} (Night Owls - Live): recovered; sold General Admission 4/6, VIP 1/2; "
        "waiting room open, queue empty"
    ) in done.stdout
    assert f"paid order {late['order_id']}: rebuilt from Stripe, committed" in done.stdout
    assert f"paid order {refunded}: recorded as refunded" in done.stdout
    assert "recover: 1 event(s) recovered, 0 refused" in done.stdout

    # Sold per tier is what Postgres holds, nothing is held, and the lost order is there
    # with the very tickets the buyer was shown.
    levels = {lv.tier_id: (lv.sold, lv.held) for lv in await Inventory(redis).levels(eid)}
    assert levels == {ga: (4, 0), vip: (1, 0)}
    assert (await counts(pool, eid))[2] == {ga: 4, vip: 1}
    row = await pool.fetchrow(
        "SELECT status::text, amount, payment_intent_id FROM orders WHERE id = $1::uuid",
        late["order_id"],
    )
    assert tuple(row) == ("confirmed", 9000, late["payment"]["payment_intent_id"])
    stored = await pool.fetch(
        "SELECT id::text, tier_id::text, qr_secret FROM tickets WHERE order_id = $1::uuid "
        "AND status = 'valid'",
        late["order_id"],
    )
    assert {tuple(r) for r in stored} == issued
    status = await pool.fetchval("SELECT status::text FROM orders WHERE id = $1::uuid", refunded)
    assert status == "refunded"
    # The report counts what recover wrote (not the committer) as the orders do.
    sales = (await client.get(f"/api/events/{eid}/report", headers=admin)).json()["sales"]
    assert (sales["orders"], sales["tickets_sold"], sales["refunded_orders"]) == (3, 5, 1), sales
    await reconciled(pool, redis, settings, eid)
    assert await redis.sismember(keys.ARMED_EVENTS, eid)

    # Selling again: two GA are left, and no request gets a third.
    r = await hold(client, eid, ga, 3)
    assert (r.status_code, r.json()["code"]) == (409, "insufficient_inventory"), r.text
    assert (await hold(client, eid, ga, 2)).status_code == 201
    r = await hold(client, eid, ga, 1)
    assert (r.status_code, r.json()["code"]) == (409, "sold_out"), r.text
    levels = {lv.tier_id: (lv.sold, lv.held) for lv in await Inventory(redis).levels(eid)}
    assert levels == {ga: (4, 2), vip: (1, 0)}

    again = onsale("recover", "--event", eid, env=env(settings, stripe_url))
    assert again.returncode == 1, again.stdout + again.stderr
    assert (
        f"event {eid} (Night Owls - Live): refused: its state exists in Redis (inventory, "
        "on-sale schedule, waiting room); recover never overwrites live state"
    ) in again.stdout
    assert "recover: 0 event(s) recovered, 1 refused" in again.stdout


async def test_the_room_comes_back_as_scheduled_and_live_state_is_refused(
    client: Client, admin: dict[str, str], redis: Any, pool: asyncpg.Pool, settings: Settings
) -> None:
    soon = await create(client, admin, tiers=TIERS, onsale=FAST | {"opens_at": iso(3600)})
    over = await create(
        client, admin, tiers=TIERS, onsale=FAST | {"opens_at": iso(-120), "closes_at": iso(-60)}
    )
    live = await create(client, admin, tiers=TIERS, onsale=FAST)
    for event in (soon, over):
        await lose_redis_state(redis, event["id"])
    before = await redis.hgetall(keys.inventory(live["id"]))

    found = await candidates(pool, redis)
    assert soon["id"] in found and over["id"] not in found and live["id"] not in found

    payments, key = Payments(settings.stripe), signing.load(settings.security.signing_key)
    try:
        refused = await recover_event(pool, redis, payments, key, live["id"])
        assert refused.refused.startswith("its state exists in Redis (inventory"), refused
        assert await redis.hgetall(keys.inventory(live["id"])) == before

        back = await recover_event(pool, redis, payments, key, soon["id"])
        assert back.room.startswith("pre-queue, empty"), back
        closed = await recover_event(pool, redis, payments, key, over["id"])
        assert closed.room == "closed (the sale has closed)", closed
        missing = await recover_event(pool, redis, payments, key, str(uuid.uuid4()))
        assert missing.refused == "no such event in Postgres"
    finally:
        await payments.aclose()
    r = await client.post(f"/api/events/{soon['id']}/queue")
    assert r.json()["state"] == "prequeue", r.text
    r = await client.post(f"/api/events/{over['id']}/queue")
    assert r.json()["state"] == "closed", r.text


async def test_a_payment_the_amount_cannot_explain_refuses_until_refunded(
    client: Client,
    admin: dict[str, str],
    redis: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    stripe_url: str,
) -> None:
    # 10000 is two of the first tier or one of the second: the amount cannot tell.
    tiers = [{"name": "Seat", "price": 5000, "capacity": 10}, {"name": "Pair", "price": 10000,
             "capacity": 10}]  # fmt: skip
    event = await create(client, admin, tiers=tiers, onsale=FAST)
    order_id = await paid_elsewhere(settings, stripe_url, event, 10000, refund=False)
    await lose_redis_state(redis, event["id"])

    payments, key = Payments(settings.stripe), signing.load(settings.security.signing_key)
    try:
        refused = await recover_event(pool, redis, payments, key, event["id"])
        assert "1 paid order(s) whose tiers Stripe does not say" in refused.refused, refused
        assert order_id in refused.refused
        assert not await redis.exists(keys.inventory(event["id"]))
        assert not await redis.exists(keys.recovery(event["id"]))

        back = await recover_event(pool, redis, payments, key, event["id"], refund_unresolved=True)
    finally:
        await payments.aclose()
    assert (back.refused, back.refunded) == ("", [order_id])
    await reconciled(pool, redis, settings, event["id"])


def test_recover_requires_its_settings() -> None:
    done = onsale("recover", env=clean_env())
    assert done.returncode == 2
    assert done.stderr == (
        "onsale: missing required environment variable(s): ONSALE_REDIS_URL, "
        "ONSALE_DATABASE_URL, ONSALE_STRIPE_SECRET_KEY, ONSALE_SIGNING_KEY\n"
    )


async def test_paid_orders_beyond_capacity_are_refunded_not_oversold(
    client: Client,
    admin: dict[str, str],
    redis: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    stripe_url: str,
) -> None:
    tiers = [{"name": "Last two", "price": 4500, "capacity": 2, "per_order_limit": 2}]
    event = await create(client, admin, tiers=tiers, onsale=FAST)
    paid = {
        await paid_elsewhere(settings, stripe_url, event, 9000, refund=False, quantity=2)
        for _ in "ab"
    }
    await lose_redis_state(redis, event["id"])

    payments, key = Payments(settings.stripe), signing.load(settings.security.signing_key)
    try:
        back = await recover_event(pool, redis, payments, key, event["id"])
    finally:
        await payments.aclose()
    assert back.refused == "" and len(back.committed) == len(back.refunded) == 1, back
    assert set(back.committed) | set(back.refunded) == paid
    assert back.sold == {"Last two": (2, 2)}
    await reconciled(pool, redis, settings, event["id"])
