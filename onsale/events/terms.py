"""An event's terms of sale as the hold path needs them: its currency and buyer limit."""

from __future__ import annotations

import time

from onsale import keys
from onsale.connections import RedisClient
from onsale.events.errors import EventRejected, EventRejection

#: Events whose terms one process remembers before it starts over.
MAX_CACHED = 10_000
#: Seconds a process trusts what it read: the buyer limit changes when an organizer adds a
#: tier or changes a per-order limit (``PATCH /api/events/{id}``), on any gateway.
MAX_AGE_S = 5.0


class EventTerms:
    """Each gateway process reads an event's terms from Redis once per :data:`MAX_AGE_S`
    (a round trip less on nearly every hold). The currency never changes; a new buyer limit
    reaches every process within :data:`MAX_AGE_S`, and until then the hold script still
    enforces each tier's own per-order limit as Redis has it."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._cache: dict[str, tuple[str, int, float]] = {}

    async def get(self, event_id: str) -> tuple[str, int]:
        """(currency, buyer limit) of an armed event, else ``event_not_found``."""
        now = time.monotonic()
        terms = self._cache.get(event_id)
        if terms is None or now - terms[2] > MAX_AGE_S:
            currency, limit = await self.redis.hmget(
                keys.onsale(event_id), "currency", "buyer_limit"
            )
            if currency is None:
                raise EventRejected(EventRejection.NOT_FOUND)
            if len(self._cache) > MAX_CACHED:
                self._cache.clear()
            terms = self._cache[event_id] = (currency, int(limit), now)
        return terms[0], terms[1]
