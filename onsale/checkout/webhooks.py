"""Stripe's webhook: verified, handled once per Stripe event, and dispatched to its order.

Stripe delivers at least once, and retries for three days: an event is remembered once it
has been handled, and a redelivery is answered without being handled again. Handling is
idempotent besides (a confirmation or a failure notice for a settled order changes
nothing), so a redelivery that arrives before the first is remembered is harmless too.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from onsale import keys
from onsale.checkout.models import Outcome, PaidIntent
from onsale.checkout.orders import Checkout
from onsale.checkout.payments import Payments
from onsale.checkout.refunds import Refunds
from onsale.connections import RedisClient
from onsale.inventory import HoldRejected

log = logging.getLogger("onsale.checkout")

#: How long a processed Stripe event id is remembered (Stripe retries for three days).
SEEN_EVENT_S = 7 * 24 * 3600


class Delivery(msgspec.Struct, frozen=True):
    """What one delivery did: ``outcome`` for the metrics; ``repeated`` when the Stripe
    event had been handled before and nothing was done."""

    outcome: Outcome
    repeated: bool = False


class WebhookFailed(RuntimeError):
    """A paid order the inventory refused for a reason no refund settles (its hold used by
    another order): a bug to look at, answered 500 so that Stripe delivers it again."""


class Webhooks:
    def __init__(self, redis: RedisClient, payments: Payments, checkout: Checkout) -> None:
        self.redis = redis
        self.payments = payments
        self.checkout = checkout
        #: Refunds made in Stripe's dashboard (``charge.refunded``); set by the gateway.
        self.refunds: Refunds | None = None

    def verify(self, payload: bytes, signature: str | None) -> Any:
        """The Stripe event if ``Stripe-Signature`` verifies and is fresh, else
        ``invalid_signature``."""
        return self.payments.verify(payload, signature)

    async def receive(self, event: Any) -> Delivery:
        """Handle a verified Stripe event, once."""
        seen = keys.stripe_event(event.id)
        if await self.redis.get(seen):
            return Delivery(Outcome.DUPLICATE, repeated=True)
        outcome = await self._dispatch(event)
        # Remembered only once handled: a failure above answers 5xx and Stripe delivers again.
        await self.redis.set(seen, 1, ex=SEEN_EVENT_S)
        return Delivery(outcome)

    async def _dispatch(self, event: Any) -> Outcome:
        intent = event.data.object.to_dict()
        metadata = intent.get("metadata") or {}
        event_id, order_id = metadata.get("event_id"), metadata.get("order_id")
        if event_id and order_id and event.type == "payment_intent.succeeded":
            try:
                _, outcome = await self.checkout.confirm(event_id, order_id, paid(intent))
            except HoldRejected as exc:
                raise WebhookFailed(f"order {order_id} cannot be confirmed: {exc}") from exc
            return outcome
        if event_id and order_id and event.type == "payment_intent.payment_failed":
            await self.checkout.fail(event_id, order_id)
            return Outcome.FAILED
        if event.type == "charge.refunded" and self.refunds is not None:
            return await self.refunds.charge_refunded(intent)
        log.info("stripe event %s (%s) needs nothing from us", event.id, event.type)
        return Outcome.IGNORED


def paid(intent: dict[str, Any]) -> PaidIntent:
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
