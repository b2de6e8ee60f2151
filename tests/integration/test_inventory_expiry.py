"""Lazy expiry, exactly: which due holds each script expires, and when it must expire them all.

The state machine rarely has more than 16 holds due at once, so the bound of hold.lua's lazy
expiry and its "expire everything before saying no" fallback are pinned here by hand.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from onsale import keys
from onsale.inventory import HoldRejected, Inventory, Rejection, TierSpec
from tests.integration.inventory_support import FUTURE_MS as T0
from tests.integration.inventory_support import Clock

HOLD_SECONDS = 60
HOLD_MS = HOLD_SECONDS * 1000
LAZY = 16  # hold.lua's bound


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


async def twenty_due_holds(inventory: Inventory, event: str, clock: Clock) -> list[str]:
    """Twenty one-ticket holds, all due, in the order Redis must expire them.

    Two expiry instants, and ids created out of order within each, so that both the score
    and the member decide the order."""
    made: list[tuple[int, str]] = []
    for start in (T0, T0 + 1):
        clock.now = start
        for n in reversed(range(10)):
            hold_id = f"{start - T0}-{n:02d}"
            hold = await inventory.hold(event, {"ga": 1}, hold_id=hold_id)
            made.append((hold.expires_ms, hold_id))
    clock.now = T0 + 1 + HOLD_MS
    return [hold_id for _, hold_id in sorted(made)]


async def states(redis: aioredis.Redis, event: str) -> tuple[set[str], dict[str, str]]:
    """Live hold ids and finished hold states."""
    live = set(await redis.hkeys(keys.holds_data(event)))
    return live, await redis.hgetall(keys.holds_done(event))


async def test_a_hold_expires_sixteen_due_holds_in_expiry_order(
    redis: aioredis.Redis, event: str, clock: Clock
) -> None:
    inventory = Inventory(redis, clock=clock)
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 40)])
    due = await twenty_due_holds(inventory, event, clock)

    await inventory.hold(event, {"ga": 1}, hold_id="new")

    live, done = await states(redis, event)
    assert done == dict.fromkeys(due[:LAZY], "expired")
    assert live == {*due[LAZY:], "new"}
    [level] = await inventory.levels(event)
    assert level.held == len(due) - LAZY + 1


async def test_a_refused_hold_expires_nothing(
    redis: aioredis.Redis, event: str, clock: Clock
) -> None:
    """Limit checks come before expiry: a request refused by them changes nothing."""
    inventory = Inventory(redis, clock=clock)
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 40, per_order_limit=2)])
    due = await twenty_due_holds(inventory, event, clock)

    with pytest.raises(HoldRejected) as refused:
        await inventory.hold(event, {"ga": 3})

    assert refused.value.reason is Rejection.LIMIT_EXCEEDED

    live, done = await states(redis, event)
    assert (live, done) == (set(due), {})


async def test_a_hold_expires_every_due_hold_before_it_refuses(
    redis: aioredis.Redis, event: str, clock: Clock
) -> None:
    inventory = Inventory(redis, clock=clock)
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 20)])
    due = await twenty_due_holds(inventory, event, clock)

    # Sixteen expired lazily free sixteen tickets; eighteen need the other four as well.
    await inventory.hold(event, {"ga": 18}, hold_id="big")

    live, done = await states(redis, event)
    assert done == dict.fromkeys(due, "expired")
    assert live == {"big"}
    [level] = await inventory.levels(event)
    assert (level.held, level.sold, level.available) == (18, 0, 2)


async def test_a_late_payment_expires_every_due_hold_before_it_retakes(
    redis: aioredis.Redis, event: str, clock: Clock
) -> None:
    inventory = Inventory(redis, clock=clock)
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 20)])
    due = await twenty_due_holds(inventory, event, clock)
    paid = due[-1]

    confirmation = await inventory.confirm(event, paid, "o1", "{}", retake_items={"ga": 1})

    assert confirmation.retaken
    live, done = await states(redis, event)
    assert live == set()
    assert done == {**dict.fromkeys(due, "expired"), paid: "confirmed:o1"}
    [level] = await inventory.levels(event)
    assert (level.held, level.sold) == (0, 1)


async def test_sweep_expires_up_to_its_limit_in_expiry_order(
    redis: aioredis.Redis, event: str, clock: Clock
) -> None:
    inventory = Inventory(redis, clock=clock)
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 20)])
    due = await twenty_due_holds(inventory, event, clock)

    assert [await inventory.sweep(event, limit=7) for _ in range(4)] == [7, 7, 6, 0]
    live, done = await states(redis, event)
    assert (live, done) == (set(), dict.fromkeys(due, "expired"))
    assert await inventory.holds_total(event) == {}
    [level] = await inventory.levels(event)
    assert (level.held, level.sold) == (0, 0)


async def test_sweep_leaves_holds_that_are_not_yet_due(
    redis: aioredis.Redis, event: str, clock: Clock
) -> None:
    inventory = Inventory(redis, clock=clock)
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 20)])
    await inventory.hold(event, {"ga": 2}, hold_id="early")
    clock.now = T0 + 1
    await inventory.hold(event, {"ga": 3}, hold_id="late")

    clock.now = T0 + HOLD_MS  # "early" is due to the millisecond; "late" one ms later
    assert await inventory.sweep(event) == 1
    live, done = await states(redis, event)
    assert (live, done) == ({"late"}, {"early": "expired"})
    assert await inventory.holds_total(event) == {"ga": 3}


async def test_an_owners_due_holds_stop_counting_before_the_limit_refuses(
    redis: aioredis.Redis, event: str, clock: Clock
) -> None:
    inventory = Inventory(redis, clock)
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 10)])
    await inventory.hold(event, {"ga": 2}, owner="buyer", owner_limit=2)
    with pytest.raises(HoldRejected) as refused:
        await inventory.hold(event, {"ga": 1}, owner="buyer", owner_limit=2)
    assert refused.value.reason is Rejection.LIMIT_EXCEEDED
    clock.now += HOLD_MS  # the first hold falls due; nobody has swept it
    held = await inventory.hold(event, {"ga": 2}, owner="buyer", owner_limit=2)
    assert held.items == (("ga", 2),)
    assert await redis.hget(keys.owners(event), "buyer") == "2"
