"""The hot path's own connections and packer, on a real Redis."""

from __future__ import annotations

import uuid
from typing import Any

from onsale import keys
from onsale.connections import Lanes, pack
from onsale.inventory import Inventory, TierSpec
from onsale.scripts import Scripts


def test_pack_is_resp() -> None:
    assert pack(("SCRIPT LOAD", "return 1")) == (
        b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$8\r\nreturn 1\r\n"
    )
    assert pack(("EVALSHA", "ab", 1, "k", b"\x00")) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n\x00\r\n"
    )


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
