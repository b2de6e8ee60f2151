"""The bot tax on the buyer's page: headless Chromium solves the event's proof-of-work with
the vendored ALTCHA widget, with no click, says so while it works, then joins."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Request, expect

from tests.integration.api_support import event, iso
from tests.integration.page_support import (
    add_user,
    create_event,
    new_page,
    no_horizontal_scroll,
    screenshot,
    signed_in,
    stored,
)

VIEWPORTS = {"phone": (390, 844), "tablet": (820, 1180), "laptop": (1366, 900)}


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_the_page_solves_the_proof_of_work_without_a_click_and_joins(
    server: str, browser: Browser, size: str
) -> None:
    width, height = VIEWPORTS[size]
    # Hard enough that solving shows (a second or more in headless Chromium), never minutes.
    onsale = {"opens_at": iso(-1), "admit_per_minute": 1, "pow_difficulty": 1_500_000}
    event_id = create_event(server, onsale=onsale)["id"]
    page = new_page(browser, viewport={"width": width, "height": height})
    problems: list[str] = []
    # No script error, no CSP refusal (the widget's worker and module come from our origin).
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if "Failed to load" not in m.text and m.type == "error"
            else None
        ),
    )
    page.on(
        "response",
        lambda r: problems.append(r.url) if r.status >= 400 and "favicon" not in r.url else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    joins: list[Request] = []
    page.on("request", lambda r: joins.append(r) if r.method == "POST" else None)

    if size == "phone":
        # The page's clock in the test's hands (the workers' is not): a phone that has
        # been solving for a few seconds, however fast this machine finds the counter.
        page.clock.install()
    page.goto(f"{server}/e/{event_id}")
    pow_box = page.locator("#pow")
    expect(pow_box).to_be_visible()
    expect(pow_box).to_contain_text("no click needed")
    expect(page.locator("main")).to_have_attribute("data-pow", "solving")
    no_horizontal_scroll(page)
    screenshot(page, f"pow-solving-{size}")
    # Slow phones are told it is still going (after 3 s), with the seconds so far.
    if size == "phone":
        page.clock.run_for(4_000)
        expect(page.locator("#pow-time")).to_have_text(
            re.compile(r"^\d+ s so far: older phones can take a little longer")
        )
        screenshot(page, "pow-slow-phone")
        page.clock.resume()

    expect(page.locator("#status-title")).to_have_text("You're in line", timeout=60_000)
    expect(pow_box).to_be_hidden()
    assert stored(page, event_id)["token"]
    posted = [r for r in joins if r.url.endswith(f"/api/events/{event_id}/queue")]
    assert posted and posted[0].headers.get("x-altcha"), "the join carried no solution"
    assert posted[0].response() is not None and posted[0].response().status == 200  # type: ignore[union-attr]
    assert not problems, problems
    screenshot(page, f"pow-joined-{size}")
    page.context.close()


def test_an_event_without_a_bot_tax_loads_no_widget(server: str, browser: Browser) -> None:
    event_id = create_event(server, onsale={"opens_at": iso(-1), "admit_per_minute": 1})["id"]
    page = new_page(browser, viewport={"width": 390, "height": 844})
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if "altcha" in r.url else None)
    page.goto(f"{server}/e/{event_id}")
    expect(page.locator("#status-title")).to_have_text("You're in line")
    expect(page.locator("#pow")).to_be_hidden()
    assert scripts == []
    page.context.close()


def test_an_organizer_sets_the_bot_tax_in_the_console(server: str, browser: Browser) -> None:
    email, password = add_user(server, "organizer")
    api = signed_in(server, email, password)
    onsale = {"opens_at": iso(3600), "admit_per_minute": 60}
    r = api.post("/api/events", json=event(title="Tax Night", onsale=onsale))
    api.close()
    assert r.status_code == 201, r.text
    event_id = r.json()["id"]
    assert r.json()["onsale"]["pow_difficulty"] is None  # the server's default
    page = new_page(browser, viewport={"width": 820, "height": 1180})
    page.goto(f"{server}/organizer")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}/organizer")
    page.goto(f"{server}/organizer/events/{event_id}/edit")
    field = page.get_by_label("Bot tax (proof-of-work)")
    expect(field).to_have_value("")
    expect(field).to_have_accessible_description(re.compile("about a second on a phone"))
    field.fill("-5")
    page.get_by_role("button", name="Save changes").click()
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill("80000")
    no_horizontal_scroll(page)
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{server}/organizer/events/{event_id}")
    assert httpx.get(f"{server}/api/events/{event_id}").json()["onsale"]["pow_difficulty"] == 80000
    # Once set it can change (0: off), not go back to the default.
    page.goto(f"{server}/organizer/events/{event_id}/edit")
    expect(field).to_have_value("80000")
    field.fill("")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#f-pow-error")).to_have_text("It can be changed, not removed, once set.")
    field.fill("0")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{server}/organizer/events/{event_id}")
    assert httpx.get(f"{server}/api/events/{event_id}").json()["onsale"]["pow_difficulty"] == 0
    page.context.close()
