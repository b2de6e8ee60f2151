"""Messages from outbox rows: the data from Postgres, the words from templates.

A template set per kind in ``templates/``: ``<kind>.subject.txt``, ``<kind>.txt`` and
``<kind>.html``. The confirmation carries the PDF tickets.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import asyncpg
import jinja2
import msgspec

from onsale.checkout.tokens import OrderTokens
from onsale.mail.outbox import ORDER_CONFIRMED
from onsale.tickets.pdf import PdfTicket, render, when

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("onsale.mail", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.strip().upper()}"


_ENV.filters["money"] = money
_ENV.filters["when"] = when


class Line(msgspec.Struct, frozen=True):
    tier_name: str
    quantity: int
    unit_price: int


class OrderView(msgspec.Struct, frozen=True):
    """An order with its event, lines and tickets, as the mail and the PDF show it."""

    order_id: str
    event_id: str
    email: str
    name: str
    amount: int
    currency: str
    status: str
    event_title: str
    starts_at: datetime | None
    venue: str
    lines: list[Line]
    tickets: list[PdfTicket]


class EventInfo(msgspec.Struct, frozen=True):
    title: str
    starts_at: datetime | None
    venue: str
    tiers: dict[str, str]


async def event_info(conn: asyncpg.Connection | asyncpg.Pool, event_id: str) -> EventInfo | None:
    row = await conn.fetchrow(
        "SELECT title, starts_at, venue_name, venue_city FROM events WHERE id = $1",
        uuid.UUID(event_id),
    )
    if row is None:
        return None
    tiers = await conn.fetch(
        "SELECT id, name FROM ticket_tiers WHERE event_id = $1", uuid.UUID(event_id)
    )
    venue = ", ".join(v for v in (row["venue_name"], row["venue_city"]) if v)
    return EventInfo(
        row["title"], row["starts_at"], venue, {str(t["id"]): t["name"] for t in tiers}
    )


def pdf_tickets(
    info: EventInfo, order_id: str, attendee: str, tickets: list[tuple[str, str, str]]
) -> list[PdfTicket]:
    """Pages for ``tickets`` as (ticket id, tier id, QR payload)."""
    return [
        PdfTicket(
            event_title=info.title,
            starts_at=info.starts_at,
            venue=info.venue,
            tier_name=info.tiers.get(tier_id, ""),
            attendee=attendee,
            payload=payload,
            order_id=order_id,
            ticket_id=ticket_id,
        )
        for ticket_id, tier_id, payload in tickets
    ]


async def load_order(conn: asyncpg.Connection | asyncpg.Pool, order_id: str) -> OrderView | None:
    """The committed order, or None."""
    order = await conn.fetchrow("SELECT * FROM orders WHERE id = $1", uuid.UUID(order_id))
    if order is None:
        return None
    event_id = str(order["event_id"])
    info = await event_info(conn, event_id)
    if info is None:
        return None
    items = await conn.fetch(
        "SELECT tier_id, quantity, unit_price FROM order_items WHERE order_id = $1", order["id"]
    )
    lines = [Line(info.tiers.get(str(i["tier_id"]), ""), i["quantity"], i["unit_price"])
             for i in items]  # fmt: skip
    lines.sort(key=lambda line: line.tier_name)
    rows = await conn.fetch(
        "SELECT id, tier_id, qr_secret FROM tickets WHERE order_id = $1 ORDER BY id", order["id"]
    )
    tickets = pdf_tickets(
        info, order_id, order["name"],
        [(str(t["id"]), str(t["tier_id"]), t["qr_secret"]) for t in rows],
    )  # fmt: skip
    return OrderView(
        order_id=order_id,
        event_id=event_id,
        email=order["email"],
        name=order["name"],
        amount=order["amount"],
        currency=order["currency"],
        status=str(order["status"]),
        event_title=info.title,
        starts_at=info.starts_at,
        venue=info.venue,
        lines=lines,
        tickets=tickets,
    )


class Obsolete(Exception):
    """The message no longer applies (a confirmation of an order refunded before it went
    out): it is dropped, not sent."""


class Renderer:
    """Outbox rows to messages."""

    def __init__(self, tokens: OrderTokens, public_url: str, mail_from: str) -> None:
        self.tokens = tokens
        self.public_url = public_url.rstrip("/")
        self.mail_from = mail_from

    def order_link(self, event_id: str, order_id: str) -> str:
        return f"{self.public_url}/o/{order_id}?t={self.tokens.issue(event_id, order_id)}"

    async def message(self, conn: asyncpg.Connection | asyncpg.Pool, row: Any) -> EmailMessage:
        """The message of one outbox row (``kind``, ``recipient``, ``order_id``, ``payload``,
        ``message_id``); ``LookupError`` if what it is about is not (yet) in Postgres."""
        kind: str = row["kind"]
        payload = row["payload"]
        if isinstance(payload, str):
            payload = msgspec.json.decode(payload)
        order: OrderView | None = None
        if row["order_id"] is not None:
            order = await load_order(conn, str(row["order_id"]))
            if order is None:
                raise LookupError(f"order {row['order_id']} is not in Postgres")
            if kind == ORDER_CONFIRMED and order.status != "confirmed":
                raise Obsolete(f"the order is {order.status}")
        context: dict[str, Any] = {
            "payload": payload,
            "order": order,
            "link": self.order_link(order.event_id, order.order_id) if order else "",
            "public_url": self.public_url,
        }
        msg = EmailMessage()
        msg["Subject"] = _ENV.get_template(f"{kind}.subject.txt").render(context).strip()
        msg["From"] = self.mail_from
        msg["To"] = row["recipient"]
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = row["message_id"]
        msg.set_content(_ENV.get_template(f"{kind}.txt").render(context))
        msg.add_alternative(_ENV.get_template(f"{kind}.html").render(context), subtype="html")
        if kind == ORDER_CONFIRMED and order is not None and order.tickets:
            pdf = render(order.tickets, title=f"{order.event_title}: tickets")
            msg.add_attachment(
                pdf, maintype="application", subtype="pdf", filename=f"tickets-{order.order_id}.pdf"
            )
        return msg
