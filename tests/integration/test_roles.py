"""Every organizer route, walked with every kind of caller.

The routes come from the app's own route table: a route added later is walked too, and one
under /api/ that is neither public nor guarded by one of the guards below fails the test.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg

from onsale.gateway.auth import (
    account_guard,
    admin_only_guard,
    checkin_guard,
    event_guard,
    organizer_guard,
)
from tests.integration.accounts_support import Client, login, make_user
from tests.integration.api_support import bearer, event

#: Routes anyone may call: buyers', the public catalog, Stripe's webhook, signing in.
PUBLIC = {
    ("GET", "/api/events"),
    ("GET", "/api/events/{event_id:str}"),
    ("POST", "/api/events/{event_id:str}/queue"),
    ("GET", "/api/events/{event_id:str}/queue"),
    ("DELETE", "/api/events/{event_id:str}/queue"),
    ("POST", "/api/events/{event_id:str}/holds"),
    ("DELETE", "/api/holds/{hold_id:str}"),
    ("POST", "/api/holds/{hold_id:str}/checkout"),
    ("POST", "/api/webhooks/stripe"),
    ("GET", "/api/orders/{order_id:str}"),
    ("GET", "/api/orders/{order_id:str}/tickets.pdf"),
    ("POST", "/api/orders/lookup"),
    ("GET", "/api/tickets/{ticket_id:str}/qr.png"),
    ("GET", "/api/tickets/{ticket_id:str}/qr.svg"),
    ("POST", "/api/auth/login"),
    # The bot tax's proof-of-work challenge, for the buyer's page before it joins.
    ("GET", "/api/events/{event_id:str}/challenge"),
}
KINDS = {
    organizer_guard: "organizer",
    event_guard: "event",
    checkin_guard: "checkin",
    admin_only_guard: "admin_only",
    account_guard: "account",
}
CALLERS = ("anonymous", "staff", "staff_elsewhere", "other", "owner", "admin", "admin_token")
PASS = "pass"
#: What each caller gets from each guard: a status, or PASS (the guard let it through).
EXPECT: dict[str, dict[str, Any]] = {
    "organizer": {"staff": 403, "staff_elsewhere": 403, "other": PASS},
    "event": {"staff": 403, "staff_elsewhere": 403, "other": 404},
    "checkin": {"staff": PASS, "staff_elsewhere": 403, "other": 404},
    "admin_only": {"staff": 403, "staff_elsewhere": 403, "other": 403, "owner": 403},
    "account": {"staff": PASS, "staff_elsewhere": PASS, "other": PASS},
}
CODES = {401: ("unauthorized", "login_required"), 403: ("forbidden",), 404: ("event_not_found",)}
#: Not called by those the guard lets through: a stream that never ends, and signing out
#: (both tested on their own).
NOT_PASSED = re.compile(r"/live$|^/api/auth/logout$")


def _routes(client: Client) -> list[tuple[str, str, str]]:
    """(method, path template, guard kind) of every guarded /api route."""
    found = []
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method == "OPTIONS" or not route.path.startswith("/api/"):
                    continue
                if (method, route.path) in PUBLIC:
                    continue
                kinds = [KINDS[g] for g in handler.guards or [] if g in KINDS]
                assert kinds, f"{method} {route.path} is neither public nor guarded"
                found.append((method, route.path, kinds[0]))
    # Cancelling last: the other routes see the event as it was.
    return sorted(found, key=lambda r: (r[1].endswith("/cancel"), r[1], r[0]))


def _path(template: str, event_id: str) -> str:
    def fill(match: re.Match[str]) -> str:
        return event_id if match.group(1) == "event_id" else str(uuid.uuid4())

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, template)


async def _callers(
    client: Client, pool: asyncpg.Pool, admin: dict[str, str]
) -> tuple[dict[str, dict[str, str]], str]:
    owner = await login(client, (await make_user(pool, "organizer"))["email"])
    r = await client.post("/api/events", json=event(), headers=owner)
    assert r.status_code == 201, r.text
    event_id = r.json()["id"]
    staff = await make_user(pool, "staff")
    r = await client.post(
        f"/api/events/{event_id}/staff", json={"email": staff["email"]}, headers=owner
    )
    assert r.status_code == 204, r.text
    admin_user = await login(client, (await make_user(pool, "admin"))["email"])
    token = await client.post("/api/tokens", json={"name": "roles"}, headers=admin_user)
    callers = {
        "anonymous": {},
        "staff": await login(client, staff["email"]),
        "staff_elsewhere": await login(client, (await make_user(pool, "staff"))["email"]),
        "other": await login(client, (await make_user(pool, "organizer"))["email"]),
        "owner": owner,
        "admin": bearer(token.json()["token"]),  # an admin user by personal token
        "admin_token": admin,
    }
    return callers, event_id


async def test_every_organizer_route_with_every_role(
    client: Client, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    callers, event_id = await _callers(client, pool, admin)
    routes = _routes(client)
    assert {("POST", "/api/events"), ("GET", "/api/events/{event_id:str}/stats")} <= {
        (m, p) for m, p, _ in routes
    }
    wrong = []
    for method, template, kind in routes:
        path = _path(template, event_id)
        for who in CALLERS:
            expected = 401 if who == "anonymous" else EXPECT[kind].get(who, PASS)
            if expected == PASS and NOT_PASSED.search(template):
                continue
            body = {"event_id": event_id} if method in ("POST", "PATCH", "PUT") else None
            r = await client.request(method, path, json=body, headers=callers[who])
            answer = (
                r.json()
                if r.headers.get("content-type", "").startswith("application/json") and r.content
                else None
            )
            code = answer.get("code") if isinstance(answer, dict) else None  # lists have none
            if expected == PASS:
                if kind == "account" and who == "admin_token":
                    ok = r.status_code != 401  # let through; it has no account to show
                elif method == "GET":
                    ok = r.status_code == 200  # reads need no body: the whole answer
                else:  # a body made to be refused: anything but a refusal of the caller
                    ok = r.status_code not in (401, 403) and code != "event_not_found"
            else:
                ok = r.status_code == expected and code in CODES[expected]
            if not ok:
                wrong.append(f"{who} {method} {template}: {r.status_code} {code}, want {expected}")
    assert not wrong, "\n".join(wrong)
