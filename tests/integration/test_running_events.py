"""Running events over HTTP: changing details, tiers and the schedule, and cancelling; on
real Redis and Postgres."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.events import changes
from onsale.events.errors import EventRejected, EventRejection
from onsale.events.models import EventPatch, TierPatch
from onsale.inventory import HoldRejected, Inventory
from onsale.queue.room import State, WaitingRoom
from tests.integration.api_support import (
    OPENS,
    STARTS,
    admitted,
    bearer,
    create,
    event,
    hold_for,
    iso,
    open_event,
)

Client = AsyncTestClient[Litestar]


async def _patch(client: Client, admin: dict[str, str], event_id: str, body: Any) -> Any:
    return await client.patch(f"/api/events/{event_id}", json=body, headers=admin)


async def test_patch_details(client: Client, admin: dict[str, str], redis: Any) -> None:
    created = await create(client, admin)
    body = {
        "title": "Night Owls - Encore",
        "description": "Two sets.\nDoors at 19:00.",
        "venue": {"name": "Hall", "city": "Bergen", "country": "NO"},
        "starts_at": iso(STARTS + timedelta(days=2)),
    }
    r = await _patch(client, admin, created["id"], body)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["title"] == body["title"] and changed["description"] == body["description"]
    assert changed["venue"] == body["venue"]
    assert changed["starts_at"] == body["starts_at"]
    assert changed["tiers"] == created["tiers"]
    assert (await client.get(f"/api/events/{created['id']}")).json() == changed
    onsale = await redis.hgetall(keys.onsale(created["id"]))
    # Retirement reads the start from Redis.
    assert onsale["starts_ms"] == str(int((STARTS + timedelta(days=2)).timestamp() * 1000))

    for bad, needle in [
        ({}, "at least one"),
        ({"title": "Owls\x00"}, "title"),
        ({"title": "Two\nlines"}, "title"),
        ({"description": "bell\x07"}, "description"),
        ({"venue": {"name": "Hall\x1b[31m"}}, "name"),
        ({"starts_at": iso(OPENS - timedelta(days=1))}, "starts_at"),  # before the on-sale opens
        ({"surprise": 1}, "surprise"),
    ]:
        r = await _patch(client, admin, created["id"], bad)
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["code"] == "invalid_request" and needle in r.json()["detail"], bad
    r = await client.patch(f"/api/events/{created['id']}", json={"title": "x"})
    assert r.status_code == 401
    r = await _patch(client, admin, str(uuid.uuid4()), {"title": "x"})
    assert (r.status_code, r.json()["code"]) == (404, "event_not_found")


async def test_patch_tiers_before_the_sale(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    created = await create(client, admin)  # opens tomorrow: not yet
    ga, vip = created["tiers"]
    body = {
        "tiers": [
            {"id": ga["id"], "name": "Standing", "price": 5000, "capacity": 4000},
            {"name": "Balcony", "price": 9000, "capacity": 300, "per_order_limit": 4},
        ]
    }
    r = await _patch(client, admin, created["id"], body)
    assert r.status_code == 200, r.text
    tiers = r.json()["tiers"]
    assert [t["name"] for t in tiers] == ["Standing", "VIP", "Balcony"]
    assert tiers[0]["id"] == ga["id"] and tiers[0]["price"] == 5000
    assert tiers[1] == vip
    balcony = tiers[2]
    uuid.UUID(balcony["id"])
    inv = await redis.hgetall(keys.inventory(created["id"]))
    assert (inv[f"{ga['id']}:cap"], inv[f"{ga['id']}:price"]) == ("4000", "5000")
    assert (inv[f"{balcony['id']}:cap"], inv[f"{balcony['id']}:limit"]) == ("300", "4")
    assert inv["tiers"].split() == [ga["id"], vip["id"], balcony["id"]]

    for bad, needle in [
        ({"tiers": [{"name": "Half", "price": 10}]}, "needs name, price and capacity"),
        ({"tiers": [{"id": str(uuid.uuid4()), "name": "Ghost"}]}, "no tier"),
        ({"tiers": [{"id": vip["id"], "name": "standing"}]}, "unique"),
        ({"tiers": [{"id": vip["id"], "capacity": -1}]}, "capacity"),
        ({"tiers": [{"id": vip["id"], "name": "V\x00IP"}]}, "name"),
    ]:
        r = await _patch(client, admin, created["id"], bad)
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["code"] == "invalid_request" and needle in r.json()["detail"], bad


async def test_patch_tiers_after_the_sale_opened(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    created = await open_event(client, admin, admit_per_minute=60_000)
    ga = created["tiers"][0]
    path = f"/api/events/{created['id']}"
    r = await client.patch(path, json={"tiers": [{"id": ga["id"], "price": 1}]}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "sale_started"), r.text
    assert "price" in r.json()["detail"]
    # The same price, a rename and a capacity are fine while it sells.
    body = {"tiers": [{"id": ga["id"], "price": ga["price"], "name": "Floor", "capacity": 6}]}
    r = await client.patch(path, json=body, headers=admin)
    assert r.status_code == 200, r.text

    inventory = Inventory(redis)
    await inventory.hold(created["id"], {ga["id"]: 4})
    r = await client.patch(path, json={"tiers": [{"id": ga["id"], "capacity": 3}]}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "capacity_below_taken"), r.text
    assert r.json()["tier_id"] == ga["id"] and r.json()["taken"] == 4
    # Neither Postgres nor Redis changed.
    assert (await client.get(path)).json()["tiers"][0]["capacity"] == 6
    assert await redis.hget(keys.inventory(created["id"]), f"{ga['id']}:cap") == "6"
    r = await client.patch(path, json={"tiers": [{"id": ga["id"], "capacity": 4}]}, headers=admin)
    assert r.status_code == 200, r.text

    # A tier added while the sale runs can be held at once, by an admitted buyer.
    body = {"tiers": [{"name": "Late Release", "price": 2500, "capacity": 5}]}
    r = await client.patch(path, json=body, headers=admin)
    assert r.status_code == 200, r.text
    late = r.json()["tiers"][-1]
    token = (await admitted(client, created["id"]))["admission_token"]
    items = {"items": [{"tier_id": late["id"], "quantity": 2}]}
    r = await client.post(f"{path}/holds", json=items, headers=bearer(token))
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == 5000


async def test_capacity_changes_racing_holds_never_oversell(
    client: Client, admin: dict[str, str], redis: Any, pool: asyncpg.Pool
) -> None:
    created = await open_event(client, admin)
    event_id, tier = created["id"], created["tiers"][0]["id"]
    await _patch(client, admin, event_id, {"tiers": [{"id": tier, "capacity": 40}]})
    inventory = Inventory(redis)
    rng = random.Random(7)
    taken_ok: list[int] = []
    samples: list[tuple[int, int, int]] = []

    async def hold(qty: int) -> None:
        try:
            await inventory.hold(event_id, {tier: qty})
            taken_ok.append(qty)
        except HoldRejected:
            pass

    async def resize(capacity: int) -> None:
        patch = EventPatch(tiers=[TierPatch(id=tier, capacity=capacity)])
        try:
            await changes.patch_event(pool, redis, inventory, event_id, patch)
        except EventRejected as exc:
            assert exc.reason is EventRejection.CAPACITY_BELOW_TAKEN

    async def sample() -> None:
        for _ in range(30):
            f = await redis.hmget(keys.inventory(event_id), f"{tier}:cap", f"{tier}:held",
                                  f"{tier}:sold")  # fmt: skip
            samples.append((int(f[0]), int(f[1]), int(f[2])))
            await asyncio.sleep(0)

    work = [hold(rng.randint(1, 3)) for _ in range(60)]
    work += [resize(c) for c in (10, 35, 5, 50, 20, 45, 30)]
    rng.shuffle(work)
    await asyncio.gather(*work, sample())

    for cap, held, sold in samples:
        assert held + sold <= cap, (cap, held, sold)
    level = (await inventory.levels(event_id))[0]
    assert level.held + level.sold <= level.capacity
    assert level.held == sum(taken_ok)  # every hold that said yes is counted, none more
    # Postgres and Redis agree on the capacity that won.
    event = (await client.get(f"/api/events/{event_id}")).json()
    assert event["tiers"][0]["capacity"] == level.capacity


async def test_schedule_changes_before_the_sale(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    created = await create(client, admin, onsale={"opens_at": iso(3600), "admit_per_minute": 60})
    event_id = created["id"]
    path = f"/api/events/{event_id}/onsale"
    joined = (await client.post(f"/api/events/{event_id}/queue")).json()
    assert joined["state"] == "prequeue"

    body = {
        "opens_at": iso(7200),
        "closes_at": iso(9000),
        "hold_seconds": 120,
        "presale_opens_at": iso(5400),
    }
    r = await client.patch(path, json=body, headers=admin)
    assert r.status_code == 200, r.text
    onsale = r.json()["onsale"]
    assert onsale["hold_seconds"] == 120 and onsale["presale_opens_at"] is not None
    assert (await client.get(f"/api/events/{event_id}")).json()["onsale"] == onsale
    cfg = await redis.hgetall(keys.onsale(event_id))
    assert abs(int(cfg["opens_ms"]) - _ms(onsale["opens_at"])) == 0
    assert int(cfg["closes_ms"]) == _ms(onsale["closes_at"]) and cfg["hold_seconds"] == "120"
    assert await redis.hget(keys.inventory(event_id), "hold_ms") == "120000"

    for bad, needle in [
        ({"closes_at": iso(60)}, "closes_at"),
        ({"presale_opens_at": iso(8000)}, "presale_opens_at"),
        ({"opens_at": iso(STARTS + timedelta(days=180))}, "before the event starts"),
        ({"hold_seconds": 5}, "hold_seconds"),
    ]:
        r = await client.patch(path, json=bad, headers=admin)
        assert r.status_code in (400, 422), (bad, r.text)
        assert needle in r.json()["detail"], bad

    # Opening now (a time already past): the pre-queue freezes at once, its buyer waits.
    r = await client.patch(
        path, json={"presale_opens_at": iso(-60), "opens_at": iso(-30)}, headers=admin
    )
    assert r.status_code == 200, r.text
    room = WaitingRoom(redis)
    counts = await room.advance(event_id)
    assert counts is not None and counts.frozen and counts.pre_count == 1
    visitor = client.app.state.services.visitors.verify(event_id, joined["visitor_token"])
    assert (await room.status(event_id, visitor)).state in (State.WAITING, State.ADMITTED)

    # Open: the schedule is fixed, the metering is not.
    r = await client.patch(path, json={"closes_at": iso(9999)}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "sale_started"), r.text
    opened = r = await client.get(f"/api/events/{event_id}")
    same = {k: opened.json()["onsale"][k] for k in ("opens_at", "closes_at", "hold_seconds")}
    r = await client.patch(path, json=same, headers=admin)  # sent again unchanged: fine
    assert r.status_code == 200, r.text
    r = await client.patch(path, json={"admit_per_minute": 120, "paused": True}, headers=admin)
    assert r.status_code == 200, r.text
    assert await redis.hget(keys.onsale(event_id), "paused") == "1"


async def test_cancel_closes_the_queue_and_releases_holds(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event, hold, _ = await hold_for(client, admin, capacity=10, qty=2)
    event_id, tier = event["id"], event["tiers"][0]["id"]
    waiting = await client.post(f"/api/events/{event_id}/queue")
    assert await redis.hget(keys.inventory(event_id), f"{tier}:held") == "2"

    r = await client.post(f"/api/events/{event_id}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"refunded_orders": 0, "voided_tickets": 0}

    assert await redis.hget(keys.inventory(event_id), f"{tier}:held") == "0"
    assert await redis.hlen(keys.holds_data(event_id)) == 0
    buyer = {"email": "ada@example.com", "name": "Ada"}
    r = await client.post(
        f"/api/holds/{hold['hold_id']}/checkout", json=buyer, headers={"Idempotency-Key": "k-x"}
    )
    assert (r.status_code, r.json()["code"]) == (409, "hold_expired")
    # Every buyer: the admitted ones (their admissions ended), one in line, and a newcomer.
    assert await redis.zcard(keys.queue_active(event_id)) == 0
    room = WaitingRoom(redis)
    visitor = client.app.state.services.visitors.verify(event_id, waiting.json()["visitor_token"])
    assert (await room.status(event_id, visitor)).state is State.CLOSED
    assert (await client.post(f"/api/events/{event_id}/queue")).json()["state"] == "closed"
    assert (await client.get(f"/api/events/{event_id}")).json()["status"] == "cancelled"

    again = await client.post(f"/api/events/{event_id}/cancel", headers=admin)
    assert again.status_code == 200, again.text
    assert again.json() == {"refunded_orders": 0, "voided_tickets": 0}
    for path, body in ((f"/api/events/{event_id}", {"title": "Back"}),
                       (f"/api/events/{event_id}/onsale", {"paused": False})):  # fmt: skip
        r = await client.patch(path, json=body, headers=admin)
        assert (r.status_code, r.json()["code"]) == (409, "event_cancelled"), r.text
    assert (await client.get(f"/api/events/{event_id}/stats", headers=admin)).status_code == 200


async def test_cancel_with_sold_tickets_goes_through(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    # Sold tickets no longer refuse a cancellation: paid orders are refunded (see
    # test_cancellation.py); here no order record exists, so there is nothing to refund.
    event, hold, _ = await hold_for(client, admin, capacity=10, qty=2)
    event_id = event["id"]
    await Inventory(redis).confirm(event_id, hold["hold_id"], str(uuid.uuid4()), "{}")
    r = await client.post(f"/api/events/{event_id}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"refunded_orders": 0, "voided_tickets": 0}
    assert (await client.get(f"/api/events/{event_id}")).json()["status"] == "cancelled"
    assert await redis.hget(keys.onsale(event_id), "closes_ms") == "1"

    r = await client.post(f"/api/events/{uuid.uuid4()}/cancel", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
    r = await client.post(f"/api/events/{event_id}/cancel")
    assert r.status_code == 401


class _FailingOnce:
    """A Redis client whose first ``hset`` fails, as a connection lost mid-change would."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    async def hset(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise ConnectionError("lost")
        return await self._redis.hset(*args, **kwargs)


async def test_a_failure_midway_leaves_postgres_and_redis_agreeing(
    client: Client, admin: dict[str, str], redis: Any, pool: asyncpg.Pool
) -> None:
    created = await create(client, admin)
    event_id, ga = created["id"], created["tiers"][0]["id"]
    inventory = Inventory(redis)
    flaky = _FailingOnce(redis)
    # The arm script sets the capacity, then writing the on-sale hash fails: Postgres rolls
    # back, and Redis is put back as it was.
    patch = EventPatch(tiers=[TierPatch(id=ga, capacity=100)])
    try:
        await changes.patch_event(pool, flaky, inventory, event_id, patch)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the change should have failed")
    assert flaky.failed
    assert await redis.hget(keys.inventory(event_id), f"{ga}:cap") == "5000"
    assert (await client.get(f"/api/events/{event_id}")).json()["tiers"][0]["capacity"] == 5000
    # Sent again, it goes through, in both.
    event = await changes.patch_event(pool, flaky, inventory, event_id, patch)
    assert event.tiers[0].capacity == 100
    assert await redis.hget(keys.inventory(event_id), f"{ga}:cap") == "100"


def _ms(iso_time: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso_time).timestamp() * 1000)


async def test_times_the_stores_cannot_hold_are_refused(
    client: Client, admin: dict[str, str]
) -> None:
    """Times before 1970 (negative milliseconds in Redis: a presale set to 1960 silently
    had none) or at the year 9999's end with a negative offset (past Postgres's range in
    UTC: a 500) are 422 ``invalid_request`` at creation and in either PATCH, and change
    nothing."""
    late = "9999-12-31T23:59:59-12:00"
    for field in ("starts_at", "ends_at"):
        r = await client.post("/api/events", json=event(**{field: late}), headers=admin)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), (field, r.text)
        assert field in r.json()["detail"]
    body = event()
    body["onsale"] = body["onsale"] | {"opens_at": "1969-07-20T20:17:00Z"}
    r = await client.post("/api/events", json=body, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), r.text

    created = await create(client, admin, onsale={"opens_at": iso(3600), "admit_per_minute": 60})
    path = f"/api/events/{created['id']}"
    r = await client.patch(path, json={"starts_at": late}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), r.text
    for change in (
        {"presale_opens_at": "1960-01-01T00:00:00Z"},
        {"closes_at": late},
    ):
        r = await client.patch(f"{path}/onsale", json=change, headers=admin)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (change, r.text)
        assert next(iter(change)) in r.json()["detail"]
    now = (await client.get(path)).json()
    assert (now["starts_at"], now["onsale"]) == (created["starts_at"], created["onsale"])
