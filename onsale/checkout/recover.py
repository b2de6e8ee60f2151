"""``onsale recover``: an event's Redis state rebuilt from Postgres and Stripe after Redis lost it.

Rebuilt, per event:

- the inventory: capacity, limit and price per tier from Postgres; ``sold`` = the valid or
  used tickets in Postgres once every succeeded PaymentIntent of the event that Postgres
  does not know has been written there too, through the committer's idempotent writer
  (tickets signed as checkout signs them: their ids derive from the order, so a buyer's
  tickets come out the same); ``held`` = 0, since holds lived only in Redis;
- the on-sale schedule, the fair-start seed and the armed set, by :func:`catalog.arm`;
- the promo codes, each with its confirmed uses (``promo_codes.used_count``), by
  :func:`onsale.promo.codes.arm`; the presale's access codes by
  :func:`onsale.queue.access.restore`;
- the waiting room, empty: a pre-queue before ``opens_at``, an open queue after it,
  closed after ``closes_at`` (the scripts read that from the schedule).

A paid order is rebuilt from its PaymentIntent: amount, currency and ``metadata``
(``order_id``, ``hold_id``; ``items`` as ``"<tier_id> <qty> ..."``, ``email``, ``name``,
``visitor_id`` when checkout puts them there). Without ``items`` the tiers are told from
the amount when exactly one combination of tickets within the limits makes it; when none
or several do, the event is refused (or, with ``refund_unresolved``, the payment is
refunded). A payment refunded in Stripe becomes a refunded order; a paid order whose
tickets no longer fit the capacity is refunded, as a late payment would be.

Not rebuilt: the per-buyer counts (``keys.owners``) start empty, because an order's
visitor id is kept only in Redis and in no Postgres column; live holds, queue places,
admissions and checkout idempotency records are gone: buyers join and hold again.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import keys, signing
from onsale.checkout.models import Item, Order, OrderStatus, Ticket
from onsale.checkout.payments import Payments
from onsale.checkout.stream import lag
from onsale.checkout.writer import Malformed, prepared, write_each, write_executemany
from onsale.config import Settings
from onsale.connections import RedisClient, redis_client
from onsale.db import create_pool
from onsale.domain import DomainError
from onsale.events import catalog
from onsale.events.errors import EventRejected
from onsale.events.models import Event, Tier
from onsale.inventory import Inventory
from onsale.promo import codes as promo_codes
from onsale.queue import access as access_codes
from onsale.queue.room import WaitingRoom
from onsale.tickets import qr

#: How long one recover may hold an event's recovery lock.
LOCK_MS = 10 * 60 * 1000
#: Combinations tried when telling an order's tiers from its amount.
_SEARCH_BUDGET = 200_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_CANDIDATES_SQL = """
SELECT e.id::text FROM events e JOIN onsales o ON o.event_id = e.id
WHERE e.status NOT IN ('cancelled', 'completed')
  AND (o.closes_at IS NULL OR o.closes_at > now())
  AND coalesce(e.ends_at, e.starts_at) > now()
ORDER BY o.opens_at, e.id
"""
_SOLD_SQL = """
SELECT t.id::text AS tier_id,
       count(k.id) FILTER (WHERE k.status IN ('valid', 'used', 'refunded')) AS sold
FROM ticket_tiers t LEFT JOIN tickets k ON k.tier_id = t.id
WHERE t.event_id = $1 GROUP BY t.id
"""
_KNOWN_SQL = (
    "SELECT id::text FROM orders WHERE event_id = $1 AND status IN ('confirmed', 'refunded')"
)


class Refused(Exception):
    """This event is left as it is; the message says why, in one line."""


class Outcome(msgspec.Struct):
    event_id: str
    title: str = ""
    refused: str = ""
    #: Tier name -> (sold, capacity) as armed.
    sold: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    committed: list[str] = msgspec.field(default_factory=list)
    refunded: list[str] = msgspec.field(default_factory=list)
    room: str = ""

    def text(self) -> str:
        name = f"event {self.event_id}" + (f" ({self.title})" if self.title else "")
        if self.refused:
            return f"{name}: refused: {self.refused}"
        tiers = ", ".join(f"{t} {s}/{c}" for t, (s, c) in self.sold.items())
        lines = [f"{name}: recovered; sold {tiers}; waiting room {self.room}"]
        lines += [f"  paid order {o}: rebuilt from Stripe, committed" for o in self.committed]
        lines += [f"  paid order {o}: recorded as refunded" for o in self.refunded]
        return "\n".join(lines)


def state_keys(event_id: str) -> dict[str, str]:
    """What arming writes: while any of these exists, the event's state is live."""
    return {
        "inventory": keys.inventory(event_id),
        "on-sale schedule": keys.onsale(event_id),
        "waiting room": keys.queue_state(event_id),
    }


async def live_state(redis: RedisClient, event_id: str) -> list[str]:
    """The names of the event's state keys that exist in Redis."""
    return [name for name, key in state_keys(event_id).items() if await redis.exists(key)]


async def candidates(pool: asyncpg.Pool, redis: RedisClient) -> list[str]:
    """Events whose sale is not over and whose state is missing in Redis."""
    return [r[0] for r in await pool.fetch(_CANDIDATES_SQL) if not await live_state(redis, r[0])]


def tickets(key: Ed25519PrivateKey, order: Order) -> list[Ticket]:
    """An order's tickets exactly as ``Checkout._tickets`` issues them."""
    out: list[Ticket] = []
    for item in order.items:
        for _ in range(item.quantity):
            tid = qr.ticket_id(order.order_id, len(out))
            out.append(Ticket(tid, item.tier_id, qr.sign(key, tid, order.event_id)))
    return out


def items_from_metadata(value: str, tiers: Sequence[Tier]) -> list[Item] | None:
    """``"<tier_id> <qty> ..."`` (a hold record's items) as items; None if malformed."""
    by_id, words = {t.id: t for t in tiers}, value.split()
    if not words or len(words) % 2:
        return None
    items = []
    for tier_id, qty in zip(words[::2], words[1::2], strict=True):
        if tier_id not in by_id or not qty.isdigit() or int(qty) < 1:
            return None
        items.append(Item(tier_id, int(qty), by_id[tier_id].price))
    return items


def items_from_amount(amount: int, tiers: Sequence[Tier], most: int) -> list[Item] | None:
    """The one combination of priced tickets, within each tier's limit and ``most`` in all,
    whose prices add up to ``amount``; None when there is none or more than one (or the
    search is too large to tell). Free tickets in a paid order cannot be told at all."""
    priced = [t for t in tiers if t.price > 0]
    found: list[list[int]] = []
    budget = _SEARCH_BUDGET

    def walk(i: int, left: int, total: int, qty: list[int]) -> None:
        nonlocal budget
        budget -= 1
        if len(found) > 1 or budget < 0:
            return
        if left == 0:
            found.append(qty + [0] * (len(priced) - len(qty)))
            return
        if i == len(priced):
            return
        t = priced[i]
        limit = t.per_order_limit or catalog.DEFAULT_TIER_LIMIT
        for q in range(min(left // t.price, limit, t.capacity, most - total) + 1):
            walk(i + 1, left - q * t.price, total + q, [*qty, q])

    walk(0, amount, 0, [])
    if len(found) != 1 or budget < 0 or amount <= 0:
        return None
    return [Item(t.id, q, t.price) for t, q in zip(priced, found[0], strict=True) if q]


def _clean(text: Any) -> str:
    return _CONTROL.sub("", str(text or ""))[:254]


def rebuild(intent: Any, metadata: dict[str, str], event: Event, items: list[Item]) -> Order:
    """A paid order as checkout had it, from its PaymentIntent; confirmed, without tickets."""
    data = intent.to_dict() if hasattr(intent, "to_dict") else dict(intent)
    shipping = data.get("shipping") or {}
    created = int(data.get("created") or time.time())
    return Order(
        order_id=metadata["order_id"],
        event_id=event.id,
        hold_id=metadata.get("hold_id", ""),
        email=_clean(metadata.get("email") or data.get("receipt_email")),
        name=_clean(metadata.get("name") or shipping.get("name")),
        amount=int(data["amount"]),
        currency=str(data["currency"]).upper(),
        items=items,
        status=OrderStatus.CONFIRMED,
        payment_intent_id=str(data["id"]),
        created_ms=created * 1000,
        confirmed_ms=int(time.time() * 1000),
        visitor_id=metadata.get("visitor_id", ""),
        promo_code=_clean(metadata.get("promo_code")).upper()[:40],
        discount=_discount(metadata.get("discount")),
    )


def _discount(value: str | None) -> int:
    """The discount checkout put in the metadata (minor units), 0 if none or malformed."""
    return int(value) if value and value.isdigit() and len(value) < 16 else 0


async def _refunded(payments: Payments, payment_intent_id: str) -> bool:
    """Whether Stripe has a refund of it (counted as ``onsale reconcile`` counts them)."""
    page = await payments.client.v1.refunds.list_async(
        params={"payment_intent": payment_intent_id, "limit": 100}
    )
    return any(r.status in ("succeeded", "pending") for r in page.data)


def _fits(order: Order, sold: dict[str, int], event: Event) -> bool:
    capacity = {t.id: t.capacity for t in event.tiers}
    return all(sold.get(i.tier_id, 0) + i.quantity <= capacity[i.tier_id] for i in order.items)


async def _lost_orders(
    pool: asyncpg.Pool,
    payments: Payments,
    key: Ed25519PrivateKey,
    event: Event,
    *,
    refund_unresolved: bool,
) -> list[Order]:
    """Every succeeded payment of the event that Postgres does not know, as a final order:
    confirmed with its tickets, or refunded. Raises :class:`Refused` when one cannot be."""
    eid = uuid.UUID(event.id)
    known = {r[0] for r in await pool.fetch(_KNOWN_SQL, eid)}
    sold = {r["tier_id"]: r["sold"] for r in await pool.fetch(_SOLD_SQL, eid)}
    paid = await payments.succeeded_intents(event.id)
    # The first payment of an order wins (reconcile names a second one); oldest first, so
    # tickets go to those who paid first when they no longer all fit.
    lost: dict[str, tuple[Any, dict[str, str]]] = {}
    for intent, metadata in sorted(paid, key=lambda p: (p[0].created, p[0].id)):
        order_id = metadata.get("order_id", "")
        if order_id and order_id not in known:
            lost.setdefault(order_id, (intent, metadata))
    orders, unresolved = [], []
    for order_id, (intent, metadata) in lost.items():
        refunded = await _refunded(payments, intent.id)
        items = (
            items_from_metadata(metadata["items"], event.tiers)
            if "items" in metadata
            else items_from_amount(intent.amount, event.tiers, catalog.buyer_limit(event))
        )
        order = rebuild(intent, metadata, event, items or [])
        if not refunded and items is None and not refund_unresolved:
            unresolved.append(f"{order_id} ({intent.id}, {intent.amount} {intent.currency})")
            continue
        if not refunded and (items is None or not _fits(order, sold, event)):
            # Paid, and no tickets can be given: the money goes back, once (checkout's key).
            await payments.refund(intent.id, order_id)
            refunded = True
        if refunded:
            order.status = OrderStatus.REFUNDED
        else:
            order.tickets = tickets(key, order)
            for item in order.items:
                sold[item.tier_id] = sold.get(item.tier_id, 0) + item.quantity
        orders.append(order)
    if unresolved:
        raise Refused(
            f"{len(unresolved)} paid order(s) whose tiers Stripe does not say and the amount "
            f"cannot tell: {', '.join(unresolved)}; refund them (or run again with "
            "--refund-unresolved) and recover again"
        )
    return orders


async def _commit(pool: asyncpg.Pool, orders: list[Order]) -> None:
    try:
        batch = prepared(orders)
    except Malformed as exc:
        raise Refused(f"a paid order cannot be written: {exc}") from None
    async with pool.acquire() as conn:
        # A pooled connection is a proxy of one; the writer needs nothing else.
        failed = await write_each(cast(asyncpg.Connection, conn), write_executemany, batch)
    if failed:
        why = "; ".join(f"{o.order_id}: {reason}" for o, reason in failed)
        raise Refused(f"Postgres refused {len(failed)} rebuilt order(s): {why}")


async def _arm(redis: RedisClient, pool: asyncpg.Pool, event: Event, outcome: Outcome) -> None:
    """Sold first, while the event has no ``hold_ms`` (holds refuse it as unknown), then
    arming as event creation does: no moment where a hold could take a sold ticket."""
    rows = await pool.fetch(_SOLD_SQL, uuid.UUID(event.id))
    sold = {r["tier_id"]: int(r["sold"]) for r in rows}
    over = [t.name for t in event.tiers if sold.get(t.id, 0) > t.capacity]
    if over:
        raise Refused(f"more tickets in Postgres than capacity in tier(s) {', '.join(over)}")
    fields: dict[str, int] = {}
    for t in event.tiers:
        fields |= {f"{t.id}:sold": sold.get(t.id, 0), f"{t.id}:held": 0}
    await redis.hset(keys.inventory(event.id), mapping=fields)
    await catalog.arm(redis, Inventory(redis), event, await catalog.seed_of(pool, event.id))
    # Promo codes with their confirmed uses (Postgres's used_count; the holds are gone).
    await promo_codes.arm(pool, redis, event.id)
    await access_codes.restore(pool, redis, event.id)  # the presale's, uses from nothing
    outcome.sold = {t.name: (sold.get(t.id, 0), t.capacity) for t in event.tiers}
    now = datetime.now(UTC)
    o = event.onsale
    if o.closes_at and now >= o.closes_at:
        outcome.room = "closed (the sale has closed)"
    elif now >= o.opens_at:
        await WaitingRoom(redis).advance(event.id)  # freezes the (empty) pre-queue now
        outcome.room = "open, queue empty"
    else:
        outcome.room = f"pre-queue, empty (opens {o.opens_at.isoformat()})"


async def recover_event(
    pool: asyncpg.Pool,
    redis: RedisClient,
    payments: Payments,
    key: Ed25519PrivateKey,
    event_id: str,
    *,
    refund_unresolved: bool = False,
) -> Outcome:
    """Rebuild one event, or say why not (``Outcome.refused``); never touches live state."""
    outcome = Outcome(event_id)
    try:
        event = await catalog.get(pool, event_id)
    except EventRejected:
        outcome.refused = "no such event in Postgres"
        return outcome
    outcome.title = event.title
    if event.status == "cancelled":
        outcome.refused = "the event is cancelled; there is nothing to sell"
        return outcome
    lock = keys.recovery(event_id)
    token = uuid.uuid4().hex
    if not await redis.set(lock, token, nx=True, px=LOCK_MS):
        outcome.refused = "another recover of this event is running"
        return outcome
    try:
        live = await live_state(redis, event_id)
        if live:
            raise Refused(
                f"its state exists in Redis ({', '.join(live)}); recover never overwrites "
                "live state"
            )
        behind = await lag(redis, event_id)
        if behind.pending:
            raise Refused(f"{behind.pending} orders on its stream are not committed yet; "
                          "let the committer drain them first")  # fmt: skip
        orders = await _lost_orders(pool, payments, key, event, refund_unresolved=refund_unresolved)
        if orders:
            await _commit(pool, orders)
        outcome.committed = [o.order_id for o in orders if o.status is OrderStatus.CONFIRMED]
        outcome.refunded = [o.order_id for o in orders if o.status is OrderStatus.REFUNDED]
        await _arm(redis, pool, event, outcome)
    except Refused as exc:
        outcome.refused = str(exc)
    except DomainError as exc:  # Stripe refused a refund: nothing is armed; a rerun goes on
        outcome.refused = exc.detail or str(exc)
    finally:
        if await redis.get(lock) == token:
            await redis.delete(lock)
    return outcome


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(
    settings: Settings,
    event_ids: Sequence[str] = (),
    *,
    refund_unresolved: bool = False,
    out: TextIO | None = None,
    progress: Callable[[str], None] = _stderr,
) -> int:
    """Recover the given events (default: every event whose sale is not over and whose
    state is missing); 0 when every one was recovered, 1 when any was refused."""
    out = out or sys.stdout
    key = signing.load(settings.security.signing_key)
    redis = redis_client(settings.redis.url, cluster=settings.redis.cluster)
    pool = await create_pool(settings.database.url, min_size=1, max_size=2)
    payments = Payments(settings.stripe)
    outcomes = []
    try:
        events = list(event_ids) or await candidates(pool, redis)
        if not events:
            print("recover: no event whose sale is not over is missing its state", file=out)
            return 0
        for i, event_id in enumerate(events, 1):
            progress(f"[{i}/{len(events)}] recovering event {event_id} ...")
            outcome = await recover_event(
                pool, redis, payments, key, event_id, refund_unresolved=refund_unresolved
            )
            print(outcome.text(), file=out, flush=True)
            outcomes.append(outcome)
    finally:
        await payments.aclose()
        await pool.close()
        await redis.aclose()
    refused = sum(1 for o in outcomes if o.refused)
    print(f"recover: {len(outcomes) - refused} event(s) recovered, {refused} refused", file=out)
    return 1 if refused else 0
