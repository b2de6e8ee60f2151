"""The buyer's page in a real browser: headless Chromium against a real ``onsale serve``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import Browser, expect

from tests.integration.api_support import iso
from tests.integration.page_support import (
    ADMIN,
    PHONE,
    admission,
    create_event,
    new_page,
    no_horizontal_scroll,
    screenshot,
    stored,
)


def test_wait_then_choose_and_hold_on_a_phone(server: str, browser: Browser) -> None:
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    # Opening in a few seconds, 5 a minute: the first admission would come 12 s after
    # opening, time enough to see the waiting room; the test then raises the rate.
    opens = datetime.now(UTC) + timedelta(seconds=5)
    created = create_event(
        server,
        onsale={"opens_at": iso(opens), "admit_per_minute": 5, "hold_seconds": 120},
    )
    event_id = created["id"]

    page.goto(f"{server}/e/{event_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Night Owls - Live")
    expect(page.get_by_text("Arena, Oslo, NO")).to_be_visible()
    status = page.locator("#status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(page.locator("#status-title")).to_have_text("The sale opens soon")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^(Opens in 0:0\d|Opening now)"))

    expect(page.locator("#status-title")).to_have_text("You're in line", timeout=15_000)
    expect(page.locator("#status-line")).to_have_text(re.compile(r"You are number 1 in line"))
    expect(page.locator("#eta")).to_have_text(re.compile(r"^Estimated wait: "))
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(page.get_by_label("Quantity for General Admission")).to_be_hidden()
    no_horizontal_scroll(page)
    screenshot(page, "waiting")

    # A reload keeps the place: the same visitor token, the same position.
    token = stored(page, event_id)["token"]
    page.reload()
    expect(page.locator("#status-line")).to_have_text(re.compile(r"You are number 1 in line"))
    assert stored(page, event_id)["token"] == token

    r = httpx.patch(
        f"{server}/api/events/{event_id}/onsale", json={"admit_per_minute": 60_000}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    expect(page.locator("#status-title")).to_have_text("It's your turn", timeout=15_000)
    expect(page.locator("#tickets-heading")).to_be_focused()
    assert stored(page, event_id)["token"] == token
    ga = page.get_by_label("Quantity for General Admission")
    expect(ga).to_be_visible()
    expect(ga.locator("option")).to_have_count(7)  # 0..6, the tier's per-order limit
    expect(page.get_by_label("Quantity for VIP").locator("option")).to_have_count(3)
    expect(page.get_by_role("button", name="Hold tickets")).to_be_disabled()

    ga.select_option("2")
    page.get_by_label("Quantity for VIP").select_option("1")
    expect(page.locator("#total")).to_have_text("$240.00")
    no_horizontal_scroll(page)
    screenshot(page, "admitted")

    page.get_by_role("button", name="Hold tickets").click()
    expect(page.get_by_role("heading", name="Your tickets are held")).to_be_focused()
    expect(page.locator("#hold-items li")).to_have_text(
        [
            "2 \N{MULTIPLICATION SIGN} General Admission ($90.00)",
            "1 \N{MULTIPLICATION SIGN} VIP ($150.00)",
        ]
    )
    expect(page.locator("#hold-amount")).to_have_text("$240.00")
    expect(page.locator("#hold-countdown")).to_have_text(re.compile(r"^(2:00|1:[0-5]\d)$"))
    # Checkout comes next, below the hold (paying is in test_buyer_checkout.py).
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_label("Name for the tickets")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "held")
    assert held(server, event_id) == 3

    # A reload during the hold shows the hold again rather than an empty cart.
    page.reload()
    expect(page.locator("#hold-amount")).to_have_text("$240.00")

    page.get_by_role("button", name="Release tickets").click()
    expect(page.locator("#status-line")).to_have_text("Your tickets were released.")
    expect(page.get_by_role("button", name="Hold tickets")).to_be_visible()
    assert held(server, event_id) == 0
    page.context.close()


def held(server: str, event_id: str) -> int:
    r = httpx.get(f"{server}/api/events/{event_id}/stats", headers=ADMIN)
    assert r.status_code == 200, r.text
    return sum(int(t["held"]) for t in r.json()["tiers"])


def test_hold_errors_show_their_detail(server: str, browser: Browser) -> None:
    # Opening now: the first seconds' ETAs come from the configured rate, so polls are quick.
    created = create_event(
        server,
        tiers=[{"name": "Floor", "price": 2000, "capacity": 2, "per_order_limit": 4}],
        onsale={"opens_at": iso(datetime.now(UTC)), "admit_per_minute": 60_000},
    )
    event_id, tier_id = created["id"], created["tiers"][0]["id"]
    rival = admission(server, event_id)
    page = new_page(browser)
    page.goto(f"{server}/e/{event_id}")
    expect(page.locator("#status-title")).to_have_text("It's your turn")
    # The limit allows 4, but only 2 exist: the picker offers no more than could be had.
    expect(page.get_by_label("Quantity for Floor").locator("option")).to_have_count(3)
    page.get_by_label("Quantity for Floor").select_option("1")
    expect(page.locator("#total")).to_have_text("$20.00")
    # The rival holds every ticket first.
    r = httpx.post(
        f"{server}/api/events/{event_id}/holds",
        json={"items": [{"tier_id": tier_id, "quantity": 2}]},
        headers={"Authorization": f"Bearer {rival}"},
    )
    assert r.status_code == 201, r.text
    page.get_by_role("button", name="Hold tickets").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^(Sold out|Not enough tickets)"))
    expect(page.get_by_role("button", name="Hold tickets")).to_be_enabled()
    screenshot(page, "hold-error")
    page.context.close()


def test_every_ticket_in_a_cart_is_said_honestly(server: str, browser: Browser) -> None:
    created = create_event(
        server,
        tiers=[{"name": "Floor", "price": 2000, "capacity": 1}],
        onsale={"opens_at": iso(datetime.now(UTC)), "admit_per_minute": 60_000},
    )
    r = httpx.post(
        f"{server}/api/events/{created['id']}/holds",
        json={"items": [{"tier_id": created["tiers"][0]["id"], "quantity": 1}]},
        headers={"Authorization": f"Bearer {admission(server, created['id'])}"},
    )
    assert r.status_code == 201, r.text
    page = new_page(browser)
    page.goto(f"{server}/e/{created['id']}")
    expect(page.locator("#status-title")).to_have_text("You're in line")
    expect(page.locator("#note")).to_have_text(
        "Every remaining ticket is in someone's cart right now; some may come back."
    )
    expect(page.locator("#eta")).to_contain_text("can't estimate")
    screenshot(page, "held-only")
    page.context.close()


def test_sold_out(server: str, browser: Browser) -> None:
    opens = datetime.now(UTC) - timedelta(minutes=1)
    created = create_event(
        server,
        tiers=[{"name": "Standing", "price": 3000, "capacity": 0}],
        onsale={"opens_at": iso(opens), "admit_per_minute": 600},
    )
    page = new_page(browser, viewport={"width": 1280, "height": 800})
    polls: list[str] = []
    page.on("request", lambda req: polls.append(req.method) if "/queue" in req.url else None)
    page.goto(f"{server}/e/{created['id']}")
    expect(page.locator("#status-title")).to_have_text("Sold out")
    expect(page.locator("#status-line")).to_contain_text("Every ticket has been sold")
    expect(page.locator("#progress")).to_be_hidden()
    expect(page.locator(".tier-soldout")).to_have_text("Sold out")
    screenshot(page, "sold-out")
    assert polls == ["POST"]  # one join, and no polling once sold out
    page.context.close()
