"""A presale end to end through the API: code holders admitted before the general sale,
everyone else in its pre-queue until it opens, codes used up and bound to their visitor,
a presale admission limited to its code's tiers; and the access codes' routes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import jwt
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.config import Settings
from onsale.gateway.app import create_app
from onsale.queue import access, shuffle
from tests.integration.api_support import Client, bearer, iso
from tests.integration.presale_support import codes, poll_until, presale_event, rejoin


async def test_presale_end_to_end(client: Client, admin: dict[str, str]) -> None:
    event = await presale_event(client, admin)
    eid = event["id"]
    ga, vip = (t["id"] for t in event["tiers"])
    onsale = event["onsale"]
    assert onsale["presale_commitment"] and onsale["presale_seed"] is None
    fan_code, spare_code = await codes(client, admin, eid, 2, 1, tier_ids=[vip])
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){2}", fan_code)

    # Before the presale: the fan waits in the presale's pre-queue, the others in the
    # general one.
    r = await client.post(f"/api/events/{eid}/queue", json={"access_code": fan_code.lower()})
    assert r.status_code == 200, r.text
    fan = r.json()
    assert fan["state"] == "prequeue" and fan["line"] == "presale"
    other = (await client.post(f"/api/events/{eid}/queue")).json()
    assert other["state"] == "prequeue" and other.get("line") is None
    # A single-use code is refused to another visitor; so is a made-up one. Nothing taken.
    for bad in (fan_code, "ZZZZ-ZZZZ-ZZZZ", "x"):
        r = await client.post(f"/api/events/{eid}/queue", json={"access_code": bad})
        assert r.status_code == 403 and r.json()["code"] == "access_code_invalid", r.text
    # The fan joining again (with the code, or without): the same place, one use.
    again = await rejoin(client, eid, fan["visitor_token"], {"access_code": fan_code})
    assert again.status_code == 200 and again.json()["line"] == "presale", again.text
    assert (await rejoin(client, eid, fan["visitor_token"])).json()["line"] == "presale"
    summary = (await client.get(f"/api/events/{eid}/access-codes", headers=admin)).json()
    assert summary["codes"] == 2 and summary["uses"] == 1
    assert summary["batches"][0]["used_codes"] == 1
    assert summary["batches"][0]["tier_ids"] == [vip]
    assert fan_code not in str(summary) and spare_code not in str(summary)

    # The presale opens: the fan is admitted while the others are still in the pre-queue.
    admitted = await poll_until(client, eid, fan["visitor_token"], {"admitted"}, 15)
    assert admitted["line"] == "presale"
    other_now = await poll_until(client, eid, other["visitor_token"], {"prequeue"}, 5)
    assert other_now["state"] == "prequeue"
    seed = (await client.get(f"/api/events/{eid}")).json()["onsale"]["presale_seed"]
    assert shuffle.commitment(seed) == onsale["presale_commitment"]
    claims = jwt.decode(admitted["admission_token"], options={"verify_signature": False})
    assert claims["tiers"] == [vip]
    # A presale admission holds only its code's tiers.
    holds = f"/api/events/{eid}/holds"
    token = bearer(admitted["admission_token"])
    r = await client.post(holds, json={"items": [{"tier_id": ga, "quantity": 1}]}, headers=token)
    assert r.status_code == 403 and r.json()["code"] == "tier_not_in_presale", r.text
    r = await client.post(holds, json={"items": [{"tier_id": vip, "quantity": 2}]}, headers=token)
    assert r.status_code == 201, r.text

    # The general sale opens: the others are admitted, to every tier.
    general = await poll_until(client, eid, other["visitor_token"], {"admitted"}, 25)
    assert general.get("line") is None
    claims = jwt.decode(general["admission_token"], options={"verify_signature": False})
    assert "tiers" not in claims
    r = await client.post(
        holds,
        json={"items": [{"tier_id": ga, "quantity": 1}]},
        headers=bearer(general["admission_token"]),
    )
    assert r.status_code == 201, r.text
    # After the opening a code is not needed and not looked at.
    r = await client.post(f"/api/events/{eid}/queue", json={"access_code": fan_code})
    assert r.status_code == 200 and r.json().get("line") is None, r.text


async def test_access_codes_refuse_bad_requests(client: Client, admin: dict[str, str]) -> None:
    event = await presale_event(client, admin, presale_in=3600, opens_in=7200)
    path = f"/api/events/{event['id']}/access-codes"
    bad: list[Any] = [
        {"count": 0, "max_uses": 1},
        {"count": 1, "max_uses": 0},
        {"count": access.MAX_COUNT + 1, "max_uses": 1},
        {"count": 1, "max_uses": 1, "tier_ids": ["not-a-tier"]},
        {"count": 1, "max_uses": 1, "tier_ids": []},
        {"count": "1", "max_uses": 1},
        {"count": 1, "max_uses": 1, "extra": True},
    ]
    for body in bad:
        r = await client.post(path, json=body, headers=admin)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (body, r.text)
    assert (await client.post(path, json={"count": 1, "max_uses": 1})).status_code == 401
    r = await client.post(f"/api/events/{event['id']}/queue", json={"access_code": 5})
    assert r.status_code == 422, r.text
    r = await client.post(f"/api/events/{event['id']}/queue", content=b"{not json")
    assert r.status_code == 400, r.text
    summary = (await client.get(path, headers=admin)).json()
    assert summary == {"batches": [], "codes": 0, "uses": 0}
    many = await codes(client, admin, event["id"], 500, 3)
    assert len(set(many)) == 500
    summary = (await client.get(path, headers=admin)).json()
    assert summary["codes"] == 500 and summary["batches"][0]["max_uses"] == 3
    # No such event: 404 to an admin too, for making codes and for counting them.
    for ghost in (str(uuid.uuid4()), "not-an-event"):
        for method in ("GET", "POST"):
            r = await client.request(
                method, f"/api/events/{ghost}/access-codes", headers=admin,
                json={"count": 1, "max_uses": 1} if method == "POST" else None,
            )  # fmt: skip
            assert (r.status_code, r.json()["code"]) == (404, "event_not_found"), (ghost, r.text)


async def test_presale_opening_moves_only_before_it_opens(
    client: Client, admin: dict[str, str]
) -> None:
    event = await presale_event(client, admin, presale_in=-1, opens_in=3600)
    path = f"/api/events/{event['id']}/onsale"
    r = await client.patch(path, json={"presale_opens_at": iso(1800)}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "sale_started", r.text


async def test_codes_come_back_after_a_redis_loss(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, redis: Any
) -> None:
    event = await presale_event(client, admin, presale_in=3600, opens_in=7200)
    eid = event["id"]
    made = await codes(client, admin, eid, 3, 2)
    await redis.delete(keys.access_codes(eid), keys.access_visitors(eid))
    r = await client.post(f"/api/events/{eid}/queue", json={"access_code": made[0]})
    assert r.status_code == 403, r.text
    assert await access.restore(pool, redis, eid) == 3
    r = await client.post(f"/api/events/{eid}/queue", json={"access_code": made[0]})
    assert r.status_code == 200 and r.json()["line"] == "presale", r.text
    # Restoring again never lowers a live count.
    assert await access.restore(pool, redis, eid) == 3
    summary = (await client.get(f"/api/events/{eid}/access-codes", headers=admin)).json()
    assert summary["uses"] == 1


async def test_the_litestar_hold_route_refuses_other_tiers_alike(
    client: Client, admin: dict[str, str], settings: Settings
) -> None:
    event = await presale_event(client, admin, presale_in=1, opens_in=3600)
    eid = event["id"]
    ga, vip = (t["id"] for t in event["tiers"])
    (code,) = await codes(client, admin, eid, 1, 1, tier_ids=[vip])
    r = await client.post(f"/api/events/{eid}/queue", json={"access_code": code})
    assert r.status_code == 200, r.text
    place = await poll_until(client, eid, r.json()["visitor_token"], {"admitted"}, 15)
    token = bearer(place["admission_token"])
    body = {"items": [{"tier_id": ga, "quantity": 1}]}
    fast = await client.post(f"/api/events/{eid}/holds", json=body, headers=token)
    async with AsyncTestClient(app=create_app(settings, hot_paths=False)) as plain:
        slow = await plain.post(f"/api/events/{eid}/holds", json=body, headers=token)
    assert fast.status_code == slow.status_code == 403
    assert fast.json() == slow.json() and fast.json()["code"] == "tier_not_in_presale"
