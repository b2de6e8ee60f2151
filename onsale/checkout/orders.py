"""Checkout and confirmation: hold -> pending order + PaymentIntent -> confirmed (or refunded).

The order lives in Redis (``keys.orders``) until the committer has written it to Postgres;
its stream entry, appended by the confirm script, is what reaches Postgres. Everything
here is idempotent: a retried checkout, a redelivered or reordered webhook, a crash
between two steps and a second attempt all end in the same single order.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import keys
from onsale.checkout.models import (
    CheckoutIn,
    CheckoutOut,
    Item,
    Order,
    OrderStatus,
    Payment,
    Ticket,
    decode_order,
    encode,
)
from onsale.checkout.payments import Payments
from onsale.checkout.tokens import OrderTokens
from onsale.errors import ApiError, Code
from onsale.inventory import HoldRejected, Inventory, Rejection
from onsale.tickets import qr

log = logging.getLogger("onsale.checkout")

_ORDER_NS = uuid.UUID("0b7e9a1c-44a5-4d2b-8f0e-7c1d2e3f4a5b")
#: How long a concurrent duplicate checkout waits for the first one's PaymentIntent.
_DUPLICATE_WAIT_S = 10.0


def hold_event(hold_id: str) -> str:
    """Hold ids are ``<event_id>.<random>``: the event's slot is known without a lookup."""
    event_id, _, rest = hold_id.partition(".")
    try:
        return str(uuid.UUID(event_id)) if rest else ""
    except ValueError:
        return ""


def new_hold_id(event_id: str) -> str:
    return f"{event_id}.{uuid.uuid4().hex}"


def order_id_for(hold_id: str) -> str:
    """One order per hold: the id is derived from it, so duplicates converge."""
    return str(uuid.uuid5(_ORDER_NS, hold_id))


def _now_ms() -> int:
    return int(time.time() * 1000)


class Checkout:
    def __init__(
        self,
        redis: Any,
        inventory: Inventory,
        payments: Payments | None,
        key: Ed25519PrivateKey,
        tokens: OrderTokens,
    ) -> None:
        self.redis = redis
        self.inventory = inventory
        self.payments = payments
        self.key = key
        self.tokens = tokens

    async def load(self, event_id: str, order_id: str) -> Order | None:
        raw = await self.redis.hget(keys.orders(event_id), order_id)
        return decode_order(raw) if raw else None

    async def _save(self, order: Order) -> None:
        await self.redis.hset(keys.orders(order.event_id), order.order_id, encode(order))

    def answer(self, order: Order) -> CheckoutOut:
        payment = None
        if order.payment_intent_id and order.client_secret:
            payment = Payment("stripe", order.payment_intent_id, order.client_secret)
        return CheckoutOut(
            order_id=order.order_id,
            order_token=self.tokens.issue(order.event_id, order.order_id),
            status=str(order.status),
            amount=order.amount,
            currency=order.currency,
            payment=payment,
        )

    async def checkout(self, hold_id: str, idempotency_key: str, data: CheckoutIn) -> CheckoutOut:
        event_id = hold_event(hold_id)
        if not event_id:
            raise ApiError(Code.HOLD_EXPIRED)
        fingerprint = hashlib.sha256(f"{hold_id}\0{data.email}\0{data.name}".encode()).hexdigest()
        order_id = order_id_for(hold_id)
        claim = f"{fingerprint}|{order_id}"
        idem = keys.idempotency(event_id)
        if (
            not await self.redis.hsetnx(idem, idempotency_key, claim)
            and await self.redis.hget(idem, idempotency_key) != claim
        ):
            raise ApiError(Code.IDEMPOTENCY_CONFLICT)
        existing = await self.load(event_id, order_id)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise ApiError(Code.IDEMPOTENCY_CONFLICT, "this hold already has another order")
            return self.answer(await self._settled(existing))

        hold = await self.inventory.live_hold(event_id, hold_id)
        if hold is None or hold.expires_ms <= _now_ms():
            raise ApiError(Code.HOLD_EXPIRED)
        terms = await self.redis.hmget(keys.onsale(event_id), "currency")
        prices = {lv.tier_id: lv.price for lv in await self.inventory.levels(event_id)}
        items = [Item(tier, qty, prices[tier]) for tier, qty in hold.items]
        order = Order(
            order_id=order_id,
            event_id=event_id,
            hold_id=hold_id,
            email=data.email,
            name=data.name,
            amount=sum(i.quantity * i.unit_price for i in items),
            currency=terms[0] or "USD",
            items=items,
            created_ms=_now_ms(),
            fingerprint=fingerprint,
            visitor_id=hold.owner,
        )
        # The first request for this hold claims the order; a concurrent twin waits for it.
        if not await self.redis.hsetnx(keys.orders(event_id), order_id, encode(order)):
            current = await self.load(event_id, order_id)
            assert current is not None
            return self.answer(await self._settled(current))
        if order.amount == 0:
            return self.answer(await self.confirm(event_id, order_id, payment_intent_id=None))
        if self.payments is None:
            await self.redis.hdel(keys.orders(event_id), order_id)
            raise ApiError(Code.PAYMENT_PROVIDER_ERROR, "payments are not configured")
        try:
            order.payment_intent_id, order.client_secret = await self.payments.create_intent(order)
        except ApiError:
            await self.redis.hdel(keys.orders(event_id), order_id)  # let a retry start over
            raise
        await self._save(order)
        return self.answer(order)

    async def _settled(self, order: Order) -> Order:
        """The order once its PaymentIntent exists (a concurrent twin may be creating it)."""
        deadline = time.monotonic() + _DUPLICATE_WAIT_S
        while order.status is OrderStatus.PENDING and not order.payment_intent_id:
            if time.monotonic() > deadline:
                raise ApiError(Code.CONFLICT, "this checkout is still being processed; retry")
            await asyncio.sleep(0.05)
            current = await self.load(order.event_id, order.order_id)
            if current is None:
                raise ApiError(Code.CONFLICT, "this checkout failed; retry")
            order = current
        return order

    def _tickets(self, order: Order) -> list[Ticket]:
        tickets: list[Ticket] = []
        for item in order.items:
            for _ in range(item.quantity):
                tid = qr.ticket_id(order.order_id, len(tickets))
                tickets.append(Ticket(tid, item.tier_id, qr.sign(self.key, tid, order.event_id)))
        return tickets

    async def confirm(
        self, event_id: str, order_id: str, *, payment_intent_id: str | None
    ) -> Order:
        """Payment succeeded (or nothing to pay): sold, tickets issued, onto the stream.

        A payment that arrives after its hold expired takes the tickets again if they are
        free; if not, it is refunded and the order marked refunded.
        """
        order = await self.load(event_id, order_id)
        if order is None:
            raise ApiError(Code.ORDER_NOT_FOUND)
        if order.status in (OrderStatus.CONFIRMED, OrderStatus.REFUNDED):
            return order  # a redelivered webhook
        done = Order(**{f: getattr(order, f) for f in order.__struct_fields__})
        done.status, done.confirmed_ms, done.client_secret = OrderStatus.CONFIRMED, _now_ms(), None
        done.payment_intent_id = payment_intent_id or order.payment_intent_id
        done.tickets = self._tickets(order)
        items = [(i.tier_id, i.quantity) for i in order.items]
        try:
            await self.inventory.confirm(
                event_id, order.hold_id, order_id, encode(done), retake_items=items
            )
        except HoldRejected as exc:
            if exc.reason not in (Rejection.SOLD_OUT, Rejection.INSUFFICIENT_INVENTORY):
                raise
            return await self._refund(done)
        await self._save(done)
        if order.visitor_id:  # the buyer is done: their checkout slot goes to the next
            await self.redis.zrem(keys.queue_active(event_id), order.visitor_id)
        return done

    async def _refund(self, order: Order) -> Order:
        """Paid, but every ticket is gone: give the money back, once."""
        assert self.payments is not None and order.payment_intent_id
        log.warning("late payment for order %s and no tickets left: refunding", order.order_id)
        await self.payments.refund(order.payment_intent_id, order.order_id)
        order.status, order.tickets = OrderStatus.REFUNDED, []
        await self.redis.xadd(
            keys.orders_stream(order.event_id), {"order": order.order_id, "data": encode(order)}
        )
        await self.redis.hincrby(keys.order_counts(order.event_id), "refunded", 1)
        await self._save(order)
        return order

    async def fail(self, event_id: str, order_id: str) -> Order | None:
        """The payment failed: the tickets go back to the pool at once."""
        order = await self.load(event_id, order_id)
        if order is None or order.status is not OrderStatus.PENDING:
            return order  # unknown, or already settled (a reordered webhook)
        await self.inventory.release(event_id, order.hold_id)
        order.status, order.client_secret = OrderStatus.FAILED, None
        await self._save(order)
        return order
