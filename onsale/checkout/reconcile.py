"""``onsale reconcile``: Redis, Postgres and Stripe compared, every difference named.

Per tier, the tickets Redis sold against the valid or used tickets in Postgres. Per order,
every succeeded PaymentIntent of the event (by its ``metadata.order_id``) against the
order in Postgres: confirmed or refunded, with that PaymentIntent and amount, its tickets,
and a refund in Stripe when refunded; and every order in Postgres against its payment
(none for a free order). Differences are facts, not verdicts: while the committer lags,
a paid order is missing in Postgres until it catches up, and the report says so.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import asyncpg
import msgspec

from onsale import keys
from onsale.checkout.payments import Payments
from onsale.checkout.stream import lag
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


class EventReport(msgspec.Struct):
    event_id: str
    title: str = ""
    differences: list[str] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    tiers: int = 0
    orders: int = 0
    payments: int = 0

    def text(self) -> str:
        name = f"event {self.event_id}" + (f" ({self.title})" if self.title else "")
        if not self.differences:
            head = (f"{name}: clean ({self.tiers} tiers, {self.orders} orders, "
                    f"{self.payments} payments)")  # fmt: skip
        else:
            head = f"{name}: {len(self.differences)} difference(s)"
        return "\n".join([head, *(f"  - {d}" for d in self.differences),
                          *(f"  note: {n}" for n in self.notes)])  # fmt: skip


def _money(amount: int, currency: str) -> str:
    return f"{amount} {currency.upper()}"


async def _refunded(payments: Payments, payment_intent_id: str) -> bool:
    page = await payments.client.v1.refunds.list_async(
        params={"payment_intent": payment_intent_id, "limit": 100}
    )
    return any(r.status in ("succeeded", "pending") for r in page.data)


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


async def _payments(payments: Payments, eid: uuid.UUID, report: EventReport) -> dict[str, Any]:
    """The event's succeeded PaymentIntents by order id (the first when paid twice)."""
    intents: dict[str, list[Any]] = {}
    for intent, metadata in await payments.succeeded_intents(str(eid)):
        order_id = metadata.get("order_id")
        if not order_id:
            report.differences.append(f"PaymentIntent {intent.id} succeeded with no order_id")
            continue
        intents.setdefault(order_id, []).append(intent)
    report.payments = sum(len(v) for v in intents.values())
    for order_id, paid in sorted(intents.items()):
        if len(paid) > 1:
            report.differences.append(
                f"order {order_id}: paid {len(paid)} times ({', '.join(p.id for p in paid)})"
            )
    return {order_id: paid[0] for order_id, paid in intents.items()}


async def _orders(
    conn: asyncpg.Connection, payments: Payments, eid: uuid.UUID, report: EventReport
) -> None:
    intents = await _payments(payments, eid, report)
    orders = {str(r["id"]): r for r in await conn.fetch(_ORDERS_SQL, eid)}
    report.orders = len(orders)
    say = report.differences.append
    for order_id, intent in sorted(intents.items()):
        paid = f"PaymentIntent {intent.id} succeeded ({_money(intent.amount, intent.currency)})"
        row = orders.get(order_id)
        if row is None:
            say(f"order {order_id}: {paid}, no such order in Postgres")
        elif row["status"] not in ("confirmed", "refunded"):
            say(f"order {order_id}: {paid}, the order is {row['status']} in Postgres")
    for order_id, row in sorted(orders.items()):
        for problem in await _order_problems(payments, row, intents.get(order_id)):
            label = f"order {order_id} ({row['status']}, {_money(row['amount'], row['currency'])})"
            say(f"{label}: {problem}")


async def _order_problems(payments: Payments, row: asyncpg.Record, intent: Any) -> list[str]:
    """What is wrong with one order in Postgres, given its succeeded PaymentIntent if any."""
    status, pi, found = row["status"], row["payment_intent_id"], []
    if status == "confirmed" and row["tickets"] != row["ordered"]:
        found.append(f"{row['ordered']} tickets ordered, {row['tickets']} valid or used "
                     "tickets in Postgres")  # fmt: skip
    if status == "refunded" and row["tickets"]:
        found.append(f"refunded, yet {row['tickets']} of its tickets are valid or used")
    if status not in ("confirmed", "refunded"):
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
    if status == "refunded" and not await _refunded(payments, pi):
        found.append(f"refunded in Postgres, but Stripe has no refund of {pi}")
    return found


async def reconcile_event(
    conn: asyncpg.Connection, redis: RedisClient, payments: Payments, event_id: str
) -> EventReport:
    report = EventReport(event_id)
    try:
        eid = uuid.UUID(event_id)
    except ValueError:
        report.differences.append("not an event id (a UUID)")
        return report
    title = await conn.fetchval("SELECT title FROM events WHERE id = $1", eid)
    if title is None:
        report.differences.append("no such event in Postgres")
        return report
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
    await _orders(conn, payments, eid, report)
    return report


#: ``onsale reconcile`` without ``--event`` also takes events retired this recently: a
#: launch's event is retired soon after it ends, which is when it is reconciled.
RETIRED_DAYS = 7


async def default_events(redis: RedisClient) -> list[str]:
    """Every armed event and every event retired in the last :data:`RETIRED_DAYS` days."""
    since_ms = int(time.time() * 1000) - RETIRED_DAYS * 86_400_000
    armed = set(await redis.smembers(keys.ARMED_EVENTS))
    return sorted(armed | set(await retirement.retired_since(redis, since_ms)))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(
    settings: Settings,
    event_ids: Sequence[str] = (),
    *,
    out: TextIO | None = None,
    progress: Callable[[str], None] = _stderr,
) -> int:
    """Reconcile the given events (default: every armed event, and every event retired
    in the last :data:`RETIRED_DAYS` days); 0 when all are clean."""
    out = out or sys.stdout
    redis = redis_client(settings.redis.url, cluster=settings.redis.cluster)
    conn = await asyncpg.connect(settings.database.url)
    payments = Payments(settings.stripe)
    reports = []
    try:
        events = list(event_ids) or await default_events(redis)
        for i, event_id in enumerate(events, 1):
            progress(f"[{i}/{len(events)}] reconciling event {event_id} ...")
            report = await reconcile_event(conn, redis, payments, event_id)
            print(report.text(), file=out, flush=True)
            reports.append(report)
    finally:
        await payments.aclose()
        await conn.close()
        await redis.aclose()
    differ = sum(1 for r in reports if r.differences)
    if differ:
        print(f"reconcile: {differ} of {len(reports)} event(s) differ", file=out)
    else:
        print(f"reconcile: clean ({len(reports)} event(s))", file=out)
    return 1 if differ else 0
