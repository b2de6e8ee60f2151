"""The waiting room's limits over HTTP: polls by POST, places per client, the seed's reveal."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.config import Settings
from onsale.events import catalog
from onsale.gateway.app import create_app
from onsale.queue.room import WaitingRoom
from tests.integration.api_support import create, join, open_event

Client = AsyncTestClient[Litestar]


def queue_path(event_id: str) -> str:
    return f"/api/events/{event_id}/queue"


# ---- 5: a poll by POST is throttled like one by GET ------------------------------------------


async def test_a_post_with_a_token_is_a_poll_and_throttled_like_get(
    client: Client, admin: dict[str, str]
) -> None:
    event = await open_event(client, admin, admit_per_minute=1)
    for _ in range(3):
        await join(client, event["id"])
    mine = await join(client, event["id"])  # a first join is never throttled
    assert mine["state"] == "waiting" and mine["position"] >= 2
    headers = {"X-Visitor-Token": mine["visitor_token"]}
    for method in ("post", "get"):
        r = await getattr(client, method)(queue_path(event["id"]), headers=headers)
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited"), (method, r.text)
        assert 1 <= int(r.headers["Retry-After"]) <= mine["poll_after_seconds"]
    # Having left, the visitor holds no place: joining again is not a poll but a new place.
    assert (await client.delete(queue_path(event["id"]), headers=headers)).status_code == 204
    back = await join(client, event["id"], mine["visitor_token"])
    assert back["state"] == "waiting" and back["position"] >= mine["position"]


# ---- 9: live places per client network -------------------------------------------------------


def with_security(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(
        settings, security=msgspec.structs.replace(settings.security, **changes)
    )


#: The test client calls from "testclient"; this header names another client address.
CLIENT = "X-Test-Client"


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[Client]:
    """A gateway of its own, whose requests may come from any address (header ``CLIENT``)."""
    app = create_app(settings)
    inner = app.asgi_handler

    async def from_header(scope: Any, receive: Any, send: Any) -> None:
        for name, value in scope.get("headers", ()):
            if name == CLIENT.lower().encode():
                scope = {**scope, "client": (value.decode(), 40000)}
        await inner(scope, receive, send)

    app.asgi_handler = from_header
    async with AsyncTestClient(app=app) as c:
        yield c


async def test_one_client_holds_at_most_its_cap_of_places_even_at_once(
    settings: Settings, admin: dict[str, str]
) -> None:
    capped = with_security(settings, places_per_client=3, joins_per_minute=1000)
    async with gateway(capped) as c:
        event = await open_event(c, admin, admit_per_minute=1)
        path = queue_path(event["id"])
        answers = await asyncio.gather(*(c.post(path) for _ in range(12)))
        ok = [r.json() for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code != 200]
        assert len(ok) == 3 and len(refused) == 9
        for r in refused:
            assert (r.status_code, r.json()["code"]) == (429, "too_many_places")
            assert int(r.headers["Retry-After"]) >= 1
        # A place that ends (here: its visitor leaves) frees one at once.
        gone = {"X-Visitor-Token": ok[0]["visitor_token"]}
        assert (await c.delete(path, headers=gone)).status_code == 204
        assert (await c.post(path)).status_code == 200
        assert (await c.post(path)).json()["code"] == "too_many_places"
        # Polls of places held are not new places.
        r = await c.get(path, headers={"X-Visitor-Token": ok[1]["visitor_token"]})
        assert r.json()["code"] == "rate_limited"  # too soon, but not refused for the cap


async def test_the_cap_is_per_ipv6_64_and_exempt_networks_are_exempt(
    settings: Settings, admin: dict[str, str]
) -> None:
    capped = with_security(
        settings, places_per_client=2, joins_per_minute=1000, rate_limit_exempt=("10.0.0.0/8",)
    )
    async with gateway(capped) as c:
        event = await open_event(c, admin, admit_per_minute=1)
        path = queue_path(event["id"])

        async def codes(address: str, n: int) -> list[int]:
            return [(await c.post(path, headers={CLIENT: address})).status_code for _ in range(n)]

        # Two addresses of one /64 are one subscriber; the next /64 is another.
        assert await codes("2001:db8:1:2::1", 1) == [200]
        assert await codes("2001:db8:1:2:ffff:ffff:ffff:fffe", 2) == [200, 429]
        assert await codes("2001:db8:1:3::1", 3) == [200, 200, 429]
        assert await codes("198.51.100.7", 3) == [200, 200, 429]
        assert await codes("10.1.2.3", 5) == [200] * 5


async def test_a_poll_that_takes_a_new_place_counts_against_the_cap(
    settings: Settings, admin: dict[str, str], redis: Any
) -> None:
    capped = with_security(settings, places_per_client=2, joins_per_minute=1000)
    async with gateway(capped) as c:
        event = await open_event(c, admin, admit_per_minute=1)
        path = queue_path(event["id"])
        lost = await join(c, event["id"])
        await join(c, event["id"])
        # Redis loses the first visitor's place (and so all its state) ...
        visitor = lost["visitor_token"].split(".")[1]
        room = keys.queue_keys(event["id"])
        await redis.hdel(room[4], visitor)
        await redis.hdel(room[6], visitor, f"{visitor}:n")
        c.app.state.services.room.lobby.forget_poll(event["id"], visitor)
        # ... the network takes another place in the meantime ...
        assert (await c.post(path)).status_code == 200
        # ... so the lost visitor's next GET, which would take a new place, is refused.
        r = await c.get(path, headers={"X-Visitor-Token": lost["visitor_token"]})
        assert (r.status_code, r.json()["code"]) == (429, "too_many_places")


# ---- 13: the seed is revealed when Redis has frozen the pre-queue ----------------------------


class _Ahead(datetime):
    """The gateway's clock, two hours ahead of Redis's."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + timedelta(hours=2)


async def seed_shown(client: Client, event_id: str) -> str | None:
    r = await client.get(f"/api/events/{event_id}")
    assert r.status_code == 200, r.text
    seed: str | None = r.json()["onsale"]["shuffle_seed"]
    return seed


async def test_the_seed_is_revealed_by_redis_freezing_not_the_gateway_clock(
    client: Client, admin: dict[str, str], redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    opens = datetime.now(UTC) + timedelta(hours=1)
    city = f"Seedville {uuid.uuid4()}"
    event = await create(
        client,
        admin,
        venue={"name": "Hall", "city": city, "country": "NO"},
        onsale={"opens_at": opens.isoformat(), "admit_per_minute": 60},
    )
    await join(client, event["id"])
    # The gateway thinks the sale opened an hour ago; Redis has not frozen the pre-queue: a
    # seed out now would let anyone join again and again and keep only the lucky visitor ids.
    monkeypatch.setattr(catalog, "datetime", _Ahead, raising=False)
    assert await seed_shown(client, event["id"]) is None
    (listed,) = (await client.get("/api/events", params={"city": city})).json()["items"]
    assert listed["onsale"]["shuffle_seed"] is None
    monkeypatch.undo()
    # Redis freezes the pre-queue at opening by its own clock (here, an injected one) ...
    frozen = WaitingRoom(redis, clock=lambda: int(opens.timestamp() * 1000) + 1)
    counts = await frozen.advance(event["id"])
    assert counts is not None and counts.frozen
    # ... and from then on the seed is public, whatever the gateway's clock says.
    seed = await seed_shown(client, event["id"])
    assert seed is not None
    assert hashlib.sha256(seed.encode()).hexdigest() == event["onsale"]["shuffle_commitment"]
    assert seed == await redis.hget(keys.queue_state(event["id"]), "seed")
    (listed,) = (await client.get("/api/events", params={"city": city})).json()["items"]
    assert listed["onsale"]["shuffle_seed"] == seed
