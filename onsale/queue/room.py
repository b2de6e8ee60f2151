"""The waiting room in Redis: typed async wrappers around the queue scripts."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import msgspec

from onsale import keys
from onsale.connections import RedisClient, bulk
from onsale.queue import shuffle
from onsale.scripts import Batches, ScriptClient

if TYPE_CHECKING:
    from onsale.queue.lobby import Lobby


class State(StrEnum):
    PREQUEUE = "prequeue"
    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"
    CLOSED = "closed"
    #: Not in the room (never joined, or Redis lost the place): join again.
    UNKNOWN = "unknown"
    #: The visitor left the room.
    LEFT = "left"
    UNKNOWN_EVENT = "unknown_event"
    #: Polled before half the advised interval; ``poll_after_seconds`` says when to retry.
    TOO_FAST = "too_fast"
    #: The client's network holds as many live places as it may; no place was taken.
    TOO_MANY = "too_many"
    #: An unknown or used-up access code; nothing was taken.
    CODE_INVALID = "code_invalid"


class Place(msgspec.Struct, frozen=True):
    state: State
    position: int | None
    eta_seconds: int | None
    poll_after_seconds: int
    #: When the admission ends (epoch ms); 0 unless admitted.
    admission_expires_ms: int = 0
    #: ``held_only`` while every unsold ticket is in someone's cart.
    note: str = ""
    #: ``presale`` for a place in the presale's line, or an admission it gave.
    line: str = ""
    #: A presale admission's tiers, as its access code allows (empty: every tier).
    tiers: tuple[str, ...] = ()
    #: The place for the visitor's token (:class:`onsale.queue.tokens.Pass`); ``""`` when
    #: the answer names none (the token stays as it was).
    number: str = ""
    #: The numbering ``number`` belongs to (:class:`onsale.queue.tokens.Pass`).
    epoch: int = 0


class Board(msgspec.Struct, frozen=True):
    """The event's public state (``queue_board.lua``): the same for every waiting visitor."""

    #: Redis's clock (or the injected one) when read, epoch ms.
    now: int
    opens: int
    closes: int
    #: The presale's opening (epoch ms); 0 for none.
    presale: int
    paused: bool
    frozen: bool
    pfrozen: bool
    #: The general pre-queue's ranks follow this many presale numbers.
    pbase: int
    #: How many ranks the presale's pre-queue drew.
    ppre: int
    seq: int
    cursor: int
    #: Admissions per second (the last minute's, or the configured rate).
    rate: float
    admitted: int
    skipped: int
    available: int
    unsold: int
    epoch: int


class Counts(msgspec.Struct, frozen=True):
    frozen: bool
    pre_count: int
    waiting: int
    cursor: int
    active: int
    admitted: int
    skipped: int
    noshow: int
    claimed: int

    @property
    def no_show_rate(self) -> float:
        """Of the admissions that ended or were skipped, the share nobody used."""
        total = self.admitted + self.skipped
        return (self.skipped + self.noshow) / total if total else 0.0


def _place(reply: list[Any]) -> Place:
    state, position, eta, every, expires, note = reply[:6]
    line, tiers = (reply[6], reply[7]) if len(reply) > 7 else ("", "")
    number, epoch = (str(reply[8]), int(reply[9])) if len(reply) > 9 else ("", 0)
    return Place(
        state=State(state),
        position=int(position) if int(position) >= 0 else None,
        eta_seconds=int(eta) if int(eta) >= 0 else None,
        poll_after_seconds=int(every),
        admission_expires_ms=int(expires),
        note=note,
        line=line,
        tiers=tuple(tiers.split()),
        number=number,
        epoch=epoch,
    )


#: How long an ended event's waiting room keeps its visitors' state once the event is
#: retired (onsale/events/retirement.py): a day to look into it, then Redis drops it.
ENDED_ROOM_TTL_S = 86_400


def per_visitor_keys(event_id: str) -> list[str]:
    """The room's keys that grow with its visitors (what an ended room lets expire); its
    counters (``q:state``), the schedule, the stock and the access codes stay."""
    return [
        keys.queue_pre(event_id),
        keys.queue_presale(event_id),
        keys.queue_visitors(event_id),
        keys.queue_by_seq(event_id),
        keys.queue_line(event_id),
        keys.queue_alive(event_id),
        keys.queue_seen(event_id),
        keys.queue_active(event_id),
        keys.queue_admissions(event_id),
        keys.queue_rate(event_id),
        keys.queue_places(event_id),
        keys.queue_forget(event_id),
        keys.access_visitors(event_id),
    ]


async def expire_rooms(
    redis: RedisClient, event_ids: Sequence[str], seconds: int = ENDED_ROOM_TTL_S
) -> None:
    """Let the per-visitor state of these (ended) events' rooms expire in ``seconds``."""
    if not event_ids:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for event_id in event_ids:
            for key in per_visitor_keys(event_id):
                pipe.expire(key, seconds)
        await pipe.execute()


#: Joins sent in one script call at most: each holds the event's shard ~25 us.
JOINS_PER_CALL = 64

#: Seen marks written by one BITFIELD command (~100 KB; packed in about a millisecond).
MARKS_PER_COMMAND = 2_000

#: One mark's ``SET i64`` in RESP, less its offset and value.
_SET_I64 = b"$3\r\nSET\r\n$3\r\ni64\r\n"


def _bitfield_packed(key: str, marks: list[tuple[int, int]]) -> bytes:
    """``BITFIELD key SET i64 #<2 seq> <until> ...`` in RESP (five times faster than packing
    each argument: a second's marks of a busy process are tens of thousands)."""
    out = [b"*%d\r\n$8\r\nBITFIELD\r\n" % (2 + 4 * len(marks)), bulk(key)]
    for seq, until in marks:
        offset, value = b"#%d" % (2 * seq), b"%d" % until
        out.append(
            b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n" % (_SET_I64, len(offset), offset, len(value), value)
        )
    return b"".join(out)


def _bitfield_args(key: str, marks: list[tuple[int, int]]) -> list[Any]:
    args: list[Any] = ["BITFIELD", key]
    for seq, until in marks:
        args += ("SET", "i64", f"#{2 * seq}", until)
    return args


class WaitingRoom(ScriptClient):
    """Every decision is one script on the event's slot: any number of gateways agree."""

    _lobby: Lobby | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._joins = Batches(self._scripts, "queue_join", "queue_joins", JOINS_PER_CALL, self.now)

    @property
    def lobby(self) -> Lobby:
        """This process's polls answered from the public state (:mod:`onsale.queue.lobby`)."""
        if self._lobby is None:
            from onsale.queue.lobby import Lobby

            self._lobby = Lobby(self)
        return self._lobby

    async def join(
        self,
        event_id: str,
        visitor_id: str,
        *,
        client: str = "",
        cap: int = 0,
        strict: bool = False,
        code_hash: str = "",
    ) -> Place:
        """Take a place, or get one's live place back.

        A new place counts against ``client`` (a network; ``""`` for none): past ``cap`` live
        places (0 = no cap) the answer is :attr:`State.TOO_MANY`. A place is live until it
        ends: left, passed by the cursor while its visitor was away, or admitted and the
        admission over. An abandoned place thus counts until the cursor reaches it (before
        opening, until the tick drops its visitor, ten minutes after they would count as
        gone): exact at the moment of the join, and checked only then, in the script that
        takes the place. With ``strict`` (the visitor sent their token) joining again while
        holding a place is a poll, refused as :attr:`State.TOO_FAST` like a status poll.

        ``code_hash`` (an access code's, :func:`onsale.queue.access.digest`) places the visitor
        in the presale's line while a presale is scheduled and the general sale has not
        opened, taking one use of the code the first time (then bound to the visitor); an
        unknown or used-up code is :attr:`State.CODE_INVALID`, and nothing is taken.
        """
        # The joins asked for in the same turn of the event loop go to Redis together, in one
        # script call (``queue_joins``): one round trip for many, each as atomic as alone.
        args = [visitor_id, client, cap, int(strict), code_hash]
        return _place(await self._joins.call(keys.queue_keys(event_id), args))

    async def status(self, event_id: str, visitor_id: str, *, strict: bool = False) -> Place:
        """Where the visitor stands; with ``strict`` a too-early poll is refused."""
        args = [self.now(), visitor_id, "1" if strict else "0"]
        reply = await self._scripts.run("queue_status", keys.queue_keys(event_id), args)
        return _place(reply)

    async def leave(self, event_id: str, visitor_id: str) -> bool:
        args = [self.now(), visitor_id]
        return bool(await self._scripts.run("queue_leave", keys.queue_keys(event_id), args))

    async def advance(self, event_id: str) -> Counts | None:
        """Move the cursor now (the periodic tick), drop the state of ended places, and report
        the room's counters."""
        reply = await self._scripts.run("queue_advance", keys.queue_keys(event_id), [self.now()])
        if not reply:
            return None
        frozen, pre, seq, cursor, active, admitted, skipped, noshow, claimed = map(int, reply[:9])
        running, unranked = map(int, reply[9:11])
        return Counts(
            frozen=bool(frozen),
            pre_count=pre,
            waiting=((seq - cursor) if running else 0) + unranked,
            cursor=cursor,
            active=active,
            admitted=admitted,
            skipped=skipped,
            noshow=noshow,
            claimed=claimed,
        )

    async def fill(self, event_id: str, visitor_ids: Sequence[str]) -> tuple[list[str], int]:
        """Many new visitors take a place, as joins from an uncounted client would (a
        benchmark's room): their places (:attr:`Place.number`) and the numbering's epoch."""
        reply = await self._scripts.run(
            "queue_fill", keys.queue_keys(event_id), [self.now(), *visitor_ids]
        )
        if not reply:
            return [], 0
        return [str(p) for p in reply[1:]], int(reply[0])

    async def board(self, event_id: str) -> Board | None:
        """The event's public state (moving the cursor, as a poll did); ``None`` for an
        unknown event."""
        reply = await self._scripts.run("queue_board", keys.queue_keys(event_id), [self.now()])
        if not reply:
            return None
        now, opens, closes, presale, paused, frozen, pfrozen, pbase, ppre = map(int, reply[:9])
        seq, cursor = int(reply[9]), int(reply[10])
        admitted, skipped, available, unsold, epoch = map(int, reply[12:17])
        return Board(
            now=now,
            opens=opens,
            closes=closes,
            presale=presale,
            paused=bool(paused),
            frozen=bool(frozen),
            pfrozen=bool(pfrozen),
            pbase=pbase,
            ppre=ppre,
            seq=seq,
            cursor=cursor,
            rate=float(reply[11]),
            admitted=admitted,
            skipped=skipped,
            available=available,
            unsold=unsold,
            epoch=epoch,
        )

    async def mark_seen(
        self,
        event_id: str,
        numbered: dict[int, int],
        alive: dict[str, int],
        forget: dict[str, int],
    ) -> None:
        """Many polls' "still here" marks in a few commands, as ``seen()`` in ``_queue.lua``
        writes them one by one: ``numbered`` sequence number -> alive-until (ms, what the
        cursor checks; ``q:alive``, :data:`MARKS_PER_COMMAND` to a command), ``alive``
        pre-queue visitor -> alive-until (``q:seen``), ``forget`` pre-queue visitor -> when
        the tick may drop them (``q:forget``)."""
        # On the scripts' own path (a lane, packed at once): a mark costs a poll under 1 us,
        # and no command holds the event loop more than a millisecond or two.
        marks = sorted(numbered.items())
        key = keys.queue_alive(event_id)
        for i in range(0, len(marks), MARKS_PER_COMMAND):
            chunk = marks[i : i + MARKS_PER_COMMAND]
            await self._scripts.command_packed(
                functools.partial(_bitfield_packed, key, chunk),
                functools.partial(_bitfield_args, key, chunk),
            )
        if alive:
            flat = [x for pair in alive.items() for x in pair]
            await self._scripts.command("HSET", keys.queue_seen(event_id), *flat)
        if forget:
            flat = [x for visitor, at in forget.items() for x in (at, visitor)]
            await self._scripts.command("ZADD", keys.queue_forget(event_id), *flat)

    async def seed(self, event_id: str, seed: str) -> str:
        """Set the fair-start seed (and the presale's, derived from it) once, before anyone
        joins; returns the seed in force."""
        key = keys.queue_state(event_id)
        await self.redis.hsetnx(key, "seed", seed)
        current: str = await self.redis.hget(key, "seed")
        await self.redis.hsetnx(key, "pseed", shuffle.presale_seed(current))
        return current

    async def revealed_seeds(
        self, event_ids: Sequence[str], *, presale: bool = False
    ) -> dict[str, str]:
        """The fair-start seed of each event whose pre-queue Redis has frozen: its order is
        then fixed, so the seed may be published. The freeze goes by Redis's clock (or the
        scripts' injected one), never a gateway's, so the reveal must too. With ``presale``,
        the presale's seed once its pre-queue has frozen."""
        if not event_ids:
            return {}
        flag, field = ("pfrozen", "pseed") if presale else ("frozen", "seed")
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.hmget(keys.queue_state(event_id), flag, field)
            replies = await pipe.execute()
        return {
            event_id: seed
            for event_id, (frozen, seed) in zip(event_ids, replies, strict=True)
            if frozen == "1" and seed is not None
        }
