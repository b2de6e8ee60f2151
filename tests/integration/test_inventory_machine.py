"""The inventory never oversells: the real Lua scripts on real Redis, step for step against a
plain Python model (``inventory_model``), with time as a rule through an injected clock.

The model is written like the scripts, so on its own it would agree with a script that
broke a rule. The rules themselves are therefore checked too, after every step, from what
Redis holds and nothing the model keeps (``rules_hold``): no owner ever has more tickets,
held plus bought, than its limits allow, and every ticket sold is in an order on the stream.
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
    precondition,
    rule,
    run_state_machine_as_test,
)

from onsale import keys
from onsale.inventory import HoldRejected, Inventory, ReleaseOutcome, TierSpec
from tests.integration.inventory_model import (
    Confirmed,
    Duplicate,
    Held,
    Items,
    Model,
    Refusal,
)
from tests.integration.inventory_support import FUTURE_MS, forget

pytestmark = pytest.mark.slow

T = TypeVar("T")

HOLD_SECONDS = 30
HOLD_MS = HOLD_SECONDS * 1000
PRICES = {"ga": 4500, "vip": 15000, "box": 30000}  # minor units
TIER_IDS = tuple(PRICES)
UNKNOWN_TIER = "zz"

capacities = st.integers(0, 8)
per_order_limits = st.sampled_from((0, 0, 0, 2, 4))  # 0: no limit
# Mostly valid quantities; a zero now and then proves invalid_quantity refuses the whole hold.
quantities = st.sampled_from((1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 0))
OWNERS = ("ann", "bob")
owners = st.sampled_from(("", *OWNERS))
owner_limits = st.sampled_from((0, 0, 0, 4, 8))  # 0: no limit
# Most holds here skip the waiting room; some must show a live admission of their owner.
admission_required = st.sampled_from((False, False, False, True))
# Where to slip an unarmed tier into a hold request: mostly nowhere.
unknown_slots = st.sampled_from((None,) * 12 + (0, 1, 2, 3))
# Uniform steps, plus the exact boundaries: a hold is due when expires_ms <= now.
clock_steps = st.integers(0, 2 * HOLD_MS) | st.sampled_from((1, HOLD_MS - 1, HOLD_MS, 2 * HOLD_MS))
sweep_limits = st.sampled_from((1, 2, 16, 10_000))


def refusal(exc: HoldRejected) -> Refusal:
    return Refusal(exc.reason, exc.tier_id, exc.available)


class InventoryMachine(RuleBasedStateMachine):
    """One event per run, with its own event loop, client and fake clock."""

    redis_url: ClassVar[str]
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        self.event = uuid.uuid4().hex
        self.model = Model(now=FUTURE_MS)
        self.inventory = Inventory(self.client, clock=lambda: self.model.now)
        # What each hold id asked for; once taken, what it holds. A late payment retakes it.
        self.requests: dict[str, Items] = {}
        # Who asked for each hold id first, and that owner's overall limit.
        self.owner_of: dict[str, tuple[str, int]] = {}
        self.released: set[str] = set()
        self.serial = 0
        # The limits as the event sets them: each owner's in all (0: none), each tier's per
        # owner (as armed; re-arming may only raise one). Inputs, not the model's state.
        self.owner_limits: dict[str, int] = {}
        self.tier_limits: dict[str, int] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(forget(self.client, self.event))
            self.run(self.client.aclose())
        finally:
            self.loop.close()

    # -- rules ---------------------------------------------------------------------------

    def _arm(self, specs: list[TierSpec]) -> None:
        # A tier's limit never drops below what owners may already have taken under it.
        specs = [
            TierSpec(s.tier_id, s.capacity, self._raised(s.tier_id, s.per_order_limit), s.price)
            for s in specs
        ]
        expected = self.model.arm(
            HOLD_MS, [(s.tier_id, s.capacity, s.per_order_limit, s.price) for s in specs]
        )
        try:
            self.run(self.inventory.arm(self.event, HOLD_SECONDS, specs))
        except HoldRejected as exc:
            assert refusal(exc) == expected
        else:
            assert expected is None
            self.tier_limits.update((s.tier_id, s.per_order_limit) for s in specs)

    def _raised(self, tier: str, limit: int) -> int:
        old = self.tier_limits.get(tier)
        if old is None:
            return limit
        return old if old == 0 or 0 < limit < old else limit

    @initialize(data=st.data(), n=st.integers(1, len(TIER_IDS)))
    def arm(self, data: st.DataObject, n: int) -> None:
        self.owner_limits = {o: data.draw(owner_limits, f"limit of {o}") for o in OWNERS}
        self._arm(self._draw_specs(data, n))

    def _taken(self) -> bool:
        return bool(self.model.live) or any(t.sold for t in self.model.tiers.values())

    # Re-arming and sweeping are interesting only once something is taken; without these
    # preconditions they crowd out the holds.
    @precondition(_taken)
    @rule(data=st.data())
    def rearm(self, data: st.DataObject) -> None:
        """New capacities for the same tiers: refused below what is held and sold."""
        self._arm(self._draw_specs(data, len(self.model.order)))

    def _draw_specs(self, data: st.DataObject, n: int) -> list[TierSpec]:
        return [
            TierSpec(
                tier, data.draw(capacities, tier), data.draw(per_order_limits, tier), PRICES[tier]
            )
            for tier in TIER_IDS[:n]
        ]

    def _new_id(self) -> str:
        self.serial += 1
        return f"h{self.serial:03d}"

    def _draw_items(self, data: st.DataObject) -> list[tuple[str, int]]:
        tiers = data.draw(
            st.lists(st.sampled_from(self.model.order), min_size=1, unique=True), "tiers"
        )
        return [(tier, data.draw(quantities, tier)) for tier in tiers]

    def _hold(
        self,
        hold_id: str,
        items: list[tuple[str, int]],
        owner: str,
        admitted: bool = False,
    ) -> str:
        limit = self.owner_limits.get(owner, 0)
        self.requests.setdefault(hold_id, tuple(items))
        self.owner_of.setdefault(hold_id, (owner, limit))
        expected = self.model.hold(hold_id, tuple(items), owner, limit, admitted)
        try:
            hold = self.run(
                self.inventory.hold(
                    self.event,
                    items,
                    owner=owner,
                    owner_limit=limit,
                    admitted=admitted,
                    hold_id=hold_id,
                )
            )
        except HoldRejected as exc:
            assert refusal(exc) == expected
        else:
            assert expected == Held(hold.expires_ms, hold.amount)
            assert hold.items == tuple(items)
            self.requests[hold_id] = tuple(items)
            self.owner_of[hold_id] = (owner, limit)
        return hold_id

    @rule(
        target=holds,
        data=st.data(),
        owner=owners,
        unknown_at=unknown_slots,
        admitted=admission_required,
    )
    def hold(
        self,
        data: st.DataObject,
        owner: str,
        unknown_at: int | None,
        admitted: bool,
    ) -> str:
        items = self._draw_items(data)
        if unknown_at is not None:
            items.insert(min(unknown_at, len(items)), (UNKNOWN_TIER, 1))
        return self._hold(self._new_id(), items, owner, admitted)

    @rule(hold_id=holds, data=st.data(), owner=owners)
    def hold_same_id(self, hold_id: str, data: st.DataObject, owner: str) -> None:
        """An id that is live or finished is a duplicate; one that was refused is free."""
        self._hold(hold_id, self._draw_items(data), owner)

    @rule(owner=owners.filter(bool), ms=clock_steps)
    def admit(self, owner: str, ms: int) -> None:
        """The waiting room admits (or re-admits) a visitor until now + ms."""
        expires = self.model.now + ms
        self.run(self.client.zadd(keys.queue_active(self.event), {owner: expires}))
        self.model.admissions[owner] = expires

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        expected = self.model.release(hold_id)
        outcome = self.run(self.inventory.release(self.event, hold_id))
        assert outcome == expected
        if outcome is ReleaseOutcome.RELEASED:
            assert hold_id not in self.released, "released twice"
            self.released.add(hold_id)

    @rule(hold_id=holds, rival=st.booleans(), retake=st.booleans())
    def confirm(self, hold_id: str, rival: bool, retake: bool) -> None:
        """``rival``: another order for the same hold; ``retake``: a payment that came late."""
        order_id = f"o-{hold_id}-rival" if rival else f"o-{hold_id}"
        retake_items = dict(self.requests[hold_id]) if retake else None
        owner, limit = self.owner_of[hold_id]
        live = self.run(self.inventory.live_hold(self.event, hold_id))
        # The order as checkout writes it: the hold's owner and tickets as Redis has them
        # (or, for a late payment, what it takes again), read back by ``rules_hold``.
        bought = dict(live.items) if live is not None else retake_items or {}
        who = live.owner if live is not None else owner
        payload = json.dumps({"order": order_id, "owner": who, "items": bought})
        expected = self.model.confirm(
            hold_id, order_id, tuple(retake_items.items()) if retake_items else None, owner, limit
        )
        try:
            got = self.run(
                self.inventory.confirm(
                    self.event,
                    hold_id,
                    order_id,
                    payload,
                    retake_items=retake_items,
                    owner=owner,
                    owner_limit=limit,
                )
            )
        except HoldRejected as exc:
            assert expected == Refusal(exc.reason)
            return
        if got.duplicate:
            assert expected == Duplicate()
            return
        assert expected == Confirmed(got.retaken)
        if not got.retaken:
            # Checked against what Redis itself recorded, not only against the model.
            assert live is not None
            assert self.model.now < live.expires_ms, "confirmed after its expiry"
        entry = self.run(self.client.xrange(keys.orders_stream(self.event), got.stream_id))
        assert entry == [(got.stream_id, {"order": order_id, "data": payload})]

    # Time matters only while something is held.
    @precondition(lambda self: bool(self.model.live))
    @rule(ms=clock_steps)
    def advance_clock(self, ms: int) -> None:
        self.model.now += ms

    @precondition(lambda self: bool(self.model.live))
    @rule(data=st.data(), offset=st.sampled_from((0, -1, 1)))
    def advance_to_expiry(self, data: st.DataObject, offset: int) -> None:
        """To the millisecond a live hold falls due, or one either side: the boundary."""
        expiries = sorted({h.expires for h in self.model.live.values()})
        expires = data.draw(st.sampled_from(expiries), "expires")
        self.model.now = max(self.model.now, expires + offset)  # clocks never run backwards

    @precondition(lambda self: bool(self.model.live))
    @rule(limit=sweep_limits)
    def sweep(self, limit: int) -> None:
        expected = self.model.sweep(limit)
        assert self.run(self.inventory.sweep(self.event, limit)) == expected
        if not self.model.due():
            # Fully swept, so no record is due; with held == the records' sum (an invariant),
            # held counts exactly the holds that have not expired.
            expiry = keys.holds_expiry(self.event)
            assert self.run(self.client.zcount(expiry, "-inf", self.model.now)) == 0

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def never_oversold(self) -> None:
        levels = self.run(self.inventory.levels(self.event))
        for lv in levels:
            assert lv.sold + lv.held <= lv.capacity, f"oversold: {lv}"
        m = self.model
        assert [
            (lv.tier_id, lv.capacity, lv.per_order_limit, lv.held, lv.sold) for lv in levels
        ] == [
            (t, m.tiers[t].capacity, m.tiers[t].limit, m.held(t), m.tiers[t].sold) for t in m.order
        ]
        # held is exactly what the hold records add up to, due or not.
        totals = self.run(self.inventory.holds_total(self.event))
        assert totals == m.held_totals()
        assert {lv.tier_id: lv.held for lv in levels if lv.held} == totals

    @invariant()
    def records_match(self) -> None:
        m = self.model
        expiry = self.run(self.client.zrange(keys.holds_expiry(self.event), 0, -1, withscores=True))
        assert dict(expiry) == {hid: float(h.expires) for hid, h in m.live.items()}
        assert self.run(self.client.hgetall(keys.holds_done(self.event))) == m.done
        owners_used = self.run(self.client.hgetall(keys.owners(self.event)))
        assert owners_used == {o: str(n) for o, n in m.owners.items()}
        assert self.run(self.client.xlen(keys.orders_stream(self.event))) == len(m.stream)

    # -- the rules, from Redis alone ------------------------------------------------------
    # What these read: the live hold records (every ticket held, by owner) and the orders
    # on the stream (every ticket bought, by owner), never the model. A promo code's uses
    # never passing its maximum (the promo codes issue) is such a rule, and belongs here.

    def _taken_by_owner(self) -> dict[str, dict[str, int]]:
        """owner -> tier -> tickets it holds (live records, due or not) or bought."""
        taken: dict[str, dict[str, int]] = {}
        for record in self.run(self.client.hgetall(keys.holds_data(self.event))).values():
            _, owner, rest = record.split("|", 2)
            words = rest.split()
            for tier, qty in zip(words[::2], words[1::2], strict=True):
                mine = taken.setdefault(owner, {})
                mine[tier] = mine.get(tier, 0) + int(qty)
        for order in self._orders():
            mine = taken.setdefault(order["owner"], {})
            for tier, qty in order["items"].items():
                mine[tier] = mine.get(tier, 0) + qty
        return taken

    def _orders(self) -> list[dict[str, Any]]:
        entries = self.run(self.client.xrange(keys.orders_stream(self.event)))
        return [json.loads(fields["data"]) for _, fields in entries]

    @invariant()
    def rules_hold(self) -> None:
        for owner, tiers in self._taken_by_owner().items():
            if not owner:
                continue  # anonymous holds have no owner to limit
            for tier, qty in tiers.items():
                limit = self.tier_limits.get(tier, 0)
                assert not limit or qty <= limit, f"{owner} has {qty} of {tier}, limit {limit}"
            total, limit = sum(tiers.values()), self.owner_limits.get(owner, 0)
            assert not limit or total <= limit, f"{owner} has {total} in all, limit {limit}"
        # The owners hash, which the scripts check limits against, counts exactly that.
        counted = {
            field: value
            for owner, tiers in self._taken_by_owner().items()
            if owner
            for field, value in (
                (owner, sum(tiers.values())),
                *((f"{owner} {tier}", qty) for tier, qty in tiers.items()),
            )
            if value
        }
        owners = self.run(self.client.hgetall(keys.owners(self.event)))
        assert {f: int(n) for f, n in owners.items()} == counted
        # Every ticket sold is in exactly the orders on the stream.
        sold: dict[str, int] = {}
        for order in self._orders():
            for tier, qty in order["items"].items():
                sold[tier] = sold.get(tier, 0) + qty
        levels = self.run(self.inventory.levels(self.event))
        assert {lv.tier_id: lv.sold for lv in levels if lv.sold} == sold


SETTINGS = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# A failure is shrunk to its shortest steps; that takes minutes, past the suite's timeout.
@pytest.mark.timeout(900)
def test_inventory_matches_model(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(InventoryMachine, "redis_url", redis_url, raising=False)
    run_state_machine_as_test(InventoryMachine, settings=SETTINGS)
