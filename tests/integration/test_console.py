"""The organizer's console in a real browser: headless Chromium against a real ``onsale serve``.

An organizer signs in, creates an event with two tiers and its schedule, opens the sale,
watches a purchase made through the API arrive on the live dashboard, pauses the sale
(the buyer's page says so) and signs out. Set ONSALE_TEST_SCREENSHOTS=docs to refresh the
console's screenshots in docs/.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.api_support import event as event_body
from tests.integration.page_support import (
    ADMIN,
    add_user,
    buy,
    console_screenshot,
    create_event,
    new_page,
    no_horizontal_scroll,
    signed_in,
)

LAPTOP = {"width": 1366, "height": 850}
TABLET = {"width": 820, "height": 1180}
LOGIN = re.compile(r"/login\?next=(/|%2F)organizer$")


@pytest.fixture(scope="module")
def server(paying_server: str) -> str:
    return paying_server


def local(moment: datetime) -> str:
    """What a datetime-local field takes (the page's clock is UTC here)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def sign_in(page: Page, server: str, email: str, password: str) -> None:
    page.goto(f"{server}/organizer")
    expect(page).to_have_url(LOGIN)
    expect(page.get_by_label("Email")).to_be_focused()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}/organizer")
    expect(page.locator("#who")).to_have_text(email)


def fill_tier(page: Page, n: int, name: str, price: str, capacity: str, limit: str = "") -> None:
    row = page.locator(".tier-row").nth(n)
    row.get_by_label("Name").fill(name)
    row.get_by_label("Price").fill(price)
    row.get_by_label("Capacity").fill(capacity)
    row.get_by_label("Per order").fill(limit)


def test_an_organizer_runs_a_sale(server: str, stripe_url: str, browser: Browser) -> None:
    email, password = add_user(server, "organizer")
    page = new_page(browser, viewport=LAPTOP)

    # Signing in: a wrong password is said so, and the password field is ready again.
    page.goto(f"{server}/organizer")
    expect(page).to_have_url(LOGIN)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile("don't match"))
    expect(page.get_by_label("Password")).to_be_focused()
    sign_in(page, server, email, password)
    expect(page.locator("#events-status")).to_have_text(re.compile("^No events yet"))
    expect(page.locator("#nav-admin")).to_be_hidden()  # an organizer is not an admin

    # A new event with two tiers and its on-sale schedule; errors point at their field.
    page.get_by_role("link", name="New event").click()
    expect(page.get_by_label("Title")).to_be_focused()
    page.get_by_role("button", name="Create event").click()
    expect(page.locator("#f-title-error")).to_have_text("Give the event a title.")
    expect(page.get_by_label("Title")).to_be_focused()
    starts = datetime.now(UTC) + timedelta(days=30)
    page.get_by_label("Title").fill("Console Night")
    page.get_by_label("Starts").fill(local(starts))
    page.get_by_label("Venue").fill("Grieghallen")
    page.get_by_label(re.compile("^City")).fill("Bergen")
    page.get_by_label("Country code").fill("no")
    fill_tier(page, 0, "General Admission", "45.00", "100", "6")
    page.get_by_role("button", name="Add a tier").click()
    expect(page.locator(".tier-row").nth(1).get_by_label("Name")).to_be_focused()
    fill_tier(page, 1, "VIP", "150", "20", "2")
    page.get_by_label("Opens").fill(local(datetime.now(UTC) + timedelta(days=1)))
    page.get_by_label("Admissions per minute").fill("60000")
    page.get_by_label("Hold length in seconds").fill("120")
    # What only the API knows is shown from its {"code", "detail"}, at its field.
    page.get_by_label("Currency").fill("ZZZ")
    page.get_by_role("button", name="Create event").click()
    expect(page.get_by_role("alert")).to_contain_text("ISO 4217")
    expect(page.get_by_label("Currency")).to_be_focused()
    expect(page.get_by_label("Currency")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Currency").fill("USD")
    no_horizontal_scroll(page)
    console_screenshot(page, "new-event-laptop")
    page.get_by_role("button", name="Create event").click()

    # The live dashboard: scheduled, then opened now.
    expect(page).to_have_url(re.compile(r"/organizer/events/[0-9a-f-]{36}$"))
    event_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", level=1)).to_have_text("Console Night")
    state = page.locator("#sale-state")
    expect(state).to_have_text(re.compile("^Scheduled"))
    expect(page.locator("#live-state")).to_have_text("Live")
    expect(page.locator("#tier-body tr")).to_have_count(2)
    page.get_by_role("button", name="Open now").click()
    expect(state).to_have_text(re.compile("^On sale since"))
    expect(page.get_by_role("button", name="Pause admissions")).to_be_focused()

    # A purchase through the API arrives on the dashboard within seconds.
    event = httpx.get(f"{server}/api/events/{event_id}").json()
    assert [t["name"] for t in event["tiers"]] == ["General Admission", "VIP"]
    assert event["venue"] == {"name": "Grieghallen", "city": "Bergen", "country": "NO"}
    buy(server, stripe_url, event_id, event["tiers"][0]["id"], 2)
    ga = page.locator("#tier-body tr").first
    expect(ga.locator("td").nth(0)).to_have_text("2")  # sold
    expect(ga.locator("td").nth(2)).to_have_text("98")  # available
    expect(page.locator("#m-revenue")).to_have_text("$90.00")
    expect(page.locator("#m-admitted")).to_have_text("1")
    expect(page.locator("#m-velocity")).to_have_text(re.compile(r"^\d"), timeout=15_000)
    page.wait_for_timeout(2_000)  # a few more points on the charts
    no_horizontal_scroll(page)
    console_screenshot(page, "dashboard-laptop")
    page.set_viewport_size(TABLET)
    no_horizontal_scroll(page)
    console_screenshot(page, "dashboard-tablet")
    page.set_viewport_size(LAPTOP)

    # Pausing asks first; keeping it as it is changes nothing.
    page.get_by_role("button", name="Pause admissions").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep it as it is")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Pause admissions")).to_be_focused()
    expect(state).to_have_text(re.compile("^On sale since"))
    page.get_by_role("button", name="Pause admissions").click()
    dialog.get_by_role("button", name="Pause", exact=True).click()
    expect(state).to_have_text(re.compile("^Paused"))
    expect(page.get_by_role("button", name="Resume admissions")).to_be_focused()
    paused = httpx.get(f"{server}/api/events/{event_id}").json()["onsale"]["paused"]
    assert paused is True

    # The buyer's page says the line is not moving because admissions are paused.
    buyer = new_page(browser)
    buyer.goto(f"{server}/e/{event_id}")
    expect(buyer.locator("#status-title")).to_have_text("You're in line")
    expect(buyer.locator("#eta")).to_contain_text("admissions are paused")
    buyer.context.close()

    # Fewer tickets than are sold: the API refuses, and the form says so at that tier.
    page.get_by_role("link", name="Edit event").click()
    capacity = page.locator(".tier-row").first.get_by_label("Capacity")
    expect(capacity).to_have_value("100")
    expect(page.locator(".tier-row").first.get_by_label("Price")).to_be_disabled()
    capacity.fill("1")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(capacity).to_be_focused()
    expect(capacity).to_have_attribute("aria-invalid", "true")

    page.get_by_role("link", name="My events", exact=True).click()
    row = page.locator("#events-body tr")
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name="Console Night", exact=True)).to_be_visible()
    expect(row.locator(".badge")).to_have_text("Paused")
    console_screenshot(page, "events-laptop")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server}/login")
    page.goto(f"{server}/organizer")
    expect(page).to_have_url(LOGIN)
    page.context.close()


def test_an_admin_manages_users_and_sees_every_event(server: str, browser: Browser) -> None:
    created = create_event(server, title="Someone Else's Show")
    admin_email, admin_password = add_user(server, "admin")
    staff_email, staff_password = add_user(server, "staff")
    door = new_page(browser, viewport=TABLET)
    sign_in(door, server, staff_email, staff_password)
    expect(door.get_by_role("alert")).to_contain_text("signed in as staff")
    expect(door.get_by_role("link", name="New event")).to_be_hidden()
    page = new_page(browser, viewport=TABLET)
    sign_in(page, server, admin_email, admin_password)
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(f"{server}/admin")
    # Every event, whoever owns it.
    expect(page.get_by_role("link", name="Someone Else's Show").first).to_be_visible()
    assert created["id"]

    # A new organizer; a password too short is said so at its field.
    new_email = f"new-{created['id'][:8]}@example.com"
    page.get_by_label("Email").fill(new_email)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#u-password-error")).to_have_text("At least 8 characters.")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#user-status")).to_have_text(f"Added {new_email}.")
    expect(page.get_by_role("row", name=re.compile(re.escape(new_email)))).to_be_visible()

    # The staff member becomes an organizer, then is disabled (after a confirmation).
    page.get_by_label(f"Role of {staff_email}").select_option("organizer")
    expect(page.locator("#user-status")).to_have_text(f"{staff_email} is now an organizer.")
    page.get_by_role("button", name=f"Disable {staff_email}").click()
    page.get_by_role("dialog").get_by_role("button", name="Disable").click()
    expect(page.get_by_role("button", name=f"Enable {staff_email}")).to_be_focused()
    users = httpx.get(f"{server}/api/users", headers=ADMIN).json()["items"]
    changed = next(u for u in users if u["email"] == staff_email)
    assert (changed["role"], changed["disabled"]) == ("organizer", True)
    no_horizontal_scroll(page)
    console_screenshot(page, "admin-tablet")
    page.context.close()

    # Disabled, the staff member's open console is sent to sign in again.
    door.reload()
    expect(door).to_have_url(LOGIN)
    door.context.close()


def test_an_organizer_edits_an_event_and_only_their_own(server: str, browser: Browser) -> None:
    email, password = add_user(server, "organizer")
    api = signed_in(server, email, password)
    r = api.post("/api/events", json=event_body(title="Draft Night"))
    api.close()
    assert r.status_code == 201, r.text
    event_id = r.json()["id"]
    page = new_page(browser, viewport=TABLET)
    sign_in(page, server, email, password)
    page.get_by_role("link", name="Edit Draft Night").click()
    expect(page.get_by_label("Title")).to_have_value("Draft Night")
    expect(page.locator(".tier-row")).to_have_count(2)
    ga = page.locator(".tier-row").first
    expect(ga.get_by_label("Price")).to_have_value("45.00")
    expect(page.get_by_label("Currency")).to_be_disabled()
    expect(page.get_by_label("Opens")).to_be_enabled()  # the sale has not opened yet
    page.get_by_label("Title").fill("Final Night")
    ga.get_by_label("Capacity").fill("4000")
    page.get_by_role("button", name="Add a tier").click()
    fill_tier(page, 2, "Balcony", "30", "300")
    no_horizontal_scroll(page)
    # "Per order (optional)" and "Max active shoppers (optional)" wrap at this width: the
    # inputs of a row still line up.
    rows = [
        ga.locator(".tier-grid input").all(),
        [page.locator(f"#f-{n}") for n in ("rate", "max-active", "hold")],
    ]
    for inputs in rows:
        tops = {round(box["y"]) for box in (i.bounding_box() for i in inputs) if box}
        assert len(tops) == 1, tops
    console_screenshot(page, "edit-event-tablet")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{server}/organizer/events/{event_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Final Night")
    expect(page.locator("#tier-body tr")).to_have_count(3)
    saved = httpx.get(f"{server}/api/events/{event_id}").json()
    assert [(t["name"], t["capacity"]) for t in saved["tiers"]] == [
        ("General Admission", 4000),
        ("VIP", 200),
        ("Balcony", 300),
    ]
    page.context.close()

    # Another organizer's console does not show it, and its dashboard says it is not there.
    other = new_page(browser, viewport=LAPTOP)
    sign_in(other, server, *add_user(server, "organizer"))
    expect(other.locator("#events-status")).to_have_text(re.compile("^No events yet"))
    other.goto(f"{server}/organizer/events/{event_id}")
    expect(other.get_by_role("alert")).to_have_text("We can't find that event.")
    other.context.close()


@pytest.mark.parametrize(
    "target", ["/\t/evil.example/", "/\n/evil.example/", "//evil.example/", "/\\evil.example/"]
)
def test_sign_in_never_sends_a_person_to_another_site(
    server: str, browser: Browser, target: str
) -> None:
    """``next`` is a path on this site: a browser drops tabs and line breaks from a URL, so
    ``/<tab>/evil.example`` would be ``//evil.example``, another site; it goes to /organizer."""
    email, password = add_user(server, "organizer")
    page = new_page(browser, viewport=LAPTOP)
    page.goto(f"{server}/login?next={quote(target, safe='')}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}/organizer")
    # Signed in already: the login page sends the person on at once, just as safely.
    page.goto(f"{server}/login?next={quote(target, safe='')}")
    expect(page).to_have_url(f"{server}/organizer")
    page.goto(f"{server}/login?next={quote('/organizer/events/new?x=1#top', safe='')}")
    expect(page).to_have_url(f"{server}/organizer/events/new?x=1#top")
    page.close()
