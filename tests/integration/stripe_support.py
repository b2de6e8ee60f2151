"""Paying and signing as Stripe would, against the localstripe emulator."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import stripe

from onsale.embedded import EmbeddedStripe
from tests.conftest import WEBHOOK_SECRET

#: A card expiry year always ahead of the clock (a fixed year is a failure the day it passes).
EXP_YEAR = time.gmtime().tm_year + 5


@contextlib.asynccontextmanager
async def client(stripe_url: str) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.HTTPXClient()
    try:
        yield stripe.StripeClient(
            EmbeddedStripe.SECRET_KEY, base_addresses={"api": stripe_url}, http_client=http
        )
    finally:
        await http.close_async()


async def pay(stripe_url: str, payment_intent_id: str, card: str = "4242424242424242") -> str:
    """Attach a card and confirm, as Stripe.js would; returns the intent's status."""
    async with client(stripe_url) as api:
        return await _pay(api, payment_intent_id, card)


async def _pay(api: stripe.StripeClient, payment_intent_id: str, card: str) -> str:
    method = await api.v1.payment_methods.create_async(
        params={
            "type": "card",
            "card": {"number": card, "exp_month": 12, "exp_year": EXP_YEAR, "cvc": "123"},
        }
    )
    await api.v1.payment_intents.update_async(
        payment_intent_id, params={"payment_method": method.id}
    )
    try:
        intent = await api.v1.payment_intents.confirm_async(payment_intent_id)
    except stripe.CardError:
        return "failed"
    return str(intent.status)


def intent_of(event_id: str, order: dict[str, Any]) -> dict[str, Any]:
    """The PaymentIntent of an order (from its checkout answer) as Stripe's event carries it."""
    return {
        "id": order["payment"]["payment_intent_id"],
        "amount": order["amount"],
        "amount_received": order["amount"],
        "currency": order["currency"].lower(),
        "metadata": {"event_id": event_id, "order_id": order["order_id"]},
    }


def signed(event_type: str, intent: dict[str, Any], *, at: int | None = None,
           secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """A Stripe event and its Stripe-Signature header, made exactly as Stripe makes them."""
    created = at if at is not None else int(time.time())
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": created,
            "data": {"object": {"object": "payment_intent", **intent}},
        }
    ).encode()
    mac = hmac.new(secret.encode(), f"{created}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={created},v1={mac}", "Content-Type": "application/json"}
