"""Accounts over HTTP: signing in and out, throttling, CSRF, personal API tokens, users."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient

from onsale.accounts.sessions import COOKIE
from onsale.config import Settings
from onsale.gateway.app import create_app
from tests.integration.accounts_support import (
    PASSWORD,
    Client,
    login,
    make_user,
    session_of,
)
from tests.integration.api_support import bearer, event


async def test_login_me_logout(client: Client, pool: asyncpg.Pool) -> None:
    user = await make_user(pool, "organizer")
    r = await client.post(
        "/api/auth/login", json={"email": user["email"].upper(), "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    client.cookies.clear()
    body = r.json()
    assert body["user"] == {"id": user["id"], "email": user["email"], "role": "organizer"}
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags, cookie
    # Kept until the browser closes; the session's idle timeout is the server's.
    assert not any(flag.startswith(("max-age", "expires")) for flag in flags), cookie

    headers = {"Cookie": f"{COOKIE}={session_of(r)}"}
    r = await client.get("/api/me", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == body

    r = await client.post("/api/auth/logout", headers=headers)  # a write: needs the token
    assert (r.status_code, r.json()["code"]) == (403, "csrf_failed")
    r = await client.post(
        "/api/auth/logout", headers={**headers, "X-CSRF-Token": body["csrf_token"]}
    )
    assert r.status_code == 204, r.text
    client.cookies.clear()
    r = await client.get("/api/me", headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "login_required")
    r = await client.get("/api/me")
    assert (r.status_code, r.json()["code"]) == (401, "login_required")


async def test_same_answer_for_unknown_email_and_wrong_password(
    client: Client, pool: asyncpg.Pool
) -> None:
    user = await make_user(pool, "organizer")
    disabled = await make_user(pool, "organizer", disabled=True)
    answers = []
    for email, password in (
        ("nobody-at-all@example.com", PASSWORD),
        (user["email"], "wrong password"),
        (disabled["email"], PASSWORD),  # right password, disabled account
    ):
        r = await client.post("/api/auth/login", json={"email": email, "password": password})
        answers.append((r.status_code, r.json(), "set-cookie" in r.headers))
    assert answers[0] == answers[1] == answers[2], answers
    status, body, cookie = answers[0]
    assert (status, body["code"], cookie) == (401, "invalid_credentials", False)


async def test_login_throttled_per_account(client: Client, pool: asyncpg.Pool) -> None:
    user = await make_user(pool, "organizer")
    limit = client.app.state.services.settings.security.login_failures_per_account
    for _ in range(limit):
        r = await client.post("/api/auth/login", json={"email": user["email"], "password": "no"})
        assert r.status_code == 401
    # Now even the right password is refused (else the refusal would tell the password).
    good = {"email": user["email"], "password": PASSWORD}
    r = await client.post("/api/auth/login", json=good)
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 15 * 60
    # Another account from the same client is not affected.
    other = await make_user(pool, "organizer")
    await login(client, other["email"])


async def test_login_throttled_per_client(
    settings: Settings, pool: asyncpg.Pool, redis: Any
) -> None:
    security = msgspec.structs.replace(settings.security, login_failures_per_client=3)
    app = create_app(msgspec.structs.replace(settings, security=security))
    user = await make_user(pool, "organizer")
    async with AsyncTestClient(app=app) as c:
        # The test client's address may have failures from other tests: start clean.
        await redis.delete("onsale:login:client:testclient")
        for i in range(3):
            r = await c.post(
                "/api/auth/login", json={"email": f"guess{i}@example.com", "password": "x"}
            )
            assert r.status_code == 401
        r = await c.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        await redis.delete("onsale:login:client:testclient")


async def test_csrf_on_cookie_writes_only(
    client: Client, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    user = await make_user(pool, "organizer")
    headers = await login(client, user["email"])
    cookie_only = {"Cookie": headers["Cookie"]}
    r = await client.post("/api/events", json=event(), headers=cookie_only)
    assert (r.status_code, r.json()["code"]) == (403, "csrf_failed")
    r = await client.post(
        "/api/events", json=event(), headers={**cookie_only, "X-CSRF-Token": "not-it"}
    )
    assert (r.status_code, r.json()["code"]) == (403, "csrf_failed")
    r = await client.post("/api/events", json=event(), headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    # Reads need no token.
    r = await client.get(f"/api/events/{created['id']}/stats", headers=cookie_only)
    assert r.status_code == 200, r.text
    # A bearer token needs no CSRF token.
    r = await client.post("/api/tokens", json={"name": "script"}, headers=headers)
    token = r.json()["token"]
    path = f"/api/events/{created['id']}/onsale"
    r = await client.patch(path, json={"paused": True}, headers=bearer(token))
    assert r.status_code == 200, r.text
    # The event is the caller's: it is in their list, with the owner set in Postgres.
    owner = await pool.fetchval(
        "SELECT organizer_id::text FROM events WHERE id = $1::uuid", created["id"]
    )
    assert owner == user["id"]
    r = await client.get("/api/events?limit=100", headers=bearer(token))
    assert [e["id"] for e in r.json()["items"]] == [created["id"]]
    # The admin token's events have no owner.
    r = await client.post("/api/events", json=event(), headers=admin)
    owner = await pool.fetchval(
        "SELECT organizer_id FROM events WHERE id = $1::uuid", r.json()["id"]
    )
    assert owner is None


async def test_api_tokens(client: Client, pool: asyncpg.Pool) -> None:
    user = await make_user(pool, "organizer")
    headers = await login(client, user["email"])
    r = await client.post("/api/tokens", json={"name": "ci"}, headers=headers)
    assert r.status_code == 201, r.text
    made = r.json()
    assert set(made) == {"id", "name", "token"}
    # Stored as its hash only.
    stored = await pool.fetchval(
        "SELECT token_hash FROM api_tokens WHERE id = $1::uuid", made["id"]
    )
    assert made["token"].encode() not in bytes(stored)

    r = await client.get("/api/me", headers=bearer(made["token"]))
    assert r.status_code == 200, r.text
    assert (r.json()["user"]["id"], r.json()["csrf_token"]) == (user["id"], None)
    r = await client.post("/api/events", json=event(), headers=bearer(made["token"]))
    assert r.status_code == 201, r.text

    r = await client.get("/api/tokens", headers=headers)
    listed = r.json()["items"]
    assert [(t["id"], t["name"]) for t in listed] == [(made["id"], "ci")]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None

    # Someone else cannot revoke it.
    other = await login(client, (await make_user(pool, "organizer"))["email"])
    r = await client.delete(f"/api/tokens/{made['id']}", headers=other)
    assert r.status_code == 404
    r = await client.delete(f"/api/tokens/{made['id']}", headers=headers)
    assert r.status_code == 204, r.text
    for path in ("/api/me", "/api/tokens"):
        r = await client.get(path, headers=bearer(made["token"]))
        assert (r.status_code, r.json()["code"]) == (401, "login_required"), r.text
    r = await client.post("/api/events", json=event(), headers=bearer(made["token"]))
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")


async def test_disabled_user_is_signed_out(
    client: Client, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    user = await make_user(pool, "organizer")
    headers = await login(client, user["email"])
    token = (await client.post("/api/tokens", json={"name": "t"}, headers=headers)).json()
    r = await client.patch(f"/api/users/{user['id']}", json={"disabled": True}, headers=admin)
    assert (r.status_code, r.json()["disabled"]) == (200, True), r.text
    r = await client.get("/api/me", headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "login_required")
    r = await client.get("/api/me", headers=bearer(token["token"]))
    assert r.status_code == 401
    r = await client.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials")
    r = await client.patch(f"/api/users/{user['id']}", json={"disabled": False}, headers=admin)
    assert r.status_code == 200
    await login(client, user["email"])


async def test_users_by_admins(client: Client, pool: asyncpg.Pool, admin: dict[str, str]) -> None:
    email = "New.Organizer@example.com"
    body: dict[str, Any] = {"email": email, "role": "organizer", "password": "a long passphrase"}
    r = await client.post("/api/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["email"], made["role"], made["disabled"]) == (email, "organizer", False)
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE id = $1::uuid", made["id"])
    assert stored.startswith("$argon2id$") and body["password"] not in stored
    r = await client.post("/api/users", json=body | {"email": email.lower()}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "email_taken")
    for bad in (body | {"role": "root"}, body | {"password": "short"}, body | {"email": "x"}):
        r = await client.post("/api/users", json=bad, headers=admin)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), bad

    headers = await login(client, email, "a long passphrase")
    r = await client.get("/api/users", headers=headers)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.get("/api/users", headers=admin)
    assert made["id"] in [u["id"] for u in r.json()["items"]]
    r = await client.patch(f"/api/users/{made['id']}", json={"role": "staff"}, headers=admin)
    assert r.json()["role"] == "staff"
    r = await client.get("/api/me", headers=headers)
    assert r.json()["user"]["role"] == "staff"  # at once, in the live session


async def test_staff_assignment_and_checkin(
    client: Client, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    owner = await login(client, (await make_user(pool, "organizer"))["email"])
    door = await make_user(pool, "staff")
    door_headers = await login(client, door["email"])
    organizer = await make_user(pool, "organizer")
    r = await client.post("/api/events", json=event(), headers=owner)
    event_id = r.json()["id"]
    manifest = f"/api/events/{event_id}/checkin/manifest"
    scan = {"event_id": event_id, "qr": "ticket:nope"}

    r = await client.get(manifest, headers=door_headers)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.post("/api/checkin", json=scan, headers=door_headers)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")

    path = f"/api/events/{event_id}/staff"
    r = await client.post(path, json={"email": organizer["email"]}, headers=owner)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")  # not staff
    r = await client.post(path, json={"email": "nobody@example.com"}, headers=owner)
    assert (r.status_code, r.json()["code"]) == (404, "user_not_found")
    r = await client.post(path, json={"email": door["email"]}, headers=owner)
    assert r.status_code == 204, r.text
    r = await client.get(path, headers=owner)
    assert [u["id"] for u in r.json()["items"]] == [door["id"]]

    r = await client.get(manifest, headers=door_headers)
    assert r.status_code == 200, r.text
    r = await client.post("/api/checkin", json=scan, headers=door_headers)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_ticket")
    # Staff may check in, nothing more.
    r = await client.get(f"/api/events/{event_id}/stats", headers=door_headers)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")

    r = await client.delete(f"{path}/{door['id']}", headers=owner)
    assert r.status_code == 204, r.text
    r = await client.get(manifest, headers=door_headers)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")


async def test_admin_token_has_no_account(client: Client, admin: dict[str, str]) -> None:
    r = await client.get("/api/me", headers=admin)
    assert r.json()["user"] == {"id": None, "email": None, "role": "admin"}
    r = await client.post("/api/tokens", json={"name": "x"}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
