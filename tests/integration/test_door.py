"""The door scanner's API on real Postgres: gates on scans and syncs, the door's counts,
the events a person may scan, the scan log's fraud signals, and hostile input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from onsale.config import Settings
from onsale.tickets import scans
from tests.integration.accounts_support import login, make_user
from tests.integration.api_support import Client, create, event
from tests.integration.ticket_support import issue


def _ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


async def _scan(
    client: Client, headers: dict[str, str], event_id: str, qr: str, **more: Any
) -> Any:
    return await client.post(
        "/api/checkin", json={"event_id": event_id, "qr": qr, **more}, headers=headers
    )


async def test_gates_are_recorded_and_told(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=3)
    a, b, c = (t["qr"] for t in order.tickets)
    first = await _scan(client, admin, order.event_id, a, gate="North", device="dev-1")
    assert first.status_code == 200 and first.json()["gate"] == "North"
    again = await _scan(client, admin, order.event_id, a, gate="South", device="dev-2")
    assert again.status_code == 409 and again.json()["gate"] == "North"

    # Offline: b scanned at the East gate 30 s ago, and at the West gate 10 s ago; c once.
    scans_in = [
        {"qr": b, "scanned_at": _ago(10), "gate": "West", "device": "dev-3"},
        {"qr": b, "scanned_at": _ago(30), "gate": "East", "device": "dev-4"},
        {"qr": c, "scanned_at": _ago(5), "device": "dev-4"},
    ]
    r = await client.post(
        "/api/checkin/sync", json={"event_id": order.event_id, "scans": scans_in}, headers=admin
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["result"] for x in results] == ["already_checked_in", "checked_in", "checked_in"]
    assert [x["gate"] for x in results] == ["East", "East", None]

    stats = await client.get(f"/api/events/{order.event_id}/checkin/stats", headers=admin)
    assert stats.status_code == 200
    body = stats.json()
    assert (body["checked_in"], body["expected"], body["rate_per_minute"]) == (3, 3, 3)

    logged = await pool.fetch(
        "SELECT result, gate, device, offline FROM checkin_scans WHERE event_id = $1 ORDER BY id",
        order.event_id,
    )
    assert [tuple(r) for r in logged] == [
        ("checked_in", "North", "dev-1", False),
        ("already_checked_in", "South", "dev-2", False),
        ("already_checked_in", "West", "dev-3", True),
        ("checked_in", "East", "dev-4", True),
        ("checked_in", None, "dev-4", True),
    ]


async def test_refunded_tickets_are_not_expected(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    event = await create(client, admin)
    await issue(client, admin, pool, settings, count=2, event=event)
    await issue(client, admin, pool, settings, count=1, event=event, status="refunded")
    body = (await client.get(f"/api/events/{event['id']}/checkin/stats", headers=admin)).json()
    assert (body["checked_in"], body["expected"], body["rate_per_minute"]) == (0, 2, 0)


async def test_each_person_lists_the_events_they_may_scan(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    owner = await login(client, (await make_user(pool, "organizer"))["email"])
    mine = (await client.post("/api/events", json=event(), headers=owner)).json()
    other = await create(client, admin)
    staff = await make_user(pool, "staff")
    r = await client.post(f"/api/events/{mine['id']}/staff", json={"email": staff["email"]},
                          headers=owner)  # fmt: skip
    assert r.status_code == 204
    door = await login(client, staff["email"])

    async def listed(headers: dict[str, str]) -> set[str]:
        r = await client.get("/api/checkin/events", headers=headers)
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()}

    assert await listed(door) == {mine["id"]}
    assert mine["id"] in await listed(owner) and other["id"] not in await listed(owner)
    assert {mine["id"], other["id"]} <= await listed(admin)
    assert (await client.get("/api/checkin/events")).status_code == 401
    # Staff count the door, but the organizer's alerts are not theirs.
    stats = await client.get(f"/api/events/{mine['id']}/checkin/stats", headers=door)
    assert stats.status_code == 200
    alerts = await client.get(f"/api/events/{mine['id']}/checkin/alerts", headers=door)
    assert alerts.status_code == 403


async def test_alerts_need_repeats_or_a_burst(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=2)
    qr = order.tickets[0]["qr"]
    now = datetime.now(UTC)
    rows = [scans.ScanRow(qr, "checked_in", now, "A", "d1")]
    # Refused twice: below the threshold, no alert yet.
    rows += [scans.ScanRow(qr, "already_checked_in", now, "B", "d2") for _ in range(2)]
    # A busy but human device: 39 scans in a minute.
    rows += [
        scans.ScanRow(
            order.tickets[1]["qr"], "invalid_ticket", now - timedelta(seconds=i), "C", "d3"
        )
        for i in range(scans.BURST_SCANS - 1)
    ]
    await scans.record(pool, order.event_id, rows)
    assert await scans.alerts(pool, order.event_id, now) == []

    await scans.record(
        pool,
        order.event_id,
        [
            scans.ScanRow(qr, "already_checked_in", now, "C", "d3"),
            # Outside the window: old news.
            scans.ScanRow(qr, "already_checked_in", now - timedelta(hours=1), "Z", "d9"),
        ],
    )
    found = await scans.alerts(pool, order.event_id, now)
    kinds = {a.kind: a for a in found}
    assert set(kinds) == {"duplicate_scans", "scan_burst"}
    assert kinds["duplicate_scans"].count == 3 and kinds["duplicate_scans"].gates == ["B", "C"]
    assert kinds["scan_burst"].device == "d3" and kinds["scan_burst"].count == scans.BURST_SCANS


async def test_hostile_input_is_refused_cleanly(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=1)
    qr = order.tickets[0]["qr"]
    long_gate = await _scan(client, admin, order.event_id, qr, gate="G" * 61)
    assert long_gate.status_code in (400, 422) and long_gate.json()["code"] == "invalid_request"
    odd = await _scan(client, admin, order.event_id, qr, device=["not", "a", "string"])
    assert odd.status_code in (400, 422)
    # Nothing was checked in by either.
    status = await pool.fetchval("SELECT status::text FROM tickets WHERE id = $1",
                                 order.tickets[0]["ticket_id"])  # fmt: skip
    assert status == "valid"
    for path in ("checkin/stats", "checkin/alerts"):
        r = await client.get(f"/api/events/not-a-uuid/{path}", headers=admin)
        assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
        r = await client.get(
            f"/api/events/00000000-0000-0000-0000-000000000000/{path}", headers=admin
        )
        assert r.status_code == 404
    # A scan naming an event that does not exist is refused, and logs nothing (no 500).
    ghost = await _scan(client, admin, "00000000-0000-0000-0000-000000000001", qr, gate="X")
    assert ghost.status_code in (403, 404, 422)


async def test_control_characters_in_gate_device_or_scanner_are_refused(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    """Postgres refuses U+0000 in text: such a gate, device or scanner name is a 422 from
    the request's own check, never a 500 from the database, and checks nothing in."""
    order = await issue(client, admin, pool, settings, count=1)
    qr = order.tickets[0]["qr"]
    for field in ("gate", "device", "scanner"):
        r = await _scan(client, admin, order.event_id, qr, **{field: "North\x00gate"})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), (field, r.text)
        scan = {"qr": qr, "scanned_at": _ago(1), field: "dev\x00ice"}
        r = await client.post(
            "/api/checkin/sync", json={"event_id": order.event_id, "scans": [scan]}, headers=admin
        )
        assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), (field, r.text)
    status = await pool.fetchval("SELECT status::text FROM tickets WHERE id = $1",
                                 order.tickets[0]["ticket_id"])  # fmt: skip
    assert status == "valid"
    logged = await pool.fetchval(
        "SELECT count(*) FROM checkin_scans WHERE event_id = $1", order.event_id
    )
    assert logged == 0


async def test_sync_refuses_times_postgres_cannot_hold(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    """A scan time before 1970 or at the year 9999's end with a negative offset (past what
    Postgres holds in UTC: was a 500) refuses the sync whole, 422, and checks nothing in;
    the Unix epoch itself (a device whose clock was reset) is still a time."""
    order = await issue(client, admin, pool, settings, count=2)
    first, second = (t["qr"] for t in order.tickets)
    for at in ("0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00"):
        scans_in = [{"qr": first, "scanned_at": _ago(5)}, {"qr": second, "scanned_at": at}]
        r = await client.post(
            "/api/checkin/sync", json={"event_id": order.event_id, "scans": scans_in},
            headers=admin,
        )  # fmt: skip
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (at, r.text)
        assert "scans[1].scanned_at" in r.json()["detail"]
    statuses = await pool.fetch(
        "SELECT status::text FROM tickets WHERE event_id = $1", order.event_id
    )
    assert [s[0] for s in statuses] == ["valid", "valid"]
    epoch = [{"qr": first, "scanned_at": "1970-01-01T00:00:00Z"}]
    r = await client.post(
        "/api/checkin/sync", json={"event_id": order.event_id, "scans": epoch}, headers=admin
    )
    assert r.status_code == 200 and r.json()["results"][0]["result"] == "checked_in", r.text
