"""The buyer's page: where it loads Stripe.js from, and the policy that lets it."""

from __future__ import annotations

from onsale.config import StripeSettings
from onsale.gateway.routes import pages


def test_stripe_itself_in_production() -> None:
    settings = StripeSettings(publishable_key="pk_live_x", secret_key="sk_live_x")
    assert pages.stripe_js(settings) == "https://js.stripe.com/v3/"
    policy = dict(p.split(" ", 1) for p in pages.csp(settings).split("; "))
    assert "https://js.stripe.com" in policy["script-src"].split()
    assert "https://api.stripe.com" in policy["connect-src"].split()
    assert "https://hooks.stripe.com" in policy["frame-src"].split()
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
