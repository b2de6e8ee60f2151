"""A late payment (confirm with retake) takes whole tickets or nothing.

Regression: confirm.lua used to add the retake quantities to ``sold`` unchecked, so a
quantity below 1 lowered ``sold`` and the tier then sold more tickets than its capacity,
while its levels still looked within it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import redis.asyncio as aioredis

from onsale import keys
from onsale.inventory import HoldRejected, Inventory, Rejection, TierSpec


@pytest.mark.parametrize(
    "items",
    [{"ga": -3}, {"ga": 0}, {"vip": 1, "ga": -1}, iter(())],
    ids=["negative", "zero", "one-bad-tier", "nothing"],
)
async def test_a_retake_of_less_than_one_ticket_is_refused(
    redis: aioredis.Redis, event: str, items: Iterable[tuple[str, int]] | dict[str, int]
) -> None:
    inventory = Inventory(redis)
    await inventory.arm(event, 600, [TierSpec("ga", 2), TierSpec("vip", 2)])

    with pytest.raises(HoldRejected) as refused:
        await inventory.confirm(event, "h1", "o1", "{}", retake_items=items)

    assert refused.value.reason is Rejection.INVALID_QUANTITY
    assert [(lv.held, lv.sold) for lv in await inventory.levels(event)] == [(0, 0), (0, 0)]
    assert await redis.xlen(keys.orders_stream(event)) == 0
    assert await redis.hgetall(keys.holds_done(event)) == {}


async def test_a_bad_retake_cannot_make_room_for_more_than_capacity(
    redis: aioredis.Redis, event: str
) -> None:
    inventory = Inventory(redis)
    await inventory.arm(event, 600, [TierSpec("ga", 2)])
    with pytest.raises(HoldRejected):
        await inventory.confirm(event, "h0", "o0", "{}", retake_items={"ga": -3})

    sold = 0
    for n in range(5):
        try:
            hold = await inventory.hold(event, {"ga": 1})
        except HoldRejected as exc:
            assert exc.reason is Rejection.SOLD_OUT
            continue
        await inventory.confirm(event, hold.hold_id, f"o{n}", "{}")
        sold += 1

    assert sold == 2
    assert await redis.xlen(keys.orders_stream(event)) == 2
