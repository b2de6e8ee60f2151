"""Stripe: the keys valid and of one mode (test or live, said which), a webhook endpoint for
this deployment's public URL with the events onsale handles, and its signing secret.
Read-only: one list of PaymentIntents (limit 1) and one of webhook endpoints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import stripe

from onsale.checkout.stripe_calls import StripeCalls, client, describe
from onsale.config import StripeSettings
from onsale.preflight.result import Check, fail, passed, warn

#: What the webhook handler acts on (onsale/checkout/webhooks.py).
WEBHOOK_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded")
WEBHOOK_PATH = "/api/webhooks/stripe"


def _mode(key: str) -> str | None:
    for prefix in ("sk_", "rk_", "pk_"):
        if key.startswith(prefix + "test_"):
            return "test"
        if key.startswith(prefix + "live_"):
            return "live"
    return None


async def checks(settings: StripeSettings, public_url: str) -> list[Check]:
    if not settings.secret_key:
        return [
            fail(
                "stripe.keys",
                "ONSALE_STRIPE_SECRET_KEY is not set: checkout cannot take payments",
                "set the secret key (sk_live_... for a launch)",
            )
        ]
    found = [_secret(settings)]
    api, http = client(settings)
    calls = StripeCalls(attempts=2, base_delay=0.2)
    try:
        found.append(await _keys(api, calls, settings))
        if found[-1].status.value != "FAIL":
            found.append(await _endpoint(api, calls, settings, public_url))
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    return found


def _secret(settings: StripeSettings) -> Check:
    secret = settings.webhook_secret
    if not secret:
        return fail(
            "stripe.webhook_secret",
            "ONSALE_STRIPE_WEBHOOK_SECRET is not set: every webhook is refused, buyers "
            "pay and no order is confirmed",
            "copy the endpoint's signing secret (whsec_...) from Stripe into the setting",
        )
    if not secret.startswith("whsec_"):
        return warn(
            "stripe.webhook_secret",
            "set, but not a whsec_... signing secret",
            "use the endpoint's signing secret from Stripe's dashboard",
        )
    return passed("stripe.webhook_secret", "set (whsec_...)")


async def _keys(api: stripe.StripeClient, calls: StripeCalls, settings: StripeSettings) -> Check:
    mode = _mode(settings.secret_key)
    where = f"the Stripe emulator at {settings.api_base}" if settings.api_base else "Stripe"
    if mode is None:
        return fail(
            "stripe.keys",
            "the secret key is neither sk_test_/rk_test_ nor sk_live_/rk_live_",
            "set a Stripe secret key",
        )
    public = _mode(settings.publishable_key) if settings.publishable_key else None
    if settings.publishable_key and public != mode:
        return fail(
            "stripe.keys",
            f"the secret key is {mode} mode, the publishable key {public or 'not a pk_ key'}",
            "use the two keys of one mode",
        )
    try:
        await calls(lambda: api.v1.payment_intents.list_async(params={"limit": 1}))
    except stripe.AuthenticationError as exc:
        return fail(
            "stripe.keys",
            f"{where} refuses the {mode} secret key: {describe(exc)}",
            "set a valid secret key",
        )
    except stripe.StripeError as exc:
        return fail(
            "stripe.keys",
            f"{where} did not answer: {describe(exc)}",
            "check the network to api.stripe.com and status.stripe.com",
        )
    if not settings.publishable_key:
        return warn(
            "stripe.keys",
            f"{mode} mode, accepted by {where}; no publishable key: "
            "the pay page cannot load Stripe.js",
            "set ONSALE_STRIPE_PUBLISHABLE_KEY",
        )
    return passed("stripe.keys", f"{mode} mode keys, accepted by {where}")


async def _endpoint(
    api: stripe.StripeClient, calls: StripeCalls, settings: StripeSettings, public_url: str
) -> Check:
    url = public_url.rstrip("/") + WEBHOOK_PATH
    if settings.emulated:
        # localstripe registers endpoints through /_config/webhooks and cannot list them.
        return warn(
            "stripe.webhook",
            f"the emulator cannot list webhook endpoints ({url} is registered by onsale dev)",
            "none for a dev stack; against Stripe this check finds the endpoint",
        )
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return fail(
            "stripe.webhook",
            f"ONSALE_PUBLIC_URL gives {url}: Stripe cannot reach it",
            "set ONSALE_PUBLIC_URL to the public https:// address",
        )
    try:
        page = await calls(lambda: api.v1.webhook_endpoints.list_async(params={"limit": 100}))
    except stripe.StripeError as exc:
        return fail(
            "stripe.webhook",
            f"could not list webhook endpoints: {describe(exc)}",
            "use a key allowed to read webhook endpoints",
        )
    mine: list[Any] = [e for e in page.data if str(e.url).rstrip("/") == url]
    if not mine:
        return fail(
            "stripe.webhook",
            f"no webhook endpoint for {url}",
            f"add one in Stripe for {', '.join(WEBHOOK_EVENTS)}",
        )
    endpoint = mine[0]
    events = set(endpoint.enabled_events or ())
    missing = [e for e in WEBHOOK_EVENTS if "*" not in events and e not in events]
    if endpoint.status != "enabled":
        return fail(
            "stripe.webhook",
            f"the endpoint for {url} is {endpoint.status}",
            "enable it in Stripe's dashboard",
        )
    if missing:
        return fail(
            "stripe.webhook",
            f"the endpoint for {url} lacks {', '.join(missing)}",
            "add those events to the endpoint",
        )
    return passed("stripe.webhook", f"{endpoint.id} enabled for {url} with onsale's events")
