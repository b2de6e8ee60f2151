"""``onsale dev`` prepares a demo organizer who owns the demo event, the same every run."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import msgspec

from onsale import dev
from onsale.config import Settings
from tests.integration.accounts_support import Client, login


async def test_demo_organizer_owns_the_demo_event(
    client: Client, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    here = msgspec.structs.replace(settings, data_dir=str(tmp_path))
    event_id = await dev._prepare(here, "demo password 1")
    owner = await pool.fetchval(
        "SELECT u.email FROM events e JOIN users u ON u.id = e.organizer_id WHERE e.id = $1::uuid",
        event_id,
    )
    assert owner == dev.DEMO_ORGANIZER
    headers = await login(client, dev.DEMO_ORGANIZER, "demo password 1")
    r = await client.get(f"/api/events/{event_id}/stats", headers=headers)
    assert r.status_code == 200, r.text

    # The next run finds both; a password changed in the data dir is the one that works.
    assert await dev._prepare(here, "demo password 2") == event_id
    await login(client, dev.DEMO_ORGANIZER, "demo password 2")
