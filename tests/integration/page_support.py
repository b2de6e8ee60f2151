"""What the browser tests of the pages share: the system Chromium, a page like a buyer's,
events, people and purchases made over a real server's API, and looks at what the page
shows and keeps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from onsale.accounts.sessions import COOKIE
from onsale.embedded import EmbeddedStripe
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.integration.api_support import BUYER, event
from tests.integration.inventory_support import CREATED
from tests.integration.process_support import gateway
from tests.integration.stripe_support import intent_of, pay, signed

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's own browser download does not work offline; the system Chromium does.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: Where to save screenshots of each state, when set (e.g. ``/tmp`` to look at the page).
SHOTS = os.environ.get("ONSALE_TEST_SCREENSHOTS")


@contextlib.contextmanager
def paying_gateway(log: Path, redis_url: str, database_url: str, stripe_url: str) -> Iterator[str]:
    """A real `onsale serve` that takes payments through the Stripe emulator: its base URL."""
    with gateway(
        log,
        redis_url,
        database_url,
        ONSALE_STRIPE_SECRET_KEY=EmbeddedStripe.SECRET_KEY,
        ONSALE_STRIPE_PUBLISHABLE_KEY=EmbeddedStripe.PUBLISHABLE_KEY,
        ONSALE_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ONSALE_STRIPE_API_BASE=stripe_url,
    ) as base:
        yield base


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    # A missing browser fails the browser tests, never skips them: CI must not go green
    # without having looked at a page (.ci/run installs Chromium, or fails).
    assert CHROMIUM.exists(), (
        f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser: Browser, **options: Any) -> Page:
    context = browser.new_context(locale="en-US", timezone_id="UTC", **options)
    context.set_default_timeout(10_000)
    return context.new_page()


def create_event(server: str, **changes: Any) -> dict[str, Any]:
    r = httpx.post(f"{server}/api/events", json=event(**changes), headers=ADMIN)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    CREATED.append((None, body["id"]))  # the servers here use the session's Redis
    return body


def add_user(server: str, role: str) -> tuple[str, str]:
    """A new person with ``role``, made by the admin token: their e-mail and password."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    body = {"email": email, "role": role, "password": password}
    r = httpx.post(f"{server}/api/users", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return email, password


def signed_in(server: str, email: str, password: str) -> httpx.Client:
    """An HTTP client with a console session: its cookie, and its CSRF token on every call."""
    client = httpx.Client(base_url=server)
    r = client.post("/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    # The cookie is Secure (as outside `onsale dev`): httpx keeps it off plain http.
    client.headers["Cookie"] = f"{COOKIE}={r.cookies[COOKIE]}"
    return client


def admission(server: str, event_id: str) -> str:
    """A buyer through the API: joins and polls as told until admitted; the admission token."""
    url = f"{server}/api/events/{event_id}/queue"
    place = httpx.post(url).json()
    deadline = time.monotonic() + 30
    while place["state"] != "admitted":
        assert place["state"] in ("waiting", "prequeue") and time.monotonic() < deadline, place
        time.sleep(place["poll_after_seconds"])
        place = httpx.get(url, headers={"X-Visitor-Token": place["visitor_token"]}).json()
    token: str = place["admission_token"]
    return token


def buy(server: str, stripe_url: str, event_id: str, tier_id: str, quantity: int) -> dict[str, Any]:
    """A paid order through the API: admission, hold, checkout, the card, Stripe's webhook."""
    items = {"items": [{"tier_id": tier_id, "quantity": quantity}]}
    auth = {"Authorization": f"Bearer {admission(server, event_id)}"}
    r = httpx.post(f"{server}/api/events/{event_id}/holds", json=items, headers=auth)
    assert r.status_code == 201, r.text
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = httpx.post(f"{server}/api/holds/{r.json()['hold_id']}/checkout", json=BUYER, headers=key)
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    # Playwright's sync API holds this thread's event loop: pay from a thread of its own.
    paying = pay(stripe_url, order["payment"]["payment_intent_id"])
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, paying).result() == "succeeded"
    body, headers = signed("payment_intent.succeeded", intent_of(event_id, order))
    r = httpx.post(f"{server}/api/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 200, r.text
    return order


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths}"


def screenshot(page: Page, state: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"onsale-buyer-{state}.png"), full_page=True)


def console_screenshot(page: Page, name: str) -> None:
    """``console-{name}.png`` (the ones in docs/ are made so: ONSALE_TEST_SCREENSHOTS=docs)."""
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"console-{name}.png"), full_page=True)


def stored(page: Page, event_id: str) -> dict[str, Any]:
    raw = page.evaluate("key => localStorage.getItem(key)", f"onsale:{event_id}")
    value: dict[str, Any] = json.loads(raw) if raw else {}
    return value
