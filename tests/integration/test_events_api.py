"""The organizer API over HTTP, on real Redis and Postgres."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from tests.integration.api_support import EVENT, OPENS, STARTS, create, event, iso

Client = AsyncTestClient[Litestar]


async def test_create_persists_and_arms(client: Client, admin: dict[str, str], redis: Any) -> None:
    created = await create(client, admin)
    uuid.UUID(created["id"])
    assert [t["name"] for t in created["tiers"]] == ["General Admission", "VIP"]
    assert all(uuid.UUID(t["id"]) for t in created["tiers"])
    assert created["onsale"]["max_active"] == 2000

    r = await client.get(f"/api/events/{created['id']}")  # public, no token
    assert r.status_code == 200
    assert r.json() == created

    inv = await redis.hgetall(keys.inventory(created["id"]))
    ga = created["tiers"][0]["id"]
    assert inv[f"{ga}:cap"] == "5000" and inv[f"{ga}:limit"] == "6" and inv["hold_ms"] == "600000"
    assert await redis.sismember(keys.ARMED_EVENTS, created["id"])
    onsale = await redis.hgetall(keys.onsale(created["id"]))
    assert onsale["admit_per_minute"] == "600" and onsale["paused"] == "0"


async def test_optional_fields_default(client: Client, admin: dict[str, str]) -> None:
    body = event(tiers=[{"name": "GA", "price": 0, "capacity": 10}])
    del body["venue"]
    body["onsale"] = {"opens_at": EVENT["onsale"]["opens_at"], "admit_per_minute": 60}
    r = await client.post("/api/events", json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["venue"] is None
    assert created["tiers"][0]["per_order_limit"] is None
    assert created["onsale"]["max_active"] is None
    assert created["onsale"]["hold_seconds"] == 600


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"name": "GA", "price": 100, "capacity": -1}]}, "capacity"),
        ({"tiers": [{"name": "GA", "price": -5, "capacity": 1}]}, "price"),
        ({"tiers": [{"name": "GA", "price": 1.5, "capacity": 1}]}, "price"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"title": ""}, "title"),
        ({"starts_at": EVENT["starts_at"].removesuffix("Z")}, "starts_at"),  # no zone
        ({"starts_at": "not a date"}, "starts_at"),
        ({"ends_at": iso(STARTS - timedelta(hours=1))}, "ends_at"),
        (
            {"onsale": {**EVENT["onsale"], "closes_at": iso(OPENS - timedelta(hours=1))}},
            "closes_at",
        ),
        ({"onsale": {**EVENT["onsale"], "opens_at": iso(STARTS + timedelta(days=1))}}, "opens_at"),
        ({"onsale": {**EVENT["onsale"], "admit_per_minute": 0}}, "admit_per_minute"),
        ({"onsale": {**EVENT["onsale"], "hold_seconds": 5}}, "hold_seconds"),
        ({"onsale": {**EVENT["onsale"], "max_active": 0}}, "max_active"),
        (
            {"tiers": [{"name": "GA", "price": 1, "capacity": 1}] * 2},
            "unique",
        ),
        ({"tiers": [{"name": "GA", "price": 1, "capacity": 1, "per_order_limit": 0}]}, "limit"),
        ({"venue": {"name": "Arena", "country": "Norway"}}, "country"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_rejects_bad_input(
    client: Client, admin: dict[str, str], changes: dict[str, Any], needle: str
) -> None:
    r = await client.post("/api/events", json=event(**changes), headers=admin)
    assert r.status_code in (400, 422), r.text
    body = r.json()
    assert body["code"] == "invalid_request"
    assert needle in body["detail"]


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b'{"title": 1}', b"0" * 70_000]
)
async def test_rejects_malformed_bodies(client: Client, admin: dict[str, str], raw: bytes) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    r = await client.post("/api/events", content=raw, headers=headers)
    assert r.status_code in (400, 413, 422)
    assert r.json()["code"] in ("invalid_request", "payload_too_large")


async def test_organizer_token_required(client: Client) -> None:
    r = await client.post("/api/events", json=event())
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    # A token that is not live (unknown, revoked) is no credential at all (accounts).
    r = await client.post("/api/events", json=event(), headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    r = await client.get(f"/api/events/{uuid.uuid4()}/stats")
    assert r.status_code == 401


async def test_unknown_event_is_404(client: Client, admin: dict[str, str]) -> None:
    for path in (f"/api/events/{uuid.uuid4()}", "/api/events/not-a-uuid"):
        r = await client.get(path)
        assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
    r = await client.patch(
        f"/api/events/{uuid.uuid4()}/onsale", json={"paused": True}, headers=admin
    )
    assert r.status_code == 404
    r = await client.get("/no/such/route")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


async def test_list_filters_and_pages(client: Client, admin: dict[str, str]) -> None:
    city = f"City-{uuid.uuid4().hex[:8]}"
    ids = []
    days = [STARTS + timedelta(days=day) for day in range(5)]  # five evenings at 20:00
    for day in days:
        created = await create(
            client,
            admin,
            starts_at=iso(day),
            venue={"name": "Hall", "city": city, "country": "SE"},
        )
        ids.append(created["id"])

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"city": city.lower(), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/api/events", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids

    r = await client.get(
        "/api/events",
        params={
            "city": city,
            "starts_after": iso(days[1] - timedelta(hours=20)),  # the 2nd day's midnight
            "starts_before": iso(days[3] - timedelta(hours=20)),
        },
    )
    assert [e["id"] for e in r.json()["items"]] == ids[1:3]

    for bad in ({"limit": 0}, {"limit": 1000}, {"cursor": "garbage!"}, {"starts_after": "x"}):
        r = await client.get("/api/events", params=bad)
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["code"] == "invalid_request"


async def test_patch_onsale_updates_postgres_and_redis(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    created = await create(client, admin)
    path = f"/api/events/{created['id']}/onsale"
    r = await client.patch(path, json={"admit_per_minute": 1200, "paused": True}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["onsale"]["admit_per_minute"] == 1200
    assert r.json()["onsale"]["paused"] is True
    onsale = await redis.hgetall(keys.onsale(created["id"]))
    assert (onsale["admit_per_minute"], onsale["paused"]) == ("1200", "1")
    r = await client.get(f"/api/events/{created['id']}")
    assert r.json()["onsale"]["paused"] is True

    for bad in ({}, {"admit_per_minute": -1}, {"paused": "yes"}, {"hold_seconds": 5}):
        r = await client.patch(path, json=bad, headers=admin)
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["code"] == "invalid_request"
    r = await client.patch(path, json={"paused": False})
    assert r.status_code == 401


async def test_stats_follow_the_inventory(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    from onsale.inventory import Inventory

    created = await create(client, admin)
    ga, vip = (t["id"] for t in created["tiers"])
    inventory = Inventory(redis)
    hold = await inventory.hold(created["id"], {ga: 2, vip: 1})
    await inventory.confirm(created["id"], hold.hold_id, str(uuid.uuid4()), "{}")
    await inventory.hold(created["id"], {ga: 3})

    r = await client.get(f"/api/events/{created['id']}/stats", headers=admin)
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["tiers"][0] | {"name": None} == {
        "id": ga, "name": None, "capacity": 5000, "sold": 2, "held": 3, "available": 4995,
    }  # fmt: skip
    assert stats["tiers"][1]["sold"] == 1 and stats["tiers"][1]["available"] == 199
    assert stats["orders"] == {"confirmed": 1, "committed": 0}
    assert stats["revenue"] == 2 * 4500 + 15000
    assert stats["queue"] == {
        "waiting": 0, "admitted": 0, "active": 0, "skipped": 0, "no_shows": 0, "no_show_rate": 0.0,
    }  # fmt: skip


async def test_health(client: Client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    body = r.json()
    assert r.status_code == 200 and body["redis"] == body["postgres"] == "ok"
    # Informational only: the committer's lag never makes a gateway unready.
    assert set(body["committer_lag"]) == {"pending", "oldest_ms"}
    jwks = (await client.get("/.well-known/jwks.json")).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["kid"]


async def test_readiness_can_require_only_redis(client: Client) -> None:
    r = await client.get("/readyz", params={"require": "redis"})
    assert r.status_code == 200 and r.json()["redis"] == "ok"
    r = await client.get("/readyz", params={"require": "kafka"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
