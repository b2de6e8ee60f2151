"""The presale in a real browser: a buyer enters an access code on the buyer's page, waits
in the presale line, is admitted before the general sale opens, and holds tickets."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.integration.api_support import event as event_body
from tests.integration.api_support import iso
from tests.integration.page_support import (
    ADMIN,
    PHONE,
    add_user,
    console_screenshot,
    create_event,
    new_page,
    no_horizontal_scroll,
    screenshot,
    signed_in,
)

WIDTHS = (390, 820, 1366)


def presale_event(server: str, presale_in: float, opens_in: float) -> str:
    created = create_event(
        server, onsale={"opens_at": iso(opens_in), "admit_per_minute": 60_000, "hold_seconds": 120}
    )
    event_id: str = created["id"]
    path = f"{server}/api/events/{event_id}/onsale"
    r = httpx.patch(path, json={"presale_opens_at": iso(presale_in)}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return event_id


def access_code(server: str, event_id: str) -> str:
    body = {"count": 1, "max_uses": 1}
    r = httpx.post(f"{server}/api/events/{event_id}/access-codes", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    code: str = r.json()["codes"][0]
    return code


def test_presale_page_explains_itself_at_every_width(server: str, browser: Browser) -> None:
    event_id = presale_event(server, presale_in=3600, opens_in=7200)
    for width in WIDTHS:
        page = new_page(browser, viewport={"width": width, "height": 900})
        page.goto(f"{server}/e/{event_id}")
        expect(page.locator("#status-title")).to_have_text("The sale opens soon")
        expect(page.get_by_role("heading", name="Presale")).to_be_visible()
        expect(page.locator(".presale-info")).to_contain_text("Access code holders are let in")
        expect(page.get_by_label("Access code")).to_be_visible()
        no_horizontal_scroll(page)
        screenshot(page, f"presale-{width}")
        page.context.close()


def test_a_buyer_with_an_access_code_is_admitted_in_the_presale_and_holds(
    server: str, browser: Browser
) -> None:
    # The presale opens in a few seconds; the general sale long after this test.
    event_id = presale_event(server, presale_in=5, opens_in=600)
    code = access_code(server, event_id)
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(f"{server}/e/{event_id}")
    expect(page.locator("#status-title")).to_have_text("The sale opens soon")
    field = page.get_by_label("Access code")
    join = page.get_by_role("button", name="Join the presale")

    # A wrong code: said plainly, next to the field; the place in the general line stays.
    field.fill("WRNG-CODE-2345")
    join.click()
    error = page.locator("#access-code-error")
    expect(error).to_contain_text("isn't valid for this presale", timeout=10_000)
    expect(field).to_have_attribute("aria-invalid", "true")
    # On a phone the button is under the field: the refusal sits between them.
    field_box, error_box, join_box = field.bounding_box(), error.bounding_box(), join.bounding_box()
    assert field_box and error_box and join_box
    assert field_box["y"] < error_box["y"] < join_box["y"], (field_box, error_box, join_box)
    expect(page.locator("#status-title")).to_have_text("The sale opens soon")
    no_horizontal_scroll(page)
    screenshot(page, "presale-invalid")

    # The right code, typed loosely: the buyer moves to the presale line.
    field.fill(code.lower().replace("-", " "))
    join.click()
    expect(page.locator("#presale-ok")).to_be_visible(timeout=10_000)
    expect(error).to_be_hidden()
    expect(page.locator("#presale-form")).to_be_hidden()
    expect(page.locator("#status-title")).to_have_text(
        re.compile("^(The presale opens soon|You're in the presale line|It's your turn)$")
    )
    screenshot(page, "presale-line")

    # Admitted in the presale, well before the general opening, and holding.
    expect(page.locator("#status-title")).to_have_text("It's your turn", timeout=20_000)
    page.get_by_label("Quantity for General Admission").select_option("2")
    page.get_by_role("button", name="Hold tickets").click()
    expect(page.get_by_role("heading", name="Your tickets are held")).to_be_focused()
    expect(page.locator("#hold-amount")).to_have_text("$90.00")
    no_horizontal_scroll(page)
    screenshot(page, "presale-held")
    stats = httpx.get(f"{server}/api/events/{event_id}/stats", headers=ADMIN).json()
    assert stats["queue"]["admitted"] == 1
    event = httpx.get(f"{server}/api/events/{event_id}").json()
    assert event["onsale"]["presale_seed"] and event["onsale"]["shuffle_seed"] is None
    page.context.close()


def fits(page: Page, selector: str) -> bool:
    """Whether everything in ``selector`` lies within the page's width (no sideways scroll)."""
    return bool(
        page.evaluate(
            """s => [...document.querySelectorAll(s + ", " + s + " *")].every(
                e => e.getBoundingClientRect().right <= document.documentElement.clientWidth)""",
            selector,
        )
    )


def sign_in(page: Page, server: str, email: str, password: str, target: str) -> None:
    page.goto(f"{server}{target}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}{target}")
    expect(page.locator("#who")).to_have_text(email)


def test_an_organizer_makes_access_codes_on_the_console(server: str, browser: Browser) -> None:
    email, password = add_user(server, "organizer")
    onsale = {"opens_at": iso(7200), "admit_per_minute": 600}
    organizer = signed_in(server, email, password)
    try:
        r = organizer.post("/api/events", json=event_body(onsale=onsale))
    finally:
        organizer.close()
    assert r.status_code == 201, r.text
    event_id = r.json()["id"]
    target = f"/organizer/events/{event_id}"
    page = new_page(browser, viewport={"width": 1366, "height": 900})
    sign_in(page, server, email, password, target)
    section = page.locator("#access")
    expect(section.get_by_role("heading", name="Presale and access codes")).to_be_visible()
    expect(page.locator("#presale-status")).to_have_text(re.compile("No presale is scheduled"))
    expect(page.locator("#access-total")).to_have_text("No access codes yet.")

    # The presale's opening, in the page's local time (UTC here).
    section.get_by_label("Presale opens").fill(iso(3600)[:16])
    section.get_by_role("button", name="Save presale").click()
    expect(page.locator("#presale-status")).to_have_text(re.compile("^The presale opens "))
    r = httpx.get(f"{server}/api/events/{event_id}")
    assert r.json()["onsale"]["presale_opens_at"] == iso(3600)[:16] + ":00Z"

    # Bad input is said at its field; nothing is made.
    section.get_by_label("How many codes").fill("0")
    section.get_by_role("button", name="Generate codes").click()
    expect(page.locator("#a-count-error")).to_have_text("A whole number from 1 to 5,000.")
    expect(section.get_by_label("How many codes")).to_be_focused()

    section.get_by_label("How many codes").fill("3")
    section.get_by_label("Buyers per code").fill("2")
    section.get_by_role("checkbox", name="VIP").check()
    section.get_by_role("button", name="Generate codes").click()
    expect(section.get_by_role("heading", name="New codes: copy them now")).to_be_focused()
    codes = page.locator("#access-codes").input_value().split()
    assert len(codes) == 3 and all(
        re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}", c) for c in codes
    )
    with page.expect_download() as download:
        section.get_by_role("link", name="Download as text").click()
    assert Path(download.value.path()).read_text().split() == codes
    expect(page.locator("#access-total")).to_have_text("3 codes, used 0 times.")
    row = page.locator("#access-body tr")
    expect(row.locator("td")).to_have_text(["3", "2", "VIP", "0", "0"])
    no_horizontal_scroll(page)
    console_screenshot(page, "access-codes-1366")

    # A buyer uses one: the counts say so (the codes themselves are never shown again).
    join = f"{server}/api/events/{event_id}/queue"
    assert httpx.post(join, json={"access_code": codes[0]}).status_code == 200
    page.reload()
    expect(page.locator("#access-total")).to_have_text("3 codes, used 1 time.")
    expect(page.locator("#access-new")).to_be_hidden()
    expect(row.locator("td")).to_have_text(["3", "2", "VIP", "1", "1"])
    assert codes[0] not in page.content()
    # Narrower screens, each loaded afresh (signed in already): the section fits.
    state = page.context.storage_state()
    for width in (820, 390):
        narrow = browser.new_context(
            locale="en-US", timezone_id="UTC", storage_state=state,
            viewport={"width": width, "height": 900},
        ).new_page()  # fmt: skip
        narrow.goto(f"{server}{target}")
        expect(narrow.locator("#access-total")).to_have_text("3 codes, used 1 time.")
        assert fits(narrow, "#access"), width
        console_screenshot(narrow, f"access-codes-{width}")
        narrow.context.close()
    page.context.close()


def test_the_console_says_where_a_presale_stands(server: str, browser: Browser) -> None:
    """The events list and the dashboard tell a presale under way from a plain 'Scheduled';
    an event on sale without a presale says codes are not needed (not 'schedule one')."""
    email, password = add_user(server, "organizer")
    organizer = signed_in(server, email, password)
    try:
        r = organizer.post(
            "/api/events", json=event_body(onsale={"opens_at": iso(7200), "admit_per_minute": 600})
        )
        assert r.status_code == 201, r.text
        presale_id = r.json()["id"]
        r = organizer.patch(f"/api/events/{presale_id}/onsale", json={"presale_opens_at": iso(2)})
        assert r.status_code == 200, r.text
        r = organizer.post(
            "/api/events", json=event_body(onsale={"opens_at": iso(-60), "admit_per_minute": 600})
        )
        assert r.status_code == 201, r.text
        open_id = r.json()["id"]
    finally:
        organizer.close()
    page = new_page(browser, viewport={"width": 820, "height": 900})
    sign_in(page, server, email, password, "/organizer")
    row = page.locator("#events-body tr").filter(has=page.locator(f"a[href$='{presale_id}']"))
    # The presale opens two seconds after it was set: the list is read again until it has.
    deadline = time.monotonic() + 15
    while row.locator(".badge").inner_text() != "Presale":
        assert time.monotonic() < deadline, row.locator(".badge").inner_text()
        page.wait_for_timeout(500)
        page.reload()
    buyer = new_page(browser, viewport=PHONE)
    buyer.goto(f"{server}/e/{presale_id}")
    expect(buyer.locator(".presale-info")).to_contain_text(
        "The presale is on: access code holders are being let in now,"
    )
    buyer.context.close()
    page.goto(f"{server}/organizer/events/{presale_id}")
    expect(page.locator("#sale-state")).to_have_text(
        re.compile("^Presale: access code holders are being let in")
    )
    page.goto(f"{server}/organizer/events/{open_id}")
    expect(page.locator("#presale-status")).to_have_text(
        "The general sale has opened: everyone is let in, access codes are not needed."
    )
    page.context.close()
