"""Paying on the buyer's page in a real browser: checkout, Stripe.js, the webhook, tickets.

A real ``onsale serve`` talks to the session's Stripe emulator (localstripe), which
delivers signed webhooks to it; Chromium loads Stripe.js from the emulator, as the page
does whenever ``ONSALE_STRIPE_API_BASE`` is set.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from onsale import signing
from onsale.embedded import EmbeddedStripe, stop
from onsale.servers import committer
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.integration.api_support import iso
from tests.integration.page_support import (
    PHONE,
    create_event,
    new_page,
    no_horizontal_scroll,
    screenshot,
    stored,
)
from tests.integration.process_support import serving
from tests.integration.stripe_support import EXP_YEAR

GOOD_CARD = "4242424242424242"
#: Stripe's "charge declined" test card. (The generic decline card, 4000000000000002, is
#: declined by localstripe only when attached to a customer: its PaymentIntents succeed.)
DECLINED_CARD = "4000000000000341"
TICKET_QR = re.compile(r"^ticket:[0-9a-f-]{36}:v1:[A-Za-z0-9_-]+$")


@pytest.fixture(scope="module")
def env(redis_url: str, database_url: str, stripe_url: str) -> dict[str, str]:
    return {
        "ONSALE_REDIS_URL": redis_url,
        "ONSALE_DATABASE_URL": database_url,
        "ONSALE_ADMIN_TOKEN": ADMIN_TOKEN,
        "ONSALE_SIGNING_KEY": signing.generate_pem(),
        "ONSALE_STRIPE_SECRET_KEY": EmbeddedStripe.SECRET_KEY,
        "ONSALE_STRIPE_PUBLISHABLE_KEY": EmbeddedStripe.PUBLISHABLE_KEY,
        "ONSALE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ONSALE_STRIPE_API_BASE": stripe_url,
    }


@pytest.fixture(scope="module")
def server(
    env: dict[str, str], stripe_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("serve") / "serve.log", **env) as base:
        # The session's emulator delivers every event to every registered URL: this
        # server sees other tests' events too, harmlessly (their orders are not here).
        hook = f"{stripe_url}/_config/webhooks/buyer-checkout-{uuid.uuid4().hex[:8]}"
        config = {"url": f"{base}/api/webhooks/stripe", "secret": WEBHOOK_SECRET}
        assert httpx.post(hook, json=config).status_code == 200
        try:
            yield base
        finally:
            # localstripe cannot forget a webhook: make this one listen for nothing.
            httpx.post(hook, json={**config, "events": ["onsale.test.stopped"]})


@contextlib.contextmanager
def committing(env: dict[str, str], event_id: str, log: Path) -> Iterator[None]:
    """The write-behind committer for one event (``onsale committer``), while in the block."""
    with log.open("wb") as out:
        proc = committer(env, "--event", event_id, out=out)
    try:
        yield
    finally:
        stop(proc, timeout=20)


def checkout_page(browser: Browser, stripe_url: str, **options: Any) -> Page:
    page = new_page(browser, **options)
    page.context.set_default_timeout(15_000)
    return page


def csp_violations(page: Page) -> list[str]:
    """Console reports of anything the page's Content-Security-Policy blocked, from now on."""
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    return blocked


def hold_tickets(page: Page, server: str, event_id: str, tier: str, quantity: str) -> None:
    page.goto(f"{server}/e/{event_id}")
    expect(page.locator("#status-title")).to_have_text("It's your turn")
    page.get_by_label(f"Quantity for {tier}").select_option(quantity)
    page.get_by_role("button", name="Hold tickets").click()
    expect(page.get_by_role("heading", name="Your tickets are held")).to_be_focused()


def fill_card(page: Page, number: str) -> None:
    """The emulator's card element: plain inputs (Stripe's own is a cross-origin iframe)."""
    for field, value in (
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", f"{EXP_YEAR % 100:02d}"),
        ("cvc", "123"),
        ("postal_code", "10001"),
    ):
        page.locator(f"#card-element input[placeholder={field}]").fill(value)


def order_of(server: str, page: Page, event_id: str) -> dict[str, Any]:
    saved = stored(page, event_id)["order"]
    r = httpx.get(
        f"{server}/api/orders/{saved['id']}",
        headers={"Authorization": f"Bearer {saved['token']}"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def sale(server: str, **tier: Any) -> dict[str, Any]:
    return create_event(
        server,
        tiers=[{"name": "General Admission", "price": 4500, "capacity": 10, **tier}],
        onsale={"opens_at": iso(datetime.now(UTC)), "admit_per_minute": 60_000},
    )


def test_pay_by_card_then_tickets_on_a_phone(
    server: str,
    browser: Browser,
    stripe_url: str,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    event_id = sale(server)["id"]
    log = tmp_path_factory.mktemp("committer") / "committer.log"
    with committing(env, event_id, log):
        page = checkout_page(browser, stripe_url, viewport=PHONE, is_mobile=True, has_touch=True)
        blocked = csp_violations(page)
        hold_tickets(page, server, event_id, "General Admission", "2")

        # The details are checked before anything is sent.
        continue_ = page.get_by_role("button", name="Continue to payment")
        continue_.click()
        email = page.get_by_label("Email")
        expect(email).to_be_focused()
        expect(email).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#buyer-email-error")).to_have_text("Enter your email address.")
        expect(page.locator("#buyer-name-error")).to_have_text(
            "Enter the name the tickets are for."
        )
        email.fill("ada@example")
        continue_.click()
        expect(page.locator("#buyer-email-error")).to_contain_text("like name@example.com")
        email.fill("ada@example.com")
        expect(page.locator("#buyer-email-error")).to_be_hidden()  # fixed: said no more
        expect(email).not_to_have_attribute("aria-invalid", "true")
        page.get_by_label("Name for the tickets").fill("Ada Lovelace")
        screenshot(page, "checkout-details")

        # A double click is one checkout request, and one order.
        checkouts: list[Request] = []
        page.on("request", lambda r: checkouts.append(r) if r.url.endswith("/checkout") else None)
        continue_.dblclick()
        expect(page.get_by_role("heading", name="Pay by card")).to_be_focused()
        expect(page.locator("#payer")).to_have_text("Paying as Ada Lovelace (ada@example.com).")
        assert len(checkouts) == 1
        key = stored(page, event_id)["checkout"]["key"]
        assert checkouts[0].headers["idempotency-key"] == key

        pay = page.get_by_role("button", name="Pay $90.00")
        expect(pay).to_be_enabled()
        fill_card(page, GOOD_CARD)
        no_horizontal_scroll(page)
        screenshot(page, "checkout-card")
        pay.click()

        # Stripe's webhook reaches the server about a second after the payment.
        expect(page.get_by_role("heading", name="Your order")).to_be_focused()
        expect(page.locator("#order-title")).to_have_text("You're all set", timeout=30_000)
        order = order_of(server, page, event_id)
        assert order["status"] == "confirmed"
        assert (order["email"], order["name"], order["amount"]) == (
            "ada@example.com",
            "Ada Lovelace",
            9000,
        )
        codes = [t["qr"] for t in order["tickets"]]
        assert len(codes) == 2 and all(TICKET_QR.match(c) for c in codes)
        tickets = page.locator(".ticket")
        expect(tickets.locator("h3")).to_have_text(
            ["General Admission: ticket 1 of 2", "General Admission: ticket 2 of 2"]
        )
        expect(tickets.locator(".qr-text")).to_have_text(codes)
        expect(page.locator("#order-amount")).to_have_text("$90.00")
        expect(page.locator("#order-email")).to_have_text("ada@example.com")

        # A reload shows the tickets again, without going back into the line.
        joins: list[str] = []
        page.on("request", lambda r: joins.append(r.method) if r.url.endswith("/queue") else None)
        page.reload()
        expect(page.locator("#order-title")).to_have_text("You're all set")
        expect(page.locator(".ticket .qr-text")).to_have_text(codes)
        expect(page.locator("#queue")).to_be_hidden()
        assert joins == []
        assert blocked == []

        # Tickets reach Postgres through the committer, then the QR endpoint has them.
        images = page.locator(".ticket .qr img")
        expect(images).to_have_count(2)
        for i in range(2):
            expect(images.nth(i)).to_be_visible(timeout=40_000)
            assert page.evaluate("img => img.naturalWidth", images.nth(i).element_handle())
        expect(images.first).to_have_attribute("src", re.compile(r"^blob:"))
        no_horizontal_scroll(page)
        screenshot(page, "tickets")
        page.context.close()


def test_declined_card_says_why_and_may_try_again(
    server: str, browser: Browser, stripe_url: str
) -> None:
    event_id = sale(server)["id"]
    page = checkout_page(browser, stripe_url, viewport={"width": 1280, "height": 900})
    hold_tickets(page, server, event_id, "General Admission", "1")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Name for the tickets").fill("Grace Hopper")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("heading", name="Pay by card")).to_be_visible()
    first = stored(page, event_id)

    # A reload during payment resumes the same order (the same key, the same body).
    page.reload()
    expect(page.get_by_role("heading", name="Pay by card")).to_be_focused()
    again = stored(page, event_id)
    assert again["checkout"]["key"] == first["checkout"]["key"]
    assert again["order"] == first["order"]

    fill_card(page, DECLINED_CARD)
    page.get_by_role("button", name="Pay $45.00").click()
    alert = page.locator("#card-error")
    expect(alert).to_have_text("Your card was declined. Check the details or try another card.")
    expect(alert).to_have_attribute("role", "alert")
    # The buyer may try another card: the form is still there and ready.
    expect(page.get_by_role("button", name="Pay $45.00")).to_be_focused()
    expect(page.get_by_role("button", name="Pay $45.00")).to_be_enabled()
    expect(page.locator("#card-element input[placeholder=number]")).to_be_editable()
    expect(page.get_by_role("heading", name="Your order")).to_be_hidden()
    screenshot(page, "declined")
    assert order_of(server, page, event_id)["status"] in ("pending", "failed")
    # Once the server has the failure (it releases a declined order's tickets), the page
    # stops counting down a hold that no longer exists.
    deadline = time.monotonic() + 10
    while order_of(server, page, event_id)["status"] == "pending":
        assert time.monotonic() < deadline, "the payment_failed webhook never arrived"
        time.sleep(0.2)
    expect(page.locator("#hold-note")).to_contain_text("went back on sale")
    expect(page.locator("#hold-timer")).to_be_hidden()
    page.context.close()


def test_free_order_goes_straight_to_tickets(
    server: str, browser: Browser, stripe_url: str
) -> None:
    event_id = sale(server, name="Open Rehearsal", price=0)["id"]
    page = checkout_page(browser, stripe_url)
    stripe_requests: list[str] = []
    page.on("request", lambda r: stripe_requests.append(r.url) if stripe_url in r.url else None)
    hold_tickets(page, server, event_id, "Open Rehearsal", "1")
    page.get_by_label("Email").fill("alan@example.com")
    page.get_by_label("Name for the tickets").fill("Alan Turing")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.locator("#order-title")).to_have_text("You're all set")
    expect(page.locator("#order-amount")).to_have_text("Free")
    expect(page.locator(".ticket .qr-text")).to_have_text(TICKET_QR)
    assert stripe_requests == []  # nothing to pay: Stripe.js is never loaded
    page.context.close()
