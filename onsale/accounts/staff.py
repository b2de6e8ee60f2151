"""Who owns an event and who works its door."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from onsale.accounts import users
from onsale.accounts.models import AccountRejected, AccountRejection, Role, User


class Standing(msgspec.Struct, frozen=True):
    """An event as the guard sees it: its owner (``None``: admins only) and whether the
    caller is on its staff."""

    owner_id: str | None
    staff: bool


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def standing(pool: asyncpg.Pool, event_id: uuid.UUID, user_id: str | None) -> Standing | None:
    """``None`` if there is no such event."""
    row = await pool.fetchrow(
        """SELECT organizer_id::text AS owner,
                  EXISTS (SELECT 1 FROM event_staff s WHERE s.event_id = e.id AND s.user_id = $2)
                      AS staff
           FROM events e WHERE e.id = $1""",
        event_id, user_id and _uuid(user_id),
    )  # fmt: skip
    return Standing(row["owner"], row["staff"]) if row else None


async def set_owner(pool: asyncpg.Pool, event_id: str, user_id: str) -> None:
    await pool.execute(
        "UPDATE events SET organizer_id = $2 WHERE id = $1", uuid.UUID(event_id), uuid.UUID(user_id)
    )


async def owned(pool: asyncpg.Pool, user_id: str | None) -> list[str]:
    """The ids of the events a user owns (every event for ``None``, an admin), soonest
    first."""
    if user_id is None:
        rows = await pool.fetch("SELECT id::text AS id FROM events ORDER BY starts_at, id")
    else:
        rows = await pool.fetch(
            "SELECT id::text AS id FROM events WHERE organizer_id = $1 ORDER BY starts_at, id",
            uuid.UUID(user_id),
        )
    return [r["id"] for r in rows]


async def assign(pool: asyncpg.Pool, event_id: str, email: str) -> None:
    user = await users.by_email(pool, email)
    if user is None:
        raise AccountRejected(AccountRejection.USER_NOT_FOUND, f"no user {email}")
    if user.role is not Role.STAFF:
        raise AccountRejected(AccountRejection.INVALID, f"{email} is not a staff user")
    try:
        await pool.execute(
            "INSERT INTO event_staff (event_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            uuid.UUID(event_id), uuid.UUID(user.id),
        )  # fmt: skip
    except asyncpg.ForeignKeyViolationError:
        raise AccountRejected(AccountRejection.EVENT_NOT_FOUND) from None


async def unassign(pool: asyncpg.Pool, event_id: str, user_id: str) -> None:
    key = _uuid(user_id)
    if key is not None:
        await pool.execute(
            "DELETE FROM event_staff WHERE event_id = $1 AND user_id = $2",
            uuid.UUID(event_id), key,
        )  # fmt: skip


async def listing(pool: asyncpg.Pool, event_id: str) -> list[User]:
    rows = await pool.fetch(
        """SELECT u.id::text AS id, u.email, u.role::text AS role, u.disabled, u.created_at
           FROM event_staff s JOIN users u ON u.id = s.user_id
           WHERE s.event_id = $1 ORDER BY u.email""",
        uuid.UUID(event_id),
    )
    return [User(r["id"], r["email"], Role(r["role"]), r["disabled"], r["created_at"])
            for r in rows]  # fmt: skip


async def adopt(pool: asyncpg.Pool, event_id: str, user_id: str) -> None:
    """Make ``user_id`` the owner of an event that has none."""
    await pool.execute(
        "UPDATE events SET organizer_id = $2 WHERE id = $1 AND organizer_id IS NULL",
        uuid.UUID(event_id), uuid.UUID(user_id),
    )  # fmt: skip
