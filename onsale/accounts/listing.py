"""An organizer's own events, for the console's event list (``GET /api/events`` when an
organizer asks; everyone else gets the public listing)."""

from __future__ import annotations

import uuid

import asyncpg

from onsale.accounts.guard import Connection, accounts_of, bearer, resolve
from onsale.accounts.models import AccountRejected, Role
from onsale.accounts.sessions import COOKIE
from onsale.events import catalog
from onsale.events.models import EventPage


async def owned_page(
    connection: Connection, pool: asyncpg.Pool, *, limit: int, cursor: str | None
) -> EventPage | None:
    """The page of the caller's own events (every status, soonest first) if the caller is
    an organizer; ``None`` (the public listing) for anyone else, signed in or not."""
    if not bearer(connection) and not connection.cookies.get(COOKIE):
        return None
    try:
        caller = await resolve(connection, accounts_of(connection))
    except AccountRejected:
        return None
    if caller.role is not Role.ORGANIZER or caller.user_id is None:
        return None
    after = uuid.UUID(int=0)
    if cursor:
        try:
            after = uuid.UUID(cursor)
        except ValueError:
            return EventPage([], None)
    rows = await pool.fetch(
        """SELECT id::text AS id FROM events WHERE organizer_id = $1 AND id > $2
           ORDER BY id LIMIT $3""",
        uuid.UUID(caller.user_id), after, limit + 1,
    )  # fmt: skip
    ids = [r["id"] for r in rows]
    events = [await catalog.get(pool, event_id) for event_id in ids[:limit]]
    events.sort(key=lambda e: (e.starts_at, e.id))
    return EventPage(events, ids[limit - 1] if len(ids) > limit else None)
