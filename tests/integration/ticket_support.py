"""What the ticket tests share: a confirmed order with its tickets, straight into Postgres."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from onsale import signing
from onsale.checkout.tokens import OrderTokens
from onsale.config import Settings
from onsale.tickets import qr
from tests.integration.api_support import Client, create


@dataclass
class Issued:
    event_id: str
    tier_id: str
    order_id: str
    token: str
    #: ``{"ticket_id", "tier_id", "qr"}`` per ticket, as ``GET /api/orders`` shows them.
    tickets: list[dict[str, str]]


async def issue(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    count: int = 2,
    event: dict[str, Any] | None = None,
    status: str = "valid",
    name: str = "Ada Lovelace",
) -> Issued:
    """A confirmed order with its tickets, written as the committer writes them."""
    event = event or await create(client, admin)
    event_id, tier_id = event["id"], event["tiers"][0]["id"]
    key = signing.load(settings.security.signing_key)
    order_id = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO orders (id, event_id, email, name, amount, currency, status, confirmed_at)"
        " VALUES ($1, $2, 'ada@example.com', $3, $4, 'USD', 'confirmed', now())",
        order_id,
        event_id,
        name,
        4500 * count,
    )
    tickets = []
    for i in range(count):
        tid = qr.ticket_id(order_id, i)
        tickets.append({"ticket_id": tid, "tier_id": tier_id, "qr": qr.sign(key, tid, event_id)})
    await pool.executemany(
        "INSERT INTO tickets (id, order_id, event_id, tier_id, qr_secret, attendee_name,"
        " attendee_email, status) VALUES ($1, $2, $3, $4, $5, $6, 'ada@example.com', $7)",
        [(t["ticket_id"], order_id, event_id, tier_id, t["qr"], name, status) for t in tickets],
    )
    token = OrderTokens(key).issue(event_id, order_id)
    return Issued(event_id, tier_id, order_id, token, tickets)
