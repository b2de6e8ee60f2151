"""The presale in a real browser: a buyer enters an access code on the buyer's page, waits
in the presale line, is admitted before the general sale opens, and holds tickets."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from onsale import signing
from tests.conftest import ADMIN_TOKEN
from tests.integration.api_support import iso
from tests.integration.page_support import (
    ADMIN,
    CHROMIUM,
    PHONE,
    chromium,
    create_event,
    new_page,
    no_horizontal_scroll,
    screenshot,
)
from tests.integration.process_support import serving

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)

WIDTHS = (390, 820, 1366)


@pytest.fixture(scope="module")
def server(
    redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with serving(
        tmp_path_factory.mktemp("serve") / "serve.log",
        ONSALE_REDIS_URL=redis_url,
        ONSALE_DATABASE_URL=database_url,
        ONSALE_ADMIN_TOKEN=ADMIN_TOKEN,
        ONSALE_SIGNING_KEY=signing.generate_pem(),
    ) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


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
