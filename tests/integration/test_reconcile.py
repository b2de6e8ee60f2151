"""``onsale reconcile`` on real Redis, Postgres and the Stripe emulator: clean when they
agree, and a named difference with a non-zero exit when a ticket row goes missing."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from onsale import keys
from onsale.checkout import reconcile
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.models import Item, Order, OrderStatus, Ticket, encode
from onsale.checkout.payments import Payments
from onsale.config import Settings, StripeSettings, load
from onsale.embedded import EmbeddedStripe
from onsale.events.models import Event
from onsale.inventory import Inventory
from tests.integration.commit_support import create_event, drained, forget, running
from tests.integration.process_support import clean_env, onsale
from tests.integration.stripe_support import pay


@pytest.fixture
async def event(pool: asyncpg.Pool, redis: Any) -> AsyncIterator[Event]:
    created = await create_event(pool, redis, prices=(4500, 0))  # a paid and a free tier
    yield created
    await forget(redis, created.id)


def env(redis_url: str, database_url: str, stripe_url: str) -> dict[str, str]:
    return clean_env(
        ONSALE_REDIS_URL=redis_url,
        ONSALE_DATABASE_URL=database_url,
        ONSALE_STRIPE_SECRET_KEY=EmbeddedStripe.SECRET_KEY,
        ONSALE_STRIPE_API_BASE=stripe_url,
    )


def order_of(event: Event, tier: int, quantity: int) -> Order:
    t = event.tiers[tier]
    order_id = str(uuid.uuid4())
    now = int(time.time() * 1000)
    return Order(
        order_id=order_id, event_id=event.id, hold_id="", email="ada@example.com",
        name="Ada", amount=t.price * quantity, currency="USD",
        items=[Item(t.id, quantity, t.price)], created_ms=now, confirmed_ms=now,
        tickets=[Ticket(str(uuid.uuid4()), t.id, f"ticket:{order_id}:{i}")
                 for i in range(quantity)],
    )  # fmt: skip


async def buy(
    redis: Any, payments: Payments, stripe_url: str, event: Event, tier: int, quantity: int
) -> Order:
    """Hold, pay in Stripe (unless free), confirm: as checkout and its webhook do."""
    order = order_of(event, tier, quantity)
    hold = await Inventory(redis).hold(event.id, [(event.tiers[tier].id, quantity)])
    order.hold_id = hold.hold_id
    if order.amount:
        order.payment_intent_id, _ = await payments.create_intent(order)
        assert await pay(stripe_url, order.payment_intent_id) == "succeeded"
    order.status = OrderStatus.CONFIRMED
    await Inventory(redis).confirm(event.id, hold.hold_id, order.order_id, encode(order))
    return order


async def test_clean_then_a_missing_ticket_is_named(
    redis: Any,
    redis_url: str,
    pool: asyncpg.Pool,
    database_url: str,
    stripe_url: str,
    event: Event,
) -> None:
    payments = Payments(StripeSettings(secret_key=EmbeddedStripe.SECRET_KEY, api_base=stripe_url))
    try:
        paid = [await buy(redis, payments, stripe_url, event, 0, 2) for _ in range(3)]
        await buy(redis, payments, stripe_url, event, 1, 1)  # free: no PaymentIntent
        # Paid after its hold expired with nothing left: refunded, and so on the stream.
        late = order_of(event, 0, 1)
        late.payment_intent_id, _ = await payments.create_intent(late)
        assert await pay(stripe_url, late.payment_intent_id) == "succeeded"
        await payments.refund(late.payment_intent_id, late.order_id)
        late.status, late.tickets = OrderStatus.REFUNDED, []
        await redis.xadd(
            keys.orders_stream(event.id), {"order": late.order_id, "data": encode(late)}
        )
    finally:
        await payments.aclose()
    options = CommitterOptions(events=(event.id,))
    async with running(Committer(redis, database_url, options)):
        await drained(redis, event.id)

    settings: Settings = load(env(redis_url, database_url, stripe_url))
    out = io.StringIO()
    assert await reconcile.run(settings, [event.id], out=out, progress=lambda _: None) == 0, (
        out.getvalue()
    )
    assert f"event {event.id} (committer test): clean (2 tiers, 5 orders, 4 payments)" in (
        out.getvalue()
    )

    victim = paid[1]
    await pool.execute("DELETE FROM tickets WHERE id = $1", uuid.UUID(victim.tickets[0].ticket_id))
    done = onsale("reconcile", "--event", event.id, env=env(redis_url, database_url, stripe_url))
    assert done.returncode == 1, done.stdout + done.stderr
    tier = event.tiers[0]
    assert f"event {event.id} (committer test): 2 difference(s)" in done.stdout
    assert (
        f"tier {tier.name} ({tier.id}): Redis sold 6, Postgres has 5 valid or used tickets "
        "(1 missing in Postgres)"
    ) in done.stdout
    assert (
        f"order {victim.order_id} (confirmed, 9000 USD): 2 tickets ordered, 1 valid or used "
        "tickets in Postgres"
    ) in done.stdout
    assert "reconcile: 1 of 1 event(s) differ" in done.stdout
    assert f"reconciling event {event.id}" in done.stderr


def test_reconcile_requires_its_settings() -> None:
    done = onsale("reconcile", env=clean_env())
    assert done.returncode == 2
    assert done.stderr == (
        "onsale: missing required environment variable(s): "
        "ONSALE_REDIS_URL, ONSALE_DATABASE_URL, ONSALE_STRIPE_SECRET_KEY\n"
    )
