"""Promo codes in a real browser: an organizer makes one on the event's console page and
sees its uses; a buyer types a wrong code at the hold step (told why, at the field, nothing
held), then the right one in lower case, and sees the discount and the discounted total.
Each at phone, tablet and laptop widths (ONSALE_TEST_SCREENSHOTS=dir keeps the pictures)."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.integration.api_support import event as event_body
from tests.integration.api_support import iso
from tests.integration.page_support import (
    ADMIN,
    add_user,
    console_screenshot,
    create_event,
    new_page,
    no_horizontal_scroll,
    screenshot,
    signed_in,
)

WIDTHS = (390, 820, 1366)


def fits(page: Page, selector: str) -> bool:
    """Whether everything in ``selector`` lies within the page's width."""
    return bool(
        page.evaluate(
            """s => [...document.querySelectorAll(s + ", " + s + " *")].every(
                e => e.getBoundingClientRect().right <= document.documentElement.clientWidth)""",
            selector,
        )
    )


def test_an_organizer_makes_a_promo_code_on_the_console(server: str, browser: Browser) -> None:
    email, password = add_user(server, "organizer")
    onsale = {"opens_at": iso(-1), "admit_per_minute": 600}
    organizer = signed_in(server, email, password)
    try:
        r = organizer.post("/api/events", json=event_body(onsale=onsale))
    finally:
        organizer.close()
    assert r.status_code == 201, r.text
    event = r.json()
    target = f"/organizer/events/{event['id']}"
    page = new_page(browser, viewport={"width": 1366, "height": 900})
    page.goto(f"{server}{target}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}{target}")
    section = page.locator("#promo")
    expect(section.get_by_role("heading", name="Promo codes")).to_be_visible()
    expect(page.locator("#promo-total")).to_have_text("No promo codes yet.")

    # Bad input is said at its field, and nothing is made.
    section.get_by_label("Code").fill("no spaces")
    section.get_by_label("Percent off").fill("120")
    section.get_by_role("button", name="Create code").click()
    expect(page.locator("#pc-code-error")).to_have_text(re.compile("no spaces"))
    expect(page.locator("#pc-value-error")).to_have_text("A whole number from 1 to 100.")
    expect(section.get_by_label("Code")).to_be_focused()

    section.get_by_label("Code").fill("vip-friends")
    section.get_by_label("Percent off").fill("20")
    section.get_by_label("Uses").fill("2")
    section.get_by_role("checkbox", name="VIP").check()
    section.get_by_role("button", name="Create code").click()
    expect(page.locator("#promo-status")).to_have_text("Code VIP-FRIENDS created.")
    row = page.locator("#promo-body tr").first
    expect(row.locator("th")).to_have_text("VIP-FRIENDS")
    expect(row.locator("td")).to_have_text(["20% off", "0 of 2", "VIP", "Always"])

    # An amount off, in the event's currency; the same name again is refused at the field.
    section.get_by_label("Fixed amount").check()
    section.get_by_label("Code").fill("TENNER")
    section.get_by_label(re.compile(r"^Amount off \(USD\)")).fill("10")
    section.get_by_role("button", name="Create code").click()
    expect(page.locator("#promo-body tr")).to_have_count(2)
    expect(page.locator("#promo-body tr").nth(1).locator("td").first).to_have_text("$10.00 off")
    section.get_by_label("Code").fill("Vip-Friends")
    section.get_by_label("Percent off").fill("5")
    section.get_by_role("button", name="Create code").click()
    expect(page.locator("#pc-code-error")).to_have_text(re.compile("already"))
    expect(page.locator("#promo-body tr")).to_have_count(2)
    codes = httpx.get(f"{server}/api/events/{event['id']}/promo-codes", headers=ADMIN).json()
    assert [(c["code"], c["uses"]) for c in codes] == [("VIP-FRIENDS", 0), ("TENNER", 0)]
    assert codes[1]["amount_off"] == 1000
    no_horizontal_scroll(page)
    console_screenshot(page, "promo-codes-1366")

    state = page.context.storage_state()
    for width in (820, 390):
        narrow = browser.new_context(
            locale="en-US", timezone_id="UTC", storage_state=state,
            viewport={"width": width, "height": 900},
        ).new_page()  # fmt: skip
        narrow.goto(f"{server}{target}")
        expect(narrow.locator("#promo-total")).to_have_text("2 codes, 0 uses now.")
        assert fits(narrow, "#promo"), width
        console_screenshot(narrow, f"promo-codes-{width}")
        narrow.context.close()
    page.context.close()


def test_a_buyer_holds_with_a_promo_code_at_every_width(server: str, browser: Browser) -> None:
    created = create_event(
        server, onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 120}
    )
    event_id = created["id"]
    body = {"code": "HALF", "percent_off": 50, "max_uses": 10}
    r = httpx.post(f"{server}/api/events/{event_id}/promo-codes", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    for width in WIDTHS:
        page = new_page(browser, viewport={"width": width, "height": 900})
        page.goto(f"{server}/e/{event_id}")
        expect(page.locator("#status-title")).to_have_text("It's your turn", timeout=15_000)
        page.get_by_label("Quantity for General Admission").select_option("2")
        field = page.get_by_label("Promo code")
        expect(field).to_be_visible()
        field.fill("NOT-A-CODE")
        page.get_by_role("button", name="Hold tickets").click()
        expect(page.locator("#promo-error")).to_have_text(
            re.compile(r"^There is no such promo code for this event\.")
        )
        expect(field).to_be_focused()
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#hold")).to_be_hidden()
        no_horizontal_scroll(page)
        screenshot(page, f"promo-refused-{width}")

        field.fill("half")
        expect(page.locator("#promo-error")).to_be_hidden()
        page.get_by_role("button", name="Hold tickets").click()
        expect(page.get_by_role("heading", name="Your tickets are held")).to_be_focused()
        expect(page.locator("#hold-discount")).to_have_text("Promo code HALF: \N{MINUS SIGN}$45.00")
        expect(page.locator("#hold-amount")).to_have_text("$45.00")
        no_horizontal_scroll(page)
        screenshot(page, f"promo-held-{width}")
        page.get_by_role("button", name="Release tickets").click()
        expect(page.get_by_role("button", name="Hold tickets")).to_be_visible()
        page.context.close()
    codes = httpx.get(f"{server}/api/events/{event_id}/promo-codes", headers=ADMIN).json()
    assert codes[0]["uses"] == 0  # every hold was released: its use came back
