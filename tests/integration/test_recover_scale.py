"""``onsale recover`` at Stripe's scale, counted at a proxy in front of the emulator: with
Search (the proxy answers it, as an account with Search would) an event costs about one
call per 100 of its payments and one per pending order's PaymentIntent, whatever the account
holds; without Search (the emulator) the account is listed, with a warning of its cost."""

from __future__ import annotations

import io
import math
import time
import uuid
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout import recover
from onsale.checkout.models import Item, Order
from onsale.checkout.payments import Payments
from onsale.checkout.stripe_calls import StripeCalls
from onsale.config import Settings
from onsale.embedded import EmbeddedStripe
from tests.integration.api_support import create, iso
from tests.integration.stripe_proxy_support import (
    StripeProxy,
    other_events_intents,
    settings_via,
    stripe_proxy,
)
from tests.integration.stripe_support import pay

Client = AsyncTestClient[Litestar]

OTHER_INTENTS = 1_000
TIERS = [{"name": "GA", "price": 4500, "capacity": 500, "per_order_limit": 6}]
FAST = {"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60}


async def paid_in_stripe(
    payments: Payments, stripe_url: str, event: dict[str, Any], *, refund: bool = False
) -> str:
    """A paid order that only Redis knew: its PaymentIntent, as checkout made it, is paid."""
    tier = event["tiers"][0]
    order = Order(
        order_id=str(uuid.uuid4()), event_id=event["id"], hold_id="", email="a@example.com",
        name="A", amount=tier["price"], currency="USD", items=[Item(tier["id"], 1, tier["price"])],
        created_ms=int(time.time() * 1000),
    )  # fmt: skip
    pi, _ = await payments.create_intent(order)
    assert await pay(stripe_url, pi) == "succeeded"
    if refund:
        await payments.refund(pi, order.order_id)
    return order.order_id


async def pending_in_postgres(
    payments: Payments, stripe_url: str, pool: asyncpg.Pool, event: dict[str, Any]
) -> str:
    """An order pending in Postgres whose PaymentIntent was paid, and whose metadata has no
    event id (made before checkout put it there): Search cannot find it, its order can."""
    tier, order_id = event["tiers"][0], str(uuid.uuid4())
    metadata = {"order_id": order_id, "items": f"{tier['id']} 1"}
    intent = await payments.client.v1.payment_intents.create_async(
        params={"amount": tier["price"], "currency": "usd", "metadata": metadata}
    )
    assert await pay(stripe_url, intent.id) == "succeeded"
    await pool.execute(
        "INSERT INTO orders (id, event_id, email, amount, currency, status, payment_intent_id)"
        " VALUES ($1::uuid, $2::uuid, 'p@example.com', $3, 'USD', 'pending', $4)",
        order_id,
        event["id"],
        tier["price"],
        intent.id,
    )
    return order_id


async def lose_redis_state(redis: Any, event_id: str) -> None:
    found = [k async for k in redis.scan_iter(match=keys.tag(event_id) + "*", count=1000)]
    await redis.delete(*found)
    await redis.srem(keys.ARMED_EVENTS, event_id)


async def recovered(
    proxy: StripeProxy, settings: Settings, event_id: str
) -> tuple[str, list[str], StripeCalls]:
    proxy.requests.clear()
    out, lines, calls = io.StringIO(), [], StripeCalls(rate=200)
    code = await recover.run(
        settings_via(proxy, settings), [event_id], out=out, progress=lines.append, calls=calls
    )
    assert code == 0, out.getvalue() + "\n".join(lines)
    assert proxy.total == calls.sent, proxy.requests
    return out.getvalue(), lines, calls


async def test_recover_costs_calls_per_payment_with_search_and_lists_without(
    client: Client,
    admin: dict[str, str],
    redis: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    stripe_url: str,
) -> None:
    await other_events_intents(stripe_url, OTHER_INTENTS)
    small = await create(client, admin, tiers=TIERS, onsale=FAST)
    large = await create(client, admin, tiers=TIERS, onsale=FAST)
    bare = await create(client, admin, tiers=TIERS, onsale=FAST)
    payments = Payments(settings.stripe)
    try:
        lost = {await paid_in_stripe(payments, stripe_url, small) for _ in range(4)}
        refunded = await paid_in_stripe(payments, stripe_url, small, refund=True)
        pending = await pending_in_postgres(payments, stripe_url, pool, small)
        many = {await paid_in_stripe(payments, stripe_url, large) for _ in range(150)}
        unsearched = {await paid_in_stripe(payments, stripe_url, bare) for _ in range(3)}
    finally:
        await payments.aclose()
    for event in (small, large, bare):
        await lose_redis_state(redis, event["id"])

    async with stripe_proxy(stripe_url) as proxy:
        proxy.search = True
        # 6 payments: one search page, and the pending order's PaymentIntent (which the
        # search cannot find) retrieved; refunds are read from the expanded charges.
        pending_pi = await pool.fetchval(
            "SELECT payment_intent_id FROM orders WHERE id = $1::uuid", pending
        )
        # Stripe keeps failing on the pending order's PaymentIntent: the event is refused,
        # nothing armed nor written, and a rerun goes on.
        proxy.broken[f"/v1/payment_intents/{pending_pi}"] = 500
        out, quick = io.StringIO(), StripeCalls(rate=200, base_delay=0.01, max_delay=0.05)
        code = await recover.run(
            settings_via(proxy, settings), [small["id"]], out=out, progress=[].append, calls=quick
        )
        assert code == 1, out.getvalue()
        assert (f"refused: Stripe could not be asked about 1 PaymentIntent(s) of pending orders "
                f"({pending_pi}: Stripe HTTP 500") in out.getvalue(), out.getvalue()  # fmt: skip
        assert not await redis.exists(keys.inventory(small["id"]))
        assert await pool.fetchval("SELECT status::text FROM orders WHERE id = $1::uuid",
                                   pending) == "pending"  # fmt: skip
        del proxy.broken[f"/v1/payment_intents/{pending_pi}"]

        text, lines, _ = await recovered(proxy, settings, small["id"])
        for order_id in lost | {pending}:
            assert f"paid order {order_id}: rebuilt from Stripe, committed" in text, text
        assert f"paid order {refunded}: recorded as refunded" in text, text
        assert "sold GA 5/500" in text, text
        assert dict(proxy.requests) == {
            "GET /v1/payment_intents/search": 1,
            f"GET /v1/payment_intents/{pending_pi}": 1,
        }, proxy.requests
        assert f"event {small['id']}: recovered, 2 Stripe calls, " in lines[-1], lines
        small_calls = proxy.total

        # 150 payments: two search pages, nothing else; the account's 1,000 others cost none.
        text, lines, _ = await recovered(proxy, settings, large["id"])
        assert "sold GA 150/500" in text, text
        assert sum(f"paid order {o}: rebuilt from Stripe, committed" in text for o in many) == 150
        assert dict(proxy.requests) == {"GET /v1/payment_intents/search": math.ceil(150 / 100)}
        print(f"\nrecover with Search beside {OTHER_INTENTS} other PaymentIntents: 6 payments "
              f"{small_calls} Stripe calls, 150 payments {proxy.total}")  # fmt: skip

        # Without Search (the emulator's own answer): the whole account, a page per 100
        # PaymentIntents, after a warning that says what it costs.
        proxy.search = False
        text, lines, _ = await recovered(proxy, settings, bare["id"])
        for order_id in unsearched:
            assert f"paid order {order_id}: rebuilt from Stripe, committed" in text, text
        account = len(await proxy.intents(f"Bearer {EmbeddedStripe.SECRET_KEY}"))
        pages = math.ceil(account / 100)
        assert proxy.requests["GET /v1/payment_intents/search"] == 1
        # The first page asked for a created window, refused by the emulator: once more.
        assert proxy.requests["GET /v1/payment_intents"] == pages + 1, proxy.requests
        warning = next(line for line in lines if "warning" in line)
        assert "Stripe Search is not available" in warning
        assert "one Stripe call per 100 PaymentIntents" in warning
        assert any("refused the created window: listing the whole account" in x for x in lines)
        assert f"listed {account} PaymentIntents in {pages} Stripe calls, 3 paid" in lines[-2]
        print(f"recover without Search, account of {account} PaymentIntents: "
              f"{proxy.total} Stripe calls")  # fmt: skip
