"""The Stripe emulator's missing half, for ``onsale dev`` only.

localstripe's Stripe.js stand-in cannot take a card: its ``confirmCardPayment`` only plays
the 3-D Secure step on an intent that already has a card, and its API refuses publishable
keys for payment methods. What Stripe's own servers do for ``confirmCardPayment`` (create a
PaymentMethod from the card, attach it, confirm) is done here with the secret key against
the emulator, so declines, intent states and webhooks are still the emulator's own.
Never active against real Stripe (see ``StripeSettings.emulated``).
"""

from __future__ import annotations

from typing import Any

import httpx

from onsale.config import StripeSettings


def _error(answer: httpx.Response, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = answer.json().get("error", {})
    kind = "card_error" if answer.status_code == 402 else error.get("type")
    return {"error": {**error, "type": kind, **extra}}


async def confirm_card_payment(stripe: StripeSettings, body: dict[str, Any]) -> dict[str, Any]:
    """What Stripe answers Stripe.js's confirmCardPayment: ``{paymentIntent}`` or ``{error}``."""
    secret = str(body.get("client_secret") or "")
    intent_id = secret.partition("_secret_")[0]
    card = body.get("card") or {}
    billing = body.get("billing_details") or {}
    auth = (stripe.secret_key, "")
    async with httpx.AsyncClient(base_url=stripe.api_base, auth=auth, timeout=10) as api:
        intent = await api.get(f"/v1/payment_intents/{intent_id}")
        if intent.status_code != 200 or intent.json().get("client_secret") != secret:
            return {"error": {"type": "invalid_request_error", "message": "No such intent."}}
        method = await api.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                **{f"card[{k}]": str(card.get(k, "")) for k in ("number", "cvc")},
                "card[exp_month]": str(card.get("exp_month", "")),
                "card[exp_year]": str(card.get("exp_year", "")),
                **{f"billing_details[{k}]": str(v) for k, v in billing.items() if v},
            },
        )
        if method.status_code != 200:
            return _error(method, message="Your card number is invalid.")
        await api.post(
            f"/v1/payment_intents/{intent_id}", data={"payment_method": method.json()["id"]}
        )
        confirmed = await api.post(f"/v1/payment_intents/{intent_id}/confirm")
        if confirmed.status_code != 200:
            after = (await api.get(f"/v1/payment_intents/{intent_id}")).json()
            return _error(confirmed, payment_intent=after)
        return {"paymentIntent": confirmed.json()}
