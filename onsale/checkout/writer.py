"""Orders into Postgres in one transaction per batch, idempotently by order id.

Two ways to send a batch, measured by ``onsale bench commit``: COPY into temporary tables
then ``INSERT ... SELECT ... ON CONFLICT`` (:data:`COPY`, the default: it was the faster),
and ``executemany`` of the same upserts (:data:`EXECUTEMANY`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import asyncpg.exceptions
import msgspec

from onsale.checkout.models import Order, OrderStatus
from onsale.mail.outbox import MAIL_DOMAIN, ORDER_CONFIRMED

COPY = "copy"
EXECUTEMANY = "executemany"
METHODS = (COPY, EXECUTEMANY)

#: The outcome an entry may carry; anything else on the stream is malformed.
FINAL = (OrderStatus.CONFIRMED, OrderStatus.REFUNDED)

_ORDER_COLUMNS = (
    "id", "event_id", "email", "name", "amount", "currency", "status", "payment_intent_id",
    "hold_id", "created_at", "confirmed_at", "discount", "promo_code_id",
)  # fmt: skip
#: A batch's order rows: the orders' columns, with the promo code's name (upper case, or
#: NULL) in place of its id, which Postgres finds.
_ROW_COLUMNS = (*_ORDER_COLUMNS[:-1], "promo_code")
_ITEM_COLUMNS = ("order_id", "tier_id", "quantity", "unit_price")
_TICKET_COLUMNS = (
    "id", "order_id", "event_id", "tier_id", "qr_secret", "attendee_name", "attendee_email",
    "status",
)  # fmt: skip

# A status changes only forward: a refund is final, so a late or replayed "confirmed"
# entry never undoes it, and a replayed entry changes nothing (not even updated_at).
_ON_ORDER_CONFLICT = """
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status,
    confirmed_at = coalesce(EXCLUDED.confirmed_at, orders.confirmed_at),
    payment_intent_id = coalesce(EXCLUDED.payment_intent_id, orders.payment_intent_id),
    updated_at = now()
WHERE orders.status <> EXCLUDED.status AND orders.status <> 'refunded'
"""
# After the tickets: the tickets of a refunded order are refunded too, also when a stale
# "confirmed" entry (say, reclaimed late from a dead committer) brought them after the refund.
_REFUND_TICKETS = """
UPDATE tickets t SET status = 'refunded' FROM orders o
WHERE o.id = ANY($1::uuid[]) AND o.status = 'refunded' AND t.order_id = o.id
  AND t.status = 'valid'
"""

# The order's promo code by its name within the event (codes are stored upper case).
_PROMO_ID = "(SELECT p.id FROM promo_codes p WHERE p.event_id = {e} AND p.code = {c})"
_INSERT_ORDER = f"""
INSERT INTO orders ({", ".join(_ORDER_COLUMNS)})
VALUES ($1, $2, $3, $4, $5, $6, $7::order_status, $8, $9, $10, $11, $12,
        {_PROMO_ID.format(e="$2::uuid", c="$13::text")}) {_ON_ORDER_CONFLICT}
"""
# A code's used_count is its orders that were confirmed (a refund keeps the use), counted
# again rather than added to, so a replayed batch changes nothing. The rows are locked
# first, in a statement of their own: the count's statement then sees what a concurrent
# committer wrote before it let go of them.
_LOCK_PROMO = """
SELECT p.id FROM promo_codes p
WHERE p.id IN (SELECT promo_code_id FROM orders WHERE id = ANY($1::uuid[]))
ORDER BY p.id FOR UPDATE
"""
_COUNT_PROMO = """
UPDATE promo_codes p SET used_count = (
    SELECT count(*) FROM orders o WHERE o.promo_code_id = p.id
      AND (o.status = 'confirmed' OR (o.status = 'refunded' AND o.confirmed_at IS NOT NULL)))
WHERE p.id IN (SELECT promo_code_id FROM orders WHERE id = ANY($1::uuid[]))
"""
_INSERT_ITEM = """
INSERT INTO order_items (order_id, tier_id, quantity, unit_price) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
"""
_INSERT_TICKET = f"""
INSERT INTO tickets ({", ".join(_TICKET_COLUMNS)})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::ticket_status) ON CONFLICT DO NOTHING
"""

# Temporary tables live as long as the connection; ON COMMIT DELETE ROWS empties them.
_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS commit_orders (
    id uuid, event_id uuid, email text, name text, amount bigint, currency text, status text,
    payment_intent_id text, hold_id uuid, created_at timestamptz, confirmed_at timestamptz,
    discount bigint, promo_code text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS commit_items (
    order_id uuid, tier_id uuid, quantity integer, unit_price bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS commit_tickets (
    id uuid, order_id uuid, event_id uuid, tier_id uuid, qr_secret text, attendee_name text,
    attendee_email text, status text
) ON COMMIT DELETE ROWS;
"""
_FROM_TEMP = f"""
INSERT INTO orders ({", ".join(_ORDER_COLUMNS)})
SELECT id, event_id, email, name, amount, currency, status::order_status, payment_intent_id,
       hold_id, created_at, confirmed_at, discount,
       {_PROMO_ID.format(e="c.event_id", c="c.promo_code")}
FROM commit_orders c {_ON_ORDER_CONFLICT};
INSERT INTO order_items ({", ".join(_ITEM_COLUMNS)})
SELECT {", ".join(_ITEM_COLUMNS)} FROM commit_items ON CONFLICT DO NOTHING;
INSERT INTO tickets ({", ".join(_TICKET_COLUMNS)})
SELECT id, order_id, event_id, tier_id, qr_secret, attendee_name, attendee_email,
       status::ticket_status
FROM commit_tickets ON CONFLICT DO NOTHING;
"""

# The confirmation e-mail, in the order's transaction, for orders that are confirmed once
# written (not for a stale "confirmed" entry after a refund). Its message id is stable per
# order (see onsale.mail.outbox.message_id), so a replayed batch inserts nothing.
_OUTBOX = f"""
INSERT INTO outbox (kind, recipient, order_id, payload, message_id)
SELECT '{ORDER_CONFIRMED}', m.email, m.id, jsonb_build_object('order_id', m.id::text),
       '<' || left(encode(sha256(convert_to('{ORDER_CONFIRMED}:' || m.id::text, 'UTF8')), 'hex'),
                   32) || '@{MAIL_DOMAIN}>'
FROM unnest($1::uuid[], $2::text[]) AS m (id, email)
JOIN orders o ON o.id = m.id AND o.status = 'confirmed'
ON CONFLICT (message_id) DO NOTHING
"""


async def _count_promo_uses(conn: asyncpg.Connection, batch: Rows) -> None:
    if batch.promo_orders:
        await conn.execute(_LOCK_PROMO, batch.promo_orders)
        await conn.execute(_COUNT_PROMO, batch.promo_orders)


async def _write_mail(conn: asyncpg.Connection, batch: Rows) -> None:
    if batch.mail:
        ids, emails = zip(*batch.mail, strict=True)
        await conn.execute(_OUTBOX, list(ids), list(emails))


class Malformed(ValueError):
    """An entry that can never be written as it is."""


class Rows(msgspec.Struct):
    """A batch as rows of the three tables."""

    orders: list[tuple[Any, ...]] = msgspec.field(default_factory=list)
    items: list[tuple[Any, ...]] = msgspec.field(default_factory=list)
    tickets: list[tuple[Any, ...]] = msgspec.field(default_factory=list)
    order_ids: list[str] = msgspec.field(default_factory=list)
    #: (order id, buyer's address) of confirmed orders: their confirmation e-mail.
    mail: list[tuple[str, str]] = msgspec.field(default_factory=list)
    #: Ids of the orders with a promo code: their codes' used_count is counted again.
    promo_orders: list[str] = msgspec.field(default_factory=list)

    def extend(self, other: Rows) -> None:
        self.orders += other.orders
        self.items += other.items
        self.tickets += other.tickets
        self.order_ids += other.order_ids
        self.mail += other.mail
        self.promo_orders += other.promo_orders


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(value: str) -> str:
    """A UUID as the driver takes it. Canonical ids (all of ours) pass a regular expression
    instead of ``uuid.UUID``, whose parsing was the committer's largest CPU cost."""
    if _UUID.fullmatch(value):
        return value
    return str(uuid.UUID(value))


def _hold_uuid(hold_id: str) -> str | None:
    """The hold's UUID, or None: hold ids are ``<event_id>.<uuid hex>``, and the column
    is only informational, so an unexpected form must not cost the order."""
    for candidate in (hold_id, hold_id.rpartition(".")[2]):
        try:
            return _uuid(candidate)
        except ValueError:
            continue
    return None


def rows(order: Order) -> Rows:
    """One order's rows; :class:`Malformed` if it cannot be an order of ours."""
    if order.status not in FINAL:
        raise Malformed(f"status {str(order.status)!r} is not a final state")
    try:
        order_id, event_id = _uuid(order.order_id), _uuid(order.event_id)
        items = [(order_id, _uuid(i.tier_id), i.quantity, i.unit_price) for i in order.items]
        ticket_status = "valid" if order.status is OrderStatus.CONFIRMED else "refunded"
        tickets = [
            (_uuid(t.ticket_id), order_id, event_id, _uuid(t.tier_id), t.qr, order.name,
             order.email, ticket_status)
            for t in order.tickets
        ]  # fmt: skip
    except ValueError as exc:
        raise Malformed(f"not a UUID: {exc}") from None
    confirmed_at = _time(order.confirmed_ms)
    created_at = _time(order.created_ms) or confirmed_at or datetime.now(UTC)
    return Rows(
        orders=[
            (
                order_id,
                event_id,
                order.email,
                order.name,
                order.amount,
                order.currency,
                str(order.status),
                order.payment_intent_id,
                _hold_uuid(order.hold_id),
                created_at,
                confirmed_at,
                order.discount,
                order.promo_code or None,
            )
        ],
        items=items,
        tickets=tickets,
        order_ids=[order_id],
        mail=[(order_id, order.email)] if order.status is OrderStatus.CONFIRMED else [],
        promo_orders=[order_id] if order.promo_code else [],
    )


#: An order and its rows, converted once.
Prepared = tuple[Order, Rows]


def prepared(orders: Iterable[Order]) -> list[Prepared]:
    """Orders with their rows, by order id: concurrent committers then lock rows in the same
    order and never deadlock."""
    return [(o, rows(o)) for o in sorted(orders, key=lambda o: o.order_id)]


def merge(batch: Iterable[Prepared]) -> Rows:
    out = Rows()
    for _, part in batch:
        out.extend(part)
    return out


def batch_rows(orders: Iterable[Order]) -> Rows:
    return merge(prepared(orders))


Writer = Callable[[asyncpg.Connection, Rows], Awaitable[None]]


async def write_executemany(conn: asyncpg.Connection, batch: Rows) -> None:
    async with conn.transaction():
        await conn.executemany(_INSERT_ORDER, batch.orders)
        if batch.items:
            await conn.executemany(_INSERT_ITEM, batch.items)
        if batch.tickets:
            await conn.executemany(_INSERT_TICKET, batch.tickets)
        await conn.execute(_REFUND_TICKETS, batch.order_ids)
        await _count_promo_uses(conn, batch)
        await _write_mail(conn, batch)


async def create_temp_tables(conn: asyncpg.Connection) -> None:
    """Once per connection, before :func:`write_copy`: its temporary tables."""
    await conn.execute(_TEMP_TABLES)


async def write_copy(conn: asyncpg.Connection, batch: Rows) -> None:
    async with conn.transaction():
        await conn.copy_records_to_table(
            "commit_orders", records=batch.orders, columns=_ROW_COLUMNS
        )
        if batch.items:
            await conn.copy_records_to_table(
                "commit_items", records=batch.items, columns=_ITEM_COLUMNS
            )
        if batch.tickets:
            await conn.copy_records_to_table(
                "commit_tickets", records=batch.tickets, columns=_TICKET_COLUMNS
            )
        await conn.execute(_FROM_TEMP)
        await conn.execute(_REFUND_TICKETS, batch.order_ids)
        await _count_promo_uses(conn, batch)
        await _write_mail(conn, batch)


WRITERS: dict[str, Writer] = {COPY: write_copy, EXECUTEMANY: write_executemany}

#: Errors of the rows themselves: the same rows would fail again, whatever the server's state.
ROW_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.DataError,  # SQLSTATE class 22: a value the column cannot take
    asyncpg.exceptions._base.DataError,  # a value the driver cannot encode
)
#: Errors of the server or the connection: try again later, with the same rows.
SERVER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions._base.InternalClientError,
)


def describe(exc: BaseException) -> str:
    """One line: the error's class and message."""
    text = " ".join(str(exc).split()) or repr(exc)
    detail = getattr(exc, "detail", None)  # Postgres says which value, e.g. "Key (id)=..."
    return f"{type(exc).__name__}: {text}{f' ({detail})' if detail else ''}"[:500]


async def write_each(
    conn: asyncpg.Connection, writer: Writer, batch: Sequence[Prepared]
) -> list[tuple[Order, str]]:
    """Write the batch in one transaction; when a row error fails it, find the orders at
    fault by halving (the others are committed). Returns the failed orders and why.

    Server errors propagate: nothing is known about the rows then."""
    try:
        await writer(conn, merge(batch))
        return []
    except ROW_ERRORS as exc:
        if len(batch) == 1:
            return [(batch[0][0], describe(exc))]
    mid = len(batch) // 2
    return await write_each(conn, writer, batch[:mid]) + await write_each(conn, writer, batch[mid:])
