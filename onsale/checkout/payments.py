"""Stripe through the official library: PaymentIntents, refunds and signed webhooks.

Every call carries an idempotency key derived from the order, so a retried checkout or a
redelivered webhook never creates a second PaymentIntent or a second refund.
"""

from __future__ import annotations

from typing import Any

import stripe

from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.checkout.models import Order
from onsale.config import StripeSettings

#: Seconds a webhook signature stays acceptable (Stripe's own default).
SIGNATURE_TOLERANCE_S = 300


class Payments:
    def __init__(self, settings: StripeSettings) -> None:
        base = {"api": settings.api_base.rstrip("/")} if settings.api_base else None
        self._http = stripe.HTTPXClient()
        self.client = stripe.StripeClient(
            settings.secret_key or "sk_missing",
            base_addresses=base,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=2,
        )
        self.webhook_secret = settings.webhook_secret
        self.publishable_key = settings.publishable_key

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_intent(self, order: Order) -> tuple[str, str]:
        """(payment_intent_id, client_secret) for the order; the same on every retry."""
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params={
                    "amount": order.amount,
                    "currency": order.currency.lower(),
                    # What `onsale recover` needs to rebuild a paid order that Redis lost
                    # before the committer wrote it (values are capped at 500 characters).
                    "metadata": {
                        "order_id": order.order_id,
                        "event_id": order.event_id,
                        "hold_id": order.hold_id,
                        "items": " ".join(f"{i.tier_id} {i.quantity}" for i in order.items)[:500],
                        "visitor_id": order.visitor_id,
                        "email": order.email,
                        "name": order.name[:500],
                        "promo_code": order.promo_code,
                        "discount": str(order.discount),
                    },
                },
                options={"idempotency_key": f"onsale-pi-{order.order_id}"},
            )
        except stripe.StripeError as exc:
            raise CheckoutRejected(CheckoutRejection.PAYMENT_FAILED, _safe(exc)) from None
        return intent.id, str(intent.client_secret)

    async def refund(self, payment_intent_id: str, order_id: str) -> str:
        try:
            refund = await self.client.v1.refunds.create_async(
                params={"payment_intent": payment_intent_id},
                options={"idempotency_key": f"onsale-refund-{order_id}"},
            )
        except stripe.StripeError as exc:
            raise CheckoutRejected(CheckoutRejection.PAYMENT_FAILED, _safe(exc)) from None
        return str(refund.id)

    def verify(self, payload: bytes, header: str | None) -> Any:
        """The event if ``Stripe-Signature`` verifies and is fresh, else ``invalid_signature``."""
        try:
            return stripe.Webhook.construct_event(
                payload, header, self.webhook_secret, tolerance=SIGNATURE_TOLERANCE_S
            )
        except (stripe.SignatureVerificationError, ValueError):
            raise CheckoutRejected(CheckoutRejection.INVALID_SIGNATURE) from None


def _safe(exc: stripe.StripeError) -> str:
    """Stripe's user-facing message, never the request (which may carry secrets)."""
    return f"payment provider error: {exc.user_message or type(exc).__name__}"
