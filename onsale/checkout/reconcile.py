"""``onsale reconcile``: Redis, Postgres and Stripe compared, every difference named.

Per tier, the tickets Redis sold against the valid or used tickets in Postgres. Per order,
every succeeded PaymentIntent of the event (by its ``metadata.order_id``) against the
order in Postgres: confirmed or refunded, with that PaymentIntent and amount, its tickets,
and a refund in Stripe when refunded; and every order in Postgres against its payment
(none for a free order). Differences are facts, not verdicts: while the committer lags,
a paid order is missing in Postgres until it catches up, and the report says so.

An event's payments are found without scanning the Stripe account (millions of
PaymentIntents in a real one): every PaymentIntent onsale creates is named by its order,
in Redis (pending or final) or Postgres, and is retrieved by id with its latest charge
(whose refunds answer "refunded?" in the same call). Where the account has Stripe's Search
API, ``metadata['event_id']:'<id>'`` also finds succeeded payments no order names, and
the intents it returns need no retrieval. The emulator has no Search: the first refusal
turns it off for the run. So one event costs about one call per order, whatever the
account holds. A Stripe error on one order, or one event, is a difference in that event's
report ("could not check: ..."), and the run goes on.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import asyncpg
import stripe
from redis.exceptions import RedisError

from onsale import keys
from onsale.checkout.event_report import EventReport
from onsale.checkout.payments import Payments
from onsale.checkout.stream import lag
from onsale.checkout.stripe_calls import (
    Stripe,
    StripeCalls,
    client,
    describe,
    refunded,
)
from onsale.checkout.stripe_side import _stripe_side, named_intents
from onsale.config import Settings
from onsale.connections import RedisClient, redis_client
from onsale.events import retirement
from onsale.inventory import Inventory

# A refunded ticket whose seat was not put back on sale is still sold in Redis; a cancelled
# one went back on sale (onsale/checkout/refunds.py).
_TIERS_SQL = """
SELECT t.id, t.name,
       count(k.id) FILTER (WHERE k.status IN ('valid', 'used', 'refunded')) AS tickets
FROM ticket_tiers t LEFT JOIN tickets k ON k.tier_id = t.id
WHERE t.event_id = $1
GROUP BY t.id, t.name, t.position ORDER BY t.position
"""
_ORDERS_SQL = """
SELECT o.id, o.status::text AS status, o.amount, o.currency, o.payment_intent_id,
       coalesce((SELECT sum(i.quantity) FROM order_items i WHERE i.order_id = o.id), 0)
           AS ordered,
       (SELECT count(*) FROM tickets k
        WHERE k.order_id = o.id AND k.status IN ('valid', 'used')) AS tickets
FROM orders o WHERE o.event_id = $1
"""
# Activity in Postgres, for --since: an order created or changed (confirmed, refunded), or
# an on-sale (or its presale) opening, in the window.
_ACTIVE_SQL = """
SELECT DISTINCT event_id::text AS id FROM orders WHERE greatest(created_at, updated_at) >= $1
UNION
SELECT event_id::text FROM onsales
WHERE (opens_at >= $1 AND opens_at <= now())
   OR (presale_opens_at >= $1 AND presale_opens_at <= now())
"""


def _money(amount: int, currency: str) -> str:
    return f"{amount} {currency.upper()}"


async def _tiers(
    conn: asyncpg.Connection, redis: RedisClient, eid: uuid.UUID, report: EventReport
) -> None:
    sold = {lv.tier_id: lv.sold for lv in await Inventory(redis).levels(str(eid))}
    rows = await conn.fetch(_TIERS_SQL, eid)
    report.tiers = len(rows)
    for row in rows:
        tier = f"tier {row['name']} ({row['id']})"
        redis_sold = sold.pop(str(row["id"]), None)
        if redis_sold is None:
            if row["tickets"]:
                report.differences.append(
                    f"{tier}: {row['tickets']} valid or used tickets in Postgres, "
                    "but the tier is not armed in Redis"
                )
        elif redis_sold != row["tickets"]:
            gap = redis_sold - row["tickets"]
            where = "missing in Postgres" if gap > 0 else "more in Postgres than sold"
            report.differences.append(
                f"{tier}: Redis sold {redis_sold}, Postgres has {row['tickets']} valid or "
                f"used tickets ({abs(gap)} {where})"
            )
    for tier_id, n in sold.items():
        report.differences.append(f"tier {tier_id}: armed in Redis (sold {n}), not in Postgres")


async def _orders(
    conn: asyncpg.Connection, redis: RedisClient, api: Stripe, eid: uuid.UUID, report: EventReport
) -> None:
    rows = await conn.fetch(_ORDERS_SQL, eid)
    named = await named_intents(redis, str(eid), rows)
    found = await _stripe_side(api, str(eid), named, report)
    say = report.differences.append
    for pi, why in sorted(found.unchecked.items()):
        say(f"order {named[pi]}: could not check PaymentIntent {pi}: {why}")
    for intent in found.orphans:
        say(f"PaymentIntent {intent.id} succeeded with no order_id")
    report.payments = sum(len(v) for v in found.paid.values())
    for order_id, paid in sorted(found.paid.items()):
        if len(paid) > 1:
            say(f"order {order_id}: paid {len(paid)} times ({', '.join(p.id for p in paid)})")
    intents = {order_id: paid[0] for order_id, paid in found.paid.items()}
    orders = {str(r["id"]): r for r in rows}
    report.orders = len(orders)
    for order_id, intent in sorted(intents.items()):
        paid_text = (f"PaymentIntent {intent.id} succeeded "
                     f"({_money(intent.amount, intent.currency)})")  # fmt: skip
        row = orders.get(order_id)
        if row is None:
            say(f"order {order_id}: {paid_text}, no such order in Postgres")
        elif row["status"] not in ("confirmed", "refunded"):
            say(f"order {order_id}: {paid_text}, the order is {row['status']} in Postgres")
    for order_id, row in sorted(orders.items()):
        # An order Stripe could not be asked about (said above) is still checked against
        # its tickets; its payment waits for a run that can ask.
        unchecked = row["payment_intent_id"] in found.unchecked
        try:
            problems = await _order_problems(api, row, intents.get(order_id), unchecked)
        except stripe.StripeError as exc:
            problems = [f"could not check its refund: {describe(exc)}"]
        for problem in problems:
            label = f"order {order_id} ({row['status']}, {_money(row['amount'], row['currency'])})"
            say(f"{label}: {problem}")


async def _order_problems(
    api: Stripe, row: asyncpg.Record, intent: Any, unchecked: bool = False
) -> list[str]:
    """What is wrong with one order in Postgres, given its succeeded PaymentIntent if any
    (``unchecked``: Stripe could not be asked, so only its tickets are checked)."""
    status, pi, found = row["status"], row["payment_intent_id"], []
    if status == "confirmed" and row["tickets"] != row["ordered"]:
        found.append(f"{row['ordered']} tickets ordered, {row['tickets']} valid or used "
                     "tickets in Postgres")  # fmt: skip
    if status == "refunded" and row["tickets"]:
        found.append(f"refunded, yet {row['tickets']} of its tickets are valid or used")
    if status not in ("confirmed", "refunded") or unchecked:
        return found
    if pi is None:
        if row["amount"]:
            found.append("not free, and no PaymentIntent in Postgres")
        return found
    if intent is None:
        return [*found, f"Stripe has no succeeded PaymentIntent for it (Postgres names {pi})"]
    if pi != intent.id:
        found.append(f"Postgres names PaymentIntent {pi}, Stripe's is {intent.id}")
    if intent.amount != row["amount"]:
        found.append(f"Stripe was paid {_money(intent.amount, intent.currency)}")
    if status == "refunded" and not await refunded(api, intent):
        found.append(f"refunded in Postgres, but Stripe has no refund of {pi}")
    return found


async def reconcile_event(
    conn: asyncpg.Connection,
    redis: RedisClient,
    payments: Payments | Stripe,
    event_id: str,
) -> EventReport:
    """One event's report; a failure to read it (Stripe, Redis or Postgres) is a difference
    ("could not check: ..."), never an exception."""
    api = payments if isinstance(payments, Stripe) else Stripe(payments.client)
    report = EventReport(event_id)
    try:
        eid = uuid.UUID(event_id)
    except ValueError:
        report.differences.append("not an event id (a UUID)")
        return report
    try:
        await _event(conn, redis, api, eid, report)
    except stripe.AuthenticationError:
        raise  # no event can be checked with a key Stripe refuses: the run stops (exit 2)
    except (stripe.StripeError, asyncpg.PostgresError, RedisError,
            OSError) as exc:  # fmt: skip
        report.differences.append(f"could not check: {describe(exc)}")
    return report


async def _event(
    conn: asyncpg.Connection, redis: RedisClient, api: Stripe, eid: uuid.UUID, report: EventReport
) -> None:
    event_id = str(eid)
    title = await conn.fetchval("SELECT title FROM events WHERE id = $1", eid)
    if title is None:
        report.differences.append("no such event in Postgres")
        return
    report.title = title
    behind = await lag(redis, event_id)
    if behind.pending:
        report.notes.append(
            f"the committer has {behind.pending} stream entries to write (the oldest "
            f"{behind.oldest_ms} ms old): orders missing in Postgres may only be late"
        )
    if behind.dead:
        report.notes.append(
            f"{behind.dead} entries are in the dead letters ({keys.dead_letters(event_id)})"
        )
    await _tiers(conn, redis, eid, report)
    await _orders(conn, redis, api, eid, report)


#: ``onsale reconcile`` without ``--event`` also takes events retired this recently: a
#: launch's event is retired soon after it ends, which is when it is reconciled.
RETIRED_DAYS = 7

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_window(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d`` -> seconds; a ValueError names what is accepted."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a window: {text!r} (a number and s, m, h or d, like 24h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


async def default_events(redis: RedisClient) -> list[str]:
    """Every armed event and every event retired in the last :data:`RETIRED_DAYS` days."""
    since_ms = int(time.time() * 1000) - RETIRED_DAYS * 86_400_000
    armed = set(await redis.smembers(keys.ARMED_EVENTS))
    return sorted(armed | set(await retirement.retired_since(redis, since_ms)))


async def active_events(
    conn: asyncpg.Connection, since_s: float, redis: RedisClient | None = None
) -> list[str]:
    """Events with activity in the last ``since_s`` seconds: an order created or updated in
    Postgres, the on-sale (or presale) opening, or, with ``redis``, an armed event's order
    confirmed or refunded in Redis (its stream's newest entry; Postgres may not have it yet
    when the committers are down, which is when it matters most)."""
    since = await conn.fetchval("SELECT now() - make_interval(secs => $1)", since_s)
    found = {r["id"] for r in await conn.fetch(_ACTIVE_SQL, since)}
    if redis is not None:
        since_ms = int(since.timestamp() * 1000)
        for event_id in await redis.smembers(keys.ARMED_EVENTS):
            newest = await redis.xrevrange(keys.orders_stream(event_id), count=1)
            if newest and int(str(newest[0][0]).split("-")[0]) >= since_ms:
                found.add(event_id)
    return sorted(found)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(
    settings: Settings,
    event_ids: Sequence[str] = (),
    *,
    since_s: float | None = None,
    out: TextIO | None = None,
    progress: Callable[[str], None] = _stderr,
    calls: StripeCalls | None = None,
) -> int:
    """Reconcile the given events (default: every armed event, and every event retired
    in the last :data:`RETIRED_DAYS` days; with ``since_s``, only those with activity in
    that window); 0 when all are clean, 1 when any differs."""
    out = out or sys.stdout
    redis = redis_client(settings.redis.url, cluster=settings.redis.cluster)
    stripe_client, http = client(settings.stripe)
    api = Stripe(stripe_client, calls or StripeCalls())
    reports = []
    try:
        conn = await asyncpg.connect(settings.database.url)
    except BaseException:
        await redis.aclose()
        await http.close_async()  # type: ignore[no-untyped-call]
        raise
    try:
        events = list(event_ids) or await default_events(redis)
        if since_s is not None:
            active = set(await active_events(conn, since_s, redis))
            events = [e for e in event_ids if e in active] if event_ids else sorted(active)
        for i, event_id in enumerate(events, 1):
            progress(f"[{i}/{len(events)}] reconciling event {event_id} ...")
            sent, started = api.calls.sent, time.perf_counter()
            report = await reconcile_event(conn, redis, api, event_id)
            print(report.text(), file=out, flush=True)
            reports.append(report)
            verdict = f"{len(report.differences)} difference(s)" if report.differences else "clean"
            progress(
                f"[{i}/{len(events)}] event {event_id}: {verdict}, {report.orders} orders, "
                f"{api.calls.sent - sent} Stripe calls, {time.perf_counter() - started:.1f} s"
            )
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
        await conn.close()
        await redis.aclose()
    differ = sum(1 for r in reports if r.differences)
    if differ:
        print(f"reconcile: {differ} of {len(reports)} event(s) differ", file=out)
    else:
        print(f"reconcile: clean ({len(reports)} event(s))", file=out)
    return 1 if differ else 0
