"""Every Lua script: read from the package's ``lua/`` files, loaded once, run by name.

One way to run a script, for the inventory, the waiting room, checkout, the committers,
retirement and check-in alike: :class:`Scripts` sends EVALSHA, and SCRIPT LOAD then again
when Redis answers NOSCRIPT (after a restart, a failover or SCRIPT FLUSH). Each process
loads every script once at start (:meth:`Scripts.load_all`); the reload covers the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from onsale.connections import Lanes, RedisClient, bulk

#: Script name -> the preludes it is built on, in order, before the script itself. The
#: inventory's and the waiting room's take the caller's clock (``_clock``); the committers',
#: retirement's and check-in's read Redis's own and stand alone.
PRELUDES: dict[str, tuple[str, ...]] = {
    "hold": ("_clock", "_common", "_hold"),
    "holds": ("_clock", "_common", "_hold"),
    "release": ("_clock", "_common"),
    "confirm": ("_clock", "_common"),
    "sweep": ("_clock", "_common"),
    "arm": ("_clock", "_common"),
    "order_cas": ("_clock", "_common"),
    "refund": ("_clock", "_common"),
    "refund_order": ("_clock", "_common"),
    "cancel": ("_clock", "_common"),
    "schedule": ("_clock",),
    "queue_join": ("_clock", "_queue"),
    "queue_status": ("_clock", "_queue"),
    "queue_leave": ("_clock", "_queue"),
    "queue_advance": ("_clock", "_queue"),
    "queue_board": ("_clock", "_queue"),
    "queue_fill": ("_clock", "_queue"),
    "queue_joins": ("_clock", "_queue"),
    "commit_ack": (),
    "commit_dead": (),
    "commit_lag": (),
    "stream_find": (),
    "event_activity": (),
    "retire_move": (),
    "pow_spend": (),
    "pow_state": (),
}


@cache
def source(name: str) -> str:
    """A script's full text: its preludes, then the script itself."""
    lua = resources.files("onsale") / "lua"
    return "\n".join((lua / f"{part}.lua").read_text() for part in (*PRELUDES[name], name))


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


class Scripts:
    """Every script by name on one client. With ``lanes`` (the gateway's hot path) the calls
    bypass redis-py's command machinery; a Redis Cluster client routes by key and keeps the
    ordinary call.
    """

    def __init__(self, redis: RedisClient, lanes: Lanes | None = None) -> None:
        self.redis = redis
        self._lanes = lanes
        self._call = lanes.call if lanes else redis.execute_command
        # (script, keys) -> "EVALSHA sha numkeys keys..." in RESP: the same for every call
        # of a script on an event, so packed once.
        self._heads: dict[tuple[str, tuple[str, ...]], bytes] = {}

    async def command(self, *args: Any) -> Any:
        """One plain command on the same path as the scripts (a lane when there are)."""
        return await self._call(*args)

    async def command_packed(
        self, packed: Callable[[], bytes], args: Callable[[], list[Any]]
    ) -> Any:
        """One command that the caller packs faster than :func:`~onsale.connections.pack`
        would: ``packed()`` (RESP) on a lane; without lanes ``args()`` as a plain command."""
        if self._lanes is not None:
            return await self._lanes.call_packed(packed())
        return await self._call(*args())

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            if self._lanes is not None:
                return await self._lanes.call_packed(self._packed(name, keys, args))
            return await self._call("EVALSHA", sha(name), len(keys), *keys, *args)
        except NoScriptError:
            await self._load(name)
            return await self._call("EVALSHA", sha(name), len(keys), *keys, *args)

    async def load_all(self) -> None:
        """SCRIPT LOAD every script, at a process's start: later calls find them loaded."""
        for name in PRELUDES:
            await self._load(name)

    async def _load(self, name: str) -> None:
        # One command name, "SCRIPT LOAD": a Redis Cluster client sends it to every
        # primary (as two words it finds no key to route by); the wire bytes are the same.
        await self._call("SCRIPT LOAD", source(name))

    def _packed(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> bytes:
        head_key = (name, tuple(keys))
        head = self._heads.get(head_key)
        if head is None:
            if len(self._heads) > 50_000:
                self._heads.clear()
            head = self._heads[head_key] = b"".join(
                bulk(x) for x in ("EVALSHA", sha(name), len(keys), *keys)
            )
        count = 3 + len(keys) + len(args)
        return b"*%d\r\n" % count + head + b"".join(bulk(a) for a in args)


async def run(redis: RedisClient, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """One script on a plain client, off the hot path (the committers, retirement,
    check-in, the lag): :meth:`Scripts.run` without lanes."""
    return await Scripts(redis).run(name, keys, args)


async def load_all(redis: RedisClient) -> None:
    """:meth:`Scripts.load_all` on a plain client."""
    await Scripts(redis).load_all()


Clock = Callable[[], int]
"""Epoch milliseconds. Without one the scripts use Redis's clock, shared by all gateways."""


class Batches:
    """Calls of one script asked for in the same turn of the event loop on the same keys,
    sent to Redis together: ``many`` (up to ``per_call`` at a time) runs them one after the
    other in one script call, each as atomic as ``one`` alone. One round trip for many: on
    the hot path the round trip cost the gateway more than the script (bench queue).

    ``many`` takes the clock, then every call's arguments in turn, and answers a list of
    ``one``'s answers in order; ``{'fail', message}`` for a call that raised an error there
    (the others are answered), which its waiter gets as :class:`ResponseError`.
    """

    def __init__(
        self, scripts: Scripts, one: str, many: str, per_call: int, now: Callable[[], int]
    ) -> None:
        self._scripts, self._one, self._many = scripts, one, many
        self._per_call, self._now = per_call, now
        # (loop, first key) -> the keys, and the calls asked for this turn and their waiters
        self._pending: dict[tuple[asyncio.AbstractEventLoop, str], _Pending] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, keys: Sequence[str], args: list[Any]) -> Any:
        """``one``'s answer for these arguments (without the clock), or its error."""
        loop = asyncio.get_running_loop()
        key = (loop, keys[0])
        waiting = loop.create_future()
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = (keys, [])
            loop.call_soon(self._send, key)  # once the requests ready now have asked
        pending[1].append((args, waiting))
        return await waiting

    def _send(self, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        names, calls = self._pending.pop(key)
        task = asyncio.ensure_future(self._run_all(names, calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run_all(self, names: Sequence[str], calls: list[tuple[list[Any], Any]]) -> None:
        # One script call after another, never side by side: those asked first are served
        # first (a join's place in the line), as a concurrent second call could overtake.
        try:
            for i in range(0, len(calls), self._per_call):
                await self._run(names, calls[i : i + self._per_call])
        finally:  # cancelled part-way (the process stopping): nobody is left waiting
            for _, waiting in calls:
                if not waiting.done():
                    waiting.cancel()

    async def _run(self, names: Sequence[str], batch: list[tuple[list[Any], Any]]) -> None:
        try:
            if len(batch) == 1:
                replies = [await self._scripts.run(self._one, names, [self._now(), *batch[0][0]])]
            else:
                flat = [a for args, _ in batch for a in args]
                replies = await self._scripts.run(self._many, names, [self._now(), *flat])
            for (_, waiting), reply in zip(batch, replies, strict=True):
                if waiting.done():  # cancelled: no longer waits
                    continue
                if isinstance(reply, list) and reply and reply[0] == "fail":
                    # An error in this call alone (``many`` catches each): as if sent alone.
                    waiting.set_exception(ResponseError(str(reply[1])))
                else:
                    waiting.set_result(reply)
        except BaseException as exc:  # every waiter left gets it (a wrong reply, Redis gone)
            for _, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(exc)
            if not isinstance(exc, Exception):
                raise


_Pending = tuple[Sequence[str], list[tuple[list[Any], "asyncio.Future[Any]"]]]


class ScriptClient:
    """What the inventory engine and the waiting room share: a client, its scripts, a clock."""

    def __init__(
        self, redis: RedisClient, clock: Clock | None = None, scripts: Scripts | None = None
    ) -> None:
        self.redis = redis
        self._scripts = scripts or Scripts(redis)
        self._clock = clock

    @property
    def scripts(self) -> Scripts:
        return self._scripts

    @property
    def clock(self) -> Clock | None:
        return self._clock

    def now(self) -> int:
        """The injected clock, or 0: the script then asks Redis for the time."""
        return self._clock() if self._clock else 0

    async def now_ms(self) -> int:
        """What the scripts take for now, here: the injected clock, else Redis's (one round
        trip). Whatever compares with a time a script wrote (a hold's end) uses this, never
        the gateway's own clock, which may be off Redis's."""
        if self._clock:
            return self._clock()
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
