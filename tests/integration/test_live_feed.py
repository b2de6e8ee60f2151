"""The live feed (Server-Sent Events of an event's stats) and the API's OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale.events.live import LiveHub
from tests.integration.api_support import create
from tests.integration.sse_support import Listener

Client = AsyncTestClient[Litestar]


def _hub(client: Client) -> LiveHub:
    hub: LiveHub = client.app.state.live
    return hub


async def test_live_streams_stats_and_ends_on_hang_up(
    client: Client, admin: dict[str, str]
) -> None:
    event = await create(client, admin)
    listener = Listener(client, f"/api/events/{event['id']}/live", admin)
    frames = await listener.wait_frames(2)
    assert listener.status == 200
    assert listener.headers["content-type"].startswith("text/event-stream")
    stats = (await client.get(f"/api/events/{event['id']}/stats", headers=admin)).json()
    for frame in frames[:2]:
        assert frame["event"] == "stats"
        body = json.loads(frame["data"])
        # /stats, and the door's fraud alerts (none yet) added for the dashboard.
        assert set(body) == {*stats, "checkin_alerts"} and body["checkin_alerts"] == []
        assert [t["id"] for t in body["tiers"]] == [t["id"] for t in event["tiers"]]
        assert body["tiers"][0]["capacity"] == 5000
    assert event["id"] in _hub(client).watched()

    await listener.hang_up()
    assert event["id"] not in _hub(client).watched()  # its feed stopped with its last listener


async def test_one_read_a_second_per_event_however_many_watch(
    client: Client, admin: dict[str, str]
) -> None:
    first, second = (await create(client, admin))["id"], (await create(client, admin))["id"]
    hub = _hub(client)
    reads: Counter[str] = Counter()
    fetch = hub.fetch

    async def counted(event_id: str) -> bytes:
        reads[event_id] += 1
        return await fetch(event_id)

    hub.fetch = counted
    try:
        started = time.monotonic()
        listeners = [Listener(client, f"/api/events/{first}/live", admin) for _ in range(5)]
        listeners.append(Listener(client, f"/api/events/{second}/live", admin))
        for listener in listeners:
            await listener.wait_frames(3)
        elapsed = time.monotonic() - started
        # One read at the start, then one a second: never one per listener.
        assert 3 <= reads[first] <= elapsed + 2, (reads, elapsed)
        assert 3 <= reads[second] <= elapsed + 2, (reads, elapsed)
        # Every listener of an event saw the same snapshots.
        firsts = {listener.frames()[1]["data"] for listener in listeners[:5]}
        assert len(firsts) <= 2  # at most a tick apart
        await asyncio.gather(*(listener.hang_up() for listener in listeners[:3]))
        assert first in hub.watched()  # two still watch
        await asyncio.gather(*(listener.hang_up() for listener in listeners[3:]))
        assert not {first, second} & set(hub.watched())
        settled = dict(reads)
        await asyncio.sleep(1.5)
        assert dict(reads) == settled  # nobody watches: nothing is read
    finally:
        hub.fetch = fetch


async def test_live_refuses_unknown_events_and_strangers(
    client: Client, admin: dict[str, str]
) -> None:
    r = await client.get(f"/api/events/{uuid.uuid4()}/live", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
    event = await create(client, admin)
    r = await client.get(f"/api/events/{event['id']}/live")
    assert r.status_code == 401


async def test_openapi_document_and_docs_ui(client: Client) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "onsale"
    for path, method in [
        ("/api/events", "post"),
        ("/api/events/{event_id}", "patch"),
        ("/api/events/{event_id}/onsale", "patch"),
        ("/api/events/{event_id}/cancel", "post"),
        ("/api/events/{event_id}/stats", "get"),
        ("/api/events/{event_id}/live", "get"),
        ("/api/events/{event_id}/queue", "get"),
    ]:
        assert method in doc["paths"][path], (path, method)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # Bodies the routes decode themselves are documented too, standing alone.
    patch_body = doc["paths"]["/api/events/{event_id}"]["patch"]["requestBody"]
    schema = patch_body["content"]["application/json"]["schema"]
    assert {"title", "venue", "starts_at", "tiers"} <= set(schema["properties"])
    assert "$ref" not in json.dumps(schema)
    onsale = doc["paths"]["/api/events/{event_id}/onsale"]["patch"]["requestBody"]
    assert "opens_at" in onsale["content"]["application/json"]["schema"]["properties"]

    ui = await client.get("/schema")
    assert ui.status_code == 200 and "text/html" in ui.headers["content-type"]
    assert "/static/swagger-ui/swagger-ui-bundle.js" in ui.text
    assert "https://" not in ui.text  # nothing from a CDN: works offline
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        r = await client.get(f"/static/swagger-ui/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000, asset
