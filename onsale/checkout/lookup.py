"""Find my tickets: e-mail an address links to its orders, telling the asker nothing.

The answer to the asker never depends on whether the address bought anything; the work
(the query and the outbox message) runs after the answer is sent.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import cast

import asyncpg

from onsale.checkout.tokens import OrderTokens
from onsale.config import Settings
from onsale.mail import outbox

log = logging.getLogger("onsale.lookup")

#: One message per address per this many seconds at most, however often it is asked for
#: (the outbox drops a message whose dedupe key it has).
DEDUPE_WINDOW_S = 15 * 60
#: Orders linked in one message (the most recent).
MAX_ORDERS = 50

# Deliberately loose (one @, a dot in the domain, no spaces): the mail server is the judge.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")

ORDERS = """
SELECT o.id, o.event_id, o.status::text AS status, o.created_at, e.title, e.starts_at
FROM orders o JOIN events e ON e.id = o.event_id
WHERE lower(o.email) = $1 AND o.status IN ('confirmed', 'refunded')
ORDER BY o.created_at DESC
LIMIT $2
"""


def normalize(email: str) -> str | None:
    """The address as orders are matched (lowercase, trimmed), or ``None`` if it is not one."""
    address = email.strip().lower()
    if len(address) > 254 or not _EMAIL.match(address):
        return None
    return address


def digest(address: str) -> str:
    """A name for the address in rate-limit keys and dedupe keys (never the address)."""
    return hashlib.sha256(address.encode()).hexdigest()[:32]


def public_url(settings: Settings) -> str:
    """``ONSALE_PUBLIC_URL``, the base of the links."""
    return settings.mail.public_url.rstrip("/")


def order_url(base: str, order_id: str, token: str) -> str:
    return f"{base}/o/{order_id}?t={token}"


async def send_links(
    pool: asyncpg.Pool, tokens: OrderTokens, base_url: str, address: str, now: float | None = None
) -> int:
    """Queue one ``order_links`` message to ``address`` if it has orders; how many it links."""
    window = int((now if now is not None else time.time()) // DEDUPE_WINDOW_S)
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(ORDERS, address, MAX_ORDERS)
        if not rows:
            return 0
        orders = []
        for row in rows:
            order_id, event_id = str(row["id"]), str(row["event_id"])
            url = order_url(base_url, order_id, tokens.issue(event_id, order_id))
            orders.append(
                {
                    "order_id": order_id,
                    "event_id": event_id,
                    "event_title": row["title"],
                    "starts_at": row["starts_at"].isoformat(),
                    "status": row["status"],
                    "url": url,
                    "link": url,  # the name the order_links template uses
                }
            )
        await outbox.enqueue(
            cast(asyncpg.Connection, conn),
            kind="order_links",
            recipient=address,
            order_id=None,
            payload={"orders": orders},
            dedupe=f"order_links:{digest(address)}:{window}",
        )
    return len(orders)


async def send_links_quietly(
    pool: asyncpg.Pool, tokens: OrderTokens, base_url: str, address: str
) -> None:
    """:func:`send_links` after the answer went out: a failure is logged (without the
    address), never raised to a client who has already been answered."""
    try:
        await send_links(pool, tokens, base_url, address)
    except Exception as exc:
        log.error("order lookup for %s failed: %s", digest(address)[:12], exc)
