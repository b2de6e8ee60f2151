"""The hot path's own connections, on a real Redis."""

from __future__ import annotations

import uuid
from typing import Any

from onsale import keys
from onsale.connections import Lanes
from onsale.inventory import Inventory, TierSpec
from onsale.scripts import Scripts


async def test_scripts_over_lanes_survive_script_flush(redis: Any) -> None:
    lanes = Lanes(redis.connection_pool, 4)
    try:
        inventory = Inventory(redis, scripts=Scripts(redis, lanes))
        event = str(uuid.uuid4())
        await inventory.arm(event, 60, [TierSpec("ga", 5, 2, 100)])
        await redis.script_flush()
        hold = await inventory.hold(event, {"ga": 2}, owner="me", owner_limit=2)
        assert hold.amount == 200
        assert (await inventory.levels(event))[0].held == 2
        assert await redis.hget(keys.owners(event), "me") == "2"
    finally:
        await lanes.aclose()
