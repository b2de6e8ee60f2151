"""Every Lua script: read from the package's ``lua/`` files, loaded once, run by name.

One way to run a script, for the inventory, the waiting room, checkout, the committers,
retirement and check-in alike: :class:`Scripts` sends EVALSHA, and SCRIPT LOAD then again
when Redis answers NOSCRIPT (after a restart, a failover or SCRIPT FLUSH). Each process
loads every script once at start (:meth:`Scripts.load_all`); the reload covers the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from onsale.connections import Lanes, RedisClient, bulk

#: Script name -> the preludes it is built on, in order, before the script itself. The
#: inventory's and the waiting room's take the caller's clock (``_clock``); the committers',
#: retirement's and check-in's read Redis's own and stand alone.
PRELUDES: dict[str, tuple[str, ...]] = {
    "hold": ("_clock", "_common"),
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
