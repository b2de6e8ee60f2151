"""The Lua scripts, loaded from package files and registered once per client."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript

NAMES = ("hold", "release", "confirm", "sweep", "arm")


@cache
def source(name: str) -> str:
    """A script's full text: the shared prelude, then the script itself."""
    lua = resources.files("onsale") / "lua"
    return (lua / "_common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


class Scripts:
    """One registered script per name; EVALSHA, reloaded by redis-py on NOSCRIPT."""

    def __init__(self, redis: Any) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(source(name)) for name in NAMES
        }

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)
