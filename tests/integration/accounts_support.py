"""What the accounts tests share: users made quickly, and signing in as them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale.accounts.sessions import COOKIE

Client = AsyncTestClient[Litestar]

PASSWORD = "correct horse battery staple"
# Argon2id still, at the lowest cost: the suite makes many users, and the cost of the real
# parameters is the product's (POST /api/users is tested with them).
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_CHEAP_HASH = _CHEAP.hash(PASSWORD)


async def make_user(pool: asyncpg.Pool, role: str, *, disabled: bool = False) -> dict[str, str]:
    """A user (``id``, ``email``, ``role``) whose password is :data:`PASSWORD`."""
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    user_id = await pool.fetchval(
        """INSERT INTO users (email, role, password_hash, disabled)
           VALUES ($1, $2::user_role, $3, $4) RETURNING id::text""",
        email,
        role,
        _CHEAP_HASH,
        disabled,
    )
    return {"id": user_id, "email": email, "role": role}


def session_of(response: Any) -> str:
    """The session id a login answer sets (read from Set-Cookie: the cookie is Secure, so
    the plain-HTTP test client would not keep it)."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE:
            return str(rest.split(";", 1)[0])
    raise AssertionError(f"no {COOKIE} cookie in {response.headers}")


async def login(client: Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Headers that act as the signed-in user: the session cookie and its CSRF token. The
    client's own cookie jar is left empty, so other tests stay anonymous."""
    r = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Cookie": f"{COOKIE}={session_of(r)}", "X-CSRF-Token": r.json()["csrf_token"]}


async def signed_in(client: Client, pool: asyncpg.Pool, role: str) -> dict[str, str]:
    """A new user of ``role``, signed in (``id`` and ``email`` in the headers' extras)."""
    user = await make_user(pool, role)
    return await login(client, user["email"])
