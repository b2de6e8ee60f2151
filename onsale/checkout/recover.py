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

The event's payments are found without scanning the Stripe account where it can be helped
(a real one holds millions of PaymentIntents): the PaymentIntents its orders in Postgres
name but Postgres has not seen paid (pending ones) are retrieved by id, and the paid orders
that only Redis knew, gone with it, are found by Stripe Search
(``metadata['event_id']:'<id>'``), one call per 100 of the event's payments. Where the
account has no Search (the emulator), they can only be found by listing the account, from
the event's creation where the API filters by ``created`` (the emulator does not: it is
listed whole), one call per 100 PaymentIntents of the account: a progress line says so and
what it costs. Every call goes through :mod:`onsale.checkout.stripe_calls` (paced,
retried); a Stripe failure refuses the event, before anything is written.

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

import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import asyncpg
import msgspec
import stripe
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import keys, signing
from onsale.checkout import stripe_calls
from onsale.checkout.models import Order, OrderStatus
from onsale.checkout.payments import Payments
from onsale.checkout.payments_found import Refused
from onsale.checkout.payments_found import paid as find_paid
from onsale.checkout.rebuilt import items_from_amount, items_from_metadata, rebuild, tickets
from onsale.checkout.stream import lag
from onsale.checkout.stripe_calls import Stripe, StripeCalls, describe
from onsale.checkout.writer import Malformed, prepared, write_each, write_executemany
from onsale.config import Settings
from onsale.connections import RedisClient, redis_client
from onsale.db import create_pool
from onsale.domain import DomainError
from onsale.events import catalog
from onsale.events.errors import EventRejected
from onsale.events.models import Event
from onsale.inventory import Inventory
from onsale.promo import codes as promo_codes
from onsale.queue import access as access_codes
from onsale.queue.room import WaitingRoom
from onsale.reports import rollup

#: How long one recover may hold an event's recovery lock.
LOCK_MS = 10 * 60 * 1000

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


def _fits(order: Order, sold: dict[str, int], event: Event) -> bool:
    capacity = {t.id: t.capacity for t in event.tiers}
    return all(sold.get(i.tier_id, 0) + i.quantity <= capacity[i.tier_id] for i in order.items)


def _quiet(_: str) -> None:
    return None


async def _lost_orders(
    pool: asyncpg.Pool,
    redis: RedisClient,
    api: Stripe,
    payments: Payments,
    key: Ed25519PrivateKey,
    event: Event,
    *,
    refund_unresolved: bool,
    progress: Callable[[str], None] = _quiet,
) -> list[Order]:
    """Every succeeded payment of the event that Postgres does not know, as a final order:
    confirmed with its tickets, or refunded. Raises :class:`Refused` when one cannot be."""
    eid = uuid.UUID(event.id)
    known = {r[0] for r in await pool.fetch(_KNOWN_SQL, eid)}
    sold = {r["tier_id"]: r["sold"] for r in await pool.fetch(_SOLD_SQL, eid)}
    paid = await find_paid(api, pool, redis, event, known, progress)
    # The first payment of an order wins (reconcile names a second one); oldest first, so
    # tickets go to those who paid first when they no longer all fit.
    lost: dict[str, tuple[Any, dict[str, str]]] = {}
    for intent, metadata in sorted(paid, key=lambda p: (p[0].created, p[0].id)):
        order_id = metadata.get("order_id", "")
        if order_id and order_id not in known:
            lost.setdefault(order_id, (intent, metadata))
    orders, unresolved = [], []
    for order_id, (intent, metadata) in lost.items():
        refunded = await stripe_calls.refunded(api, intent)
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
    # Written here, not by the committer: the report's rollups are recounted here too.
    await rollup.recount_written(pool, [o.order_id for o in orders])


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
    api: Stripe | None = None,
    progress: Callable[[str], None] = _quiet,
) -> Outcome:
    """Rebuild one event, or say why not (``Outcome.refused``); never touches live state.
    Stripe is read through ``api`` (paced and retried; by default over ``payments``'s
    client), and refunds go through ``payments`` (with checkout's idempotency keys)."""
    api = api or Stripe(payments.client)
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
        orders = await _lost_orders(
            pool, redis, api, payments, key, event,
            refund_unresolved=refund_unresolved, progress=progress,
        )  # fmt: skip
        if orders:
            await _commit(pool, orders)
        outcome.committed = [o.order_id for o in orders if o.status is OrderStatus.CONFIRMED]
        outcome.refunded = [o.order_id for o in orders if o.status is OrderStatus.REFUNDED]
        await _arm(redis, pool, event, outcome)
    except Refused as exc:
        outcome.refused = str(exc)
    except DomainError as exc:  # Stripe refused a refund: nothing is armed; a rerun goes on
        outcome.refused = exc.detail or str(exc)
    except stripe.AuthenticationError:
        raise  # no event can be recovered with a key Stripe refuses: the run stops (exit 2)
    except stripe.StripeError as exc:  # before any write but an idempotent refund
        outcome.refused = f"Stripe failed: {describe(exc)}; nothing is armed, recover again"
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
    calls: StripeCalls | None = None,
) -> int:
    """Recover the given events (default: every event whose sale is not over and whose
    state is missing); 0 when every one was recovered, 1 when any was refused."""
    out = out or sys.stdout
    key = signing.load(settings.security.signing_key)
    redis = redis_client(settings.redis.url, cluster=settings.redis.cluster)
    pool = await create_pool(settings.database.url, min_size=1, max_size=2)
    payments = Payments(settings.stripe)
    stripe_client, http = stripe_calls.client(settings.stripe)
    api = Stripe(stripe_client, calls or StripeCalls())
    outcomes = []
    try:
        events = list(event_ids) or await candidates(pool, redis)
        if not events:
            print("recover: no event whose sale is not over is missing its state", file=out)
            return 0
        for i, event_id in enumerate(events, 1):
            progress(f"[{i}/{len(events)}] recovering event {event_id} ...")
            sent, started = api.calls.sent, time.perf_counter()
            outcome = await recover_event(
                pool, redis, payments, key, event_id,
                refund_unresolved=refund_unresolved, api=api, progress=progress,
            )  # fmt: skip
            print(outcome.text(), file=out, flush=True)
            outcomes.append(outcome)
            progress(
                f"[{i}/{len(events)}] event {event_id}: "
                f"{'refused' if outcome.refused else 'recovered'}, "
                f"{api.calls.sent - sent} Stripe calls, {time.perf_counter() - started:.1f} s"
            )
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
        await payments.aclose()
        await pool.close()
        await redis.aclose()
    refused = sum(1 for o in outcomes if o.refused)
    print(f"recover: {len(outcomes) - refused} event(s) recovered, {refused} refused", file=out)
    return 1 if refused else 0
