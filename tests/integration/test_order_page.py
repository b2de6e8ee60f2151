"""The buyer's order page ``/o/{id}?t=`` in a real browser: the tickets and their QR codes
on a phone, a refunded order's void tickets, a bad link, and the page offline at the door."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.integration.api_support import iso
from tests.integration.page_support import (
    ADMIN,
    PHONE,
    buy,
    create_event,
    new_page,
    no_horizontal_scroll,
)

#: Where the phone screenshots go, when set (``docs`` keeps the README's).
SHOTS = os.environ.get("ONSALE_TEST_SCREENSHOTS")


@pytest.fixture(scope="module")
def server(paying_server: str) -> str:
    return paying_server


def _order(server: str, stripe_url: str, quantity: int) -> tuple[str, dict[str, str], str]:
    """A paid order: its event id, the checkout's answer, and the order page's URL."""
    event = create_event(server, onsale={"opens_at": iso(-60), "admit_per_minute": 6000})
    order = buy(server, stripe_url, event["id"], event["tiers"][0]["id"], quantity)
    return event["id"], order, f"{server}/o/{order['order_id']}?t={order['order_token']}"


def _shot(page: object, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)  # type: ignore[attr-defined]


def test_tickets_and_qr_codes_on_a_phone_and_offline(
    server: str, stripe_url: str, browser: Browser
) -> None:
    _, order, url = _order(server, stripe_url, 2)
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["referrer-policy"] == "no-referrer"
    api = httpx.get(
        f"{server}/api/orders/{order['order_id']}",
        headers={"Authorization": f"Bearer {order['order_token']}"},
    ).json()
    assert api["status"] == "confirmed"

    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(url)
    expect(page.locator("#status-title")).to_have_text("Paid")
    expect(page.locator("#event-title")).to_have_text("Night Owls - Live")
    codes = page.locator("img.ticket-qr")
    expect(codes).to_have_count(2)
    payloads = sorted(codes.nth(i).get_attribute("data-payload") or "" for i in range(2))
    assert payloads == sorted(t["qr"] for t in api["tickets"])
    for i in range(2):
        code = codes.nth(i)
        expect(code).to_be_visible()
        assert page.evaluate("img => img.complete && img.naturalWidth > 0", code.element_handle())
        # Big enough to scan from a phone held up at the door.
        box = code.bounding_box()
        assert box is not None and box["width"] >= 300, box
    # The PDF: fetched with the order token (a bearer header), saved from a blob URL.
    with page.expect_download() as download:
        page.click("#pdf-button")
    saved = download.value
    assert saved.suggested_filename == f"tickets-{order['order_id']}.pdf"
    assert Path(saved.path()).read_bytes().startswith(b"%PDF")
    no_horizontal_scroll(page)
    _shot(page, "order-page-phone.png")

    # Kept on the device: offline, a reload still shows the tickets.
    expect(page.locator("html")).to_have_attribute("data-offline", "ready")
    expect(page.locator("#offline-note")).to_be_visible()
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#status-title")).to_have_text("Paid")
    expect(page.locator("img.ticket-qr")).to_have_count(2)
    assert page.evaluate(
        "() => [...document.images].filter(i => i.classList.contains('ticket-qr'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.context.set_offline(False)
    page.context.close()


def test_a_refunded_order_says_its_tickets_are_void(
    server: str, stripe_url: str, browser: Browser
) -> None:
    _, order, url = _order(server, stripe_url, 1)
    # Refunded through the organizer's route (Stripe's emulator gives the money back).
    r = httpx.post(
        f"{server}/api/orders/{order['order_id']}/refund",
        json={"reason": "requested_by_customer", "return_to_sale": False},
        headers=ADMIN,
    )
    assert r.status_code == 200 and r.json()["status"] == "refunded", r.text

    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(url)
    expect(page.locator("#status-title")).to_contain_text("Refunded")
    expect(page.locator("#status-title")).to_contain_text("void")
    expect(page.locator(".ticket-void")).to_have_text("VOID: not valid for entry")
    expect(page.locator("img.ticket-qr")).to_have_count(0)
    expect(page.locator("#pdf-button")).to_have_count(0)
    no_horizontal_scroll(page)
    _shot(page, "order-page-refunded-phone.png")
    page.context.close()


def test_a_bad_link_says_so_and_offers_the_lookup(server: str, browser: Browser) -> None:
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    order_id = "6f1c3f0e-1111-4222-8333-444455556666"
    for query, heading in (("?t=o1.forged.token.mac", "not valid"), ("", "incomplete")):
        response = page.goto(f"{server}/o/{order_id}{query}")
        assert response is not None and response.status == 403
        expect(page.locator("#message-title")).to_contain_text(heading)
        assert "Traceback" not in page.content()
    # Find my tickets, from the error page.
    page.fill("#lookup-email", "someone@example.com")
    page.click("#lookup-button")
    expect(page.locator("#lookup-result")).to_contain_text("on its way")
    page.fill("#lookup-email", "nope")
    page.click("#lookup-button")
    expect(page.locator("#lookup-result")).to_contain_text("e-mail address")
    no_horizontal_scroll(page)
    _shot(page, "order-page-bad-link-phone.png")
    page.context.close()


def test_find_my_tickets_on_the_buyers_page(server: str, browser: Browser) -> None:
    event = create_event(server)
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(f"{server}/e/{event['id']}")
    form = page.locator("#lookup")
    expect(form.locator("h2")).to_have_text("Find my tickets")
    page.fill("#lookup-email", f"nobody-{event['id'][:8]}@example.com")
    page.click("#lookup-button")
    expect(page.locator("#lookup-result")).to_contain_text("on its way")
    no_horizontal_scroll(page)
    form.scroll_into_view_if_needed()
    if SHOTS:
        form.screenshot(path=str(Path(SHOTS) / "buyer-find-my-tickets-phone.png"))
    page.context.close()
