"""The outbox: mail to send, written in the caller's transaction.

Call :func:`enqueue` with the connection of the transaction that makes the
change the mail is about (an order confirmed, a refund, a lookup), so the mail
exists if and only if the change committed. ``dedupe`` names the message
(e.g. ``"order_confirmed:<order id>"``): enqueueing it again is a no-op, so a
replayed transaction sends nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import asyncpg

MAIL_DOMAIN = "onsale.invalid"

ORDER_CONFIRMED = "order_confirmed"
ORDER_REFUNDED = "order_refunded"
ORDER_LINKS = "order_links"
KINDS = (ORDER_CONFIRMED, ORDER_REFUNDED, ORDER_LINKS)


def message_id(dedupe: str) -> str:
    """The stable RFC 5322 Message-ID of the message named ``dedupe``."""
    digest = hashlib.sha256(dedupe.encode()).hexdigest()[:32]
    return f"<{digest}@{MAIL_DOMAIN}>"


INSERT = """
INSERT INTO outbox (kind, recipient, order_id, payload, message_id)
VALUES ($1, $2, $3, $4::jsonb, $5)
ON CONFLICT (message_id) DO NOTHING
"""


async def enqueue(
    conn: asyncpg.Connection,
    *,
    kind: str,
    recipient: str,
    order_id: str | None,
    payload: dict[str, Any],
    dedupe: str,
) -> None:
    """Queue one message in ``conn``'s transaction; idempotent on ``dedupe``."""
    await conn.execute(
        INSERT, kind, recipient, order_id, json.dumps(payload, default=str), message_id(dedupe)
    )


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[int, float]:
    """(unsent messages, age in seconds of the oldest of them; 0 when none)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
        "FROM outbox WHERE sent_at IS NULL"
    )
    assert row is not None
    return int(row["n"]), float(row["age"])
