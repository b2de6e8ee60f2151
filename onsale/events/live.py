"""The live feed's hub: one stats read per event per second per process, however many
dashboards watch.

Each event watched has one task that reads its snapshot every :data:`EVERY_S` and hands
the same bytes to every listener. The task starts with the first listener and stops when
the last one leaves. A listener that falls behind only ever gets the newest snapshot (its
mailbox holds one), so a slow dashboard never holds up the others or grows memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger("onsale.events")

#: Seconds between two reads of an event's snapshot.
EVERY_S = 1.0

#: An event id -> its snapshot, encoded once for every listener.
Fetch = Callable[[str], Awaitable[bytes]]


def with_member(snapshot: bytes, name: str, value: bytes) -> bytes:
    """A snapshot (a JSON object) with one more member: how other packages add to the feed
    (the door's fraud alerts) without changing what ``/stats`` answers."""
    if not snapshot.endswith(b"}"):
        raise ValueError("a snapshot is a JSON object")
    sep = b"" if snapshot == b"{}" else b","
    return snapshot[:-1] + sep + b'"' + name.encode() + b'":' + value + b"}"


class _Feed:
    def __init__(self) -> None:
        self.mailboxes: set[asyncio.Queue[bytes]] = set()
        self.task: asyncio.Task[None] | None = None


class LiveHub:
    """Per process (one per app): ``async for snapshot in hub.listen(event_id)``."""

    def __init__(self, fetch: Fetch, every_s: float = EVERY_S) -> None:
        self.fetch = fetch
        self.every_s = every_s
        self._feeds: dict[str, _Feed] = {}

    def watched(self) -> list[str]:
        """The events with a running feed (for tests and metrics)."""
        return list(self._feeds)

    async def listen(self, event_id: str) -> AsyncIterator[bytes]:
        """Snapshots of the event, the first at once, then one a period, until the caller
        stops iterating (its client went away)."""
        feed = self._feeds.get(event_id)
        if feed is None:
            feed = self._feeds[event_id] = _Feed()
        mailbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        feed.mailboxes.add(mailbox)
        if feed.task is None:
            feed.task = asyncio.create_task(self._run(event_id, feed), name=f"live:{event_id}")
        try:
            while True:
                yield await mailbox.get()
        finally:
            feed.mailboxes.discard(mailbox)
            if not feed.mailboxes and self._feeds.get(event_id) is feed:
                del self._feeds[event_id]
                if feed.task is not None:
                    feed.task.cancel()

    async def _run(self, event_id: str, feed: _Feed) -> None:
        while feed.mailboxes:
            started = time.monotonic()
            try:
                snapshot = await self.fetch(event_id)
            except Exception:  # a Redis or Postgres hiccup: the next second tries again
                log.exception("live feed of event %s: reading its stats failed", event_id)
            else:
                for mailbox in feed.mailboxes:
                    with contextlib.suppress(asyncio.QueueEmpty):
                        mailbox.get_nowait()  # only the newest counts
                    mailbox.put_nowait(snapshot)
            await asyncio.sleep(max(0.0, self.every_s - (time.monotonic() - started)))

    async def close(self) -> None:
        """Stop every feed (the app's shutdown)."""
        tasks = [f.task for f in self._feeds.values() if f.task is not None]
        self._feeds.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
