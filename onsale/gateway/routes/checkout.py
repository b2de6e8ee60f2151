"""Checkout, Stripe's webhook, and the buyer's order."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get, post
from litestar.params import FromPath

from onsale import keys
from onsale.checkout import emulator
from onsale.checkout.errors import CheckoutRejected
from onsale.checkout.models import CheckoutIn, CheckoutOut, OrderOut
from onsale.errors import ApiError, Code
from onsale.gateway.auth import bearer
from onsale.gateway.body import decode
from onsale.gateway.metrics import WEBHOOKS
from onsale.gateway.ratelimit import client_address
from onsale.gateway.types import AnyRequest, Deps


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
    webhooks = services.webhooks
    if webhooks is None:
        raise ApiError(Code.PAYMENT_PROVIDER_ERROR, "payments are not configured", status=503)
    payload = await request.body()
    try:
        event = webhooks.verify(payload, request.headers.get("stripe-signature"))
    except CheckoutRejected:
        WEBHOOKS.labels("invalid_signature").inc()
        raise
    delivery = await webhooks.receive(event)
    WEBHOOKS.labels(delivery.outcome).inc()
    if delivery.repeated:
        return Response({"received": True, "duplicate": True}, media_type=MediaType.JSON)
    return Response({"received": True}, media_type=MediaType.JSON)


@get("/api/orders/{order_id:str}")
async def get_order(order_id: FromPath[str], request: AnyRequest, services: Deps) -> OrderOut:
    event_id = services.order_tokens.verify(order_id, bearer(request))
    return await services.orders.find(event_id, order_id)


@post("/dev/stripe/confirm_card_payment", status_code=200)
async def emulated_card_payment(request: AnyRequest, services: Deps) -> Response[dict[str, Any]]:
    """The Stripe emulator's card step (``onsale dev``); absent against real Stripe."""
    if not services.settings.stripe.emulated:
        raise ApiError(Code.NOT_FOUND)
    body = decode(await request.body(), dict[str, Any])
    answer = await emulator.confirm_card_payment(services.settings.stripe, body)
    return Response(answer, media_type=MediaType.JSON)


ROUTES = [checkout, stripe_webhook, get_order, emulated_card_payment]
