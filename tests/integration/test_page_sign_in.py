"""CONTRACT.md, Pages: "Pages that need a signed-in person redirect to /login?next=<path>
without a session", for every console page and the door scanner, in process."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.api_support import Client

EVENT = "7d2f3c1e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
PAGES = [
    "/organizer",
    "/organizer/events/new",
    f"/organizer/events/{EVENT}",
    f"/organizer/events/{EVENT}/edit",
    f"/organizer/events/{EVENT}/report",
    f"/organizer/events/{EVENT}/report?from=2026-01-01T00:00Z",
    "/admin",
    "/scan",
]


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_without_a_session_sends_to_sign_in_and_back(
    client: Client, path: str
) -> None:
    r = await client.get(path, follow_redirects=False)
    assert r.status_code == 303, r.text
    where = urlsplit(r.headers["location"])
    assert (where.scheme, where.netloc, where.path) == ("", "", "/login")
    assert parse_qs(where.query)["next"] == [path]
    # Signing in is a page anyone may open.
    assert (await client.get("/login")).status_code == 200
