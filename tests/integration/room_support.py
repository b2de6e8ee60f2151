"""What the waiting-room tests share: a clock moved by hand, and a room armed on it."""

from __future__ import annotations

import uuid
from typing import Any

from onsale import keys
from onsale.inventory import Inventory, TierSpec
from onsale.queue.room import WaitingRoom

# In 2100: the session's real clock never reaches these rooms' opening.
OPENS = 4_102_444_800_000  # epoch ms


class Clock:
    def __init__(self, now: int = OPENS - 60_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


async def room_for(
    redis: Any,
    clock: Clock,
    *,
    rate: int = 60,
    max_active: int = 0,
    capacity: int = 1000,
    closes: int = 0,
    hold_seconds: int = 600,
) -> tuple[str, WaitingRoom, Inventory]:
    event_id = str(uuid.uuid4())
    inventory = Inventory(redis, clock)
    await inventory.arm(event_id, hold_seconds, [TierSpec("ga", capacity, 4, 100)])
    # Not for the session's gateway tick: on the real clock it would admit this room's
    # visitors (alive until 2100) with admissions that this clock sees long expired.
    await redis.srem(keys.ARMED_EVENTS, event_id)
    await redis.hset(
        keys.onsale(event_id),
        mapping={
            "opens_ms": OPENS,
            "closes_ms": closes,
            "admit_per_minute": rate,
            "max_active": max_active,
            "hold_seconds": hold_seconds,
            "paused": 0,
        },
    )
    room = WaitingRoom(redis, clock)
    await room.seed(event_id, "test-seed")
    return event_id, room, inventory


async def poll_all(room: WaitingRoom, event_id: str, visitors: list[str]) -> dict[str, Any]:
    return {v: await room.status(event_id, v) for v in visitors}


async def make_poll_due(redis: Any, event_id: str, visitor: str) -> None:
    """As if half the advised interval had passed since the room last answered the visitor:
    their earliest next poll (``<visitor>:n`` in ``q:seen`` for a pre-queue place, by number
    in ``q:alive`` for a numbered one) is now."""
    await redis.hdel(keys.queue_seen(event_id), f"{visitor}:n")
    rec = await redis.hget(keys.queue_visitors(event_id), visitor)
    if rec and rec.isdigit() and int(rec) > 0:
        await redis.execute_command(
            "BITFIELD", keys.queue_alive(event_id), "SET", "i64", f"#{2 * int(rec) + 1}", 0
        )
