"""A refused request leaves nothing behind: every kind of refusal the buyer's endpoints give
(bad and stale tokens, the wrong event, unknown holds and orders, garbage and oversize
bodies, rate limits) against the queue, holds, checkout, Stripe's webhook, orders and
check-in, and Redis is, key for key and size for size, as it was before.

The one thing a refused request may change is a rate-limit counter (``:rl:`` keys):
counting refused requests too is what keeps a flood of them in check.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.config import Settings
from onsale.gateway.app import create_app
from onsale.gateway.body import MAX_BODY
from onsale.gateway.services import Services
from onsale.queue.room import WaitingRoom
from tests.conftest import ADMIN_TOKEN
from tests.integration.api_support import BUYER, admitted, bearer, checkout, create, iso
from tests.integration.asgi_support import on_this_loop
from tests.integration.inventory_support import CREATED, forget
from tests.integration.stripe_support import intent_of, signed

Client = AsyncTestClient[Litestar]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"Content-Type": "application/json"}

#: How a key's size is read, by its type.
SIZE = {
    "string": "strlen",
    "hash": "hlen",
    "zset": "zcard",
    "list": "llen",
    "stream": "xlen",
    "set": "scard",
}


async def snapshot(redis: aioredis.Redis, events: set[str]) -> dict[str, tuple[str, int]]:
    """Every key (but rate-limit counters, and other tests' events') with its type and size."""
    out: dict[str, tuple[str, int]] = {}
    async for key in redis.scan_iter(count=1000):
        if ":rl:" in key:
            continue
        if key.startswith("{ev:") and keys.event_of(key) not in events:
            continue  # another module's event, which its own gateways' ticks may touch
        kind = await redis.type(key)
        out[key] = (kind, int(await getattr(redis, SIZE[kind])(key)) if kind in SIZE else 0)
    return out


async def settled_room(redis: aioredis.Redis, event_id: str) -> None:
    """Nobody left waiting in the line (the join above admitted): the gateways' ticks have
    nothing to move while the refusals are sent."""
    room, deadline = WaitingRoom(redis), time.monotonic() + 20
    while await redis.llen(keys.queue_line(event_id)):
        assert time.monotonic() < deadline, "the line never emptied"
        await room.advance(event_id)
        await asyncio.sleep(0.05)


async def steady_snapshot(redis: aioredis.Redis, events: set[str]) -> dict[str, Any]:
    """A snapshot once Redis has stopped changing: gateways write what polls saw in batches,
    a second apart, and the last accepted request's batch must be in before the count."""
    deadline = time.monotonic() + 15
    last = await snapshot(redis, events)
    while True:
        await asyncio.sleep(1.2)
        now = await snapshot(redis, events)
        if now == last:
            return now
        assert time.monotonic() < deadline, "Redis never stopped changing"
        last = now


def limited(settings: Settings) -> Settings:
    """A gateway allowing one join, one checkout and one check-in per minute per client."""
    security = msgspec.structs.replace(
        settings.security, joins_per_minute=1, checkouts_per_minute=1, checkins_per_minute=1
    )
    return msgspec.structs.replace(settings, security=security)


@pytest.fixture
async def strict(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # An address of its own: its per-minute counts start at zero, whatever ran before.
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with on_this_loop(create_app(limited(settings)), client=address) as http:
        yield http


async def clear_of_window_edge() -> None:
    """Rate limits count in one-minute windows: a window that ended between the requests
    that use up a limit and the ones it refuses would let those through. Start well clear
    of a window's end."""
    left = 60 - time.time() % 60
    if left < 30:
        await asyncio.sleep(left + 0.1)


class Stage(msgspec.Struct):
    """What the refusals are aimed at: two events, a live admission, a live hold, a
    pending order, and a visitor who has just polled."""

    event: dict[str, Any]
    other: dict[str, Any]
    visitor: str
    admission: str
    hold_id: str
    order: dict[str, Any]
    key: str
    ended: str  # an admission, still signed and unexpired, that the waiting room ended
    waiter: str = ""  # a visitor token of the other event's pre-queue, who just polled


async def stage(client: Client, redis: aioredis.Redis) -> Stage:
    tiers = [
        {"name": "GA", "price": 4500, "capacity": 100, "per_order_limit": 4},
        {"name": "Last", "price": 9000, "capacity": 1},
    ]
    onsale = {"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 600}
    event = await create(client, ADMIN, starts_at=iso(30 * 86400), tiers=tiers, onsale=onsale)
    # The other event opens in an hour: its line stands still, and its polls come slowly.
    other = await create(
        client,
        ADMIN,
        starts_at=iso(30 * 86400),
        tiers=tiers,
        onsale=onsale | {"opens_at": iso(3600)},
    )
    event_id, ga, last = event["id"], event["tiers"][0]["id"], event["tiers"][1]["id"]
    place = await admitted(client, event_id)
    admission = place["admission_token"]
    # Two holds: one checked out (a pending order), one live; the last ticket is taken.
    holds = []
    for items in ([(ga, 2)], [(ga, 1), (last, 1)]):
        body = {"items": [{"tier_id": t, "quantity": q} for t, q in items]}
        r = await client.post(f"/api/events/{event_id}/holds", json=body, headers=bearer(admission))
        assert r.status_code == 201, r.text
        holds.append(r.json()["hold_id"])
    key = uuid.uuid4().hex
    r = await checkout(client, holds[0], key)
    assert r.status_code == 201, r.text
    order = r.json()
    ended = (await admitted(client, event_id))["admission_token"]
    services: Services = client.app.state.services
    gone = services.admissions.verify(event_id, ended)["sub"]
    assert await redis.zrem(keys.queue_active(event_id), gone) == 1
    return Stage(event, other, place["visitor_token"], admission, holds[1], order, key, ended)


def refusals(s: Stage, services: Services) -> list[tuple[str, str, dict[str, Any], int]]:
    """(method, path, request options, the status it must be refused with)."""
    e, other = s.event["id"], s.other["id"]
    ga = s.event["tiers"][0]["id"]
    last = s.event["tiers"][1]["id"]
    now_s = int(time.time())
    expired = services.admissions.issue(e, "gone", (now_s - 60) * 1000, now_s - 120)
    _, stranger = services.visitors.issue(e)  # a valid visitor token, never joined
    other_admission = services.admissions.issue(other, "elsewhere", (now_s + 600) * 1000, now_s)
    queue, holds = f"/api/events/{e}/queue", f"/api/events/{e}/holds"

    def items(*pairs: tuple[str, int]) -> dict[str, Any]:
        return {"json": {"items": [{"tier_id": t, "quantity": q} for t, q in pairs]}}

    def auth(token: str, **more: Any) -> dict[str, Any]:
        return {"headers": {**bearer(token), **more.pop("headers", {})}, **more}

    oversize = {"content": b"x" * (MAX_BODY + 1), "headers": JSON}
    garbage = {"content": b"\x00{garbage", "headers": JSON}
    intent = intent_of(e, s.order)
    unknown_order = intent | {"metadata": {"event_id": e, "order_id": str(uuid.uuid4())}}
    body, good_sig = signed("payment_intent.succeeded", intent)
    stale_body, stale_sig = signed("payment_intent.succeeded", intent, at=now_s - 3600)
    unknown_body, unknown_sig = signed("payment_intent.succeeded", unknown_order)
    wrong_secret_body, wrong_sig = signed("payment_intent.succeeded", intent, secret="whsec_x")
    order_path = f"/api/orders/{s.order['order_id']}"
    hook = "/api/webhooks/stripe"
    made_up_hold = f"{e}.{uuid.uuid4().hex}"
    checkin = {"event_id": e, "qr": "not-a-ticket"}
    return [
        # -- the queue
        ("POST", queue, {"headers": {"X-Visitor-Token": "v1.nobody.0000"}}, 401),
        ("POST", f"/api/events/{other}/queue", {"headers": {"X-Visitor-Token": s.visitor}}, 401),
        ("POST", f"/api/events/{uuid.uuid4()}/queue", {}, 404),
        ("GET", queue, {}, 401),
        ("GET", queue, {"headers": {"X-Visitor-Token": "garbage"}}, 401),
        ("GET", queue, {"headers": {"X-Visitor-Token": "v1." + "x" * 200}}, 401),
        ("GET", f"/api/events/{other}/queue", {"headers": {"X-Visitor-Token": s.waiter}}, 429),
        ("DELETE", queue, {"headers": {"X-Visitor-Token": "garbage"}}, 401),
        (
            "GET",
            f"/api/events/{uuid.uuid4()}/queue",
            {"headers": {"X-Visitor-Token": stranger}},
            401,
        ),
        # -- holds
        ("POST", holds, items((ga, 1)), 401),
        ("POST", holds, auth("not.a.jwt", **items((ga, 1))), 403),
        ("POST", holds, auth(expired, **items((ga, 1))), 403),
        ("POST", holds, auth(other_admission, **items((ga, 1))), 403),
        ("POST", f"/api/events/{other}/holds", auth(s.admission, **items((ga, 1))), 403),
        ("POST", holds, auth(s.admission, **garbage), 400),
        ("POST", holds, auth(s.admission, **oversize), 413),
        ("POST", holds, auth(s.admission, json={"items": []}), 422),
        ("POST", holds, auth(s.admission, json={"items": [], "x": 1}), 422),
        ("POST", holds, auth(s.admission, **items((ga, 0))), 422),
        ("POST", holds, auth(s.admission, **items(("no-such-tier", 1))), 422),
        ("POST", holds, auth(s.admission, **items((ga, 1), ("no-such-tier", 1))), 422),
        ("POST", holds, auth(s.admission, **items((ga, 5))), 422),  # per-order limit
        ("POST", holds, auth(s.admission, **items((ga, 2))), 422),  # 3 held: 1 more allowed
        ("POST", holds, auth(s.admission, **items((last, 1))), 409),  # sold out
        ("POST", holds, auth(s.ended, **items((ga, 1))), 403),
        ("DELETE", f"/api/holds/{made_up_hold}", auth(s.admission), 404),
        ("DELETE", f"/api/holds/{s.hold_id}", auth("garbage"), 403),
        ("DELETE", f"/api/holds/{s.hold_id}", auth(other_admission), 404),
        ("DELETE", f"/api/holds/{s.hold_id}", {}, 401),
        # -- checkout
        (
            "POST",
            f"/api/holds/{made_up_hold}/checkout",
            {"json": BUYER, "headers": {"Idempotency-Key": "k1"}},
            409,
        ),
        (
            "POST",
            "/api/holds/garbage/checkout",
            {"json": BUYER, "headers": {"Idempotency-Key": "k2"}},
            409,
        ),
        ("POST", f"/api/holds/{s.hold_id}/checkout", {"json": BUYER}, 422),
        (
            "POST",
            f"/api/holds/{s.hold_id}/checkout",
            {**garbage, "headers": {**JSON, "Idempotency-Key": "k3"}},
            400,
        ),
        (
            "POST",
            f"/api/holds/{s.hold_id}/checkout",
            {**oversize, "headers": {**JSON, "Idempotency-Key": "k4"}},
            413,
        ),
        (
            "POST",
            f"/api/holds/{s.hold_id}/checkout",
            {"json": {"email": "x"}, "headers": {"Idempotency-Key": "k5"}},
            422,
        ),
        # The key of the first hold's checkout, for another hold; the first hold for another buyer.
        (
            "POST",
            f"/api/holds/{s.hold_id}/checkout",
            {"json": BUYER, "headers": {"Idempotency-Key": s.key}},
            409,
        ),
        (
            "POST",
            f"/api/holds/{s.order['order_id']}/checkout",
            {"json": BUYER, "headers": {"Idempotency-Key": s.key}},
            409,
        ),
        # -- Stripe's webhook
        ("POST", hook, {"content": body}, 400),
        ("POST", hook, {"content": body, "headers": {"Stripe-Signature": "t=1,v1=00"}}, 400),
        ("POST", hook, {"content": b"garbage", "headers": good_sig}, 400),
        ("POST", hook, {"content": stale_body, "headers": stale_sig}, 400),
        ("POST", hook, {"content": wrong_secret_body, "headers": wrong_sig}, 400),
        ("POST", hook, {"content": unknown_body, "headers": unknown_sig}, 404),
        # -- the order
        ("GET", order_path, {}, 401),
        ("GET", order_path, {"headers": bearer("garbage")}, 401),
        ("GET", f"/api/orders/{uuid.uuid4()}", {"headers": bearer(s.order["order_token"])}, 401),
        # -- check-in
        ("POST", "/api/checkin", {"json": checkin}, 401),
        ("POST", "/api/checkin", {"json": checkin, "headers": bearer("garbage")}, 401),
        ("POST", "/api/checkin", {**garbage, "headers": {**ADMIN, **JSON}}, 400),
        ("POST", "/api/checkin", {"json": {"event_id": "x", "qr": "y"}, "headers": ADMIN}, 422),
    ]


@pytest.fixture(params=["deployed", "routes only"])
async def gateway(
    request: pytest.FixtureRequest, client: Client, settings: Settings
) -> AsyncIterator[Any]:
    """Where the refusals go: the session's gateway as deployed (polls and holds answered by
    the fast path), or one without the fast path (its Litestar routes answer them)."""
    if request.param == "deployed":
        yield client
        return
    async with on_this_loop(create_app(settings, hot_paths=False)) as http:
        yield http


async def test_refused_requests_leave_nothing_behind(
    client: Client, redis: aioredis.Redis, strict: httpx.AsyncClient, gateway: Any
) -> None:
    # Clear of a window's end for all that follows (the stage takes a few seconds), and
    # before the stage's poll: waiting after it would let the too-soon poll through.
    await clear_of_window_edge()
    s = await stage(client, redis)
    events = {s.event["id"], s.other["id"]}
    CREATED[:] = [c for c in CREATED if c[1] not in events]
    services: Services = client.app.state.services
    try:
        # The strict gateway's one of each per minute, spent before the snapshot.
        r = await strict.post(f"/api/events/{s.event['id']}/queue")
        assert r.status_code == 200, r.text
        await settled_room(redis, s.event["id"])
        r = await strict.post(
            f"/api/holds/{s.hold_id}/checkout", json={}, headers={"Idempotency-Key": "k"}
        )
        assert r.status_code == 422, r.text
        checkin = {"event_id": s.event["id"], "qr": "not-a-ticket"}
        r = await strict.post("/api/checkin", json=checkin, headers=ADMIN)
        assert r.status_code == 422, r.text

        # A visitor joins and polls through the gateway the refusals go to (each gateway
        # throttles polls in its own memory): the next poll is too soon.
        waiting = f"/api/events/{s.other['id']}/queue"
        r = await gateway.post(waiting)
        assert r.status_code == 200 and r.json()["state"] == "prequeue", r.text
        s.waiter = r.json()["visitor_token"]
        r = await gateway.get(waiting, headers={"X-Visitor-Token": s.waiter})
        assert r.status_code in (200, 429), r.text
        before = await steady_snapshot(redis, events)
        answers = []
        for method, path, options, status in refusals(s, services):
            r = await gateway.request(method, path, **options)
            answers.append((method, path, r.status_code, r.text))
            assert r.status_code == status, (method, path, r.status_code, r.text)
            assert r.status_code >= 400 and "code" in r.json(), r.text
        for method, path, options in (
            ("POST", f"/api/events/{s.event['id']}/queue", {}),
            (
                "POST",
                f"/api/holds/{s.hold_id}/checkout",
                {"json": BUYER, "headers": {"Idempotency-Key": "new"}},
            ),
            ("POST", "/api/checkin", {"json": checkin, "headers": ADMIN}),
        ):
            r = await strict.request(method, path, **options)
            assert (r.status_code, r.json()["code"]) == (429, "rate_limited"), (path, r.text)
        after = await steady_snapshot(redis, events)

        changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
                   if before.get(k) != after.get(k)}  # fmt: skip
        assert changed == {}, json.dumps(changed, indent=1)
    finally:
        for event_id in events:
            await forget(redis, event_id)
