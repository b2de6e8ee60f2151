"""What the HTTP tests share: an event to create, and a buyer's way through the API (join,
admission, hold, checkout, payment) to an order that Redis, Postgres and Stripe agree on."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale.checkout.payments import Payments
from onsale.checkout.reconcile import reconcile_event
from onsale.config import Settings
from onsale.gateway.routes import queue
from onsale.queue.room import WaitingRoom
from tests.integration.inventory_support import CREATED
from tests.integration.stripe_support import intent_of, pay, signed

Client = AsyncTestClient[Litestar]

DAY = 86_400


def iso(when: float | datetime = 0.0) -> str:
    """A moment as the API writes one (UTC, ``Z``): ``when`` seconds from now, or a datetime."""
    moment = when if isinstance(when, datetime) else datetime.now(UTC) + timedelta(seconds=when)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# The test event's schedule is relative to the run's clock, never a calendar date (a fixed
# date turns into a failure the day it passes): its on-sale opens tomorrow at 10:00 (at
# least 10 hours ahead, so a new event is in its pre-queue for the whole run) and the show
# is 30 days later at 20:00. Whole seconds, so the API gives the same text back.
OPENS = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
STARTS = (OPENS + timedelta(days=30)).replace(hour=20)

EVENT: dict[str, Any] = {
    "title": "Night Owls - Live",
    "starts_at": iso(STARTS),
    "venue": {"name": "Arena", "city": "Oslo", "country": "NO"},
    "currency": "USD",
    "tiers": [
        {"name": "General Admission", "price": 4500, "capacity": 5000, "per_order_limit": 6},
        {"name": "VIP", "price": 15000, "capacity": 200, "per_order_limit": 2},
    ],
    "onsale": {
        "opens_at": iso(OPENS),
        "admit_per_minute": 600,
        "max_active": 2000,
        "hold_seconds": 600,
    },
}
BUYER = {"email": "ada@example.com", "name": "Ada Lovelace"}


def event(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EVENT)
    body.update(changes)
    return body


async def create(client: Client, admin: dict[str, str], **changes: Any) -> dict[str, Any]:
    r = await client.post("/api/events", json=event(**changes), headers=admin)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    redis_settings = client.app.state.services.settings.redis
    if not redis_settings.cluster:  # a test's own cluster goes with its events
        CREATED.append((redis_settings.url, body["id"]))
    return body


#: The gateway's rate limits count in fixed windows of this many seconds (RateLimiter).
WINDOW_S = 60


def fresh_window(need_s: float = 15.0) -> None:
    """Returns once the current rate-limit window has at least ``need_s`` seconds left,
    waiting for the next one to begin when it has not: a test that counts requests against
    a per-minute limit must not straddle two windows (the count starts again halfway)."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < need_s:
        time.sleep(left + 0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def open_event(client: Client, admin: dict[str, str], **onsale: Any) -> dict[str, Any]:
    """An event on sale since a second ago, admitting fast unless told otherwise."""
    base = {"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60}
    return await create(client, admin, onsale=base | onsale)


async def join(client: Client, event_id: str, token: str | None = None) -> dict[str, Any]:
    headers = {"X-Visitor-Token": token} if token else {}
    r = await client.post(f"/api/events/{event_id}/queue", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def admitted(client: Client, event_id: str) -> dict[str, Any]:
    """Join, then wait in line until admitted: the answer of the poll that sees the admission.

    Polls come at most every poll_after_seconds; rather than wait that long, the line is
    moved and the poll made as the gateway's own route does it, without the throttle (on
    this loop's own connection: the gateway's belong to the test client's loop).
    """
    place = await join(client, event_id)
    services = client.app.state.services
    token = place["visitor_token"]
    visitor = services.visitors.verify(event_id, token)
    redis = aioredis.Redis.from_url(services.settings.redis.url, decode_responses=True)
    room = WaitingRoom(redis)
    try:
        deadline = time.monotonic() + 20
        while place["state"] != "admitted":
            assert time.monotonic() < deadline, place
            assert place["state"] == "waiting", place
            await room.advance(event_id)
            now = await room.status(event_id, visitor)
            place = msgspec.json.decode(queue._body(services, event_id, visitor, token, now))
    finally:
        await redis.aclose()
    return place


async def join_until_settled(client: Client, event_id: str) -> dict[str, Any]:
    """Join, then poll as told (poll_after_seconds, Retry-After) until admitted or sold out."""
    r = await client.post(f"/api/events/{event_id}/queue")
    place: dict[str, Any] = r.json()
    token = place["visitor_token"]
    while place["state"] in ("waiting", "prequeue"):
        await asyncio.sleep(place["poll_after_seconds"])
        r = await client.get(f"/api/events/{event_id}/queue", headers={"X-Visitor-Token": token})
        if r.status_code == 429:
            await asyncio.sleep(int(r.headers["Retry-After"]))
            continue
        place = r.json()
    return place


async def hold_for(
    client: Client, admin: dict[str, str], *, price: int = 4500, capacity: int = 10, qty: int = 2
) -> tuple[dict[str, Any], dict[str, Any], str]:
    event = await create(
        client,
        admin,
        tiers=[{"name": "GA", "price": price, "capacity": capacity}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60},
    )
    token = (await admitted(client, event["id"]))["admission_token"]
    body = {"items": [{"tier_id": event["tiers"][0]["id"], "quantity": qty}]}
    r = await client.post(f"/api/events/{event['id']}/holds", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    return event, r.json(), token


async def checkout(client: Client, hold_id: str, key: str, body: dict[str, str] = BUYER) -> Any:
    return await client.post(
        f"/api/holds/{hold_id}/checkout", json=body, headers={"Idempotency-Key": key}
    )


async def paid_order(
    client: Client, stripe_url: str, event_id: str, tier_id: str, quantity: int, who: str
) -> dict[str, Any] | None:
    """One buyer through the waiting room to a paid order; None if nothing was left."""
    place = await join_until_settled(client, event_id)
    if place["state"] != "admitted":
        assert place["state"] == "sold_out", place
        return None
    body = {"items": [{"tier_id": tier_id, "quantity": quantity}]}
    r = await client.post(
        f"/api/events/{event_id}/holds", json=body, headers=bearer(place["admission_token"])
    )
    if r.status_code == 409:
        assert r.json()["code"] in ("sold_out", "insufficient_inventory"), r.text
        return None
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/api/holds/{r.json()['hold_id']}/checkout",
        json={"email": f"{who}@example.com", "name": who},
        headers={"Idempotency-Key": f"checkout-{who}"},
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    pi = order["payment"]["payment_intent_id"]
    assert await pay(stripe_url, pi) == "succeeded"
    intent = intent_of(event_id, order)
    body_bytes, headers = signed("payment_intent.succeeded", intent)
    r = await client.post("/api/webhooks/stripe", content=body_bytes, headers=headers)
    assert r.status_code == 200, r.text
    return order


async def reconciled(pool: asyncpg.Pool, redis: Any, settings: Settings, event_id: str) -> None:
    """``onsale reconcile`` finds nothing: Redis, Postgres and Stripe agree."""
    payments = Payments(settings.stripe)
    try:
        async with pool.acquire() as conn:
            report = await reconcile_event(conn, redis, payments, event_id)
    finally:
        await payments.aclose()
    assert report.differences == [], report.text()
