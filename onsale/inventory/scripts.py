"""The Lua scripts, loaded from package files and registered once per client."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from onsale.connections import Lanes, bulk

#: Script name -> the preludes it is built on (``_clock`` always comes first).
PRELUDES: dict[str, tuple[str, ...]] = {
    "hold": ("_common",),
    "release": ("_common",),
    "confirm": ("_common",),
    "sweep": ("_common",),
    "arm": ("_common",),
    "order_cas": ("_common",),
    "refund": ("_common",),
    "queue_join": ("_queue",),
    "queue_status": ("_queue",),
    "queue_leave": ("_queue",),
    "queue_advance": ("_queue",),
}


@cache
def source(name: str) -> str:
    """A script's full text: the shared preludes, then the script itself."""
    lua = resources.files("onsale") / "lua"
    parts = ("_clock", *PRELUDES[name], name)
    return "\n".join((lua / f"{part}.lua").read_text() for part in parts)


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


class Scripts:
    """Every script by name: EVALSHA, and SCRIPT LOAD then again when Redis answers NOSCRIPT
    (after a restart, a failover or SCRIPT FLUSH). With ``lanes`` (the gateway's hot path)
    the calls bypass redis-py's command machinery; a Redis Cluster client routes by key and
    keeps the ordinary call.
    """

    def __init__(self, redis: Any, lanes: Lanes | None = None) -> None:
        self.redis = redis
        self._lanes = lanes
        self._call = lanes.call if lanes else redis.execute_command
        # (script, keys) -> "EVALSHA sha numkeys keys..." in RESP: the same for every call
        # of a script on an event, so packed once.
        self._heads: dict[tuple[str, tuple[str, ...]], bytes] = {}

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            if self._lanes is not None:
                return await self._lanes.call_packed(self._packed(name, keys, args))
            return await self._call("EVALSHA", sha(name), len(keys), *keys, *args)
        except NoScriptError:
            # One command name, "SCRIPT LOAD": a Redis Cluster client sends it to every
            # primary (as two words it finds no key to route by); the wire bytes are the same.
            await self._call("SCRIPT LOAD", source(name))
            return await self._call("EVALSHA", sha(name), len(keys), *keys, *args)

    def _packed(self, name: str, keys: list[str], args: list[Any]) -> bytes:
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


Clock = Callable[[], int]
"""Epoch milliseconds. Without one the scripts use Redis's clock, shared by all gateways."""


class ScriptClient:
    """What the inventory engine and the waiting room share: a client, its scripts, a clock."""

    def __init__(
        self, redis: Any, clock: Clock | None = None, scripts: Scripts | None = None
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
        return self._now()

    def _now(self) -> int:
        """The injected clock, or 0: the script then asks Redis for the time."""
        return self._clock() if self._clock else 0
