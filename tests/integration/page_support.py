"""What the browser tests of the buyer's page share: the system Chromium, a page like a
buyer's, events made over a real server's API, and looks at what the page shows and keeps."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ADMIN_TOKEN
from tests.integration.api_support import event

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
def chromium() -> Iterator[Browser]:
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
    return body


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths}"


def screenshot(page: Page, state: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"onsale-buyer-{state}.png"), full_page=True)


def stored(page: Page, event_id: str) -> dict[str, Any]:
    raw = page.evaluate("key => localStorage.getItem(key)", f"onsale:{event_id}")
    value: dict[str, Any] = json.loads(raw) if raw else {}
    return value
