"""A promo code's uses under every way a hold ends, on the real scripts and real Redis.

Holds with and without the code are taken, released, left to expire (lazily, by another
hold, or by the sweeper), confirmed, and paid late (the confirm script taking tickets and
the use again). After every step, from what Redis holds and nothing the test keeps:
``uses <= max_uses``, and ``uses == live holds with the code + confirmed orders with it``
(the orders counted on the event's stream, where the confirm script puts them).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from onsale import keys
from onsale.inventory import HoldRejected, Inventory, Rejection, ReleaseOutcome, TierSpec
from tests.integration.inventory_support import FUTURE_MS, forget

pytestmark = pytest.mark.slow

T = TypeVar("T")

CODE = "MACHINE"
HOLD_SECONDS = 30
HOLD_MS = HOLD_SECONDS * 1000
PRICE = 2000
clock_steps = st.integers(0, 2 * HOLD_MS) | st.sampled_from((1, HOLD_MS - 1, HOLD_MS))


class PromoMachine(RuleBasedStateMachine):
    redis_url: ClassVar[str]
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        self.event = str(uuid.uuid4())
        self.now = FUTURE_MS
        self.inventory = Inventory(self.client, clock=lambda: self.now)
        self.max_uses = 0
        #: hold id -> (quantity, with the code), as asked.
        self.asked: dict[str, tuple[int, bool]] = {}
        #: Holds that took tickets: hold id -> its expiry (ms); gone once released.
        self.live: dict[str, int] = {}
        #: Orders confirmed (by hold id), and whether with the code.
        self.confirmed: dict[str, bool] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(forget(self.client, self.event))
            self.run(self.client.aclose())
        finally:
            self.loop.close()

    def _expected_uses(self) -> int:
        """Uses the code has now: unexpired holds with it, and confirmed orders with it."""
        holds = sum(1 for h, exp in self.live.items() if exp > self.now and self.asked[h][1])
        return holds + sum(self.confirmed.values())

    @initialize(max_uses=st.integers(1, 4), capacity=st.integers(2, 8))
    def arm(self, max_uses: int, capacity: int) -> None:
        self.max_uses = max_uses
        self.run(self.inventory.arm(self.event, HOLD_SECONDS, [TierSpec("ga", capacity, 0, PRICE)]))
        self.run(
            self.client.hset(
                keys.promo(self.event), mapping={CODE: f"p|25|{max_uses}|0|0|", f"{CODE}:used": 0}
            )
        )

    @rule(target=holds, qty=st.integers(1, 3), with_code=st.booleans())
    def hold(self, qty: int, with_code: bool) -> Any:
        hold_id = uuid.uuid4().hex
        self.asked[hold_id] = (qty, with_code)
        before = self._expected_uses()
        try:
            h = self.run(
                self.inventory.hold(
                    self.event, [("ga", qty)], hold_id=hold_id, promo_code=CODE if with_code else ""
                )
            )
        except HoldRejected as exc:
            if exc.reason is Rejection.PROMO_INVALID:
                # Refused only when every use is taken by an unexpired hold or an order.
                assert with_code and exc.tier_id == "used_up" and before >= self.max_uses
            else:
                assert exc.reason in (Rejection.SOLD_OUT, Rejection.INSUFFICIENT_INVENTORY)
            return hold_id
        assert not with_code or before < self.max_uses
        expected_discount = qty * PRICE // 4 if with_code else 0
        assert (h.discount, h.amount) == (expected_discount, qty * PRICE - expected_discount)
        self.live[hold_id] = h.expires_ms
        return hold_id

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        outcome = self.run(self.inventory.release(self.event, hold_id))
        if outcome is ReleaseOutcome.RELEASED:
            assert self.live.pop(hold_id) > self.now
        elif outcome is ReleaseOutcome.EXPIRED:
            # Due now, or expired earlier (by a refused payment, which the test saw end it).
            assert self.live.pop(hold_id, 0) <= self.now
        else:
            self.live.pop(hold_id, None)

    @rule(ms=clock_steps)
    def wait(self, ms: int) -> None:
        self.now += ms

    @rule(limit=st.sampled_from((1, 2, 10_000)))
    def sweep(self, limit: int) -> None:
        self.run(self.inventory.sweep(self.event, limit))

    def _confirm(self, hold_id: str, retake: bool) -> None:
        qty, with_code = self.asked[hold_id]
        order_id = f"order-{hold_id}"
        payload = json.dumps({"order_id": order_id, "promo_code": CODE if with_code else ""})
        was_live = self.live.get(hold_id, 0) > self.now
        try:
            done = self.run(
                self.inventory.confirm(
                    self.event, hold_id, order_id, payload,
                    retake_items=[("ga", qty)] if retake else None,
                    promo_code=CODE if with_code else "",
                )
            )  # fmt: skip
        except HoldRejected as exc:
            assert not was_live
            assert exc.reason in (
                Rejection.HOLD_EXPIRED, Rejection.SOLD_OUT, Rejection.INSUFFICIENT_INVENTORY,
                Rejection.PROMO_INVALID,
            )  # fmt: skip
            if exc.reason is Rejection.PROMO_INVALID:
                assert with_code and self._expected_uses() >= self.max_uses
            self.live.pop(hold_id, None)
            return
        if done.duplicate:
            assert hold_id in self.confirmed
            return
        assert hold_id not in self.confirmed
        assert done.retaken == (not was_live)
        self.live.pop(hold_id, None)
        self.confirmed[hold_id] = with_code

    @rule(hold_id=holds)
    def confirm(self, hold_id: str) -> None:
        """A payment in time (the hold's own tickets; refused once the hold has ended)."""
        self._confirm(hold_id, retake=False)

    @rule(hold_id=holds, ms=st.integers(0, 2 * HOLD_MS))
    def late_payment(self, hold_id: str, ms: int) -> None:
        """A payment some time later: the tickets and the use are taken again if needed."""
        self.now += ms
        self._confirm(hold_id, retake=True)

    @invariant()
    def uses_are_holds_and_orders(self) -> None:
        if not self.max_uses:
            return
        used = int(self.run(self.client.hget(keys.promo(self.event), f"{CODE}:used")) or 0)
        taken: dict[str, str] = self.run(self.client.hgetall(keys.holds_promo(self.event)))
        live = set(self.run(self.client.hkeys(keys.holds_data(self.event))))
        entries = self.run(self.client.xrange(keys.orders_stream(self.event)))
        orders = [json.loads(fields["data"]) for _, fields in entries]
        with_code = sum(1 for o in orders if o["promo_code"] == CODE)
        assert 0 <= used <= self.max_uses
        assert set(taken) <= live, "a hold's use outlived the hold"
        assert used == len(taken) + with_code, (used, taken, with_code)
        # What the stream says agrees with what the test saw confirmed.
        assert with_code == sum(self.confirmed.values())
        assert len(orders) == len(self.confirmed)


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_promo_uses_never_exceed_max_and_equal_holds_plus_orders(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    monkeypatch.setattr(PromoMachine, "redis_url", redis_url, raising=False)
    run_state_machine_as_test(PromoMachine, settings=SETTINGS)
