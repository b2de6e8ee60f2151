"""The waiting room and holds over HTTP: tokens, states, limits, admissions."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys, signing
from onsale.config import Settings
from onsale.queue.tokens import AdmissionTokens
from tests.integration.api_support import (
    admitted,
    bearer,
    create,
    fresh_window,
    iso,
    join,
    open_event,
)
from tests.integration.room_support import make_poll_due

Client = AsyncTestClient[Litestar]


async def poll_due(redis: Any, event_id: str, token: str, client: Client | None = None) -> None:
    """As if poll_after_seconds had passed since the visitor's last poll: in Redis (a join,
    or a poll Redis answered) and in the gateway's memory (a poll it answered itself)."""
    visitor = token.split(".")[1]
    await make_poll_due(redis, event_id, visitor)
    if client is not None:
        client.app.state.services.room.lobby.forget_poll(event_id, visitor)


async def test_join_gives_a_signed_token_and_one_place(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event = await create(client, admin, onsale={"opens_at": iso(3600), "admit_per_minute": 60})
    first = await join(client, event["id"])
    assert first["state"] == "prequeue" and first["position"] is None
    assert 3590 <= first["eta_seconds"] <= 3600
    assert first["admission_token"] is None
    await poll_due(redis, event["id"], first["visitor_token"])
    again = await join(client, event["id"], first["visitor_token"])
    assert again["visitor_token"] == first["visitor_token"]
    assert await redis.zcard(keys.queue_keys(event["id"])[3]) == 1  # one place in the pre-queue
    r = await client.get(f"/api/events/{event['id']}")
    assert len(r.json()["onsale"]["shuffle_commitment"]) == 64
    assert r.json()["onsale"]["shuffle_seed"] is None  # revealed only at opening


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # altered MAC
        lambda t: t.replace("v2.", "v2.x", 1),  # altered visitor id
        lambda t: ".".join([*t.split(".")[:2], "99999", *t.split(".")[3:]]),  # not its place
        lambda t: "v1." + t.split(".")[1] + "." + t.split(".")[-1],  # an old token's shape
        lambda t: "v9" + t[2:],
        lambda t: "garbage",
        lambda t: "v1..",
        lambda t: "v2....",
    ],
)
async def test_forged_visitor_tokens_are_rejected(
    client: Client, admin: dict[str, str], forge: Any
) -> None:
    event = await open_event(client, admin, admit_per_minute=1)
    token = (await join(client, event["id"]))["visitor_token"]
    for method in ("post", "get"):
        r = await getattr(client, method)(
            f"/api/events/{event['id']}/queue", headers={"X-Visitor-Token": forge(token)}
        )
        assert (r.status_code, r.json()["code"]) == (401, "visitor_token_invalid")
    # A token of one event is not valid for another.
    other = await open_event(client, admin, admit_per_minute=1)
    r = await client.get(f"/api/events/{other['id']}/queue", headers={"X-Visitor-Token": token})
    assert r.status_code == 401


async def test_status_needs_a_token_and_respects_poll_after(
    client: Client, admin: dict[str, str]
) -> None:
    event = await open_event(client, admin, admit_per_minute=1)
    for _ in range(3):
        await join(client, event["id"])
    mine = await join(client, event["id"])
    assert mine["state"] == "waiting" and mine["position"] >= 2
    r = await client.get(f"/api/events/{event['id']}/queue")
    assert (r.status_code, r.json()["code"]) == (401, "visitor_token_invalid")
    # Polling right after the join, before poll_after_seconds: 429 with Retry-After.
    r = await client.get(
        f"/api/events/{event['id']}/queue", headers={"X-Visitor-Token": mine["visitor_token"]}
    )
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= mine["poll_after_seconds"]


async def test_joins_are_rate_limited_per_client(settings: Settings, redis: Any) -> None:
    import msgspec

    from onsale.gateway.app import create_app

    strict = msgspec.structs.replace(
        settings, security=msgspec.structs.replace(settings.security, joins_per_minute=5)
    )
    async with AsyncTestClient(app=create_app(strict)) as c:
        admin = {"Authorization": f"Bearer {settings.security.admin_token}"}
        event = await open_event(c, admin, admit_per_minute=1)
        fresh_window()
        first = await join(c, event["id"])
        codes = [(await c.post(f"/api/events/{event['id']}/queue")).status_code for _ in range(6)]
        assert codes[:4] == [200] * 4 and codes[4:] == [429, 429]
        r = await c.post(f"/api/events/{event['id']}/queue")
        assert r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
        # A visitor who already has a token is not a new join: they keep their place.
        await poll_due(redis, event["id"], first["visitor_token"])
        again = await join(c, event["id"], first["visitor_token"])
        assert again["position"] == first["position"]


async def test_unknown_event_queue(client: Client) -> None:
    r = await client.post(f"/api/events/{uuid.uuid4()}/queue")
    assert (r.status_code, r.json()["code"]) == (404, "event_not_found")


async def test_admitted_buyer_holds_with_a_verifiable_token(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event = await open_event(client, admin)
    ga, vip = (t["id"] for t in event["tiers"])
    place = await admitted(client, event["id"])
    token = place["admission_token"]
    header = jwt.get_unverified_header(token)
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    (jwk,) = [k for k in keys if k["kid"] == header["kid"]]
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=["EdDSA"], audience=event["id"])
    assert claims["exp"] > time.time()

    body = {"items": [{"tier_id": ga, "quantity": 2}, {"tier_id": vip, "quantity": 1}]}
    r = await client.post(f"/api/events/{event['id']}/holds", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["amount"] == 2 * 4500 + 15000 and hold["currency"] == "USD"
    assert {(i["tier_id"], i["quantity"]) for i in hold["items"]} == {(ga, 2), (vip, 1)}

    stats = (await client.get(f"/api/events/{event['id']}/stats", headers=admin)).json()
    assert stats["tiers"][0]["held"] == 2 and stats["queue"]["active"] == 1

    r = await client.delete(f"/api/holds/{hold['hold_id']}", headers=bearer(token))
    assert r.status_code == 204
    r = await client.delete(f"/api/holds/{hold['hold_id']}", headers=bearer(token))
    assert (r.status_code, r.json()["code"]) == (404, "hold_not_found")
    stats = (await client.get(f"/api/events/{event['id']}/stats", headers=admin)).json()
    assert stats["tiers"][0]["held"] == 0


async def test_hold_errors(client: Client, admin: dict[str, str], settings: Settings) -> None:
    event = await open_event(client, admin)
    ga = event["tiers"][0]["id"]
    path = f"/api/events/{event['id']}/holds"
    body = {"items": [{"tier_id": ga, "quantity": 1}]}

    r = await client.post(path, json=body)
    assert (r.status_code, r.json()["code"]) == (401, "admission_required")
    r = await client.post(path, json=body, headers=bearer("not.a.jwt"))
    assert (r.status_code, r.json()["code"]) == (403, "admission_invalid")

    place = await admitted(client, event["id"])
    token = place["admission_token"]
    # Another event's admission, an expired one, one signed by a stranger's key.
    other = await open_event(client, admin)
    r = await client.post(f"/api/events/{other['id']}/holds", json=body, headers=bearer(token))
    assert (r.status_code, r.json()["code"]) == (403, "admission_invalid")
    key = signing.load(settings.security.signing_key)
    expired = AdmissionTokens(key).issue(event["id"], "someone", 1000, 0)
    r = await client.post(path, json=body, headers=bearer(expired))
    assert (r.status_code, r.json()["code"]) == (403, "admission_invalid")
    stranger = AdmissionTokens(signing.load(signing.generate_pem()))
    forged = stranger.issue(event["id"], "someone", int(time.time() * 1000) + 60_000, 0)
    r = await client.post(path, json=body, headers=bearer(forged))
    assert (r.status_code, r.json()["code"]) == (403, "admission_invalid")
    # A validly signed admission the waiting room never granted is not a live admission.
    mine = AdmissionTokens(key).issue(event["id"], "nobody", int(time.time() * 1000) + 60_000, 0)
    r = await client.post(path, json=body, headers=bearer(mine))
    assert (r.status_code, r.json()["code"]) == (403, "admission_ended")

    for bad, code in [
        ({"items": []}, "invalid_request"),
        ({"items": [{"tier_id": ga, "quantity": 0}]}, "invalid_request"),
        ({"items": [{"tier_id": "nope", "quantity": 1}]}, "invalid_request"),
        ({"items": [{"tier_id": ga, "quantity": 7}]}, "limit_exceeded"),
    ]:
        r = await client.post(path, json=bad, headers=bearer(token))
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["code"] == code


async def test_one_admission_cannot_buy_the_house(client: Client, admin: dict[str, str]) -> None:
    event = await open_event(client, admin)
    ga, vip = (t["id"] for t in event["tiers"])
    token = (await admitted(client, event["id"]))["admission_token"]
    path = f"/api/events/{event['id']}/holds"
    # Per-order limits are 6 and 2: the admission may take that many of each tier (8 in
    # all), over any number of holds.
    for tier, quantity, limit in ((ga, 2, 6), (vip, 1, 2)):
        body = {"items": [{"tier_id": tier, "quantity": quantity}]}
        for _ in range(limit // quantity):
            assert (await client.post(path, json=body, headers=bearer(token))).status_code == 201
        r = await client.post(path, json=body, headers=bearer(token))
        assert (r.status_code, r.json()["code"]) == (422, "limit_exceeded")


async def test_sold_out_over_http(client: Client, admin: dict[str, str], redis: Any) -> None:
    event = await create(
        client,
        admin,
        tiers=[{"name": "GA", "price": 100, "capacity": 2}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000},
    )
    ga = event["tiers"][0]["id"]
    path = f"/api/events/{event['id']}/holds"
    first = (await admitted(client, event["id"]))["admission_token"]
    second = (await admitted(client, event["id"]))["admission_token"]
    body = {"items": [{"tier_id": ga, "quantity": 2}]}
    r = await client.post(path, json=body, headers=bearer(first))
    assert r.status_code == 201
    hold_id = r.json()["hold_id"]
    r = await client.post(path, json=body, headers=bearer(second))
    assert (r.status_code, r.json()["code"]) == (409, "sold_out")

    # A third buyer waits honestly while the tickets sit in a cart ...
    third = await join(client, event["id"])
    assert third["state"] == "waiting" and third["note"] == "held_only"
    # ... and learns at the next poll that the show sold out once they are paid for.
    from onsale.inventory import Inventory

    await Inventory(redis).confirm(event["id"], hold_id, str(uuid.uuid4()), "{}")
    await poll_due(redis, event["id"], third["visitor_token"])
    again = await join(client, event["id"], third["visitor_token"])
    assert again["state"] == "sold_out" and again["position"] is None
