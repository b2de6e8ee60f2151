"""Check-in over HTTP on real Postgres: first scan wins, online and offline."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import signing
from onsale.config import Settings
from onsale.tickets import checkin, qr
from tests.integration.api_support import create, fresh_window
from tests.integration.ticket_support import issue

Client = AsyncTestClient[Litestar]
OSLO = timezone(timedelta(hours=1))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


async def event_of(client: Client, event_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/api/events/{event_id}")).json()
    return body


async def scan(
    client: Client, admin: dict[str, str], event_id: str, payload: str, **more: Any
) -> Any:
    return await client.post(
        "/api/checkin", json={"event_id": event_id, "qr": payload, **more}, headers=admin
    )


async def test_first_scan_checks_in_the_second_says_when(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, name="Grace Hopper")
    ticket = order.tickets[0]
    first = await scan(client, admin, order.event_id, ticket["qr"], scanner="gate A")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["ticket_id"] == ticket["ticket_id"] and body["tier_id"] == order.tier_id
    assert body["attendee_name"] == "Grace Hopper" and body["checked_in_by"] == "gate A"
    assert abs(at(body["checked_in_at"]) - datetime.now(UTC)) < timedelta(seconds=30)

    again = await scan(client, admin, order.event_id, ticket["qr"], scanner="gate B")
    assert again.status_code == 409
    refused = again.json()
    assert refused["code"] == "already_checked_in"
    assert at(refused["checked_in_at"]) == at(body["checked_in_at"])
    assert refused["checked_in_by"] == "gate A"

    row = await pool.fetchrow("SELECT status::text, checked_in_by FROM tickets WHERE id = $1",
                              ticket["ticket_id"])  # fmt: skip
    assert row is not None and tuple(row) == ("used", "gate A")
    # The order's other ticket is untouched.
    other = await scan(client, admin, order.event_id, order.tickets[1]["qr"])
    assert other.status_code == 200 and other.json()["checked_in_by"] is None


async def test_concurrent_scans_admit_exactly_one(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=1)
    payload = order.tickets[0]["qr"]
    answers = await asyncio.gather(
        *(scan(client, admin, order.event_id, payload, scanner=f"s{i}") for i in range(50))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * 49
    (winner,) = [r.json() for r in answers if r.status_code == 200]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["code"] == "already_checked_in"
            assert r.json()["checked_in_at"] == winner["checked_in_at"]
            assert r.json()["checked_in_by"] == winner["checked_in_by"]


async def test_bad_tickets_are_refused(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=1)
    good = order.tickets[0]["qr"]
    stranger = qr.sign(signing.load(signing.generate_pem()), order.tickets[0]["ticket_id"],
                       order.event_id)  # fmt: skip
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    for payload in ("", "hello", "ticket:x:v1:y", good.replace(":v1:", ":v2:"), tampered, stranger):
        r = await scan(client, admin, order.event_id, payload)
        assert r.status_code == 422, (payload, r.text)
        assert r.json()["code"] in ("invalid_ticket", "invalid_request")
    r = await scan(client, admin, order.event_id, stranger)
    assert r.json()["code"] == "invalid_ticket"

    # A genuine ticket of another event: the wrong door, not a forgery.
    other = await create(client, admin)
    r = await scan(client, admin, other["id"], good)
    assert (r.status_code, r.json()["code"]) == (403, "wrong_event")
    assert r.json()["event_id"] == order.event_id

    # Genuinely signed but not in Postgres (yet): not found, scan again later.
    key = signing.load(settings.security.signing_key)
    unrecorded = qr.sign(key, str(uuid.uuid4()), order.event_id)
    r = await scan(client, admin, order.event_id, unrecorded)
    assert (r.status_code, r.json()["code"]) == (404, "ticket_not_found")

    r = await scan(client, admin, "not-a-uuid", good)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    r = await client.post("/api/checkin", json={"event_id": order.event_id, "qr": good})
    assert r.status_code == 401
    # None of that checked the ticket in.
    assert (await scan(client, admin, order.event_id, good)).status_code == 200


async def test_refunded_ticket_is_not_valid(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=1, status="refunded")
    r = await scan(client, admin, order.event_id, order.tickets[0]["qr"])
    assert (r.status_code, r.json()["code"]) == (409, "ticket_not_valid")
    assert r.json()["status"] == "refunded"


async def manifest(client: Client, admin: dict[str, str], event_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/events/{event_id}/checkin/manifest", headers=admin)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


async def test_manifest_lists_every_ticket_with_the_keys(
    client: Client,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = await issue(client, admin, pool, settings, count=3, name="Ada")
    event = await event_of(client, one.event_id)
    two = await issue(client, admin, pool, settings, count=2, event=event, name="Bob")
    refunded = await issue(client, admin, pool, settings, count=1, event=event, status="refunded")
    elsewhere = await issue(client, admin, pool, settings, count=1)
    used = await scan(client, admin, one.event_id, two.tickets[0]["qr"])
    # Small chunks: the streamed document must still be one valid JSON object.
    monkeypatch.setattr(checkin, "MANIFEST_CHUNK", 2)

    body = await manifest(client, admin, one.event_id)
    assert body["event_id"] == one.event_id
    assert body["keys"] == (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert abs(at(body["generated_at"]) - datetime.now(UTC)) < timedelta(seconds=30)
    rows = {t["ticket_id"]: t for t in body["tickets"]}
    assert set(rows) == {t["ticket_id"] for t in one.tickets + two.tickets + refunded.tickets}
    assert elsewhere.tickets[0]["ticket_id"] not in rows
    checked = rows[two.tickets[0]["ticket_id"]]
    assert checked["status"] == "used" and checked["attendee_name"] == "Bob"
    assert at(checked["checked_in_at"]) == at(used.json()["checked_in_at"])
    assert rows[one.tickets[0]["ticket_id"]] == {
        "ticket_id": one.tickets[0]["ticket_id"],
        "tier_id": one.tier_id,
        "attendee_name": "Ada",
        "status": "valid",
        "checked_in_at": None,
        "checked_in_gate": None,
    }
    assert rows[refunded.tickets[0]["ticket_id"]]["status"] == "refunded"

    empty = await create(client, admin)
    assert (await manifest(client, admin, empty["id"]))["tickets"] == []
    for missing in (str(uuid.uuid4()), "nope"):
        r = await client.get(f"/api/events/{missing}/checkin/manifest", headers=admin)
        assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
    r = await client.get(f"/api/events/{one.event_id}/checkin/manifest")
    assert r.status_code == 401


async def sync(
    client: Client, admin: dict[str, str], event_id: str, scans: list[dict[str, str]]
) -> list[dict[str, Any]]:
    r = await client.post(
        "/api/checkin/sync", json={"event_id": event_id, "scans": scans}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["event_id"] == event_id
    results: list[dict[str, Any]] = r.json()["results"]
    assert len(results) == len(scans)
    return results


def offline(payload: str, when: datetime, scanner: str) -> dict[str, str]:
    return {"qr": payload, "scanned_at": when.isoformat(), "scanner": scanner}


async def test_sync_earliest_scan_wins(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=4)
    contested, fresh, late, ahead = (t["qr"] for t in order.tickets)
    online = await scan(client, admin, order.event_id, contested, scanner="online")
    assert online.status_code == 200
    await scan(client, admin, order.event_id, late, scanner="online")
    event = await event_of(client, order.event_id)
    refunded = await issue(client, admin, pool, settings, count=1, event=event, status="refunded")
    other = await issue(client, admin, pool, settings, count=1)
    key = signing.load(settings.security.signing_key)
    unrecorded = qr.sign(key, str(uuid.uuid4()), order.event_id)

    # Two offline scanners saw the contested ticket before the online scan, out of order.
    results = await sync(
        client,
        admin,
        order.event_id,
        [
            offline(contested, ago(10), "door B"),
            offline(contested, ago(20), "door A"),
            offline(fresh, ago(5), "door B"),
            offline(late, ago(0), "door C"),  # after the online scan
            offline(ahead, ago(-60), "door E"),  # a clock an hour fast
            offline("ticket:rubbish", ago(1), "door C"),
            offline(other.tickets[0]["qr"], ago(1), "door C"),
            offline(refunded.tickets[0]["qr"], ago(1), "door C"),
            offline(unrecorded, ago(1), "door C"),
        ],
    )
    outcome = [r["result"] for r in results]
    assert outcome == [
        "already_checked_in",
        "checked_in",
        "checked_in",
        "already_checked_in",
        "checked_in",
        "invalid_ticket",
        "wrong_event",
        "not_valid",
        "not_found",
    ]
    first = at(results[1]["checked_in_at"])
    assert abs(first - ago(20)) < timedelta(seconds=30)
    assert at(results[0]["checked_in_at"]) == first and results[0]["checked_in_by"] == "door A"
    assert results[1]["ticket_id"] == order.tickets[0]["ticket_id"]
    assert results[2]["checked_in_by"] == "door B"
    assert results[3]["checked_in_by"] == "online"
    # A scan cannot have happened after its upload.
    assert at(results[4]["checked_in_at"]) <= datetime.now(UTC)
    assert results[5]["ticket_id"] is None and results[5]["checked_in_at"] is None

    # The online scanner now hears the true first scan.
    again = await scan(client, admin, order.event_id, contested)
    assert again.status_code == 409
    assert at(again.json()["checked_in_at"]) == first and again.json()["checked_in_by"] == "door A"

    # A later sync with a scan after the record is a duplicate; the record stands.
    (later,) = await sync(client, admin, order.event_id, [offline(contested, ago(15), "door D")])
    assert later["result"] == "already_checked_in" and at(later["checked_in_at"]) == first
    rows = {t["ticket_id"]: t for t in (await manifest(client, admin, order.event_id))["tickets"]}
    assert at(rows[order.tickets[0]["ticket_id"]]["checked_in_at"]) == first


async def test_sync_validates_its_input(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=1)
    payload = order.tickets[0]["qr"]

    async def post(body: Any) -> tuple[int, str]:
        r = await client.post("/api/checkin/sync", json=body, headers=admin)
        return r.status_code, r.json()["code"]

    too_many = [offline(payload, ago(1), "x")] * (checkin.MAX_SYNC_SCANS + 1)
    assert await post({"event_id": order.event_id, "scans": too_many}) == (422, "invalid_request")
    naive = {"qr": payload, "scanned_at": ago(1).replace(tzinfo=None).isoformat(), "scanner": "x"}
    assert await post({"event_id": order.event_id, "scans": [naive]}) == (422, "invalid_request")
    long_name = offline(payload, ago(1), "x" * 101)
    assert await post({"event_id": order.event_id, "scans": [long_name]}) == (
        422,
        "invalid_request",
    )
    huge = [offline(payload, ago(1), "x" * 100)] * 2000
    assert await post({"event_id": order.event_id, "scans": huge}) == (413, "payload_too_large")
    assert await sync(client, admin, order.event_id, []) == []


async def test_a_full_sync_applies_in_one_go(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=10)
    start = ago(60)
    # 100 scans of each of 10 tickets, the latest first: each ticket's last listed scan
    # is its earliest, and the only one checked in.
    scans = [
        offline(t["qr"], (start + timedelta(seconds=i)).astimezone(OSLO), f"door {i}")
        for i in reversed(range(100))
        for t in order.tickets
    ]
    assert len(scans) == checkin.MAX_SYNC_SCANS
    results = await sync(client, admin, order.event_id, scans)
    checked = [r for r in results if r["result"] == "checked_in"]
    assert len(checked) == 10 and all(r["checked_in_by"] == "door 0" for r in checked)
    assert all(r["checked_in_at"].endswith("Z") for r in results)  # UTC, whatever was sent
    assert results[-10:] == checked
    assert all(at(r["checked_in_at"]) == start for r in results)


async def test_checkin_is_rate_limited_per_client(settings: Settings, pool: asyncpg.Pool) -> None:
    from onsale.gateway.app import create_app

    strict = msgspec.structs.replace(
        settings, security=msgspec.structs.replace(settings.security, checkins_per_minute=3)
    )
    admin = {"Authorization": f"Bearer {settings.security.admin_token}"}
    async with AsyncTestClient(app=create_app(strict)) as c:
        order = await issue(c, admin, pool, settings, count=1)
        payload = order.tickets[0]["qr"]
        fresh_window()  # all of this in one one-minute window
        codes = [(await scan(c, admin, order.event_id, payload)).status_code for _ in range(7)]
        assert 429 not in codes[:3] and codes[3:] == [429] * 4, codes
        refused = await scan(c, admin, order.event_id, payload)
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        # Syncs get a tenth, at least one a minute.
        body = {"event_id": order.event_id, "scans": []}
        syncs = [
            (await c.post("/api/checkin/sync", json=body, headers=admin)).status_code
            for _ in range(3)
        ]
        assert syncs == [200, 429, 429]


async def sold_now(client: Client, admin: dict[str, str], qty: int = 2) -> dict[str, Any]:
    """A free order confirmed a moment ago through the public API: in Redis and on its
    stream, not in Postgres (no committer runs for this event). Its body, with tickets."""
    from tests.integration.api_support import bearer, checkout, hold_for

    event, hold, _ = await hold_for(client, admin, price=0, qty=qty)
    done = await checkout(client, hold["hold_id"], f"door-{uuid.uuid4().hex}")
    assert done.status_code == 201 and done.json()["status"] == "confirmed", done.text
    order_id, token = done.json()["order_id"], done.json()["order_token"]
    body: dict[str, Any] = (
        await client.get(f"/api/orders/{order_id}", headers=bearer(token))
    ).json()
    assert len(body["tickets"]) == qty
    return body | {"event_id": event["id"]}


async def in_postgres(pool: asyncpg.Pool, order_id: str) -> tuple[int, list[str]]:
    """(orders with that id, its tickets' statuses, sorted) in Postgres."""
    orders = await pool.fetchval("SELECT count(*) FROM orders WHERE id = $1", order_id)
    tickets = await pool.fetch("SELECT status::text FROM tickets WHERE order_id = $1", order_id)
    return orders, sorted(r[0] for r in tickets)


async def test_a_ticket_bought_a_moment_ago_checks_in_once(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, redis: Any, database_url: str
) -> None:
    from onsale.checkout.committer import Committer, CommitterOptions
    from tests.integration.commit_support import drained, running

    order = await sold_now(client, admin)
    event_id, ticket = order["event_id"], order["tickets"][0]
    assert await in_postgres(pool, order["order_id"]) == (0, [])

    first = await scan(client, admin, event_id, ticket["qr"], scanner="gate A")
    assert first.status_code == 200, first.text
    assert first.json()["ticket_id"] == ticket["ticket_id"]
    assert first.json()["checked_in_by"] == "gate A"
    again = await scan(client, admin, event_id, ticket["qr"], scanner="gate B")
    assert (again.status_code, again.json()["code"]) == (409, "already_checked_in")
    assert again.json()["checked_in_by"] == "gate A"
    # The whole order was committed, as the committer would have: one order, its tickets.
    assert await in_postgres(pool, order["order_id"]) == (1, ["used", "valid"])

    # The committer then writes the same entry: nothing changes, nothing is checked out.
    async with running(Committer(redis, database_url, CommitterOptions(events=(event_id,)))):
        await drained(redis, event_id)
    assert await in_postgres(pool, order["order_id"]) == (1, ["used", "valid"])
    other = await scan(client, admin, event_id, order["tickets"][1]["qr"])
    assert other.status_code == 200


async def test_concurrent_scans_of_a_ticket_bought_a_moment_ago_admit_one(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    order = await sold_now(client, admin, qty=1)
    payload = order["tickets"][0]["qr"]
    answers = await asyncio.gather(
        *(scan(client, admin, order["event_id"], payload, scanner=f"s{i}") for i in range(20))
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 19, [
        r.text for r in answers if r.status_code not in (200, 409)
    ]
    (winner,) = [r.json() for r in answers if r.status_code == 200]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["code"] == "already_checked_in"
            assert r.json()["checked_in_by"] == winner["checked_in_by"]
    assert await in_postgres(pool, order["order_id"]) == (1, ["used"])


async def test_an_offline_sync_finds_tickets_bought_a_moment_ago(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    order = await sold_now(client, admin)
    one, two = (t["qr"] for t in order["tickets"])
    results = await sync(
        client,
        admin,
        order["event_id"],
        [offline(one, ago(2), "door A"), offline(one, ago(1), "door B"), offline(two, ago(1), "x")],
    )
    assert [r["result"] for r in results] == ["checked_in", "already_checked_in", "checked_in"]
    assert results[1]["checked_in_by"] == "door A"
    assert await in_postgres(pool, order["order_id"]) == (1, ["used", "used"])
