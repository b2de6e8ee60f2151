"""Checkout, Stripe's webhook, and the buyer's order."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from litestar import MediaType, Response, get, post
from litestar.params import FromPath

from onsale import keys
from onsale.checkout import emulator
from onsale.checkout.models import CheckoutIn, CheckoutOut, OrderOut, Outcome, PaidIntent, TicketOut
from onsale.errors import ApiError, Code
from onsale.gateway.auth import bearer
from onsale.gateway.body import decode
from onsale.gateway.metrics import WEBHOOKS
from onsale.gateway.ratelimit import client_address
from onsale.gateway.types import AnyRequest, Deps

log = logging.getLogger("onsale.checkout")

#: How long a processed Stripe event id is remembered (Stripe retries for three days).
SEEN_EVENT_S = 7 * 24 * 3600


@post("/api/holds/{hold_id:str}/checkout", status_code=201)
async def checkout(hold_id: FromPath[str], request: AnyRequest, services: Deps) -> CheckoutOut:
    key = request.headers.get("idempotency-key", "").strip()
    if not key or len(key) > 255:
        raise ApiError(Code.INVALID_REQUEST, "send an Idempotency-Key header (1-255 chars)")
    limit = services.settings.security.checkouts_per_minute
    await services.limiter.check(keys.CHECKOUT_LIMIT, client_address(request), limit)
    data = decode(await request.body(), CheckoutIn)
    return await services.checkout.checkout(hold_id, key, data)


@post("/api/webhooks/stripe", status_code=200)
async def stripe_webhook(request: AnyRequest, services: Deps) -> Response[dict[str, Any]]:
    if services.payments is None:
        raise ApiError(Code.PAYMENT_PROVIDER_ERROR, "payments are not configured", status=503)
    payload = await request.body()
    try:
        event = services.payments.verify(payload, request.headers.get("stripe-signature"))
    except ApiError:
        WEBHOOKS.labels("invalid_signature").inc()
        raise
    seen = f"onsale:stripe:event:{event.id}"
    if await services.redis.get(seen):
        WEBHOOKS.labels("duplicate").inc()
        return Response({"received": True, "duplicate": True}, media_type=MediaType.JSON)
    intent = event.data.object.to_dict()
    metadata = intent.get("metadata") or {}
    event_id, order_id = metadata.get("event_id"), metadata.get("order_id")
    outcome = Outcome.IGNORED
    if event_id and order_id and event.type == "payment_intent.succeeded":
        _, outcome = await services.checkout.confirm(event_id, order_id, _paid(intent))
    elif event_id and order_id and event.type == "payment_intent.payment_failed":
        await services.checkout.fail(event_id, order_id)
        outcome = Outcome.FAILED
    else:
        log.info("stripe event %s (%s) needs nothing from us", event.id, event.type)
    # Remembered only once handled: a failure above answers 5xx and Stripe delivers again.
    await services.redis.set(seen, 1, ex=SEEN_EVENT_S)
    WEBHOOKS.labels(outcome).inc()
    return Response({"received": True}, media_type=MediaType.JSON)


def _paid(intent: dict[str, Any]) -> PaidIntent:
    """The PaymentIntent of a ``succeeded`` event; what arrived is checked against the order.

    ``amount_received`` is what Stripe took; an emulator that leaves it out is taken at
    ``amount`` (a succeeded automatic-capture intent received all of it).
    """
    received = intent.get("amount_received", intent.get("amount"))
    return PaidIntent(
        id=str(intent.get("id") or ""),
        amount=received if isinstance(received, int) else -1,
        currency=str(intent.get("currency") or ""),
    )


@get("/api/orders/{order_id:str}")
async def get_order(order_id: FromPath[str], request: AnyRequest, services: Deps) -> OrderOut:
    event_id = services.order_tokens.verify(order_id, bearer(request))
    order = await services.checkout.load(event_id, order_id)
    if order is not None:
        return OrderOut(
            order_id=order.order_id,
            status=str(order.status),
            email=order.email,
            amount=order.amount,
            currency=order.currency,
            tickets=[TicketOut(t.ticket_id, t.tier_id, t.qr) for t in order.tickets],
            event_id=order.event_id,
            name=order.name,
        )
    # Long committed (Redis forgot it): Postgres is the system of record.
    row = await services.pool.fetchrow("SELECT * FROM orders WHERE id = $1", uuid.UUID(order_id))
    if row is None:
        raise ApiError(Code.ORDER_NOT_FOUND)
    tickets = await services.pool.fetch(
        "SELECT id, tier_id, qr_secret FROM tickets WHERE order_id = $1 ORDER BY id", row["id"]
    )
    return OrderOut(
        order_id=order_id,
        status=row["status"],
        email=row["email"],
        amount=row["amount"],
        currency=row["currency"],
        tickets=[TicketOut(str(t["id"]), str(t["tier_id"]), t["qr_secret"]) for t in tickets],
        event_id=str(row["event_id"]),
        name=row["name"],
    )


@post("/dev/stripe/confirm_card_payment", status_code=200)
async def emulated_card_payment(request: AnyRequest, services: Deps) -> Response[dict[str, Any]]:
    """The Stripe emulator's card step (``onsale dev``); absent against real Stripe."""
    if not services.settings.stripe.emulated:
        raise ApiError(Code.NOT_FOUND)
    body = decode(await request.body(), dict[str, Any])
    answer = await emulator.confirm_card_payment(services.settings.stripe, body)
    return Response(answer, media_type=MediaType.JSON)


ROUTES = [checkout, stripe_webhook, get_order, emulated_card_payment]
