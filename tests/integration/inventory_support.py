"""What the inventory tests share: a hand-driven clock and cleaning up an event's keys."""

from __future__ import annotations

from typing import Any

from onsale import keys

#: 2100-01-01 in epoch ms: the tests that drive the clock live in the future, so that a
#: real-time sweeper elsewhere in the session (the gateway's periodic tick walks every armed
#: event) never finds their holds due. Still 13 digits, like a real clock's.
FUTURE_MS = 4_102_444_800_000


class Clock:
    """A clock the test moves by hand (epoch ms), for ``Inventory(redis, clock=...)``."""

    def __init__(self, now: int = FUTURE_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


async def forget(redis: Any, event_id: str) -> None:
    """Remove every key of a test event, and the event from the sweeper's list."""
    await redis.delete(*keys.inventory_keys(event_id), *keys.queue_keys(event_id))
    await redis.srem(keys.ARMED_EVENTS, event_id)
