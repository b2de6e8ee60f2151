"""Reports and exports: figures agree with plain SQL over the orders the committer wrote,
from/to filtering, CSV exports (headers, escaping, audit), and who may see them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from onsale.accounts.staff import assign, set_owner
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.db import connect
from onsale.reports import rollup
from onsale.reports.exports import ATTENDEE_HEADER, ORDER_HEADER
from tests.integration.accounts_support import Client, login, make_user
from tests.integration.commit_support import create_event, drained, running, sell, until
from tests.integration.refund_support import event_with_orders
from tests.integration.report_support import parse_csv, plain_sales, sold_and_committed

FAR = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


def q(at: datetime) -> str:
    return quote(at.isoformat())


async def _dress_up(pool: asyncpg.Pool, event_id: str) -> dict[str, Any]:
    """Refund a few orders, give some a promo code and check some tickets in (as the other
    parts of the system would), then recount the event as the committer does."""
    eid = uuid.UUID(event_id)
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch(
            "SELECT id FROM orders WHERE event_id = $1 ORDER BY id", eid)]  # fmt: skip
        refunded, promo = ids[:5], ids[5:17]
        await conn.execute(
            "UPDATE orders SET status = 'refunded' WHERE id = ANY($1::uuid[])", refunded
        )
        await conn.execute(
            "UPDATE tickets SET status = 'refunded' WHERE order_id = ANY($1::uuid[])", refunded
        )
        code_id = await conn.fetchval(
            "INSERT INTO promo_codes (event_id, code, discount_type, discount_value) "
            "VALUES ($1, 'SPRING-10', 'percentage', 10) RETURNING id",
            eid,
        )
        await conn.execute(
            "UPDATE orders SET promo_code_id = $2, discount = amount / 10, "
            "amount = amount - amount / 10 WHERE id = ANY($1::uuid[])",
            promo,
            code_id,
        )
        # 40 tickets in, over the last hour and a half: several quarter hours.
        tickets = await conn.fetch(
            "SELECT id FROM tickets WHERE event_id = $1 AND status = 'valid' ORDER BY id LIMIT 40",
            eid,
        )
        for n, t in enumerate(tickets):
            await conn.execute(
                "UPDATE tickets SET status = 'used', checked_in_at = $2 WHERE id = $1",
                t["id"],
                now - timedelta(minutes=2 * n + 1),
            )
        await rollup.rebuild(conn, event_id)
    return {"promo": promo, "refunded": refunded}


async def test_event_report_agrees_with_plain_sql(
    client: Client, pool: asyncpg.Pool, redis: Any, database_url: str, admin: dict[str, str]
) -> None:
    event = await sold_and_committed(pool, redis, database_url, 200, seed=13)

    r = await client.get(f"/api/events/{event.id}/report", headers=admin)
    assert r.status_code == 200, r.text
    first = r.json()
    # Every order was one hold and one paid order, straight through the scripts.
    assert first["funnel"] == {"joined": 0, "admitted": 0, "held": 200, "checkouts": 0, "paid": 200}
    assert first["sales"]["orders"] == 200

    await _dress_up(pool, event.id)
    report = (await client.get(f"/api/events/{event.id}/report", headers=admin)).json()
    async with pool.acquire() as conn:
        want = await plain_sales(conn, event.id, *FAR)
        checked = await conn.fetch(
            "SELECT checked_in_at FROM tickets WHERE event_id = $1 AND checked_in_at IS NOT NULL",
            uuid.UUID(event.id),
        )
        promos = await conn.fetch(
            "SELECT p.code, count(*) AS uses, sum(o.discount) AS discount, sum(o.amount) AS rev "
            "FROM orders o JOIN promo_codes p ON p.id = o.promo_code_id "
            "WHERE o.event_id = $1 AND o.status = 'confirmed' GROUP BY p.code",
            uuid.UUID(event.id),
        )
    sales = report["sales"]
    for name in ("tickets_sold", "orders", "revenue", "refunded", "average_order_value"):
        assert sales[name] == want[name], name
    assert sales["orders"] == 195 and sales["refunded"] > 0 and sales["refunded_orders"] == 5
    tiers = {t["tier_id"]: [t["sold"], t["revenue"]] for t in sales["by_tier"]}
    assert {k: v for k, v in tiers.items() if v[0]} == want["by_tier"]
    assert {t["name"] for t in sales["by_tier"]} == {t.name for t in event.tiers}
    got = [(v["at"], v["tickets"], v["revenue"]) for v in report["velocity"]]
    assert got == [v for v in want["velocity"]]
    assert sum(v[1] for v in got) == want["tickets_sold"]

    checkin = report["checkin"]
    assert checkin["checked_in"] == len(checked) == 40
    assert checkin["rate"] == round(40 / want["tickets_sold"], 4)
    quarters: dict[datetime, int] = {}
    for row in checked:
        at = row["checked_in_at"]
        at = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
        quarters[at] = quarters.get(at, 0) + 1
    assert [(c["at"], c["count"]) for c in checkin["by_quarter_hour"]] == [
        (k.isoformat().replace("+00:00", "Z"), v) for k, v in sorted(quarters.items())
    ]
    assert checkin["no_show_rate"] is None  # the event is a month away
    (promo,) = promos
    assert report["promo_codes"] == [
        {"code": "SPRING-10", "uses": promo["uses"], "discount": int(promo["discount"]),
         "revenue": int(promo["rev"])}
    ]  # fmt: skip
    assert promo["uses"] == 12

    platform = await client.get("/api/admin/report", headers=admin)
    assert platform.status_code == 200
    body = platform.json()
    async with pool.acquire() as conn:
        gmv = await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM orders WHERE status = 'confirmed'"
        )
        n = await conn.fetchval("SELECT count(*) FROM orders WHERE status = 'confirmed'")
        per_currency = dict(
            await conn.fetch(
                "SELECT e.currency, sum(o.amount) FROM orders o JOIN events e"
                " ON e.id = o.event_id WHERE o.status = 'confirmed' GROUP BY e.currency"
            )
        )
    # Other tests' orders may be committed by their own means: at least these, and at most all.
    assert want["revenue"] <= body["gmv"] <= gmv and 195 <= body["orders"] <= n
    assert set(body) >= {"gmv", "orders", "tickets", "events", "organizers", "top_events",
                         "fastest_selling", "gmv_by_currency"}  # fmt: skip
    # Amounts of money per currency, which the contract's gmv adds together.
    by_currency = body["gmv_by_currency"]
    assert sum(by_currency.values()) == body["gmv"]
    assert set(by_currency) <= set(per_currency)
    assert all(0 < v <= per_currency[c] for c, v in by_currency.items())
    assert body["events"] >= 1
    assert all(set(e) == {"event_id", "title", "revenue"} for e in body["top_events"])
    assert all(e["tickets_per_hour"] > 0 for e in body["fastest_selling"])


async def test_from_and_to_filter_reports_and_exports(
    client: Client, pool: asyncpg.Pool, redis: Any, database_url: str, admin: dict[str, str]
) -> None:
    event = await sold_and_committed(pool, redis, database_url, 60, seed=5)
    eid = uuid.UUID(event.id)
    now = datetime.now(UTC)
    earlier = now - timedelta(hours=2)
    async with pool.acquire() as conn:
        moved = [r["id"] for r in await conn.fetch(
            "SELECT id FROM orders WHERE event_id = $1 ORDER BY id LIMIT 25", eid)]  # fmt: skip
        await conn.execute(
            "UPDATE orders SET created_at = $2, confirmed_at = $2 WHERE id = ANY($1::uuid[])",
            moved,
            earlier,
        )
        await rollup.rebuild(conn, event.id)
        cut = now - timedelta(hours=1)
        late = await plain_sales(conn, event.id, cut.replace(second=0, microsecond=0), FAR[1])
        early = await plain_sales(conn, event.id, FAR[0], cut.replace(second=0, microsecond=0))
    assert late["orders"] == 35 and early["orders"] == 25

    base = f"/api/events/{event.id}"
    after = (await client.get(f"{base}/report?from={q(cut)}", headers=admin)).json()
    before = (await client.get(f"{base}/report?to={q(cut)}", headers=admin)).json()
    for got, want in ((after, late), (before, early)):
        for name in ("tickets_sold", "orders", "revenue"):
            assert got["sales"][name] == want[name], name
    assert after["from"] is not None and after["to"] is None

    r = await client.get(f"{base}/orders.csv?from={q(cut)}", headers=admin)
    _, rows = parse_csv(r.content)
    assert len(rows) == 35 and not {row[0] for row in rows} & {str(m) for m in moved}
    r = await client.get(f"{base}/orders.csv?to={q(cut)}", headers=admin)
    assert {row[0] for row in parse_csv(r.content)[1]} == {str(m) for m in moved}

    span = f"from={q(cut - timedelta(hours=2))}&to={q(cut)}"
    platform = (await client.get(f"/api/admin/report?{span}", headers=admin)).json()
    assert platform["orders"] >= 25


@pytest.mark.parametrize(
    "query",
    ["from=yesterday", "to=2026-13-45T00:00:00Z", "from=2030-01-02T00:00Z&to=2030-01-01T00:00Z",
     "from=2030-01-01T00:00Z&to=2030-01-01T00:00Z", "to=" + "9" * 5000],
)  # fmt: skip
async def test_bad_ranges_are_refused(
    client: Client, pool: asyncpg.Pool, redis: Any, admin: dict[str, str], query: str
) -> None:
    event_id = str(await pool.fetchval("SELECT id FROM events LIMIT 1"))
    for path in (
        f"/api/events/{event_id}/report",
        "/api/admin/report",
        f"/api/events/{event_id}/attendees.csv",
        f"/api/events/{event_id}/orders.csv",
    ):
        r = await client.get(f"{path}?{query}", headers=admin)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["code"] == "invalid_request"


async def test_exports_are_csv_escaped_and_audited(
    client: Client, pool: asyncpg.Pool, redis: Any, database_url: str, admin: dict[str, str]
) -> None:
    event = await sold_and_committed(pool, redis, database_url, 30, seed=8)
    eid = uuid.UUID(event.id)
    async with pool.acquire() as conn:
        target = await conn.fetchval("SELECT id FROM orders WHERE event_id = $1 LIMIT 1", eid)
        await conn.execute(
            "UPDATE orders SET name = $2, email = $3 WHERE id = $1",
            target, "=HYPERLINK(\"http://x\")", "@evil@example.com",
        )  # fmt: skip
        await conn.execute(
            "UPDATE tickets SET attendee_name = $2, attendee_email = $3 WHERE order_id = $1",
            target, "+SUM(A1)", "-1+1@example.com",
        )  # fmt: skip
        await conn.execute(
            "UPDATE tickets SET attendee_name = $2 WHERE id = (SELECT id FROM tickets "
            "WHERE event_id = $1 AND order_id <> $3 LIMIT 1)",
            eid, "\tTab, \"quoted\"\r\nname", target,
        )  # fmt: skip
        tickets = await conn.fetchval(
            "SELECT count(*) FROM tickets WHERE event_id = $1 AND status IN ('valid', 'used')", eid
        )

    r = await client.get(f"/api/events/{event.id}/attendees.csv", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    header, rows = parse_csv(r.content)
    assert header == list(ATTENDEE_HEADER)
    assert len(rows) == tickets
    mine = [row for row in rows if row[4] == str(target)]
    assert mine and all(row[2] == "'+SUM(A1)" and row[3] == "'-1+1@example.com" for row in mine)
    assert any(row[2] == '\'\tTab, "quoted"\r\nname' for row in rows)
    assert all(len(row) == 6 for row in rows)

    r = await client.get(f"/api/events/{event.id}/orders.csv", headers=admin)
    header, rows = parse_csv(r.content)
    assert header == list(ORDER_HEADER)
    assert len(rows) == 30
    (row,) = [row for row in rows if row[0] == str(target)]
    assert row[2] == "'@evil@example.com" and row[3] == '\'=HYPERLINK("http://x")'
    assert row[4] == "confirmed" and row[8] == "USD" and int(row[5]) > 0 and row[6] == "0"

    audit = await pool.fetch(
        "SELECT kind, actor, rows, completed, finished_at FROM export_audit WHERE event_id = $1 "
        "ORDER BY id",
        eid,
    )
    assert [(a["kind"], a["actor"], a["rows"], a["completed"]) for a in audit] == [
        ("attendees", "admin token", tickets, True),
        ("orders", "admin token", 30, True),
    ]
    assert all(a["finished_at"] is not None for a in audit)


async def test_every_route_refuses_other_organizers_and_staff(
    client: Client, pool: asyncpg.Pool, redis: Any, database_url: str
) -> None:
    event = await sold_and_committed(pool, redis, database_url, 3, seed=2)
    owner_user = await make_user(pool, "organizer")
    await set_owner(pool, event.id, owner_user["id"])
    staff_user = await make_user(pool, "staff")
    await assign(pool, event.id, staff_user["email"])
    owner = await login(client, owner_user["email"])
    other = await login(client, (await make_user(pool, "organizer"))["email"])
    staff = await login(client, staff_user["email"])
    event_routes = [f"/api/events/{event.id}/{p}" for p in ("report", "attendees.csv",
                                                            "orders.csv")]  # fmt: skip

    for path in event_routes:
        assert (await client.get(path, headers=owner)).status_code == 200, path
        r = await client.get(path, headers=other)
        assert (r.status_code, r.json()["code"]) == (404, "event_not_found"), path
        r = await client.get(path, headers=staff)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), path
        assert (await client.get(path)).status_code == 401
    for who in (owner, other, staff):
        r = await client.get("/api/admin/report", headers=who)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    admin_user = await login(client, (await make_user(pool, "admin"))["email"])
    assert (await client.get("/api/admin/report", headers=admin_user)).status_code == 200
    # An admin asking about no such event: not found, and nothing audited.
    missing = uuid.uuid4()
    r = await client.get(f"/api/events/{missing}/orders.csv", headers=admin_user)
    assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
    audited = "SELECT count(*) FROM export_audit WHERE event_id = $1"
    assert await pool.fetchval(audited, missing) == 0
    audit = await pool.fetch(
        "SELECT user_id::text AS u, actor FROM export_audit WHERE event_id = $1",
        uuid.UUID(event.id),
    )
    assert {(a["u"], a["actor"]) for a in audit} == {(owner_user["id"], owner_user["email"])}


async def test_two_committers_keep_the_rollups_exact(
    pool: asyncpg.Pool, redis: Any, database_url: str
) -> None:
    """Two committers share a launch in small batches, each recounting the minutes it wrote:
    the rollups end equal to the orders (the per-event lock orders their recounts)."""
    event = await create_event(pool, redis)
    options = CommitterOptions(events=(event.id,), batch=15, block_ms=20)
    committers = [Committer(redis, database_url, options) for _ in range(2)]
    for committer in committers:
        committer.rollups.every_s = 0.0  # a recount after every batch: the most contention
    async with running(committers[0]), running(committers[1]):
        await sell(redis, event, 300, seed=21)
        await drained(redis, event.id)

        async def settled() -> bool:
            n = await pool.fetchval(
                "SELECT coalesce(sum(orders), 0) FROM report_sales WHERE event_id = $1",
                uuid.UUID(event.id),
            )
            return bool(n == 300)

        await until(settled, "both committers' rollups")
    assert all(c.committed for c in committers), [c.committed for c in committers]
    async with pool.acquire() as conn:
        want = await plain_sales(conn, event.id, *FAR)
        tiers = await conn.fetch(
            "SELECT tier_id::text AS t, sum(tickets) AS n, sum(revenue) AS r "
            "FROM report_tier_sales WHERE event_id = $1 GROUP BY tier_id",
            uuid.UUID(event.id),
        )
        got = await conn.fetchrow(
            "SELECT sum(orders) AS o, sum(tickets) AS t, sum(revenue) AS r FROM report_sales "
            "WHERE event_id = $1",
            uuid.UUID(event.id),
        )
    assert got is not None
    assert (got["o"], got["t"], got["r"]) == (300, want["tickets_sold"], want["revenue"])
    assert {r["t"]: [r["n"], r["r"]] for r in tiers} == want["by_tier"]


async def test_a_failed_rollup_is_kept_for_the_next_round(
    pool: asyncpg.Pool, redis: Any, database_url: str
) -> None:
    """A recount that fails (here: a closed connection) never raises into the committer;
    what it had is recounted by the next one."""
    event = await sold_and_committed(pool, redis, database_url, 10, seed=4)
    eid = uuid.UUID(event.id)
    await pool.execute("DELETE FROM report_sales WHERE event_id = $1", eid)
    ids = [str(r["id"]) for r in await pool.fetch("SELECT id FROM orders WHERE event_id = $1", eid)]
    rollups = rollup.Rollups(redis, every_s=0.0)
    rollups.note([event.id], ids)
    closed = await connect(database_url)
    await closed.close()
    assert await rollups.maybe_flush(closed) is False
    assert rollups.pending
    async with pool.acquire() as conn:
        assert await rollups.maybe_flush(conn) is True
    assert not rollups.pending
    orders = "SELECT coalesce(sum(orders), 0) FROM report_sales WHERE event_id = $1"
    assert await pool.fetchval(orders, eid) == 10


async def test_refunds_and_cancellation_reach_the_report(
    client: Client, admin: dict[str, str], redis: Any, stripe_url: str, database_url: str
) -> None:
    """A refund through the API and an event's cancellation write Postgres themselves (not
    through the committer): the report says so at once, as the orders do."""
    event, (first, _second) = await event_with_orders(
        client, admin, stripe_url, orders=2, qty=2, tag="report-refund"
    )
    eid = event["id"]

    async def sales() -> dict[str, Any]:
        r = await client.get(f"/api/events/{eid}/report", headers=admin)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()["sales"]
        return out

    async def both_sold() -> bool:
        return bool((await sales())["orders"] == 2)

    committer = Committer(redis, database_url, CommitterOptions(events=(eid,)))
    async with running(committer):
        await drained(redis, eid)
        await until(both_sold, "the committer's rollup of both orders")
        r = await client.post(
            f"/api/orders/{first['order_id']}/refund",
            json={"reason": "asked", "return_to_sale": False},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        got = await sales()
        assert (got["orders"], got["tickets_sold"], got["revenue"]) == (1, 2, 9000), got
        assert (got["refunded_orders"], got["refunded"]) == (1, 9000), got
        assert (await client.post(f"/api/events/{eid}/cancel", headers=admin)).status_code == 200
        got = await sales()
        assert (got["orders"], got["revenue"], got["refunded_orders"]) == (0, 0, 2), got
