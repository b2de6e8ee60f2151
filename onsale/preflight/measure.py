"""``python -m onsale.preflight.measure [N]``: Redis bytes per waiting-room visitor, the
figure behind preflight's memory check (:data:`onsale.preflight.redis_checks.BYTES_PER_VISITOR`).

Joins N visitors (default 20,000) to a copy of the demo event on a throwaway embedded Redis
and Postgres, lets the room admit what it will, and divides the growth of ``used_memory``
by N. Nothing outside a temporary directory is touched.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from onsale.connections import redis_client
from onsale.db import create_pool, migrate
from onsale.dev import DEMO_EVENT
from onsale.embedded import EmbeddedPostgres, EmbeddedRedis
from onsale.events import catalog
from onsale.events.models import EventIn
from onsale.inventory import Inventory
from onsale.queue.room import WaitingRoom

#: Joins in flight at once.
CONCURRENCY = 64


async def bytes_per_visitor(redis_url: str, database_url: str, visitors: int) -> float:
    await migrate.apply(database_url)
    pool = await create_pool(database_url)
    redis = redis_client(redis_url)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        doc = dict(DEMO_EVENT, starts_at=(now + timedelta(days=30)).isoformat())
        opens = (now - timedelta(seconds=5)).isoformat()
        doc["onsale"] = dict(DEMO_EVENT["onsale"], opens_at=opens)  # type: ignore[arg-type]
        event = await catalog.create(pool, redis, Inventory(redis), msgspec.convert(doc, EventIn))
        room = WaitingRoom(redis)
        before = int((await redis.info("memory"))["used_memory"])
        gate = asyncio.Semaphore(CONCURRENCY)

        async def join() -> None:
            async with gate:
                await room.join(event.id, uuid.uuid4().hex)

        await asyncio.gather(*(join() for _ in range(visitors)))
        await room.advance(event.id)
        after = int((await redis.info("memory"))["used_memory"])
        return (after - before) / visitors
    finally:
        await pool.close()
        await redis.aclose()


def main(argv: list[str]) -> int:
    visitors = int(argv[0]) if argv else 20_000
    folder = Path(tempfile.mkdtemp(prefix="onsale-measure-"))
    folder.chmod(0o755)  # the embedded Postgres may run as nobody
    try:
        with (
            EmbeddedRedis(folder, durable=False) as redis_url,
            EmbeddedPostgres(folder, durable=False) as database_url,
        ):
            measured = asyncio.run(bytes_per_visitor(redis_url, database_url, visitors))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{visitors} visitors: {measured:.0f} bytes of Redis per visitor")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
