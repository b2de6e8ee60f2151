"""CONTRACT.md, Accounts and roles: "A request authenticated by the session cookie that
changes anything (POST, PATCH, PUT, DELETE) must carry X-CSRF-Token, else 403 csrf_failed",
walked over every guarded write route of the app's own route table (the promo and access
codes, check-in and its sync, refunds, staff, tokens ... and any route added later)."""

from __future__ import annotations

import re
import uuid

import asyncpg

from onsale.gateway.auth import (
    account_guard,
    admin_only_guard,
    checkin_guard,
    event_guard,
    organizer_guard,
)
from tests.integration.accounts_support import Client, login, make_user
from tests.integration.api_support import event

GUARDS = {account_guard, admin_only_guard, checkin_guard, event_guard, organizer_guard}
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def _writes(client: Client) -> list[tuple[str, str]]:
    found = []
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not set(handler.guards or []) & GUARDS:
                continue
            found += [(m, route.path) for m in sorted(handler.http_methods & WRITES)]
    return found


async def test_every_cookie_write_needs_the_csrf_token(client: Client, pool: asyncpg.Pool) -> None:
    admin = await login(client, (await make_user(pool, "admin"))["email"])
    r = await client.post("/api/events", json=event(), headers=admin)
    assert r.status_code == 201, r.text
    event_id = r.json()["id"]
    writes = _writes(client)
    assert len(writes) >= 15, writes  # the walk is of the whole table, not of nothing
    assert ("POST", "/api/events/{event_id:str}/promo-codes") in writes
    assert ("POST", "/api/events/{event_id:str}/access-codes") in writes
    cookie = {"Cookie": admin["Cookie"]}
    wrong = cookie | {"X-CSRF-Token": "not-" + admin["X-CSRF-Token"]}
    refused = []
    for method, template in writes:
        path = re.sub(
            r"\{(\w+)(?::\w+)?\}",
            lambda m: event_id if m.group(1) == "event_id" else str(uuid.uuid4()),
            template,
        )
        for headers in (cookie, wrong):
            r = await client.request(method, path, headers=headers, json={"event_id": event_id})
            got = (r.status_code, r.json().get("code") if r.content else None)
            if got != (403, "csrf_failed"):
                refused.append(f"{method} {template}: {got}")
    assert not refused, refused
    # Nothing was changed by any of them: the event is as it was made.
    r = await client.get(f"/api/events/{event_id}")
    assert r.json()["status"] != "cancelled" and r.json()["title"] == event()["title"]
    codes = await client.get(f"/api/events/{event_id}/promo-codes", headers=admin)
    assert codes.json() == []
