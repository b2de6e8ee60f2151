"""Personal API tokens: shown once, stored as sha256 (32 random bytes need no slow hash),
revocable; ``Authorization: Bearer <token>`` acts as the token's user."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

import asyncpg
import msgspec

from onsale.accounts.models import AccountRejected, AccountRejection, Role, User

#: Tokens start with this, so a leaked one is recognisable (secret scanners, logs).
PREFIX = "onsale_"


class TokenInfo(msgspec.Struct):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewToken(msgspec.Struct):
    id: str
    name: str
    #: The only time the token is shown.
    token: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create(pool: asyncpg.Pool, user_id: str, name: str) -> NewToken:
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = await pool.fetchval(
        "INSERT INTO api_tokens (user_id, name, token_hash) VALUES ($1, $2, $3) RETURNING id::text",
        uuid.UUID(user_id), name, _digest(token),
    )  # fmt: skip
    return NewToken(token_id, name, token)


async def listing(pool: asyncpg.Pool, user_id: str) -> list[TokenInfo]:
    rows = await pool.fetch(
        """SELECT id::text AS id, name, created_at, last_used_at, revoked_at FROM api_tokens
           WHERE user_id = $1 ORDER BY created_at""",
        uuid.UUID(user_id),
    )
    return [TokenInfo(**dict(r)) for r in rows]


async def revoke(pool: asyncpg.Pool, user_id: str, token_id: str) -> None:
    try:
        key = uuid.UUID(token_id)
    except ValueError:
        key = None
    done = key and await pool.fetchval(
        """UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
           WHERE id = $1 AND user_id = $2 RETURNING id""",
        key, uuid.UUID(user_id),
    )  # fmt: skip
    if not done:
        raise AccountRejected(AccountRejection.NOT_FOUND, "no such token")


async def user_of(pool: asyncpg.Pool, token: str) -> User | None:
    """The enabled user a live token acts as, or ``None``."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    row = await pool.fetchrow(
        """SELECT t.id AS token_id, t.last_used_at, u.id::text AS id, u.email,
                  u.role::text AS role
           FROM api_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND NOT u.disabled
             AND u.role::text = ANY($2::text[])""",
        _digest(token), [r.value for r in Role],
    )  # fmt: skip
    if row is None:
        return None
    # Written at most once a minute per token: a script polling stats is not a write load.
    await pool.execute(
        """UPDATE api_tokens SET last_used_at = now() WHERE id = $1
             AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')""",
        row["token_id"],
    )
    return User(row["id"], row["email"], Role(row["role"]))
