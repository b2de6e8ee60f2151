"""Users in Postgres: create, find, list, change role or disable."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from onsale.accounts import passwords
from onsale.accounts.models import AccountRejected, AccountRejection, Role, User

_COLUMNS = "id::text AS id, email, role::text AS role, disabled, created_at"


def _user(r: Any) -> User:
    return User(r["id"], r["email"], Role(r["role"]), r["disabled"], r["created_at"])


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def create(pool: asyncpg.Pool, email: str, role: Role, password: str) -> User:
    digest = await passwords.hash_password(password)
    try:
        row = await pool.fetchrow(
            f"""INSERT INTO users (email, role, password_hash) VALUES ($1, $2::user_role, $3)
                RETURNING {_COLUMNS}""",
            email.strip(), role.value, digest,
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise AccountRejected(AccountRejection.EMAIL_TAKEN, f"{email} has an account") from None
    return _user(row)


async def by_id(pool: asyncpg.Pool, user_id: str) -> User | None:
    key = _uuid(user_id)
    if key is None:
        return None
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", key)
    return _user(row) if row and row["role"] in Role.__members__.values() else None


async def by_email(pool: asyncpg.Pool, email: str) -> User | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)", email.strip()
    )
    return _user(row) if row and row["role"] in Role.__members__.values() else None


async def credentials(pool: asyncpg.Pool, email: str) -> tuple[User | None, str | None]:
    """The user of an e-mail and their password hash (``None, None`` if there is none)."""
    row = await pool.fetchrow(
        f"""SELECT {_COLUMNS}, password_hash FROM users
            WHERE lower(email) = lower($1) AND role::text = ANY($2::text[])""",
        email.strip(), [r.value for r in Role],
    )  # fmt: skip
    if row is None:
        return None, None
    return _user(row), row["password_hash"]


async def listing(pool: asyncpg.Pool) -> list[User]:
    rows = await pool.fetch(
        f"""SELECT {_COLUMNS} FROM users WHERE role::text = ANY($1::text[])
            ORDER BY created_at, email""",
        [r.value for r in Role],
    )
    return [_user(r) for r in rows]


async def update(
    pool: asyncpg.Pool, user_id: str, *, role: Role | None, disabled: bool | None
) -> User:
    key = _uuid(user_id)
    row = None
    if key is not None:
        row = await pool.fetchrow(
            f"""UPDATE users SET role = coalesce($2::user_role, role),
                                 disabled = coalesce($3, disabled), updated_at = now()
                WHERE id = $1 AND role::text = ANY($4::text[]) RETURNING {_COLUMNS}""",
            key, role and role.value, disabled, [r.value for r in Role],
        )  # fmt: skip
    if row is None:
        raise AccountRejected(AccountRejection.USER_NOT_FOUND)
    return _user(row)


async def ensure(pool: asyncpg.Pool, email: str, role: Role, password: str) -> User:
    """The user of ``email``, created if missing, with this role and password (for
    ``onsale dev``'s demo organizer, whose password lives in the data dir)."""
    user, stored = await credentials(pool, email)
    if user is None:
        return await create(pool, email, role, password)
    if not await passwords.verify(stored, password) or user.role is not role or user.disabled:
        digest = await passwords.hash_password(password)
        await pool.execute(
            """UPDATE users SET password_hash = $2, role = $3::user_role, disabled = false,
                                updated_at = now() WHERE id = $1""",
            uuid.UUID(user.id), digest, role.value,
        )  # fmt: skip
    return user
