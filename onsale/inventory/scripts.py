"""The Lua scripts, loaded from package files and registered once per client."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript

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


class Scripts:
    """One registered script per name; EVALSHA, reloaded by redis-py on NOSCRIPT."""

    def __init__(self, redis: Any) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(source(name)) for name in PRELUDES
        }

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)
