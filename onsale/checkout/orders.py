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

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import keys
from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.checkout.models import (
    CheckoutIn,
    CheckoutOut,
    Item,
    Order,
    OrderStatus,
    Outcome,
    PaidIntent,
    Payment,
    Ticket,
    decode_order,
    encode,
)
from onsale.checkout.payments import Payments
from onsale.checkout.tokens import OrderTokens
from onsale.connections import RedisClient
from onsale.events.terms import EventTerms
from onsale.inventory import HoldRejected, Inventory, Rejection
from onsale.inventory.holds import hold_event, order_id_for
from onsale.tickets import qr

log = logging.getLogger("onsale.checkout")

#: How long a concurrent duplicate checkout waits for the first one's PaymentIntent.
_DUPLICATE_WAIT_S = 10.0
#: A claimed order still without its PaymentIntent after this was cut off midway.
_CLAIM_STALE_MS = 5_000
#: How long an Idempotency-Key is remembered after its hold would have expired.
IDEMPOTENCY_GRACE_S = 3600


def _now_ms() -> int:
    return int(time.time() * 1000)


class Checkout:
    def __init__(
        self,
        redis: RedisClient,
        inventory: Inventory,
        payments: Payments | None,
        key: Ed25519PrivateKey,
        tokens: OrderTokens,
        terms: EventTerms | None = None,
    ) -> None:
        self.redis = redis
        self.inventory = inventory
        self.payments = payments
        self.key = key
        self.tokens = tokens
        #: The gateway's cache of events' terms (the currency never changes).
        self.terms = terms or EventTerms(redis)

    async def load(self, event_id: str, order_id: str) -> Order | None:
        raw = await self.redis.hget(keys.orders(event_id), order_id)
        return decode_order(raw) if raw else None

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
        """A pending order and its PaymentIntent for a live hold (confirmed at once if free).

        Nothing is written for a hold that is not live: a stream of made-up hold ids leaves
        no trace in Redis.
        """
        event_id = hold_event(hold_id)
        if not event_id:
            raise CheckoutRejected(CheckoutRejection.HOLD_EXPIRED)
        fingerprint = hashlib.sha256(f"{hold_id}\0{data.email}\0{data.name}".encode()).hexdigest()
        order_id = order_id_for(hold_id)
        claim = f"{fingerprint}|{order_id}"
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        idem = keys.idempotency(event_id, digest)
        existing = await self.load(event_id, order_id)
        if existing is not None:
            used = await self.redis.get(idem)
            if existing.fingerprint != fingerprint or used not in (None, claim):
                raise CheckoutRejected(
                    CheckoutRejection.IDEMPOTENCY_CONFLICT, "this hold already has another order"
                )
            return self.answer(await self._settled(existing))

        hold = await self.inventory.live_hold(event_id, hold_id)
        # Redis's clock, which ended the hold in the scripts: a gateway's clock a little
        # fast would refuse a live hold, a little slow would sell one that has ended.
        now = await self.inventory.now_ms()
        if hold is None or hold.expires_ms <= now:
            raise CheckoutRejected(CheckoutRejection.HOLD_EXPIRED)
        # Remembered while the hold lives and a while after: a retry finds the order itself.
        ttl = (hold.expires_ms - now) // 1000 + IDEMPOTENCY_GRACE_S
        if (
            not await self.redis.set(idem, claim, nx=True, ex=ttl)
            and await self.redis.get(idem) != claim
        ):
            raise CheckoutRejected(CheckoutRejection.IDEMPOTENCY_CONFLICT)
        currency, _ = await self.terms.get(event_id)
        prices = {lv.tier_id: lv.price for lv in await self.inventory.levels(event_id)}
        items = [Item(tier, qty, prices[tier]) for tier, qty in hold.items]
        subtotal = sum(i.quantity * i.unit_price for i in items)
        # The discount fixed on the hold (hold.lua); never more than what there is to pay.
        discount = min(hold.discount, subtotal)
        order = Order(
            order_id=order_id,
            event_id=event_id,
            hold_id=hold_id,
            email=data.email,
            name=data.name,
            amount=subtotal - discount,
            currency=currency,
            items=items,
            created_ms=now,
            fingerprint=fingerprint,
            visitor_id=hold.owner,
            promo_code=hold.promo_code,
            discount=discount,
        )
        # The first request for this hold claims the order; a concurrent twin waits for it.
        if not await self.redis.hsetnx(keys.orders(event_id), order_id, encode(order)):
            current = await self.load(event_id, order_id)
            assert current is not None
            return self.answer(await self._settled(current))
        return self.answer(await self._start(order))

    async def _start(self, order: Order) -> Order:
        """A claimed order: confirmed if free, else given its PaymentIntent. Idempotent (the
        intent's Stripe key is the order id), so a retry may finish a claim cut off midway."""
        if order.amount == 0:
            return await self._confirm_free(order)
        if self.payments is None:
            await self.redis.hdel(keys.orders(order.event_id), order.order_id)
            raise CheckoutRejected(CheckoutRejection.PAYMENT_FAILED, "payments are not configured")
        try:
            order.payment_intent_id, order.client_secret = await self.payments.create_intent(order)
        except CheckoutRejected:
            await self.redis.hdel(keys.orders(order.event_id), order.order_id)  # start over
            raise
        # Only over a pending record: a twin's payment may have confirmed it meanwhile.
        if await self._cas(order, (OrderStatus.PENDING,), release_hold=False) != "ok":
            current = await self.load(order.event_id, order.order_id)
            return current or order
        return order

    async def _confirm_free(self, order: Order) -> Order:
        """Nothing to pay: confirmed now, or, if the hold ran out and its tickets are gone,
        no order at all (``hold_expired``; there is no payment to give back)."""
        try:
            done, _ = await self.confirm(order.event_id, order.order_id, None)
        except HoldRejected:
            await self.redis.hdel(keys.orders(order.event_id), order.order_id)
            raise CheckoutRejected(CheckoutRejection.HOLD_EXPIRED) from None
        return done

    async def _settled(self, order: Order) -> Order:
        """The order once its PaymentIntent exists (a concurrent twin may be creating it)."""
        deadline = time.monotonic() + _DUPLICATE_WAIT_S
        while order.status is OrderStatus.PENDING and not order.payment_intent_id:
            if await self.inventory.now_ms() - order.created_ms > _CLAIM_STALE_MS:
                # The request that claimed it died midway (a killed worker, Redis lost):
                # finish its work rather than leave the buyer unable to pay until expiry.
                return await self._start(order)
            if time.monotonic() > deadline:
                raise CheckoutRejected(
                    CheckoutRejection.RETRY, "this checkout is still being processed; retry"
                )
            await asyncio.sleep(0.05)
            current = await self.load(order.event_id, order.order_id)
            if current is None:
                raise CheckoutRejected(CheckoutRejection.RETRY, "this checkout failed; retry")
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
        self, event_id: str, order_id: str, paid: PaidIntent | None
    ) -> tuple[Order, Outcome]:
        """Payment succeeded (``paid``; ``None``: nothing to pay): sold, tickets issued, onto
        the stream, and the order's record, all in one script.

        A payment that arrives after its hold expired or was released takes the tickets
        again if they are free and the buyer's limits allow; if not, it is refunded and the
        order marked refunded. A payment that does not match its order (another
        PaymentIntent, amount or currency) is logged, counted and refunded. For a free order
        a refusal is raised (:class:`HoldRejected`): there is nothing to refund.
        """
        order = await self.load(event_id, order_id)
        if order is None:
            raise CheckoutRejected(CheckoutRejection.ORDER_NOT_FOUND)
        if paid is not None:
            problem = _mismatch(order, paid)
            if problem:
                return await self._mismatched(order, paid, problem), Outcome.MISMATCH
            order.payment_intent_id = order.payment_intent_id or paid.id
        if order.status is OrderStatus.REFUNDING:
            return await self._finish_refund(order), Outcome.REFUNDED
        if order.status in (OrderStatus.CONFIRMED, OrderStatus.REFUNDED):
            return order, Outcome.DUPLICATE  # a redelivered webhook
        done = msgspec.structs.replace(
            order,
            status=OrderStatus.CONFIRMED,
            confirmed_ms=_now_ms(),
            client_secret=None,
            tickets=self._tickets(order),
        )
        limit = await self.redis.hget(keys.onsale(event_id), "buyer_limit")
        try:
            confirmation = await self.inventory.confirm(
                event_id,
                order.hold_id,
                order_id,
                encode(done),
                retake_items=[(i.tier_id, i.quantity) for i in order.items],
                owner=order.visitor_id,
                owner_limit=int(limit or 0),
                promo_code=order.promo_code,
            )
        except HoldRejected as exc:
            if exc.reason is Rejection.ORDER_SETTLED:  # a twin delivery is refunding it
                return await self.confirm(event_id, order_id, paid)
            if paid is None or exc.reason not in _REFUNDABLE:
                raise
            log.warning("late payment for order %s refused (%s): refunding", order_id, exc.reason)
            return await self._refund(order, (OrderStatus.PENDING, OrderStatus.FAILED))
        if confirmation.duplicate:
            current = await self.load(event_id, order_id)
            return current or done, Outcome.DUPLICATE
        return done, Outcome.CONFIRMED

    async def _mismatched(self, order: Order, paid: PaidIntent, problem: str) -> Order:
        """A payment that is not what the order asked for: never sold, always given back."""
        log.error(
            "payment %s does not match order %s (%s): refunding it",
            paid.id,
            order.order_id,
            problem,
        )
        if order.payment_intent_id in (None, paid.id) and order.status is not (
            OrderStatus.CONFIRMED
        ):
            order.payment_intent_id = paid.id
            refunded, _ = await self._refund(order, (OrderStatus.PENDING, OrderStatus.FAILED))
            return refunded
        # Another PaymentIntent than the order's own: give it back, leave the order alone.
        if self.payments is not None:
            await self.payments.refund(paid.id, paid.id)
        return order

    async def _refund(
        self, order: Order, expected: tuple[OrderStatus, ...]
    ) -> tuple[Order, Outcome]:
        """Paid, but not to be sold: mark it refunding (giving any live hold back), then
        refund through Stripe, then record the refund; each step idempotent."""
        refunding = msgspec.structs.replace(
            order, status=OrderStatus.REFUNDING, tickets=[], client_secret=None
        )
        if await self._cas(refunding, expected, release_hold=True) != "ok":
            current = await self.load(order.event_id, order.order_id)
            assert current is not None
            if current.status is not OrderStatus.REFUNDING:
                return current, Outcome.DUPLICATE  # a twin delivery confirmed it meanwhile
            refunding = current
        return await self._finish_refund(refunding), Outcome.REFUNDED

    async def _finish_refund(self, order: Order) -> Order:
        if self.payments is None or not order.payment_intent_id:
            raise CheckoutRejected(
                CheckoutRejection.PAYMENT_FAILED, "cannot refund: payments not configured"
            )
        await self.payments.refund(order.payment_intent_id, order.order_id)
        refunded = msgspec.structs.replace(order, status=OrderStatus.REFUNDED)
        reply = await self.inventory.scripts.run(
            "refund", keys.inventory_keys(order.event_id), [order.order_id, encode(refunded)]
        )
        if reply[0] != "ok":  # a twin delivery recorded it first
            return await self.load(order.event_id, order.order_id) or refunded
        return refunded

    async def _cas(
        self, order: Order, expected: tuple[OrderStatus, ...], *, release_hold: bool
    ) -> str:
        """Store ``order`` if the stored one is in an ``expected`` status; ``"ok"`` or the
        status it is in."""
        args = [
            self.inventory.now(),
            order.order_id,
            " ".join(expected),
            encode(order),
            order.hold_id if release_hold else "",
        ]
        return str(
            await self.inventory.scripts.run("order_cas", keys.inventory_keys(order.event_id), args)
        )

    async def fail(self, event_id: str, order_id: str) -> Order | None:
        """The payment failed: the tickets go back to the pool at once (the buyer may still
        pay with another card: the tickets are then taken again if they are free)."""
        order = await self.load(event_id, order_id)
        if order is None or order.status is not OrderStatus.PENDING:
            return order  # unknown, or already settled (a reordered webhook)
        failed = msgspec.structs.replace(order, status=OrderStatus.FAILED, client_secret=None)
        if await self._cas(failed, (OrderStatus.PENDING,), release_hold=True) == "ok":
            return failed
        return await self.load(event_id, order_id)


async def intents_named(redis: RedisClient, event_id: str) -> dict[str, str]:
    """PaymentIntent id -> the order naming it, over the event's orders in Redis (pending
    ones too: a payment whose webhook never came is found this way). A record that cannot
    be read is left out: the committer's dead letters report it."""
    named: dict[str, str] = {}
    async for _, raw in redis.hscan_iter(keys.orders(event_id), count=1000):
        try:
            order = decode_order(raw)
        except msgspec.DecodeError:
            continue
        if order.payment_intent_id:
            named[order.payment_intent_id] = order.order_id
    return named


#: A late payment refused for these is refunded: no tickets left, the buyer's limits, or
#: no use left of the order's promo code (its discount was fixed and paid at hold time).
_REFUNDABLE = (
    Rejection.SOLD_OUT,
    Rejection.INSUFFICIENT_INVENTORY,
    Rejection.LIMIT_EXCEEDED,
    Rejection.PROMO_INVALID,
)


def _mismatch(order: Order, paid: PaidIntent) -> str:
    """What about a payment does not match its order ('' when it all does)."""
    if order.payment_intent_id and paid.id != order.payment_intent_id:
        return f"payment intent {paid.id}, the order's is {order.payment_intent_id}"
    if paid.amount != order.amount:
        return f"received {paid.amount}, the order is {order.amount}"
    if paid.currency.upper() != order.currency.upper():
        return f"currency {paid.currency}, the order's is {order.currency}"
    return ""
