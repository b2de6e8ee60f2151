"""What the inventory tests share: a hand-driven clock; and what every test shares, cleaning
up an event's keys (``forget``)."""

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


#: Events a test created through the API (``api_support.create``, ``page_support.
#: create_event``): (the Redis URL of the gateway that armed it, or None for the session's
#: Redis, event id). tests/conftest.py forgets them after each test.
CREATED: list[tuple[str | None, str]] = []


def event_keys(event_id: str) -> list[str]:
    """The Redis keys a test event may have: its inventory, its waiting room, its orders,
    and what the committers keep of it."""
    return [
        *keys.inventory_keys(event_id),
        *keys.queue_keys(event_id),
        keys.orders(event_id),
        keys.commit_state(event_id),
        keys.dead_letters(event_id),
    ]


async def forget(redis: Any, event_id: str) -> None:
    """A test event out of the armed and retired sets (so no gateway's tick nor committer
    walks it any more), then every key of it."""
    await redis.srem(keys.ARMED_EVENTS, event_id)
    await redis.zrem(keys.RETIRED_EVENTS, event_id)
    await redis.delete(*event_keys(event_id))
