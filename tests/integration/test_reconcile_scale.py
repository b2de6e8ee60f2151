"""``onsale reconcile`` at Stripe's scale, counted at the emulator: an event's payments are
found through its orders, not by listing the account; a Stripe failure on one order is a
difference in the report and the rest is still checked; ``--since`` picks active events."""

from __future__ import annotations

import io
import uuid
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout import reconcile
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.stripe_calls import StripeCalls
from onsale.config import Settings
from onsale.embedded import EmbeddedStripe
from onsale.inventory import Inventory
from tests.integration.api_support import bearer, create, iso, join_until_settled, paid_order
from tests.integration.commit_support import drained, running
from tests.integration.process_support import clean_env, onsale
from tests.integration.stripe_proxy_support import (
    other_events_intents,
    settings_via,
    stripe_proxy,
)
from tests.integration.stripe_support import intent_of, pay, signed

Client = AsyncTestClient[Litestar]

OTHER_INTENTS = 2_000
ORDERS = 20
MAX_CALLS = 30


async def checked_out(client: Client, event_id: str, tier_id: str, who: str) -> tuple[Any, Any]:
    """Admitted, held one ticket and checked out (a PaymentIntent exists, unpaid)."""
    place = await join_until_settled(client, event_id)
    body = {"items": [{"tier_id": tier_id, "quantity": 1}]}
    r = await client.post(
        f"/api/events/{event_id}/holds", json=body, headers=bearer(place["admission_token"])
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    r = await client.post(
        f"/api/holds/{hold['hold_id']}/checkout",
        json={"email": f"{who}@example.com", "name": who},
        headers={"Idempotency-Key": f"checkout-{who}-{uuid.uuid4()}"},
    )
    assert r.status_code == 201, r.text
    return hold, r.json()


async def mixed_run(
    client: Client, admin: dict[str, str], stripe_url: str, redis: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """20 orders of one event: 14 paid, 2 released unpaid, 2 paid late (after their holds
    were released), 2 paid then refunded."""
    event = await create(
        client,
        admin,
        tiers=[{"name": "GA", "price": 4500, "capacity": 100, "per_order_limit": 6}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60},
    )
    eid, tier = event["id"], event["tiers"][0]["id"]
    paid = []
    for i in range(16):
        order = await paid_order(client, stripe_url, eid, tier, 1, f"recon{i}-{eid[:8]}")
        assert order is not None
        paid.append(order)
    for i in range(2):  # released: checked out, then the buyer let go
        hold, _ = await checked_out(client, eid, tier, f"released{i}")
        assert (await Inventory(redis).release(eid, hold["hold_id"])) is not None
    for i in range(2):  # late: paid after the hold was released (tickets were left)
        hold, order = await checked_out(client, eid, tier, f"late{i}")
        await Inventory(redis).release(eid, hold["hold_id"])
        assert await pay(stripe_url, order["payment"]["payment_intent_id"]) == "succeeded"
        body, headers = signed("payment_intent.succeeded", intent_of(eid, order))
        r = await client.post("/api/webhooks/stripe", content=body, headers=headers)
        assert r.status_code == 200, r.text
        paid.append(order)
    for order in paid[:2]:  # refunded by the organizer
        r = await client.post(f"/api/orders/{order['order_id']}/refund", json={}, headers=admin)
        assert r.status_code in (200, 202), r.text
    return event, paid


async def test_one_event_costs_calls_per_order_not_per_account(
    client: Client,
    admin: dict[str, str],
    stripe_url: str,
    redis: Any,
    pool: asyncpg.Pool,
    settings: Settings,
) -> None:
    await other_events_intents(stripe_url, OTHER_INTENTS)
    event, paid = await mixed_run(client, admin, stripe_url, redis)
    eid = event["id"]
    async with running(Committer(redis, settings.database.url, CommitterOptions(events=(eid,)))):
        await drained(redis, eid)

    async with stripe_proxy(stripe_url) as proxy:
        out, lines = io.StringIO(), []
        first = StripeCalls()
        code = await reconcile.run(
            settings_via(proxy, settings), [eid], out=out, progress=lines.append, calls=first
        )
        assert code == 0, out.getvalue()
        # 18 orders in Postgres (16 paid, 2 of them refunded, and 2 late), 20 PaymentIntents.
        assert f"event {eid} (Night Owls - Live): clean (1 tiers, 18 orders, 18 payments)" in (
            out.getvalue()
        ), out.getvalue()
        assert proxy.total <= MAX_CALLS, proxy.requests
        assert proxy.total == first.sent
        # One search refused by the emulator, then one retrieval per PaymentIntent (and a
        # retry, should the loaded emulator drop one).
        assert proxy.requests["GET /v1/payment_intents/search"] >= 1
        assert first.sent - first.retried == 1 + ORDERS, proxy.requests
        assert f"{proxy.total} Stripe calls" in lines[-1]
        print(f"\nreconcile of {ORDERS} orders beside {OTHER_INTENTS} other PaymentIntents: "
              f"{proxy.total} Stripe calls")  # fmt: skip

        # A Stripe error on one order is a difference; the rest is still checked (and a
        # 429 on another is retried).
        victim, slow = paid[3], paid[4]
        short = victim  # Stripe cannot be asked about it; its tickets are still checked
        proxy.broken[f"/v1/payment_intents/{victim['payment']['payment_intent_id']}"] = 500
        proxy.failures[f"/v1/payment_intents/{slow['payment']['payment_intent_id']}"] = [429]
        ticket = await pool.fetchval(
            "SELECT id FROM tickets WHERE order_id = $1::uuid LIMIT 1", short["order_id"]
        )
        await pool.execute("UPDATE tickets SET status = 'cancelled' WHERE id = $1", ticket)
        quiet = await create(client, admin)  # the run goes on to the next event: clean
        proxy.requests.clear()
        out, lines = io.StringIO(), []
        calls = StripeCalls(base_delay=0.01, max_delay=0.05)
        code = await reconcile.run(
            settings_via(proxy, settings),
            [eid, quiet["id"]],
            out=out,
            progress=lines.append,
            calls=calls,
        )
        text = out.getvalue()
        assert code == 1, text
        assert f"event {quiet['id']} (Night Owls - Live): clean" in text, text
        assert "reconcile: 1 of 2 event(s) differ" in text
        assert [line.split(": ", 1)[1].split(",")[0] for line in lines[1::2]] == [
            "3 difference(s)",
            "clean",
        ], lines
        pi = victim["payment"]["payment_intent_id"]
        unchecked = f"could not check PaymentIntent {pi}: Stripe HTTP 500"
        assert f"order {victim['order_id']}: {unchecked}" in text, text
        assert f"order {short['order_id']} (confirmed, 4500 USD): 1 tickets ordered, 0 valid" in (
            text
        )
        assert slow["order_id"] not in text
        assert proxy.requests[f"GET /v1/payment_intents/{pi}"] == calls.attempts
        assert calls.retried >= calls.attempts  # the victim's 4 retries and the 429's one
        await pool.execute("UPDATE tickets SET status = 'valid' WHERE id = $1", ticket)


def test_a_bad_window_or_rate_or_no_database_cannot_run() -> None:
    """Exit 2 only when nothing can be checked."""
    for args in (("--since", "yesterday"), ("--rate", "0"), ()):
        done = onsale(
            "reconcile",
            *args,
            env=clean_env(
                ONSALE_REDIS_URL="redis://127.0.0.1:1",
                ONSALE_DATABASE_URL="postgresql://x@127.0.0.1:1/x",
                ONSALE_STRIPE_SECRET_KEY=EmbeddedStripe.SECRET_KEY,
            ),
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("onsale: reconcile: "), done.stderr
        if not args:
            assert "cannot run" in done.stderr, done.stderr


async def test_since_picks_events_with_recent_activity(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, redis: Any
) -> None:
    event = await create(
        client,
        admin,
        tiers=[{"name": "GA", "price": 4500, "capacity": 10}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60},
    )
    eid = event["id"]
    async with pool.acquire() as conn:
        assert eid in await reconcile.active_events(conn, 3600)  # it opened a second ago
        await conn.execute(
            "UPDATE onsales SET opens_at = now() - interval '2 days' WHERE event_id = $1::uuid",
            eid,
        )
        assert eid not in await reconcile.active_events(conn, 86_400)
        await conn.execute(
            "INSERT INTO orders (id, event_id, email, amount, currency, status, created_at,"
            " updated_at) VALUES ($1::uuid, $2::uuid, 'x@example.com', 0, 'USD', 'confirmed',"
            " now() - interval '1 hour', now() - interval '1 hour')",
            str(uuid.uuid4()),
            eid,
        )
        assert eid in await reconcile.active_events(conn, 86_400)  # an order an hour ago
        assert eid not in await reconcile.active_events(conn, 60)
        await conn.execute("DELETE FROM orders WHERE event_id = $1::uuid", eid)
        # An order confirmed in Redis that no committer wrote yet is activity too.
        assert eid not in await reconcile.active_events(conn, 60, redis)
        await redis.xadd(keys.orders_stream(eid), {"order": "o", "data": "{}"})
        try:
            assert eid in await reconcile.active_events(conn, 60, redis)
        finally:
            await redis.delete(keys.orders_stream(eid))
