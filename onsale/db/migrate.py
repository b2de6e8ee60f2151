"""Numbered SQL migrations, applied in order, each once, recorded in ``schema_migrations``."""

from __future__ import annotations

import re
from importlib import resources

from onsale.db import connect

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed number: concurrent `onsale migrate` runs take turns on this advisory lock.
_LOCK = 0x0775A1E


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped with the package, in order."""
    folder = resources.files("onsale") / "db" / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


async def apply(url: str) -> list[str]:
    """Apply what is missing; returns the names applied (empty when up to date)."""
    conn = await connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied.append(name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        await conn.close()
