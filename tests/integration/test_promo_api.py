"""Promo codes over HTTP: made and listed by the event's owner, every refusal with its code,
and a code's use through a hold, a release, a free or a paid checkout, and the committer."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.config import Settings
from onsale.gateway.app import create_app
from onsale.gateway.routes.holds import PROMO_MISSES_PER_MINUTE
from onsale.inventory import Inventory, ReleaseOutcome
from tests.integration.accounts_support import signed_in
from tests.integration.api_support import Client, admitted, bearer, checkout, fresh_window, iso
from tests.integration.commit_support import drained, running
from tests.integration.promo_support import (
    GA_PRICE,
    VIP_PRICE,
    held,
    hold,
    make_code,
    promo_event,
    tier,
    uses,
)
from tests.integration.stripe_support import intent_of, pay, signed


async def test_owner_makes_and_lists_codes_case_insensitive(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    owner = await signed_in(client, pool, "organizer")
    r = await client.post("/api/events", json=_event_body(), headers=owner)
    assert r.status_code == 201, r.text
    event = r.json()
    vip = tier(event, "VIP")
    made = await make_code(
        client, owner, event["id"], code="early-Bird", percent_off=15, max_uses=100,
        tier_ids=[vip], starts_at=iso(-60), ends_at=iso(3600),
    )  # fmt: skip
    assert made["code"] == "EARLY-BIRD" and made["percent_off"] == 15
    assert made["amount_off"] is None and made["max_uses"] == 100
    assert made["tier_ids"] == [vip] and made["uses"] == 0
    await make_code(client, owner, event["id"], code="FLAT10", amount_off=1000)
    listed = (await client.get(f"/api/events/{event['id']}/promo-codes", headers=owner)).json()
    assert [c["code"] for c in listed] == ["EARLY-BIRD", "FLAT10"]
    assert listed[1]["max_uses"] is None and listed[1]["tier_ids"] is None

    # The same code in another case is the same code.
    r = await client.post(
        f"/api/events/{event['id']}/promo-codes", json={"code": "EARLY-bird", "percent_off": 5},
        headers=owner,
    )  # fmt: skip
    assert r.status_code == 409 and r.json()["code"] == "promo_code_taken", r.text
    # Nobody else's: anonymous 401, another organizer 404 (the event is not theirs), staff 403.
    path = f"/api/events/{event['id']}/promo-codes"
    assert (await client.get(path)).status_code == 401
    other = await signed_in(client, pool, "organizer")
    r = await client.post(path, json={"code": "MINE", "percent_off": 5}, headers=other)
    assert r.status_code == 404 and r.json()["code"] == "event_not_found"
    assert (await client.get(path, headers=other)).status_code == 404
    # ...and the admin may.
    assert (await client.get(path, headers=admin)).status_code == 200


def _event_body() -> dict[str, Any]:
    from tests.integration.api_support import event as event_body

    return event_body(
        tiers=[
            {"name": "GA", "price": GA_PRICE, "capacity": 50},
            {"name": "VIP", "price": VIP_PRICE, "capacity": 10},
        ]
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"code": "BOTH", "percent_off": 10, "amount_off": 100}, "exactly one"),
        ({"code": "NEITHER"}, "exactly one"),
        ({"code": "PCT0", "percent_off": 0}, "percent_off"),
        ({"code": "PCT101", "percent_off": 101}, "percent_off"),
        ({"code": "NEG", "amount_off": -5}, "amount_off"),
        ({"code": "a b c", "percent_off": 10}, "code"),
        ({"code": "ab", "percent_off": 10}, "code"),
        ({"code": "X" * 41, "percent_off": 10}, "code"),
        ({"code": "NEWLINE\n", "percent_off": 10}, "code"),
        ({"code": "ZERO", "percent_off": 10, "max_uses": 0}, "max_uses"),
        ({"code": "TIER", "percent_off": 10, "tier_ids": [str(uuid.uuid4())]}, "not tiers"),
        ({"code": "TIERS", "percent_off": 10, "tier_ids": []}, "tier_ids"),
        ({"code": "WINDOW", "percent_off": 10, "starts_at": iso(60), "ends_at": iso(0)}, "ends_at"),
        ({"code": "NAIVE", "percent_off": 10, "starts_at": "2030-01-01T00:00:00"}, "starts_at"),
        ({"code": "EXTRA", "percent_off": 10, "free": True}, "free"),
        # Before 1970 the Redis mirror's milliseconds would be negative (hold.lua's pattern
        # reads none: every hold with the code a 500), year 1 did not even make one.
        ({"code": "OLD", "percent_off": 10, "starts_at": "1969-12-31T23:59:59Z"}, "starts_at"),
        ({"code": "YEAR1", "percent_off": 10, "starts_at": "0001-01-01T00:00:00Z"}, "starts_at"),
        ({"code": "Y9999", "percent_off": 10, "ends_at": "9999-12-31T23:59:59Z"}, "ends_at"),
        ({"code": 12345, "percent_off": 10}, "code"),
    ],
)
async def test_invalid_codes_are_refused_and_nothing_is_written(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, body: dict[str, Any], words: str
) -> None:
    event = await promo_event(client, admin)
    r = await client.post(f"/api/events/{event['id']}/promo-codes", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_request" and words in r.json()["detail"], r.text
    assert await pool.fetchval(
        "SELECT count(*) FROM promo_codes WHERE event_id = $1", uuid.UUID(event["id"])
    ) == 0  # fmt: skip


async def test_bodies_that_are_not_json_and_unknown_events(
    client: Client, admin: dict[str, str]
) -> None:
    event = await promo_event(client, admin)
    r = await client.post(
        f"/api/events/{event['id']}/promo-codes", content=b"{not json", headers=admin
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    for bad in (str(uuid.uuid4()), "not-a-uuid"):
        r = await client.post(
            f"/api/events/{bad}/promo-codes", json={"code": "ABC", "percent_off": 5}, headers=admin
        )
        assert r.status_code == 404 and r.json()["code"] == "event_not_found", r.text


async def test_a_hold_takes_a_use_and_a_release_gives_it_back(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event = await promo_event(client, admin)
    ga, vip = tier(event, "GA"), tier(event, "VIP")
    await make_code(client, admin, event["id"], code="TENOFF", percent_off=10, max_uses=5)
    r = await hold(client, event["id"], {ga: 2, vip: 1}, code=" tenOff ")
    assert r.status_code == 201, r.text
    body = r.json()
    subtotal = 2 * GA_PRICE + VIP_PRICE
    assert body["discount"] == subtotal // 10 and body["amount"] == subtotal - subtotal // 10
    assert body["promo_code"] == "TENOFF"
    assert await uses(client, admin, event["id"]) == {"TENOFF": 1}
    assert await redis.hget(keys.holds_promo(event["id"]), body["hold_id"]) == (
        f"TENOFF|{subtotal // 10}"
    )
    # A hold without a code has no discount.
    plain = (await hold(client, event["id"], {ga: 1})).json()
    assert plain["discount"] == 0 and plain["amount"] == GA_PRICE and plain["promo_code"] is None

    assert await Inventory(redis).release(event["id"], body["hold_id"]) is ReleaseOutcome.RELEASED
    assert await uses(client, admin, event["id"]) == {"TENOFF": 0}
    assert await redis.hexists(keys.holds_promo(event["id"]), body["hold_id"]) == 0


async def test_tier_limited_and_amount_off_codes(client: Client, admin: dict[str, str]) -> None:
    event = await promo_event(client, admin)
    ga, vip = tier(event, "GA"), tier(event, "VIP")
    await make_code(client, admin, event["id"], code="VIPHALF", percent_off=50, tier_ids=[vip])
    await make_code(client, admin, event["id"], code="FIVER", amount_off=500)
    # Only the VIP part is discounted.
    r = await hold(client, event["id"], {ga: 1, vip: 2}, code="viphalf")
    assert r.status_code == 201, r.text
    assert r.json()["discount"] == VIP_PRICE and r.json()["amount"] == GA_PRICE + VIP_PRICE
    r = await hold(client, event["id"], {ga: 3}, code="FIVER")
    assert r.json()["discount"] == 500 and r.json()["amount"] == 3 * GA_PRICE - 500


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("NOPE", "unknown"),
        ("!!", "unknown"),
        ("LATER", "not_started"),
        ("GONE", "ended"),
        ("VIPONLY", "not_applicable"),
        ("ONCE", "used_up"),
    ],
)
async def test_an_invalid_code_is_promo_invalid_and_takes_nothing(
    client: Client, admin: dict[str, str], redis: Any, code: str, reason: str
) -> None:
    event = await promo_event(client, admin)
    ga, vip = tier(event, "GA"), tier(event, "VIP")
    eid = event["id"]
    await make_code(client, admin, eid, code="LATER", percent_off=10, starts_at=iso(3600))
    await make_code(
        client, admin, eid, code="GONE", percent_off=10, starts_at=iso(-7200), ends_at=iso(-3600)
    )
    await make_code(client, admin, eid, code="VIPONLY", percent_off=10, tier_ids=[vip])
    await make_code(client, admin, eid, code="ONCE", percent_off=10, max_uses=1)
    first = await hold(client, eid, {ga: 1}, code="ONCE")
    assert first.status_code == 201, first.text
    before_uses, before_held = await uses(client, admin, eid), await held(redis, eid)

    r = await hold(client, eid, {ga: 2}, code=code)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "promo_invalid" and r.json()["reason"] == reason, r.text
    assert r.json()["detail"]
    assert await uses(client, admin, eid) == before_uses
    assert await held(redis, eid) == before_held


async def test_a_sold_out_hold_takes_no_use(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    event = await promo_event(client, admin)
    vip = tier(event, "VIP")
    await make_code(client, admin, event["id"], code="VIPTIME", percent_off=20, max_uses=3)
    await redis.hset(keys.inventory(event["id"]), f"{vip}:sold", 10)  # all sold
    r = await hold(client, event["id"], {vip: 1}, code="VIPTIME")
    assert r.status_code == 409 and r.json()["code"] == "sold_out", r.text
    assert await uses(client, admin, event["id"]) == {"VIPTIME": 0}


async def test_a_free_order_after_discount_is_confirmed_and_committed(
    client: Client, admin: dict[str, str], redis: Any, pool: asyncpg.Pool, database_url: str
) -> None:
    event = await promo_event(client, admin)
    ga = tier(event, "GA")
    await make_code(client, admin, event["id"], code="COMP", amount_off=100_000, max_uses=2)
    h = (await hold(client, event["id"], {ga: 2}, code="comp")).json()
    assert h["amount"] == 0 and h["discount"] == 2 * GA_PRICE
    r = await checkout(client, h["hold_id"], "promo-free")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "confirmed" and order["amount"] == 0 and order["payment"] is None
    await _committed(redis, database_url, event["id"])
    row = await pool.fetchrow(
        "SELECT o.amount, o.discount, p.code, p.used_count FROM orders o"
        " JOIN promo_codes p ON p.id = o.promo_code_id WHERE o.id = $1",
        uuid.UUID(order["order_id"]),
    )
    assert row is not None and tuple(row) == (0, 2 * GA_PRICE, "COMP", 1)
    assert await uses(client, admin, event["id"]) == {"COMP": 1}  # kept by the order


async def test_checkout_charges_the_discounted_amount(
    client: Client,
    admin: dict[str, str],
    redis: Any,
    pool: asyncpg.Pool,
    database_url: str,
    stripe_url: str,
) -> None:
    event = await promo_event(client, admin)
    ga = tier(event, "GA")
    await make_code(client, admin, event["id"], code="QUARTER", percent_off=25, max_uses=10)
    h = (await hold(client, event["id"], {ga: 2}, code="quarter")).json()
    r = await checkout(client, h["hold_id"], "promo-paid")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["amount"] == 2 * GA_PRICE * 3 // 4 == h["amount"]
    pi = order["payment"]["payment_intent_id"]
    assert await pay(stripe_url, pi) == "succeeded"
    body, headers = signed("payment_intent.succeeded", intent_of(event["id"], order))
    assert (await client.post("/api/webhooks/stripe", content=body, headers=headers)).is_success
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["status"] == "confirmed" and seen["amount"] == order["amount"]
    assert seen["discount"] == 2 * GA_PRICE // 4 and seen["promo_code"] == "QUARTER"
    await _committed(redis, database_url, event["id"])
    row = await pool.fetchrow(
        "SELECT o.amount, o.discount, p.code, p.used_count FROM orders o"
        " JOIN promo_codes p ON p.id = o.promo_code_id WHERE o.id = $1",
        uuid.UUID(order["order_id"]),
    )
    assert row is not None and tuple(row) == (order["amount"], 2 * GA_PRICE // 4, "QUARTER", 1)
    # Once in Postgres, the order reads the same from there.
    await redis.hdel(keys.orders(event["id"]), order["order_id"])
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    assert r.json()["discount"] == 2 * GA_PRICE // 4 and r.json()["promo_code"] == "QUARTER"


async def test_a_lost_redis_rearms_codes_with_their_confirmed_uses(
    client: Client, admin: dict[str, str], redis: Any, pool: asyncpg.Pool
) -> None:
    from onsale.promo import codes

    event = await promo_event(client, admin)
    await make_code(client, admin, event["id"], code="BACKUP", percent_off=5, max_uses=7)
    await pool.execute(
        "UPDATE promo_codes SET used_count = 3 WHERE event_id = $1", uuid.UUID(event["id"])
    )
    await redis.delete(keys.promo(event["id"]))
    assert await uses(client, admin, event["id"]) == {"BACKUP": 3}  # Postgres's, meanwhile
    assert await codes.arm(pool, redis, event["id"]) == 1
    assert await redis.hget(keys.promo(event["id"]), "BACKUP:used") == "3"
    assert (await redis.hget(keys.promo(event["id"]), "BACKUP")).startswith("p|5|7|")
    # Arming again never resets a live count.
    await redis.hset(keys.promo(event["id"]), "BACKUP:used", 5)
    await codes.arm(pool, redis, event["id"])
    assert await redis.hget(keys.promo(event["id"]), "BACKUP:used") == "5"


async def _committed(redis: Any, database_url: str, event_id: str) -> None:
    async with running(Committer(redis, database_url, CommitterOptions(events=(event_id,)))):
        await drained(redis, event_id)


async def _paid_late(
    client: Client, admin: dict[str, str], stripe_url: str, *, taken_meanwhile: bool
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A buyer holds with the code's one use and checks out; the hold is released before the
    payment arrives; with ``taken_meanwhile`` another buyer takes the use first. Returns
    (event, the late order as GET shows it, the GA tier id)."""
    event = await promo_event(client, admin)
    ga = tier(event, "GA")
    await make_code(client, admin, event["id"], code="LAST", percent_off=10, max_uses=1)
    token = (await admitted(client, event["id"]))["admission_token"]
    body = {"items": [{"tier_id": ga, "quantity": 1}], "promo_code": "last"}
    r = await client.post(f"/api/events/{event['id']}/holds", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    h = r.json()
    order = (await checkout(client, h["hold_id"], f"late-{taken_meanwhile}")).json()
    assert order["amount"] == GA_PRICE - GA_PRICE // 10
    r = await client.delete(f"/api/holds/{h['hold_id']}", headers=bearer(token))
    assert r.status_code == 204, r.text
    assert await uses(client, admin, event["id"]) == {"LAST": 0}
    if taken_meanwhile:
        assert (await hold(client, event["id"], {ga: 1}, code="LAST")).status_code == 201
    assert await pay(stripe_url, order["payment"]["payment_intent_id"]) == "succeeded"
    payload, headers = signed("payment_intent.succeeded", intent_of(event["id"], order))
    assert (await client.post("/api/webhooks/stripe", content=payload, headers=headers)).is_success
    r = await client.get(f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"]))
    return event, r.json(), ga


async def test_a_late_payment_takes_the_use_again(
    client: Client, admin: dict[str, str], redis: Any, stripe_url: str
) -> None:
    event, order, ga = await _paid_late(client, admin, stripe_url, taken_meanwhile=False)
    assert order["status"] == "confirmed" and order["promo_code"] == "LAST"
    assert await uses(client, admin, event["id"]) == {"LAST": 1}
    assert int(await redis.hget(keys.inventory(event["id"]), f"{ga}:sold")) == 1


async def test_a_late_payment_without_a_use_left_is_refunded(
    client: Client, admin: dict[str, str], redis: Any, stripe_url: str
) -> None:
    event, order, ga = await _paid_late(client, admin, stripe_url, taken_meanwhile=True)
    assert order["status"] == "refunded"
    # The other buyer's hold keeps the one use; nothing was sold to the late payer.
    assert await uses(client, admin, event["id"]) == {"LAST": 1}
    assert int(await redis.hget(keys.inventory(event["id"]), f"{ga}:sold")) == 0


async def test_the_fast_path_and_the_litestar_route_answer_promo_holds_alike(
    client: Client, admin: dict[str, str], settings: Settings
) -> None:
    event = await promo_event(client, admin)
    ga = tier(event, "GA")
    await make_code(client, admin, event["id"], code="SAME", amount_off=700, max_uses=2)
    answers = []
    async with AsyncTestClient(app=create_app(settings, hot_paths=False)) as litestar:
        for c in (client, litestar):
            token = (await admitted(client, event["id"]))["admission_token"]
            path = f"/api/events/{event['id']}/holds"
            seen = []
            for code in ("same", "nope", "x", 5):
                body = {"items": [{"tier_id": ga, "quantity": 2}], "promo_code": code}
                r = await c.post(path, json=body, headers=bearer(token))
                out = r.json()
                for fresh in ("hold_id", "expires_at"):
                    out.pop(fresh, None)
                seen.append((r.status_code, out))
            answers.append(seen)
    assert answers[0] == answers[1]
    assert answers[0][0] == (201, {
        "items": [{"tier_id": ga, "quantity": 2}], "amount": 2 * GA_PRICE - 700,
        "currency": "USD", "discount": 700, "promo_code": "SAME",
    })  # fmt: skip
    assert [a[0] for a in answers[0][1:]] == [422, 422, 422]
    assert [a[1]["code"] for a in answers[0][1:]] == [
        "promo_invalid", "promo_invalid", "invalid_request",
    ]  # fmt: skip
    assert await uses(client, admin, event["id"]) == {"SAME": 2}


async def test_guessing_codes_is_limited_per_admission(
    client: Client, admin: dict[str, str], redis: Any
) -> None:
    """An admitted visitor may have a few codes refused a minute, not walk a dictionary of
    them: past ``PROMO_MISSES_PER_MINUTE`` refusals, 429 ``rate_limited``, even for a real
    code. A hold without a code, another visitor, and holds with a code that works (a load
    test's, again and again) are not held back."""
    event = await promo_event(client, admin)
    eid, ga = event["id"], tier(event, "GA")
    await make_code(client, admin, eid, code="REAL10", percent_off=10)
    guesser = (await admitted(client, eid))["admission_token"]
    buyer = (await admitted(client, eid))["admission_token"]

    async def attempt(token: str, code: str | None) -> Any:
        body: dict[str, Any] = {"items": [{"tier_id": ga, "quantity": 1}]}
        if code is not None:
            body["promo_code"] = code
        return await client.post(f"/api/events/{eid}/holds", json=body, headers=bearer(token))

    fresh_window()  # the tries below fall in one minute
    for n in range(PROMO_MISSES_PER_MINUTE):
        r = await attempt(guesser, f"GUESS{n:03d}" if n % 2 else "!?")
        assert (r.status_code, r.json()["code"]) == (422, "promo_invalid"), r.text
    r = await attempt(guesser, "REAL10")
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited"), r.text
    assert int(r.headers["retry-after"]) >= 1
    assert (await attempt(guesser, None)).status_code == 201
    for _ in range(PROMO_MISSES_PER_MINUTE + 2):
        r = await attempt(buyer, "real10")
        assert r.status_code == 201 and r.json()["discount"] == GA_PRICE // 10, r.text
        assert await Inventory(redis).release(eid, r.json()["hold_id"]) is ReleaseOutcome.RELEASED
