"""The committer's side of the orders streams: consumer group, reads, reclaims, acknowledgements,
dead letters, and the lag anyone can ask for.

Every entry of an event's stream (``keys.orders_stream``) is a confirmed or refunded order.
The consumer group ``keys.COMMITTERS`` hands each entry to one committer; an entry is
acknowledged only once its order is committed to Postgres (or moved to the dead letters).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from onsale import keys
from onsale.connections import RedisClient
from onsale.scripts import Scripts, run


def stream_ms(entry_id: str) -> int:
    """The Redis clock (epoch ms) at which an entry was appended: its id says so."""
    return int(entry_id.split("-", 1)[0])


def _newest(ids: Iterable[str]) -> str:
    return max(ids, key=lambda i: tuple(int(p) for p in i.split("-", 1)))


class Entry(msgspec.Struct, frozen=True):
    """One stream entry; ``fields`` is None for an entry deleted while it was pending."""

    event_id: str
    id: str
    fields: dict[str, str] | None


class OrderStreams:
    """One committer's view of the streams, as consumer ``consumer`` of ``keys.COMMITTERS``."""

    def __init__(self, redis: RedisClient, consumer: str) -> None:
        self.redis = redis
        self.consumer = consumer
        self.group = keys.COMMITTERS
        # A Redis Cluster cannot read streams of several slots in one XREADGROUP.
        self.cluster = isinstance(redis, RedisCluster)
        self._scripts = Scripts(redis)
        self._ready: set[str] = set()

    async def ensure_groups(self, events: Iterable[str]) -> None:
        """The consumer group on every event's stream, created from the first entry."""
        for event_id in events:
            if event_id in self._ready:
                continue
            try:
                await self.redis.xgroup_create(
                    keys.orders_stream(event_id), self.group, id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._ready.add(event_id)

    async def read(self, events: Sequence[str], count: int, block_ms: int) -> list[Entry]:
        """New entries of the given events (at most ``count`` per stream); waits up to
        ``block_ms`` for one when there are none (0: does not wait)."""
        if not events:
            return []
        try:
            if self.cluster:
                found = []
                for event_id in events:
                    found += await self._read({keys.orders_stream(event_id): ">"}, count, 0)
                return found
            streams = {keys.orders_stream(e): ">" for e in events}
            return await self._read(streams, count, block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # A stream was deleted (and its group with it): the next round creates it again.
            self._ready.clear()
            return []

    async def _read(self, streams: dict[str, str], count: int, block_ms: int) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, streams, count=count, block=block_ms or None
        )
        pairs = reply.items() if isinstance(reply, dict) else (reply or [])
        return [
            Entry(keys.event_of(stream), entry_id, fields)
            for stream, entries in pairs
            for entry_id, fields in entries
        ]

    async def reclaim(self, event_id: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries delivered to a committer that has not acknowledged them for
        ``min_idle_ms``: most likely it died. They become ours."""
        stream, cursor = keys.orders_stream(event_id), "0-0"
        found: list[Entry] = []
        while len(found) < count:
            try:
                reply = await self.redis.xautoclaim(
                    stream, self.group, self.consumer, min_idle_ms, cursor, count=count
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._ready.discard(event_id)
                return found
            cursor, entries = reply[0], reply[1]
            found += [Entry(event_id, i, fields) for i, fields in entries if i is not None]
            if any(i is None for i, _ in entries):
                found += await self._deleted(event_id)
            if cursor == "0-0":
                break
        return found

    async def _deleted(self, event_id: str) -> list[Entry]:
        """Our pending entries that were deleted from the stream: Redis 6.2's XAUTOCLAIM
        names them only as nil, and they would stay pending forever otherwise."""
        stream = keys.orders_stream(event_id)
        mine = await self.redis.xpending_range(
            stream, self.group, min="-", max="+", count=1000, consumername=self.consumer
        )
        gone = []
        for pending in mine:
            entry_id = pending["message_id"]
            if not await self.redis.xrange(stream, entry_id, entry_id):
                gone.append(Entry(event_id, entry_id, None))
        return gone

    async def ack(self, event_id: str, ids: Sequence[str], batch: int, now_ms: int) -> int:
        """Acknowledge committed entries and record the commit; returns how many were ours."""
        done = 0
        # In chunks: Lua's unpack() has a stack limit of a few thousand values.
        for i in range(0, len(ids), 1000):
            chunk = ids[i : i + 1000]
            done += int(
                await self._scripts.run(
                    "commit_ack",
                    [keys.orders_stream(event_id), keys.commit_state(event_id)],
                    [self.group, now_ms, batch, _newest(chunk), *chunk],
                )
            )
        return done

    async def dead_letter(self, entry: Entry, reason: str, now_ms: int) -> bool:
        """Move an entry to the event's dead letters and acknowledge it, atomically."""
        flat = [x for pair in (entry.fields or {}).items() for x in pair]
        moved = await self._scripts.run(
            "commit_dead",
            [
                keys.orders_stream(entry.event_id),
                keys.commit_state(entry.event_id),
                keys.dead_letters(entry.event_id),
            ],
            [self.group, entry.id, reason[:1000], now_ms, *flat],
        )
        return bool(moved)


#: Entries :func:`find_uncommitted` looks at, at most (newest first): with a healthy
#: committer a handful are uncommitted; far behind, check-in falls back to "scan again".
FIND_MAX_SCAN = 2000


async def find_uncommitted(
    redis: RedisClient, event_id: str, ticket_ids: Sequence[str], max_scan: int = FIND_MAX_SCAN
) -> list[str]:
    """The data (orders as JSON) of the event's stream entries that no committer has
    acknowledged yet and whose order holds one of ``ticket_ids``, newest first."""
    if not ticket_ids:
        return []
    found: list[str] = await run(
        redis,
        "stream_find",
        [keys.orders_stream(event_id)],
        [keys.COMMITTERS, max_scan, *ticket_ids],
    )
    return found


class CommitLag(msgspec.Struct, frozen=True):
    """How far Postgres is behind an event's stream."""

    event_id: str
    #: Entries not yet committed: delivered to a committer and not acknowledged, or unread.
    pending: int = 0
    #: Age in ms of the oldest of them, by the Redis clock (0 when there is none).
    oldest_ms: int = 0
    #: Of ``pending``: delivered to a committer, not acknowledged yet.
    in_flight: int = 0
    #: Entries committed (acknowledged) so far, and moved to the dead letters.
    committed: int = 0
    dead: int = 0
    #: The newest entry id committed, when (epoch ms), and the size of that batch.
    last_id: str = ""
    last_commit_ms: int = 0
    batch: int = 0


async def lag(redis: RedisClient, event_id: str) -> CommitLag:
    """The committers' lag on one event, from the stream, its consumer group and the state
    the committers record, read in one script (a handful of O(1) or O(log n) steps)."""
    reply = await run(
        redis,
        "commit_lag",
        [keys.orders_stream(event_id), keys.commit_state(event_id)],
        [keys.COMMITTERS],
    )
    entries, now_ms, _, in_flight, oldest_pending, first_unread, unread, flat = reply
    state = dict(zip(flat[::2], flat[1::2], strict=True))
    committed, dead = int(state.get("committed", 0)), int(state.get("dead", 0))
    if not first_unread:
        unread = 0
    elif unread < 0:
        # Before Redis 7 nobody counts it: entries = acknowledged + in flight + unread
        # (the stream is never trimmed).
        unread = max(1, entries - committed - dead - in_flight)
    starts = [stream_ms(i) for i in (oldest_pending, first_unread) if i]
    return CommitLag(
        event_id,
        pending=in_flight + unread,
        oldest_ms=max(0, now_ms - min(starts)) if starts else 0,
        in_flight=in_flight,
        committed=committed,
        dead=dead,
        last_id=state.get("last_id", ""),
        last_commit_ms=int(state.get("last_ms", 0)),
        batch=int(state.get("batch", 0)),
    )
