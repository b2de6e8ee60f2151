"""The buyer's page over plain HTTP from a real ``onsale serve`` (no browser): a friendly
404, its assets served and cacheable, and its Content-Security-Policy naming Stripe."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from onsale.embedded import EmbeddedStripe
from tests.integration.page_support import create_event


@pytest.fixture(scope="module")
def server(paying_server: str) -> str:
    return paying_server


def test_unknown_event_is_a_friendly_404(server: str) -> None:
    for event_id in (str(uuid.uuid4()), "not-an-event"):
        r = httpx.get(f"{server}/e/{event_id}")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "find that event" in r.text


def test_page_assets_are_served_and_cacheable(server: str) -> None:
    created = create_event(server)
    html = httpx.get(f"{server}/e/{created['id']}").text
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert assets  # the page links its styles and script
    for asset in assets:
        r = httpx.get(f"{server}{asset}")
        assert r.status_code == 200, asset
        assert "max-age" in r.headers["cache-control"]


def test_page_names_stripe_and_allows_it(server: str, stripe_url: str) -> None:
    event_id = create_event(server)["id"]
    r = httpx.get(f"{server}/e/{event_id}")
    assert f'data-stripe-js="{stripe_url}/js.stripe.com/v3/"' in r.text
    assert f'data-stripe-key="{EmbeddedStripe.PUBLISHABLE_KEY}"' in r.text
    policy = r.headers["content-security-policy"]
    assert f"script-src 'self' {stripe_url}" in policy
    assert f"connect-src 'self' {stripe_url}" in policy
    assert "img-src 'self' data: blob:" in policy
