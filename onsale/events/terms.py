"""An event's terms of sale as the hold path needs them: its currency and buyer limit."""

from __future__ import annotations

from onsale import keys
from onsale.connections import RedisClient
from onsale.events.errors import EventRejected, EventRejection

#: Events whose terms one process remembers before it starts over.
MAX_CACHED = 10_000


class EventTerms:
    """Both terms are fixed when the event is created, so each gateway process reads them
    from Redis once per event (a round trip less on every hold)."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._cache: dict[str, tuple[str, int]] = {}

    async def get(self, event_id: str) -> tuple[str, int]:
        """(currency, buyer limit) of an armed event, else ``event_not_found``."""
        terms = self._cache.get(event_id)
        if terms is None:
            currency, limit = await self.redis.hmget(
                keys.onsale(event_id), "currency", "buyer_limit"
            )
            if currency is None:
                raise EventRejected(EventRejection.NOT_FOUND)
            if len(self._cache) > MAX_CACHED:
                self._cache.clear()
            terms = self._cache[event_id] = (currency, int(limit))
        return terms
