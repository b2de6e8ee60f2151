"""The report page and the admin's platform report in a real browser (headless Chromium
against a real ``onsale serve``): an organizer reads their event's report after a launch of
a few thousand orders, narrows the period, downloads both exports; an admin reads the
platform report. At phone, tablet and laptop widths, nothing scrolls sideways. Set
ONSALE_TEST_SCREENSHOTS=docs to refresh docs/console-report-*.png.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from onsale.bench import reports as bench
from onsale.db import connect, create_pool
from onsale.events import catalog
from onsale.reports.exports import ATTENDEE_HEADER, ORDER_HEADER
from tests.integration.api_support import event as event_body
from tests.integration.page_support import (
    ADMIN,
    PHONE,
    add_user,
    console_screenshot,
    new_page,
    no_horizontal_scroll,
    signed_in,
)

LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="module")
def server(paying_server: str) -> str:
    return paying_server


def launched(database_url: str, event_id: str) -> None:
    """A finished launch: 2,000 orders, 6,000 tickets over three hours, a third checked in,
    and the funnel as the committer would have recorded it."""

    async def run() -> None:
        pool = await create_pool(database_url, min_size=1, max_size=2)
        try:
            event = await catalog.get(pool, event_id)
        finally:
            await pool.close()
        conn = await connect(database_url)
        try:
            await bench.load(conn, event, 2_000, 6_000, seed=7)
            await conn.execute(
                """INSERT INTO report_funnel (event_id, minute, joined, admitted, held,
                                              checkouts, paid)
                   VALUES ($1, date_bin('1 minute', now(), TIMESTAMPTZ '2000-01-01 00:00Z'),
                           9400, 4100, 2600, 2250, 2000)""",
                event.id,
            )
        finally:
            await conn.close()

    # Playwright's sync API runs an event loop in this thread: the load runs in another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(run())).result()


def sign_in(page: Page, server: str, email: str, password: str, target: str) -> None:
    page.goto(f"{server}{target}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}{target}")


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def test_an_organizer_reads_the_report_and_exports(
    server: str, browser: Browser, database_url: str
) -> None:
    email, password = add_user(server, "organizer")
    owner = signed_in(server, email, password)
    tiers = [{"name": "Floor", "price": 8900, "capacity": 5000},
             {"name": "Balcony", "price": 5900, "capacity": 5000},
             {"name": "VIP", "price": 19900, "capacity": 500}]  # fmt: skip
    r = owner.post("/api/events", json=event_body(title="Night Owls: Live", tiers=tiers))
    assert r.status_code == 201, r.text
    event: dict[str, Any] = r.json()
    launched(database_url, event["id"])
    report = owner.get(f"/api/events/{event['id']}/report").json()
    owner.close()
    target = f"/organizer/events/{event['id']}/report"

    page = new_page(browser, viewport=LAPTOP, accept_downloads=True)
    sign_in(page, server, email, password, target)
    expect(page.get_by_role("heading", name="Report: Night Owls: Live")).to_be_visible()
    expect(page.locator("#s-tickets_sold")).to_have_text(f"{report['sales']['tickets_sold']:,}")
    expect(page.locator("#s-orders")).to_have_text(f"{report['sales']['orders']:,}")
    expect(page.get_by_role("row", name=re.compile(r"^Floor"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^LAUNCH7"))).to_be_visible()
    expect(page.locator("#funnel-list")).to_contain_text("9,400")
    expect(page.locator("#checkin-summary")).to_contain_text("checked in")
    for chart in ("velocity", "cumulative", "funnel", "checkins"):
        box = page.locator(f"#c-{chart}").bounding_box()
        assert box and box["height"] > 100 and box["width"] > 200, chart
    page.wait_for_timeout(200)  # the charts' first frame
    no_horizontal_scroll(page)
    console_screenshot(page, "report-laptop")

    # A period that ends before it starts is refused at its field; nothing is fetched.
    page.get_by_label("From").fill("2030-01-02T10:00")
    page.get_by_label("To").fill("2030-01-01T10:00")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#r-to-error")).to_have_text("The end must be after the start.")
    expect(page.get_by_label("To")).to_be_focused()
    # A period with no sales in it: zero, and the exports follow it.
    page.get_by_label("To").fill("2030-01-03T10:00")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#s-orders")).to_have_text("0")
    expect(page.locator("#velocity-empty")).to_be_visible()
    expect(page.locator("#cumulative-empty")).to_be_visible()
    expect(page.locator("#c-cumulative")).to_be_hidden()
    href = page.get_by_role("link", name="Download orders (CSV)").get_attribute("href") or ""
    assert "from=2030-01-02T10" in href and "to=2030-01-03T10" in href
    page.get_by_role("button", name="Whole sale").click()
    expect(page.locator("#s-orders")).to_have_text(f"{report['sales']['orders']:,}")

    with page.expect_download() as got:
        page.get_by_role("link", name="Download attendees (CSV)").click()
    attendees = rows_of(Path(got.value.path()))
    assert attendees[0] == list(ATTENDEE_HEADER)
    assert len(attendees) - 1 == report["sales"]["tickets_sold"]
    with page.expect_download() as got:
        page.get_by_role("link", name="Download orders (CSV)").click()
    orders = rows_of(Path(got.value.path()))
    assert orders[0] == list(ORDER_HEADER) and len(orders) - 1 == 2_000
    page.context.close()

    for name, viewport in (("tablet", TABLET), ("phone", PHONE)):
        small = new_page(browser, viewport=viewport)
        sign_in(small, server, email, password, target)
        expect(small.locator("#s-orders")).to_have_text(f"{report['sales']['orders']:,}")
        small.wait_for_timeout(200)
        no_horizontal_scroll(small)
        console_screenshot(small, f"report-{name}")
        small.context.close()

    # Someone else's organizer: no such event, said as much.
    other_email, other_password = add_user(server, "organizer")
    other = new_page(browser, viewport=TABLET)
    sign_in(other, server, other_email, other_password, target)
    expect(other.get_by_role("alert")).to_contain_text("no such event")
    other.context.close()


def test_an_admin_reads_the_platform_report(
    server: str, browser: Browser, database_url: str
) -> None:
    email, password = add_user(server, "admin")
    # Sales in two currencies at least: the volume is shown per currency, never added up.
    for currency in ("EUR", "GBP"):
        body = event_body(title=f"Night Owls in {currency}", currency=currency)
        r = httpx.post(f"{server}/api/events", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        launched(database_url, r.json()["id"])
    platform = httpx.get(f"{server}/api/admin/report", headers=ADMIN).json()
    assert {"EUR", "GBP"} <= set(platform["gmv_by_currency"])
    page = new_page(browser, viewport=LAPTOP)
    sign_in(page, server, email, password, "/admin")
    expect(page.get_by_role("heading", name="Platform report")).to_be_visible()
    expect(page.locator("#p-orders")).to_have_text(f"{platform['orders']:,}")
    expect(page.locator("#p-events")).not_to_have_text("\u2013")
    # Gross volume in money, per currency, never added across currencies.
    volumes = platform["gmv_by_currency"]
    expect(page.locator("#p-gmv")).not_to_have_text("\u2013")
    unit = page.locator("#p-gmv-unit")
    if len(volumes) > 1:
        others = len(volumes) - 2
        expect(unit).to_have_text(re.compile(rf"^\+ .+( · \+ .+){{{others}}}$"))
    else:
        expect(unit).to_have_text("confirmed sales")
    if platform["top_events"]:
        first = platform["top_events"][0]
        link = page.get_by_role("link", name=first["title"]).first
        expect(link).to_have_attribute("href", f"/organizer/events/{first['event_id']}/report")
    no_horizontal_scroll(page)
    console_screenshot(page, "report-admin-laptop")
    page.context.close()
    for name, viewport in (("tablet", TABLET), ("phone", PHONE)):
        small = new_page(browser, viewport=viewport)
        sign_in(small, server, email, password, "/admin")
        expect(small.locator("#p-orders")).to_have_text(f"{platform['orders']:,}")
        no_horizontal_scroll(small)
        console_screenshot(small, f"report-admin-{name}")
        small.context.close()
