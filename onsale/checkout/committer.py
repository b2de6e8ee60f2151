"""The write-behind committer: orders from the events' Redis streams into Postgres.

It reads every armed event's stream as one consumer of the group ``keys.COMMITTERS``
(a newly armed event's at once; a retired event's again when it gets a late entry),
writes each batch in one transaction (idempotent by order id) and acknowledges the entries
only after the commit. Any number may run: each entry goes to one of them, and the entries
of one that dies are reclaimed by another after ``claim_idle_ms``. While Postgres is away
nothing is acknowledged; the streams grow and the committer catches up when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
import uvloop
from redis.exceptions import RedisError

from onsale import keys, logs, scripts
from onsale.checkout.models import Order, OrderStatus, decode_order
from onsale.checkout.stream import Entry, OrderStreams
from onsale.checkout.writer import (
    COPY,
    SERVER_ERRORS,
    WRITERS,
    Malformed,
    Prepared,
    Rows,
    create_temp_tables,
    describe,
    rows,
    write_each,
)
from onsale.config import Settings
from onsale.connections import RedisClient, redis_client
from onsale.events import retirement
from onsale.reports.rollup import Rollups

log = logging.getLogger("onsale.committer")


class CommitterOptions(msgspec.Struct, frozen=True):
    #: Entries read per stream at a time; one read is one transaction.
    batch: int = 500
    #: How long a read waits for new entries.
    block_ms: int = 500
    #: An entry unacknowledged for this long belongs to a dead committer and is reclaimed.
    claim_idle_ms: int = 30_000
    #: Failed attempts before an entry goes to the dead letters.
    max_attempts: int = 5
    #: Retries while Postgres is unavailable back off exponentially up to this.
    max_backoff_s: float = 5.0
    #: The set of armed events is read again whenever it changes (its size and the
    #: retirement generation are checked at every round), and at least this often.
    refresh_s: float = 60.0
    #: Retired events looked at per round for late work (entries after their retirement),
    #: and how often; see onsale/events/retirement.py.
    retired_slice: int = retirement.SCAN_SLICE
    retired_every_s: float = retirement.SCAN_EVERY_S
    #: :data:`onsale.checkout.writer.COPY` or ``EXECUTEMANY``.
    method: str = COPY
    #: Progress lines at most this often.
    log_every_s: float = 10.0
    #: Only these events; empty: every armed event.
    events: tuple[str, ...] = ()


def consumer_name() -> str:
    """Unique per process, and says where it runs: host-pid-random."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def decode(entry: Entry) -> tuple[Order, Rows]:
    """The entry's order and its rows, checked against the entry; :class:`Malformed`
    otherwise."""
    fields = entry.fields or {}
    try:
        order = decode_order(fields["data"])
    except KeyError:
        raise Malformed("no data field") from None
    except msgspec.DecodeError as exc:
        raise Malformed(f"undecodable order: {exc}") from None
    if order.order_id != fields.get("order"):
        raise Malformed(f"entry names order {fields.get('order')!r}, data {order.order_id!r}")
    if order.event_id != entry.event_id:
        raise Malformed(f"order of event {order.event_id!r} on another event's stream")
    return order, rows(order)  # every id a UUID, a final status


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake up at once when asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


Key = tuple[str, str]

#: Called with a batch's entries after its transaction committed, before they are
#: acknowledged (see :attr:`Committer.after_commit`).
AfterCommit = Callable[[list[Entry]], Awaitable[None]]


class Committer:
    def __init__(
        self,
        redis: RedisClient,
        database_url: str,
        options: CommitterOptions | None = None,
        consumer: str | None = None,
    ) -> None:
        self.redis = redis
        self.database_url = database_url
        self.options = options or CommitterOptions()
        self.streams = OrderStreams(redis, consumer or consumer_name())
        self.writer = WRITERS[self.options.method]
        self._conn: asyncpg.Connection | None = None
        self._events: list[str] = []
        self._events_at = self._claim_at = self._retired_at = -math.inf
        self._armed_mark: tuple[int, str | None] | None = None
        self._retired = retirement.RetiredScan(redis, self.options.retired_slice)
        self._retry: dict[Key, Entry] = {}
        self._attempts: dict[Key, int] = {}
        self._down: dict[str, float] = {}  # "postgres" | "redis" -> since (monotonic)
        #: Orders committed, transactions, entries dead-lettered, failed writes, since start.
        self.committed = self.batches = self.dead = self.retries = 0
        #: The reports' read model, recounted from what was committed (batched; see
        #: onsale/reports/rollup.py).
        self.rollups = Rollups(redis)
        #: A fault hook for tests, never set by configuration: awaited between a batch's
        #: Postgres commit and its XACK, the one moment a crash leaves rows written and
        #: entries pending. What it raises ends :meth:`run` as a crash would.
        self.after_commit: AfterCommit | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; the batch in hand is finished first."""
        backoff, last_log, logged, loaded = 0.1, time.monotonic(), 0, False
        log.info("committer %s started (%s)", self.streams.consumer, self.options.method)
        try:
            while not stop.is_set():
                try:
                    if not loaded:
                        # Every script once, at start (a failover's empty cache: NOSCRIPT
                        # reloads the one asked for).
                        await scripts.load_all(self.redis)
                        loaded = True
                    batch = await self._next_batch(stop)
                    if batch:
                        await self._commit(batch, stop)
                    await self._report(idle=not batch)
                    self._up("redis")
                    backoff = 0.1
                except (RedisError, OSError) as exc:
                    self._down_once("redis", exc, "reading or acknowledging the streams")
                    await _pause(stop, backoff)
                    backoff = min(backoff * 2, self.options.max_backoff_s)
                now = time.monotonic()
                if now - last_log >= self.options.log_every_s and self.committed > logged:
                    done = self.committed - logged
                    log.info("committed %d orders in the last %.0f s (%.0f orders/s); "
                             "%d in all, %d batches, %d dead-lettered", done, now - last_log,
                             done / (now - last_log), self.committed, self.batches,
                             self.dead)  # fmt: skip
                    last_log, logged = now, self.committed
        finally:
            await self.close()
            log.info("committer %s stopped: %d orders committed in %d batches",
                     self.streams.consumer, self.committed, self.batches)  # fmt: skip

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None

    async def _next_batch(self, stop: asyncio.Event) -> list[Entry]:
        """Entries to retry, entries of dead committers, then new ones (waiting for some
        only when there is nothing else to do)."""
        o, now = self.options, time.monotonic()
        await self._follow_events(now)
        await self.streams.ensure_groups(self._events)
        found = dict(self._retry)
        if now - self._claim_at >= min(o.claim_idle_ms / 2000, 10.0):
            self._claim_at = now
            for event_id in self._events:
                for entry in await self.streams.reclaim(event_id, o.claim_idle_ms, o.batch):
                    found.setdefault((entry.event_id, entry.id), entry)
        if not self._events:
            await _pause(stop, o.block_ms / 1000)
            return []
        block = 0 if found else o.block_ms
        for entry in await self.streams.read(self._events, o.batch, block):
            found[entry.event_id, entry.id] = entry
        if not found and self.streams.cluster:  # cluster reads do not wait by themselves
            await _pause(stop, o.block_ms / 1000)
        return list(found.values())

    @property
    def events(self) -> list[str]:
        """The events whose streams this committer reads now."""
        return list(self._events)

    async def _follow_events(self, now: float) -> None:
        """The events to read: the given ones, or the armed set, read again as soon as it
        changes. Arming adds to the set (its size changes), retirement moves ids out and
        back (the generation changes): two O(1) reads a round instead of a periodic poll,
        so a new event's first order is read at once, not seconds later."""
        o = self.options
        if o.events:
            self._events = list(o.events)
            return
        if now - self._retired_at >= o.retired_every_s:
            self._retired_at = now
            await self._retired.step()  # brings back retired events with late entries
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.scard(keys.ARMED_EVENTS)
            pipe.get(keys.ARMED_GENERATION)
            size, generation = await pipe.execute()
        mark = (int(size), generation)
        if mark != self._armed_mark or now - self._events_at >= o.refresh_s:
            self._events = sorted(await self.redis.smembers(keys.ARMED_EVENTS))
            self._armed_mark, self._events_at = mark, now

    async def _commit(self, batch: list[Entry], stop: asyncio.Event) -> None:
        orders: dict[str, Prepared] = {}
        entries: dict[str, list[Entry]] = {}
        done: list[Entry] = []  # entries with nothing to write: deleted while pending
        bad: list[tuple[Entry, str]] = []
        for entry in batch:
            if entry.fields is None:
                done.append(entry)
                continue
            try:
                order, order_rows = decode(entry)
            except Malformed as exc:
                bad.append((entry, str(exc)))
                continue
            # One row per order: the latest entry wins, except that a refund is final.
            previous = orders.get(order.order_id)
            if previous is None or previous[0].status is not OrderStatus.REFUNDED:
                orders[order.order_id] = (order, order_rows)
            entries.setdefault(order.order_id, []).append(entry)
        failed: list[tuple[Order, str]] = []
        if orders:
            # By order id: concurrent committers lock rows in the same order, never deadlock.
            written = await self._write([orders[k] for k in sorted(orders)], stop)
            if written is None:
                return  # stopped while Postgres is away: another committer reclaims them
            failed = written
        failed_ids = {o.order_id for o, _ in failed}
        self.rollups.note({o.event_id for o, _ in orders.values()},
                          [k for k in orders if k not in failed_ids])  # fmt: skip
        done += [e for oid, es in entries.items() if oid not in failed_ids for e in es]
        if self.after_commit is not None:
            await self.after_commit(batch)
        await self._ack(done, len(orders) - len(failed_ids))
        for order, reason in failed:
            bad += [(e, reason) for e in entries[order.order_id]]
        for entry, reason in bad:
            await self._failed(entry, reason)

    async def _write(
        self, orders: list[Prepared], stop: asyncio.Event
    ) -> list[tuple[Order, str]] | None:
        """Write until it works (None if asked to stop first); returns the orders at fault."""
        backoff = 0.1
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(
                        self.database_url, timeout=5, command_timeout=60
                    )
                    await create_temp_tables(self._conn)
                failed = await write_each(self._conn, self.writer, orders)
                self._up("postgres")
                return failed
            except SERVER_ERRORS as exc:
                self.retries += 1
                await self.close()
                self._down_once("postgres", exc, f"writing; holding {len(orders)} orders")
                await _pause(stop, backoff)
                backoff = min(backoff * 2, self.options.max_backoff_s)
                if stop.is_set():
                    log.warning("stopping with %d orders not committed: Postgres is "
                                "unavailable; another committer will reclaim them",
                                len(orders))  # fmt: skip
                    return None

    async def _report(self, idle: bool) -> None:
        """The reports' rollups when due (or when idle); they never stop the committer."""
        if self._conn is not None and not self._conn.is_closed():
            await self.rollups.maybe_flush(self._conn, idle=idle)

    async def _ack(self, entries: list[Entry], orders: int) -> None:
        by_event: dict[str, list[str]] = {}
        for entry in entries:
            by_event.setdefault(entry.event_id, []).append(entry.id)
            self._retry.pop((entry.event_id, entry.id), None)
            self._attempts.pop((entry.event_id, entry.id), None)
        now_ms = int(time.time() * 1000)
        for event_id, ids in by_event.items():
            await self.streams.ack(event_id, ids, orders, now_ms)
        if orders:
            self.committed += orders
            self.batches += 1

    async def _failed(self, entry: Entry, reason: str) -> None:
        key = (entry.event_id, entry.id)
        attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
        if attempts < self.options.max_attempts:
            self._retry[key] = entry
            log.warning("entry %s of event %s failed (attempt %d of %d): %s",
                        entry.id, entry.event_id, attempts, self.options.max_attempts,
                        reason)  # fmt: skip
            return
        self._retry.pop(key, None)
        self._attempts.pop(key, None)
        why = f"{reason} (after {attempts} attempts)"
        if await self.streams.dead_letter(entry, why, int(time.time() * 1000)):
            self.dead += 1
            log.error("DEAD LETTER: entry %s of event %s moved to %s and acknowledged, "
                      "it will NOT reach Postgres: %s", entry.id, entry.event_id,
                      keys.dead_letters(entry.event_id), why)  # fmt: skip

    def _down_once(self, what: str, exc: BaseException, doing: str) -> None:
        """Say it once when a dependency goes away, not at every retry."""
        if what in self._down:
            return
        self._down[what] = time.monotonic()
        log.error("%s unavailable (%s) while %s; retrying with backoff up to %.0f s, "
                  "nothing is acknowledged meanwhile", what, describe(exc), doing,
                  self.options.max_backoff_s)  # fmt: skip

    def _up(self, what: str) -> None:
        since = self._down.pop(what, None)
        if since is not None:
            log.warning("%s is back after %.1f s; catching up", what, time.monotonic() - since)


def main(settings: Settings, options: CommitterOptions) -> int:
    """``onsale committer``: until SIGINT or SIGTERM, then the batch in hand is finished."""
    if not logging.getLogger().handlers:
        logs.configure()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        redis = redis_client(settings.redis.url, cluster=settings.redis.cluster)
        try:
            await Committer(redis, settings.database.url, options).run(stop)
        finally:
            await redis.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())
    return 0
