"""CSV exports of an event's attendees and orders, streamed from a server-side cursor.

One query in a read-only transaction, read through a cursor :data:`CHUNK` rows at a time and
written out chunk by chunk, so an export's memory does not grow with its rows. Text a
spreadsheet would take for a formula (a cell starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return) is prefixed with ``'``. Each export is recorded in ``export_audit``
when it starts; its row count and end when the stream ends (``completed`` false when the
download was cut off).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from onsale.reports.period import Period

log = logging.getLogger("onsale.reports")

#: Rows fetched from the cursor and written out at a time.
CHUNK = 5000

ATTENDEES = "attendees"
ORDERS = "orders"

ATTENDEE_HEADER = ("ticket_id", "tier", "name", "email", "order_id", "checked_in_at")
ORDER_HEADER = (
    "order_id", "created_at", "email", "name", "status", "amount", "discount", "promo_code",
    "currency",
)  # fmt: skip

# The tickets a person could come in with (valid or used), by tier; from/to on when they
# were issued.
_ATTENDEES = """
SELECT t.id::text, tt.name, t.attendee_name, coalesce(t.attendee_email, o.email),
       t.order_id::text, t.checked_in_at
FROM tickets t
JOIN ticket_tiers tt ON tt.id = t.tier_id
JOIN orders o ON o.id = t.order_id
WHERE t.event_id = $1 AND t.status IN ('valid', 'used')
  AND t.created_at >= $2 AND t.created_at < $3
"""
_ORDERS = """
SELECT o.id::text, o.created_at, o.email, o.name, o.status::text, o.amount, o.discount,
       p.code, o.currency
FROM orders o LEFT JOIN promo_codes p ON p.id = o.promo_code_id
WHERE o.event_id = $1 AND o.created_at >= $2 AND o.created_at < $3
ORDER BY o.created_at, o.id
"""

_RISKY = ("=", "+", "-", "@", "\t", "\r")


def safe(value: str | None) -> str:
    """A text cell a spreadsheet shows as text, never runs (CSV/formula injection)."""
    if not value:
        return ""
    return "'" + value if value.startswith(_RISKY) else value


def _when(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def attendee_row(r: asyncpg.Record) -> tuple[str, ...]:
    return (r[0], safe(r[1]), safe(r[2]), safe(r[3]), r[4], _when(r[5]))


def order_row(r: asyncpg.Record) -> tuple[Any, ...]:
    return (r[0], _when(r[1]), safe(r[2]), safe(r[3]), r[4], r[5], r[6], safe(r[7]), r[8])


class Export:
    """One export: its query, its header, its rows' shape."""

    def __init__(
        self,
        kind: str,
        sql: str,
        header: Sequence[str],
        row: Callable[[asyncpg.Record], Sequence[Any]],
    ) -> None:
        self.kind, self.sql, self.header, self.row = kind, sql, header, row


EXPORTS = {
    ATTENDEES: Export(ATTENDEES, _ATTENDEES, ATTENDEE_HEADER, attendee_row),
    ORDERS: Export(ORDERS, _ORDERS, ORDER_HEADER, order_row),
}


class Audit:
    """Who exported what, when, and how many rows."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def start(
        self, kind: str, event_id: str, user_id: str | None, actor: str, period: Period
    ) -> int:
        audit_id: int = await self.pool.fetchval(
            """INSERT INTO export_audit (user_id, actor, event_id, kind, params)
               VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id""",
            uuid.UUID(user_id) if user_id else None,
            actor,
            uuid.UUID(event_id),
            kind,
            json.dumps(period.params()),
        )
        return audit_id

    async def finish(self, audit_id: int, rows: int, completed: bool) -> None:
        await self.pool.execute(
            """UPDATE export_audit SET rows = $2, completed = $3, finished_at = now()
               WHERE id = $1""",
            audit_id,
            rows,
            completed,
        )


async def stream(
    pool: asyncpg.Pool,
    export: Export,
    event_id: str,
    period: Period,
    audit: Audit | None = None,
    audit_id: int | None = None,
    chunk: int = CHUNK,
) -> AsyncIterator[bytes]:
    """The CSV, header first, ``chunk`` rows a piece; the audit row is finished at the end
    (also when the client goes away mid-way)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(export.header)
    rows, completed = 0, False
    try:
        yield buffer.getvalue().encode()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(export.sql, uuid.UUID(event_id), period.low, period.high)
            while records := await cursor.fetch(chunk):
                buffer.seek(0)
                buffer.truncate()
                writer.writerows(map(export.row, records))
                rows += len(records)
                yield buffer.getvalue().encode()
        completed = True
    finally:
        if audit is not None and audit_id is not None:
            try:
                await audit.finish(audit_id, rows, completed)
            except Exception:  # the export went out; its audit row says it did not end
                log.exception("export %s: its audit row was not finished", audit_id)
