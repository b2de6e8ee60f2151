"""Refunding a sold order: marked refunding, refunded through Stripe, then recorded refunded.

Each step is idempotent and the order of the steps survives a crash:

1. the Redis record moves ``confirmed`` -> ``refunding`` (compare-and-set, ``order_cas``);
   an order Redis no longer has (committed long ago) is put back there as ``refunding``
   from Postgres, so the mark is always in one place. What was asked (return to sale, the
   reason) is kept beside it (``keys.refund_requests``), first request wins;
2. Stripe refunds the PaymentIntent, idempotency key ``onsale-refund-<order id>`` (the same
   key as the late-payment refund: never two refunds of one order);
3. Postgres, in one transaction: the order (written with the committer's idempotent writer
   if it was not committed yet) becomes ``refunded``, its tickets ``refunded`` (the seat
   stays sold) or ``cancelled`` (back on sale), and the refund e-mail goes into the outbox;
4. Redis, in one script (``refund_order``): ``refunding`` -> ``refunded`` and, when asked,
   the tickets back on sale.

A refund cut off after step 1 is finished by asking again (or by cancelling the event):
an order found ``refunding`` is carried through the remaining steps.

``onsale reconcile`` counts ``valid``, ``used`` and ``refunded`` tickets against Redis's
sold: a refunded seat not put back on sale is still sold; ``cancelled`` ones were returned.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
from typing import Any, cast

import asyncpg
import msgspec

from onsale import keys
from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.checkout.finder import OrderFinder
from onsale.checkout.models import Item, Order, OrderOut, OrderStatus, Outcome, Ticket, encode
from onsale.checkout.orders import Checkout
from onsale.checkout.payments import Payments
from onsale.checkout.writer import batch_rows, write_executemany
from onsale.connections import RedisClient
from onsale.domain import DomainError
from onsale.mail import outbox
from onsale.reports import rollup

log = logging.getLogger("onsale.refunds")

#: The outbox message kind of a refund e-mail.
MAIL_KIND = outbox.ORDER_REFUNDED


class RefundRejection(StrEnum):
    ALREADY_REFUNDED = "already_refunded"
    #: Pending or failed: nothing was paid, so nothing can be given back.
    NOT_PAID = "order_not_paid"


class RefundRejected(DomainError):
    reason: RefundRejection

    def __init__(self, reason: RefundRejection, detail: str | None = None) -> None:
        super().__init__(reason, detail)


class RefundIn(msgspec.Struct):
    reason: str = ""
    return_to_sale: bool = False
    #: Only for an order not yet committed to Postgres on an event no longer armed; the
    #: order's own event is found from the order otherwise.
    event_id: str | None = None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def event_of_order(
    pool: asyncpg.Pool, redis: RedisClient, order_id: str, hint: str | None = None
) -> str | None:
    """The event an order belongs to: Postgres, else the Redis record of an armed event
    (or of ``hint``), else None."""
    oid = _uuid(order_id)
    if oid is None:
        return None
    found = await pool.fetchval("SELECT event_id FROM orders WHERE id = $1", oid)
    if found is not None:
        return str(found)
    candidates = [hint] if hint and _uuid(hint) else []
    candidates += sorted(await redis.smembers(keys.ARMED_EVENTS))
    for event_id in candidates:
        if await redis.hexists(keys.orders(event_id), order_id):
            return str(event_id)
    return None


_ORDER_SQL = "SELECT * FROM orders WHERE id = $1 AND event_id = $2"
_ITEMS_SQL = "SELECT tier_id, quantity, unit_price FROM order_items WHERE order_id = $1"
_TICKETS_SQL = "SELECT id, tier_id, qr_secret FROM tickets WHERE order_id = $1 ORDER BY id"
_VOID_SQL = """
UPDATE tickets SET status = $2::ticket_status
WHERE order_id = $1 AND status IN ('valid', 'refunded', 'cancelled') AND status <> $2::ticket_status
"""

_KEPT_SQL = "UPDATE tickets SET status = 'refunded' WHERE order_id = $1 AND status = 'cancelled'"

#: How long one request may carry a refund through before another may take it over.
LOCK_MS = 60_000


async def _stripe_refunded(payments: Payments, payment_intent_id: str) -> bool:
    page = await payments.client.v1.refunds.list_async(
        params={"payment_intent": payment_intent_id, "limit": 100}
    )
    return any(r.status in ("succeeded", "pending") for r in page.data)


class Refunds:
    def __init__(self, pool: asyncpg.Pool, checkout: Checkout, finder: OrderFinder) -> None:
        self.pool = pool
        self.checkout = checkout
        self.redis = checkout.redis
        self.finder = finder

    async def refund(
        self,
        event_id: str,
        order_id: str,
        *,
        reason: str = "",
        return_to_sale: bool = False,
        refunded_in_stripe: bool = False,
    ) -> OrderOut:
        """Refund the order (see the module); ``already_refunded`` if it was, ``order_not_paid``
        when pending or failed. ``refunded_in_stripe``: Stripe already refunded it (a
        ``charge.refunded`` webhook), so it is not asked again."""
        order = await self._mark(event_id, order_id, reason, return_to_sale)
        asked = await self.redis.hget(keys.refund_requests(event_id), order_id)
        back, _, why = (asked or f"{int(return_to_sale)}|{reason}").partition("|")
        await self._finish(order, back == "1", why, refunded_in_stripe=refunded_in_stripe)
        return await self.finder.find(event_id, order_id)

    async def resume(self, order: Order) -> Order:
        """Carry a ``refunding`` order through the remaining steps (the event's cancellation)."""
        asked = await self.redis.hget(keys.refund_requests(order.event_id), order.order_id)
        back, _, why = (asked or "0|").partition("|")
        return await self._finish(order, back == "1", why)

    async def _mark(self, event_id: str, order_id: str, reason: str, back: bool) -> Order:
        """The order, marked refunding (step 1), or a refusal."""
        while True:
            order = await self.checkout.load(event_id, order_id)
            if order is None:
                order = await self._from_postgres(event_id, order_id)
                if order is None:
                    raise CheckoutRejected(CheckoutRejection.ORDER_NOT_FOUND)
                if order.status is OrderStatus.CONFIRMED:
                    await self.redis.hsetnx(
                        keys.refund_requests(event_id), order_id, f"{int(back)}|{reason}"
                    )
                    order.status = OrderStatus.REFUNDING
                    if not await self.redis.hsetnx(keys.orders(event_id), order_id, encode(order)):
                        continue  # someone else put it back first: look again
                    return order
            if order.status is OrderStatus.REFUNDED:
                raise RefundRejected(RefundRejection.ALREADY_REFUNDED)
            if order.status is OrderStatus.REFUNDING:
                return order  # a refund cut off midway, or running now: finish it
            if order.status is not OrderStatus.CONFIRMED:
                raise RefundRejected(
                    RefundRejection.NOT_PAID,
                    f"this order is {order.status}: nothing was paid, so nothing can be refunded",
                )
            await self.redis.hsetnx(
                keys.refund_requests(event_id), order_id, f"{int(back)}|{reason}"
            )
            refunding = msgspec.structs.replace(order, status=OrderStatus.REFUNDING)
            if (
                await self.checkout._cas(refunding, (OrderStatus.CONFIRMED,), release_hold=False)
                == "ok"
            ):
                return refunding

    async def _from_postgres(self, event_id: str, order_id: str) -> Order | None:
        oid, eid = _uuid(order_id), _uuid(event_id)
        if oid is None or eid is None:
            return None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(_ORDER_SQL, oid, eid)
            if row is None:
                return None
            items = await conn.fetch(_ITEMS_SQL, oid)
            tickets = await conn.fetch(_TICKETS_SQL, oid)
        confirmed = row["confirmed_at"]
        return Order(
            order_id=order_id,
            event_id=event_id,
            hold_id=str(row["hold_id"] or ""),
            email=row["email"],
            name=row["name"],
            amount=row["amount"],
            currency=row["currency"],
            items=[Item(str(i["tier_id"]), i["quantity"], i["unit_price"]) for i in items],
            status=OrderStatus(row["status"]),
            payment_intent_id=row["payment_intent_id"],
            created_ms=int(row["created_at"].timestamp() * 1000),
            confirmed_ms=int(confirmed.timestamp() * 1000) if confirmed else None,
            tickets=[Ticket(str(t["id"]), str(t["tier_id"]), t["qr_secret"]) for t in tickets],
        )

    async def _finish(
        self, order: Order, back: bool, reason: str, *, refunded_in_stripe: bool = False
    ) -> Order:
        """Steps 2-4 for an order marked refunding, by one request at a time (a concurrent
        one is told to retry)."""
        lock, token = keys.refund_lock(order.event_id, order.order_id), uuid.uuid4().hex
        if not await self.redis.set(lock, token, nx=True, px=LOCK_MS):
            raise CheckoutRejected(
                CheckoutRejection.RETRY, "this order's refund is in progress; retry"
            )
        try:
            current = await self.checkout.load(order.event_id, order.order_id)
            if current is not None and current.status is not OrderStatus.REFUNDING:
                return current  # finished by the request that held the lock before
            return await self._steps(order, back, reason, refunded_in_stripe)
        finally:
            if await self.redis.get(lock) == token:
                await self.redis.delete(lock)

    async def _steps(
        self, order: Order, back: bool, reason: str, refunded_in_stripe: bool
    ) -> Order:
        if order.payment_intent_id and not refunded_in_stripe:
            payments = self.checkout.payments
            if payments is None:
                raise CheckoutRejected(
                    CheckoutRejection.PAYMENT_FAILED, "cannot refund: payments not configured"
                )
            # Asked first, not only left to the idempotency key: Stripe forgets keys after
            # 24 hours, and a refund resumed later must not be made twice.
            if not await _stripe_refunded(payments, order.payment_intent_id):
                await payments.refund(order.payment_intent_id, order.order_id)
        # A cancelled event never sells again (its capacity is its sold count).
        if back and await self.redis.hexists(keys.inventory(order.event_id), "cancelled"):
            back = False
        refunded = msgspec.structs.replace(order, status=OrderStatus.REFUNDED, client_secret=None)
        await self._record(refunded, back, reason)
        args: list[str | int | bytes] = [
            order.order_id,
            encode(refunded),
            int(back),
            len(order.items),
        ]
        for item in order.items:
            args += [item.tier_id, item.quantity]
        reply = await self.checkout.inventory.scripts.run(
            "refund_order", keys.inventory_keys(order.event_id), args
        )
        if reply[0] != "ok":
            # Recorded refunded meanwhile by the late-payment path (a redelivered payment
            # webhook finishing the refunding record), which puts nothing back on sale: nor
            # may Postgres then say the tickets went back.
            log.info("order %s was recorded refunded meanwhile (%s)", order.order_id, reply[1])
            if back:
                await self.pool.execute(_KEPT_SQL, uuid.UUID(order.order_id))
        return refunded

    async def _record(self, refunded: Order, back: bool, reason: str) -> None:
        """Step 3: Postgres and the refund e-mail, in one transaction."""
        async with self.pool.acquire() as pooled:
            conn = cast(asyncpg.Connection, pooled)
            async with conn.transaction():
                # Inserted if the committer has not written it yet (its later "confirmed"
                # entry then changes nothing: a refund is final), else made refunded.
                await write_executemany(conn, batch_rows([refunded]))
                await conn.execute(
                    _VOID_SQL, uuid.UUID(refunded.order_id), "cancelled" if back else "refunded"
                )
                await outbox.enqueue(
                    conn,
                    kind=MAIL_KIND,
                    recipient=refunded.email,
                    order_id=refunded.order_id,
                    payload={
                        "order_id": refunded.order_id,
                        "event_id": refunded.event_id,
                        "name": refunded.name,
                        "amount": refunded.amount,
                        "currency": refunded.currency,
                        "reason": reason,
                        "tickets": len(refunded.tickets),
                    },
                    dedupe=f"{MAIL_KIND}:{refunded.order_id}",
                )
        # The committer recounts only what it writes: the report learns of the refund here.
        await rollup.recount_written(self.pool, [refunded.order_id])

    async def charge_refunded(self, charge: dict[str, Any]) -> Outcome:
        """A ``charge.refunded`` webhook (a refund made in Stripe's dashboard): the order of
        its PaymentIntent refunded here too, Stripe not asked again. Partial refunds are
        left to people."""
        pi = charge.get("payment_intent")
        if not isinstance(pi, str) or not charge.get("refunded"):
            log.info("charge %s: not a full refund of a PaymentIntent", charge.get("id"))
            return Outcome.IGNORED
        found = await self._order_of_intent(pi, charge.get("metadata") or {})
        if found is None:
            log.warning("charge.refunded for PaymentIntent %s: no order of ours", pi)
            return Outcome.IGNORED
        event_id, order_id = found
        try:
            await self.refund(
                event_id, order_id, reason="refunded in Stripe", refunded_in_stripe=True
            )
        except RefundRejected as exc:
            log.info("charge.refunded for order %s: %s", order_id, exc.reason)
            return Outcome.DUPLICATE
        except CheckoutRejected as exc:
            if exc.reason is not CheckoutRejection.ORDER_NOT_FOUND:
                raise
            return Outcome.IGNORED
        return Outcome.REFUNDED

    async def _order_of_intent(
        self, payment_intent_id: str, metadata: dict[str, Any]
    ) -> tuple[str, str] | None:
        """(event id, order id) of a PaymentIntent: Postgres, else its metadata (the
        charge's, else the PaymentIntent's own, from Stripe)."""
        row = await self.pool.fetchrow(
            "SELECT event_id, id FROM orders WHERE payment_intent_id = $1", payment_intent_id
        )
        if row is not None:
            return str(row["event_id"]), str(row["id"])
        if not (metadata.get("event_id") and metadata.get("order_id")):
            payments = self.checkout.payments
            if payments is None:
                return None
            intent = await payments.client.v1.payment_intents.retrieve_async(payment_intent_id)
            metadata = intent.metadata.to_dict() if intent.metadata else {}
        event_id, order_id = metadata.get("event_id"), metadata.get("order_id")
        if isinstance(event_id, str) and isinstance(order_id, str):
            return event_id, order_id
        return None
