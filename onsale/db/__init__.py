"""Postgres access: connections and pools from a URL (Unix-socket URLs included)."""

from __future__ import annotations

from typing import Any

import asyncpg


async def connect(url: str) -> asyncpg.Connection:
    # asyncpg understands postgresql://user:@/db?host=/socket/dir natively.
    return await asyncpg.connect(url)


async def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, **kw: Any
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, **kw)
    assert pool is not None
    return pool
