"""Polls answered without Redis: the event's public state, read a few times a second by
each gateway process, and the place the visitor's token carries.

A waiting visitor's token is signed with their sequence number
(:class:`onsale.queue.tokens.Pass`); their position is that number less the cursor, which
every waiting visitor shares with the cursor's rate, the stock and the schedule in one
small document (:class:`onsale.queue.room.Board`). Each process keeps that document per
event it is asked about, refreshed every :data:`REFRESH_S` by one background task (which
stops once nobody has polled the event for :data:`IDLE_S`), so a million waiting visitors
cost each process a few Redis calls a second, not one per poll. The cursor a process
knows is never ahead of Redis's: a position is at most one refresh late, and never better
than the truth.

Redis is still asked (:meth:`WaitingRoom.status`) whenever the document cannot answer for
the visitor: their number is at or near the cursor (:func:`near`: admitted, once, or
passed over, or about to be), the
token carries no number (an old ``v1`` token, or a pre-queue place whose rank was drawn
since: the answer then carries a new token with the number), the room was renumbered
since the token (Redis lost it), or this process saw the visitor leave.

The "still here" marks the cursor reads to skip the abandoned are kept here and written
in one batch per event every :data:`FLUSH_S` (one HSET, one ZADD). A poll that comes
before half its advised interval is refused from this process's memory of the visitor's
last answer: a visitor whose polls a load balancer spreads over several processes could
poll that many times faster, which is harmless (the answer is the same document) and
bounded by the number of processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from onsale.queue.room import Board, Place, State, WaitingRoom
from onsale.queue.tokens import PRE_GENERAL, PRE_PRESALE, Pass

log = logging.getLogger("onsale.queue")

#: An event's empty visitor memory, never written: a lookup's default.
_NONE: dict[str, int] = {}

#: How often each process reads each polled event's public state (s): the most a
#: position lags.
REFRESH_S = 0.5
#: An event nobody has polled for this long is no longer refreshed (s).
IDLE_S = 15.0
#: How often the batched "still here" marks are written (s). A mark's alive-until is three
#: advised intervals and 15 s ahead, so a second's delay costs nobody their place.
FLUSH_S = 1.0
#: The too-fast memory: an advised interval is at most 30 s, so half of it 15 s; two
#: generations of this span each cover every live entry.
TOO_FAST_SPAN_MS = 16_000
#: Visitors this process saw leave, remembered so that their polls here ask Redis.
LEFT_KEPT = 100_000
#: How long a pre-queue visitor's state outlives their alive-until (``FORGET_AFTER_MS``).
FORGET_AFTER_MS = 600_000


def eta(board: Board, position: int) -> int | None:
    """Seconds until ``position`` is admitted, as ``eta()`` in ``_queue.lua`` says it."""
    if board.paused or board.available <= 0:
        return None
    done = board.admitted + board.skipped
    keep = board.admitted / done if done >= 20 else 1
    return math.ceil(position * keep / board.rate)


def poll_after(wait: int | None) -> int:
    if wait is None:
        return 10
    return max(2, min(30, wait // 5))


def near(board: Board) -> int:
    """Places behind the cursor this process knows that may have been admitted since it
    read it (two refreshes' worth at the rate, at least one): their polls ask Redis, so an
    admission is known at once, and claimed there."""
    return max(1, math.ceil(board.rate * 2 * REFRESH_S))


def answer(board: Board, now: int, token: Pass) -> Place | None:
    """The visitor's answer from the public state and their token, exactly as
    ``status()`` in ``_queue.lua`` gives it; ``None`` when only Redis can tell."""
    if not token.place or board.rate <= 0:
        return None
    numbered = token.place not in (PRE_GENERAL, PRE_PRESALE)
    seq = int(token.place) if numbered else 0
    if numbered and (token.epoch != board.epoch or seq <= board.cursor):
        return None  # admitted or passed over (only Redis knows), or renumbered since
    if board.closes == 1 or (board.closes > 0 and now >= board.closes):
        return Place(State.CLOSED, None, None, 60)
    if board.unsold <= 0:
        return Place(State.SOLD_OUT, None, None, 60)
    note = "held_only" if board.available <= 0 else ""
    if not numbered:
        if token.place == PRE_GENERAL:
            at, line, drawn = board.opens, "", board.frozen
        else:
            at, line, drawn = board.presale, "presale", board.pfrozen or not board.presale
        if drawn or now >= at:
            return None  # the rank is drawn (or is being): Redis tells the number
        until = max(0, math.ceil((at - now) / 1000))
        every = max(1, min(30, until // 2))
        return Place(State.PREQUEUE, None, until, every, 0, note, line, (), token.place, 0)
    position = seq - board.cursor
    if position <= near(board):
        return None  # their turn may have come since the read: Redis tells, exactly
    wait = eta(board, position)
    line = "presale" if not board.frozen or seq <= board.pbase else ""
    return Place(
        State.WAITING, position, wait, poll_after(wait), 0, note, line, (), token.place,
        token.epoch,
    )  # fmt: skip


@dataclass
class _Watch:
    """One event's public state in this process, and the task that refreshes it."""

    board: Board | None = None
    #: ``time.monotonic()`` when ``board`` was read, and when last asked for.
    read_at: float = 0.0
    asked_at: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Lobby:
    """One gateway process's view of its waiting rooms (see the module's docstring)."""

    def __init__(self, room: WaitingRoom) -> None:
        self.room = room
        self._watches: dict[str, _Watch] = {}
        # event -> number -> alive-until (ms); pre-queue visitor -> alive-until, forget-at
        self._numbered: dict[str, dict[int, int]] = {}
        self._alive: dict[str, dict[str, int]] = {}
        self._forget: dict[str, dict[str, int]] = {}
        self._flusher: asyncio.Task[None] | None = None
        # event -> visitor -> earliest next poll (ms); two generations (see TOO_FAST_SPAN_MS).
        # Strings and ints only, never a tuple per visitor: such dicts are invisible to the
        # garbage collector, whose full passes over a million tuples stalled every poll.
        self._next: dict[str, dict[str, int]] = {}
        self._next_old: dict[str, dict[str, int]] = {}
        self._next_since = 0
        self._left: dict[str, None] = {}  # "event visitor" (ids hold no spaces)
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- the public state ------------------------------------------------------------------

    async def view(self, event_id: str) -> tuple[Board | None, int]:
        """The event's public state as this process knows it, and now (ms) on the room's
        clock (Redis's, unless one is injected)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (a test's): the old one's tasks and events are of no use.
            self._loop, self._watches, self._flusher = loop, {}, None
        watch = self._watches.get(event_id)
        if watch is None or watch.task is None or watch.task.done():
            watch = self._watches[event_id] = _Watch()
            watch.task = asyncio.create_task(self._refresh(event_id, watch))
        watch.asked_at = time.monotonic()
        if not watch.ready.is_set():
            await watch.ready.wait()
        board, age = watch.board, time.monotonic() - watch.read_at
        now = self.room.now() or (board.now + int(age * 1000) if board else 0)
        return board, now

    async def _refresh(self, event_id: str, watch: _Watch) -> None:
        try:
            while time.monotonic() - watch.asked_at < IDLE_S or not watch.ready.is_set():
                began = time.monotonic()
                try:
                    watch.board = await self.room.board(event_id)
                    watch.read_at = began
                except (RedisError, OSError) as exc:
                    log.warning("waiting room %s: could not read its state: %s", event_id, exc)
                    # Not answered from an old read: polls ask Redis, and fail as they did.
                    watch.board = None
                watch.ready.set()
                await asyncio.sleep(REFRESH_S)
        finally:
            watch.ready.set()
            if self._watches.get(event_id) is watch:
                del self._watches[event_id]

    # ---- what a poll leaves behind -------------------------------------------------------

    def too_fast(self, event_id: str, visitor_id: str, now: int) -> int:
        """Seconds until the visitor may poll again (0: now), from this process's memory."""
        earliest = max(
            self._next.get(event_id, _NONE).get(visitor_id, 0),
            self._next_old.get(event_id, _NONE).get(visitor_id, 0),
        )
        return math.ceil((earliest - now) / 1000) if now < earliest else 0

    def answered(self, event_id: str, visitor_id: str, place: Place, now: int) -> None:
        """Remember when the visitor may poll next (half the advised interval, as
        ``seen()`` in ``_queue.lua``)."""
        if place.state not in (State.WAITING, State.PREQUEUE):
            return
        if now - self._next_since > TOO_FAST_SPAN_MS or now < self._next_since:
            self._next_old, self._next, self._next_since = self._next, {}, now
        self._next.setdefault(event_id, {})[visitor_id] = now + place.poll_after_seconds * 500

    def forget_poll(self, event_id: str, visitor_id: str) -> None:
        """Forget when the visitor may poll next here (as if their interval had passed)."""
        self._next.get(event_id, _NONE).pop(visitor_id, None)
        self._next_old.get(event_id, _NONE).pop(visitor_id, None)

    def seen(self, event_id: str, visitor_id: str, place: Place, now: int) -> None:
        """Queue the visitor's "still here" mark (a poll this process answered)."""
        alive = now + (3 * place.poll_after_seconds + 15) * 1000
        if place.state is State.PREQUEUE:
            self._alive.setdefault(event_id, {})[visitor_id] = alive
            self._forget.setdefault(event_id, {})[visitor_id] = alive + FORGET_AFTER_MS
        elif place.state is State.WAITING:
            self._numbered.setdefault(event_id, {})[int(place.number)] = alive
        else:
            return  # sold out, closed: no place to keep (the room marks nobody either)
        if self._flusher is None or self._flusher.done() or self._loop is None:
            self._flusher = asyncio.create_task(self._flush_forever())

    async def flush(self) -> None:
        """Write the marks queued so far: one batch per event."""
        numbered, self._numbered = self._numbered, {}
        alive, self._alive = self._alive, {}
        forget, self._forget = self._forget, {}
        for event_id in numbered.keys() | alive.keys() | forget.keys():
            try:
                await self.room.mark_seen(
                    event_id,
                    numbered.get(event_id, {}),
                    alive.get(event_id, {}),
                    forget.get(event_id, {}),
                )
            except (RedisError, OSError) as exc:
                log.warning("waiting room %s: could not write seen marks: %s", event_id, exc)

    async def _flush_forever(self) -> None:
        while self._numbered or self._alive or self._forget:
            await asyncio.sleep(FLUSH_S)
            await self.flush()

    def left(self, event_id: str, visitor_id: str) -> None:
        """The visitor left through this process: their polls here ask Redis."""
        if len(self._left) >= LEFT_KEPT:
            del self._left[next(iter(self._left))]
        self._left[f"{event_id} {visitor_id}"] = None

    def has_left(self, event_id: str, visitor_id: str) -> bool:
        return f"{event_id} {visitor_id}" in self._left

    async def close(self) -> None:
        """Stop refreshing, and write the marks still queued."""
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        if self._flusher is not None:
            tasks.append(self._flusher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
