"""CSV exports of an event's attendees and orders, streamed from a server-side cursor.

One query in a read-only transaction, read through a cursor :data:`CHUNK` rows at a time and
written out chunk by chunk, so an export's memory does not grow with its rows. Postgres makes
each CSV line (escaping, quoting, times in UTC); Python only passes them on. Text a
spreadsheet would take for a formula (a cell starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return) is prefixed with ``'``. Each export is recorded in ``export_audit``
when it starts; its row count and end when the stream ends (``completed`` false when the
download was cut off).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence

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


def text_cell(expr: str) -> str:
    """SQL for one CSV cell of a text expression: escaped against formulas (as :func:`safe`),
    then always quoted (valid CSV, and cheaper than deciding)."""
    v = f"coalesce({expr}, '')"
    v = f"CASE WHEN left({v}, 1) IN {_RISKY_SQL} THEN '''' || {v} ELSE {v} END"
    return f"""'"' || replace({v}, '"', '""') || '"'"""


def time_cell(expr: str) -> str:
    """SQL for a time as ISO 8601 in UTC (``...Z``), empty when there is none."""
    return f"coalesce(to_char({expr} AT TIME ZONE 'UTC', '{_ISO}'), '')"


def line(*cells: str) -> str:
    """One CSV line per row, made by Postgres: Python only joins them (what lets an export
    run at hundreds of thousands of rows a second)."""
    return "concat_ws(',', " + ", ".join(cells) + ") || E'\\r\\n'"


_RISKY = ("=", "+", "-", "@", "\t", "\r")
_RISKY_SQL = "('=', '+', '-', '@', E'\\t', E'\\r')"
_ISO = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'

# The tickets a person could come in with (valid or used); from/to on when they were issued.
_ATTENDEES = f"""
SELECT {line("t.id::text", text_cell("tt.name"), text_cell("t.attendee_name"),
             text_cell("coalesce(t.attendee_email, o.email)"), "t.order_id::text",
             time_cell("t.checked_in_at"))}
FROM tickets t
JOIN ticket_tiers tt ON tt.id = t.tier_id
JOIN orders o ON o.id = t.order_id
WHERE t.event_id = $1 AND t.status IN ('valid', 'used')
  AND t.created_at >= $2 AND t.created_at < $3
"""  # fmt: skip
_ORDERS = f"""
SELECT {line("o.id::text", time_cell("o.created_at"), text_cell("o.email"), text_cell("o.name"),
             "o.status::text", "o.amount::text", "o.discount::text", text_cell("p.code"),
             "o.currency::text")}
FROM orders o LEFT JOIN promo_codes p ON p.id = o.promo_code_id
WHERE o.event_id = $1 AND o.created_at >= $2 AND o.created_at < $3
ORDER BY o.created_at, o.id
"""  # fmt: skip


def safe(value: str | None) -> str:
    """A text cell a spreadsheet shows as text, never runs (CSV/formula injection): what
    :func:`text_cell` does in SQL, here as the reference its tests compare it with."""
    if not value:
        return ""
    return "'" + value if value.startswith(_RISKY) else value


class Export:
    """One export: its query (one CSV line per row) and its header."""

    def __init__(self, kind: str, sql: str, header: Sequence[str]) -> None:
        self.kind, self.sql, self.header = kind, sql, header


EXPORTS = {
    ATTENDEES: Export(ATTENDEES, _ATTENDEES, ATTENDEE_HEADER),
    ORDERS: Export(ORDERS, _ORDERS, ORDER_HEADER),
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
    rows, completed = 0, False
    try:
        yield (",".join(export.header) + "\r\n").encode()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(export.sql, uuid.UUID(event_id), period.low, period.high)
            while records := await cursor.fetch(chunk):
                rows += len(records)
                yield "".join([r[0] for r in records]).encode()
        completed = True
    finally:
        if audit is not None and audit_id is not None:
            try:
                await audit.finish(audit_id, rows, completed)
            except Exception:  # the export went out; its audit row says it did not end
                log.exception("export %s: its audit row was not finished", audit_id)
