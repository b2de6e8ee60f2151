"""The bot tax: a new place in a waiting room costs a solved ALTCHA proof-of-work, once."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from typing import Any

import altcha
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.botgate import BotGate
from onsale.botgate.difficulty import WINDOW_S
from onsale.config import PowSettings
from onsale.gateway.services import Services
from tests.integration.api_support import iso, join, open_event
from tests.integration.pow_support import challenge, snapshot, solve, solved

Client = AsyncTestClient[Litestar]


def queue(event_id: str) -> str:
    return f"/api/events/{event_id}/queue"


async def fresh(services: Services, event_id: str) -> None:
    """What the next request sees is Redis's state, not this process's second-old reading."""
    services.botgate._cache.pop(event_id, None)


async def taxed(client: Client, admin: dict[str, str], difficulty: int = 2000) -> dict[str, Any]:
    return await open_event(client, admin, pow_difficulty=difficulty)


async def test_a_join_without_a_solution_is_refused_when_asked_and_taken_when_not(
    client: Client, admin: dict[str, str], redis: Any, app_services: Services
) -> None:
    event = await taxed(client, admin)
    eid = event["id"]
    assert event["onsale"]["pow_difficulty"] == 2000
    before = await snapshot(redis, eid)
    r = await client.post(queue(eid))
    assert (r.status_code, r.json()["code"]) == (403, "pow_required")
    url = f"/api/events/{eid}/challenge"
    assert r.json()["challenge"] == url
    assert r.headers["www-authenticate"] == f'Altcha challenge="{url}"'
    assert r.headers["cache-control"] == "no-store"
    # Garbage of every shape is pow_invalid, never a 500, and nothing is written.
    for bad in ("x", "!!!!", base64.b64encode(b"[1,2]").decode(), "a" * 5000, "e30="):
        r = await client.post(queue(eid), headers={"X-Altcha": bad})
        assert (r.status_code, r.json()["code"]) == (403, "pow_invalid"), bad
    r = await client.post(queue(eid), json={"altcha": 5})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    assert await snapshot(redis, eid) == before
    # Off (0): the contract's tokenless join, as ever.
    r = await client.patch(f"/api/events/{eid}/onsale", json={"pow_difficulty": 0}, headers=admin)
    assert r.status_code == 200 and r.json()["onsale"]["pow_difficulty"] == 0
    await fresh(app_services, eid)
    assert (await join(client, eid))["state"] in ("waiting", "admitted")
    assert (await challenge(client, eid)) == {"required": False, "difficulty": 0}


async def test_a_solution_buys_one_join_and_a_replay_is_refused(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    eid = (await taxed(client, admin))["id"]
    made = await challenge(client, eid)
    assert made["required"] is True and made["difficulty"] == 2000
    assert made["parameters"]["data"] == {"event": eid, "difficulty": 2000}
    assert made["parameters"]["expiresAt"] - time.time() == pytest.approx(300, abs=5)
    payload = solve(made)
    r = await client.post(queue(eid), headers={"X-Altcha": payload})
    assert r.status_code == 200, r.text
    assert r.json()["state"] in ("waiting", "admitted")
    # The same solution again, as a header or as the body's field: refused, nothing written.
    before = await snapshot(redis, eid)
    r = await client.post(queue(eid), headers={"X-Altcha": payload})
    assert (r.status_code, r.json()["code"]) == (403, "pow_invalid")
    assert "used already" in r.json()["detail"]
    r = await client.post(queue(eid), json={"altcha": payload})
    assert (r.status_code, r.json()["code"]) == (403, "pow_invalid")
    assert await snapshot(redis, eid) == before
    # A fresh one in the body field (with an access code field beside it) is taken.
    r = await client.post(queue(eid), json={"altcha": await solved(client, eid)})
    assert r.status_code == 200, r.text
    # A visitor with a token rejoins without paying again (the same place).
    token = r.json()["visitor_token"]
    r = await client.post(queue(eid), headers={"X-Visitor-Token": token})
    assert r.status_code in (200, 429), r.text
    # Each spent salt stays remembered until its challenge could no longer be used.
    minute = made["parameters"]["expiresAt"] // 60
    spent = keys.pow_spent(eid, minute)
    assert await redis.scard(spent) >= 1
    assert 0 < await redis.ttl(spent) <= 3 * 60 + 300 + 5


def pow_joins(metrics: str) -> dict[str, float]:
    found = re.findall(r'^onsale_pow_joins_total\{outcome="(\w+)"\} (\S+)$', metrics, re.M)
    return {outcome: float(value) for outcome, value in found}


async def test_the_tax_is_counted_for_prometheus(client: Client, admin: dict[str, str]) -> None:
    eid = (await taxed(client, admin))["id"]
    before = pow_joins((await client.get("/metrics")).text)
    assert set(before) == {"spent", "pow_required", "pow_invalid"}
    await client.post(queue(eid))
    await client.post(queue(eid), headers={"X-Altcha": "x"})
    r = await client.post(queue(eid), headers={"X-Altcha": await solved(client, eid)})
    assert r.status_code == 200
    after = pow_joins((await client.get("/metrics")).text)
    assert {k: after[k] - before[k] for k in after} == {
        "spent": 1,
        "pow_required": 1,
        "pow_invalid": 1,
    }


def forge(payload: str, change: Any) -> str:
    doc = json.loads(base64.b64decode(payload))
    change(doc)
    return base64.b64encode(json.dumps(doc).encode()).decode()


async def test_forged_expired_foreign_and_too_easy_solutions_are_refused(
    client: Client, admin: dict[str, str], redis: Any, app_services: Services
) -> None:
    event, other = await taxed(client, admin), await taxed(client, admin)
    eid = event["id"]
    payload = await solved(client, eid)

    def more(doc: dict[str, Any]) -> None:
        doc["challenge"]["parameters"]["data"]["difficulty"] = 10**7

    def key(doc: dict[str, Any]) -> None:
        doc["solution"]["derivedKey"] = "00" * 32

    def unsigned(doc: dict[str, Any]) -> None:
        doc["challenge"]["signature"] = ""

    def later(doc: dict[str, Any]) -> None:
        doc["challenge"]["parameters"]["expiresAt"] += 3600

    for change in (more, key, unsigned, later):
        r = await client.post(queue(eid), headers={"X-Altcha": forge(payload, change)})
        assert (r.status_code, r.json()["code"]) == (403, "pow_invalid"), change.__name__
    # Another secret's challenge (another deployment, or a farm's own): not ours.
    settings = app_services.settings
    stranger = BotGate(redis, PowSettings(secret="not ours"), app_services.signing_key)
    r = await client.post(queue(eid), headers={"X-Altcha": solve(await stranger.challenge(eid))})
    assert (r.status_code, r.json()["code"]) == (403, "pow_invalid")
    # One made six minutes ago by this deployment: expired.
    past = BotGate(redis, settings.pow, app_services.signing_key, clock=lambda: time.time() - 360)
    r = await client.post(queue(eid), headers={"X-Altcha": solve(await past.challenge(eid))})
    assert (r.status_code, r.json()["code"]) == (403, "pow_invalid")
    assert "expired" in r.json()["detail"]
    # Another event's challenge.
    r = await client.post(queue(other["id"]), headers={"X-Altcha": payload})
    assert (r.status_code, r.json()["code"]) == (403, "pow_invalid")
    assert "another event" in r.json()["detail"]
    # Solved at 2000, then the organizer raises the event to 4000: solve a new one.
    r = await client.patch(
        f"/api/events/{eid}/onsale", json={"pow_difficulty": 4000}, headers=admin
    )
    assert r.status_code == 200
    await fresh(app_services, eid)
    r = await client.post(queue(eid), headers={"X-Altcha": payload})
    assert (r.status_code, r.json()["code"]) == (403, "pow_invalid")
    assert "easier" in r.json()["detail"]
    r = await client.post(queue(eid), headers={"X-Altcha": await solved(client, eid)})
    assert r.status_code == 200, r.text


async def test_the_difficulty_doubles_with_the_join_rate(
    client: Client, admin: dict[str, str], redis: Any, app_services: Services
) -> None:
    eid = (await taxed(client, admin, difficulty=1000))["id"]
    gate = app_services.botgate
    step = gate.rule.rate_step
    assert (await challenge(client, eid))["difficulty"] == 1000
    # Joins that spend a solution are counted, per second, for a few seconds.
    for _ in range(2):
        r = await client.post(queue(eid), headers={"X-Altcha": await solved(client, eid)})
        assert r.status_code == 200, r.text
    now = int(time.time())
    counted = [await redis.get(keys.pow_joins(eid, s)) for s in range(now - 2, now + 1)]
    assert sum(int(c or 0) for c in counted) == 2
    # As if 2.5 steps of joins per second had come in over the window: two doublings.
    per_second = step * 5 // 2
    for s in range(now - WINDOW_S + 1, now + 1):
        await redis.set(keys.pow_joins(eid, s), per_second, ex=WINDOW_S + 5)
    await fresh(app_services, eid)
    made = await challenge(client, eid)
    assert made["difficulty"] == 4000 and made["parameters"]["data"]["difficulty"] == 4000
    # A challenge made before the rise is still good (never below the event's own 1000).
    # Far past the cap: the cap.
    for s in range(now - WINDOW_S + 1, now + 3):
        await redis.set(keys.pow_joins(eid, s), step * 1000, ex=WINDOW_S + 5)
    await fresh(app_services, eid)
    assert (await challenge(client, eid))["difficulty"] == gate.rule.max_difficulty


async def test_no_challenge_for_an_event_not_on_sale(client: Client) -> None:
    for eid in ("9b1f3c57-56a4-4d3a-9e49-000000000000", "not-an-event"):
        r = await client.get(f"/api/events/{eid}/challenge")
        assert (r.status_code, r.json()["code"]) == (404, "event_not_found")


async def test_the_default_difficulty_comes_from_the_environment(
    client: Client, admin: dict[str, str], redis: Any, app_services: Services
) -> None:
    eid = (await open_event(client, admin, opens_at=iso(-1)))["id"]
    gate = BotGate(redis, PowSettings(difficulty=500), app_services.signing_key)
    state = await gate.state(eid)
    assert (state.base, state.difficulty) == (500, 500)
    made = await gate.challenge(eid)
    assert altcha.Challenge.from_dict(made).parameters.data == {"event": eid, "difficulty": 500}
    # The session's gateway has no default: the same event asks nothing of it.
    assert await challenge(client, eid) == {"required": False, "difficulty": 0}
    assert (await join(client, eid))["state"] in ("waiting", "admitted")


async def test_a_process_reads_an_event_s_difficulty_once_whatever_the_joins(
    client: Client, admin: dict[str, str], redis: Any, app_services: Services
) -> None:
    eid = (await taxed(client, admin))["id"]
    gate = BotGate(redis, PowSettings(), app_services.signing_key)
    calls = []
    real = gate.scripts.run

    async def counted(name: str, names: Any, args: Any) -> Any:
        calls.append(name)
        await asyncio.sleep(0.05)  # a slow Redis: everyone arrives while the read is out
        return await real(name, names, args)

    gate.scripts.run = counted  # type: ignore[method-assign]
    first = asyncio.ensure_future(gate.state(eid))
    await asyncio.sleep(0.01)
    first.cancel()  # the first asker goes away; the read goes on for the others
    states = await asyncio.gather(*(gate.state(eid) for _ in range(50)))
    assert calls == ["pow_state"]
    assert {(s.base, s.difficulty) for s in states} == {(2000, 2000)}
    assert (await gate.state(eid)) is states[0] and calls == ["pow_state"]
