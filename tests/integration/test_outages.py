"""While Redis or Postgres is down the gateway says so clearly: 503 with a code, never a 500."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import msgspec
from litestar.testing import AsyncTestClient

from onsale.config import Settings
from onsale.embedded import EmbeddedRedis
from onsale.gateway.app import create_app
from tests.integration.api_support import EVENT


async def test_redis_outage_is_a_clear_503(settings: Settings) -> None:
    base = Path(tempfile.mkdtemp(prefix="onsale-outage-"))
    redis = EmbeddedRedis(base, durable=False)
    try:
        url = redis.start()
        own = msgspec.structs.replace(
            settings, redis=msgspec.structs.replace(settings.redis, url=url)
        )
        admin = {"Authorization": f"Bearer {settings.security.admin_token}"}
        async with AsyncTestClient(app=create_app(own)) as client:
            created = await client.post("/api/events", json=EVENT, headers=admin)
            assert created.status_code == 201
            event_id = created.json()["id"]
            token = (await client.post(f"/api/events/{event_id}/queue")).json()["visitor_token"]
            redis.stop()
            # A poll is answered from the event's state the gateway read last (a quarter of
            # a second ago at most, onsale/queue/lobby.py) until its next read fails.
            deadline = time.monotonic() + 5
            while True:
                r = await client.get(
                    f"/api/events/{event_id}/queue", headers={"X-Visitor-Token": token}
                )
                if r.status_code != 429 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert (r.status_code, r.json()["code"]) == (503, "unavailable")
            assert r.headers["Retry-After"] == "2"
            r = await client.post(f"/api/events/{event_id}/queue")
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "unavailable" and "Redis" in r.json()["detail"]
            assert r.headers["Retry-After"]
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["redis"].startswith("unavailable")
            assert ready.json()["postgres"] == "ok"
            # Back again: the same gateway serves without a restart.
            redis.start()
            r = await client.post(f"/api/events/{event_id}/queue")
            assert r.status_code in (200, 404), r.text  # 404: a fresh Redis forgot the event
            assert (await client.get("/readyz", params={"require": "redis"})).status_code == 200
    finally:
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)
