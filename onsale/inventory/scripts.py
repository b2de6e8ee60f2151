"""The Lua scripts, loaded from package files and registered once per client."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

#: Script name -> the preludes it is built on (``_clock`` always comes first).
PRELUDES: dict[str, tuple[str, ...]] = {
    "hold": ("_common",),
    "release": ("_common",),
    "confirm": ("_common",),
    "sweep": ("_common",),
    "arm": ("_common",),
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
    (after a restart, a failover or SCRIPT FLUSH).

    The same as redis-py's ``register_script``, without its per-call wrapper: this is the
    hot path of every hold and every queue poll.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.redis.evalsha(sha(name), len(keys), *keys, *args)
        except NoScriptError:
            await self.redis.script_load(source(name))
            return await self.redis.evalsha(sha(name), len(keys), *keys, *args)
