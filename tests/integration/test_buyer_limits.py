"""An admission's limits hold against a determined buyer (issue 8, defects 1 and 2).

Everything goes through the public API: holds, releases, checkouts and Stripe's signed
webhooks for payments made on the emulator.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from tests.integration.api_support import admitted, bearer, create, iso
from tests.integration.stripe_support import intent_of, pay, signed

Client = AsyncTestClient[Litestar]
BUYER = {"email": "max@example.com", "name": "Max Buyer"}


async def sale(client: Client, admin: dict[str, str], *tiers: dict[str, Any]) -> dict[str, Any]:
    return await create(
        client,
        admin,
        tiers=list(tiers),
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60},
    )


async def hold(client: Client, event: dict[str, Any], token: str, *qty: int) -> Any:
    pairs = zip(event["tiers"], qty, strict=True)
    items = [{"tier_id": t["id"], "quantity": q} for t, q in pairs if q]
    return await client.post(
        f"/api/events/{event['id']}/holds", json={"items": items}, headers=bearer(token)
    )


async def check_out(client: Client, hold_id: str) -> dict[str, Any]:
    r = await client.post(
        f"/api/holds/{hold_id}/checkout", json=BUYER, headers={"Idempotency-Key": hold_id}
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


async def paid(client: Client, stripe_url: str, event_id: str, order: dict[str, Any]) -> None:
    """The buyer pays and Stripe tells the gateway so."""
    assert await pay(stripe_url, order["payment"]["payment_intent_id"]) == "succeeded"
    body, headers = signed("payment_intent.succeeded", intent_of(event_id, order))
    r = await client.post("/api/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 200, r.text


async def confirmed_tickets(client: Client, orders: list[dict[str, Any]]) -> list[str]:
    """The tier of every ticket the buyer ended up with."""
    tiers = []
    for order in orders:
        r = await client.get(
            f"/api/orders/{order['order_id']}", headers=bearer(order["order_token"])
        )
        if r.json()["status"] == "confirmed":
            tiers += [t["tier_id"] for t in r.json()["tickets"]]
    return tiers


async def test_release_and_late_payments_never_pass_the_limit(
    client: Client, admin: dict[str, str], stripe_url: str
) -> None:
    """Hold the limit, check out, release, again and again, then pay every order."""
    event = await sale(client, admin, {"name": "GA", "price": 1000, "capacity": 100,
                                       "per_order_limit": 4})  # fmt: skip
    token = (await admitted(client, event["id"]))["admission_token"]
    orders = []
    for round_ in range(3):
        r = await hold(client, event, token, 4)
        assert r.status_code == 201, r.text
        orders.append(await check_out(client, r.json()["hold_id"]))
        if round_ < 2:
            r = await client.delete(f"/api/holds/{r.json()['hold_id']}", headers=bearer(token))
            assert r.status_code == 204
    for order in orders:
        await paid(client, stripe_url, event["id"], order)
    assert len(await confirmed_tickets(client, orders)) == 4
    r = await client.get(f"/api/events/{event['id']}/stats", headers=admin)
    assert r.json()["tiers"][0]["sold"] == 4


async def test_a_tiers_limit_binds_every_hold_of_an_admission(
    client: Client, admin: dict[str, str]
) -> None:
    event = await sale(
        client,
        admin,
        {"name": "GA", "price": 1000, "capacity": 100, "per_order_limit": 6},
        {"name": "VIP", "price": 5000, "capacity": 100, "per_order_limit": 2},
    )
    token = (await admitted(client, event["id"]))["admission_token"]
    assert (await hold(client, event, token, 0, 2)).status_code == 201
    for _ in range(3):
        r = await hold(client, event, token, 0, 2)
        assert (r.status_code, r.json()["code"]) == (422, "limit_exceeded")
        assert r.json()["tier_id"] == event["tiers"][1]["id"]
    # The other tier is still open to the same admission.
    assert (await hold(client, event, token, 1, 0)).status_code == 201


async def expire_all(redis: Any, event_id: str) -> None:
    """Every live hold falls due now, as if its time had run out."""
    expiry, data = keys.holds_expiry(event_id), keys.holds_data(event_id)
    for hold_id in await redis.zrange(expiry, 0, -1):
        record = await redis.hget(data, hold_id)
        await redis.hset(data, hold_id, "1|" + record.split("|", 1)[1])
        await redis.zadd(expiry, {hold_id: 1})


# One step of a determined buyer: hold n of a tier, release the newest hold, check out the
# newest hold, pay the oldest unpaid order, or let every hold run out.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), st.integers(0, 1), st.integers(1, 3)),
        st.tuples(
            st.sampled_from(("release", "checkout", "pay", "expire")), st.just(0), st.just(0)
        ),
    ),
    min_size=3,
    max_size=10,
)


class Determined:
    """One admission trying every order of hold, release, checkout, payment and expiry."""

    def __init__(self, client: Client, stripe_url: str, redis: Any, event: dict[str, Any],
                 token: str) -> None:  # fmt: skip
        self.client, self.stripe_url, self.redis = client, stripe_url, redis
        self.event, self.token = event, token
        self.holds: list[str] = []
        self.unpaid: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}

    async def hold(self, tier: int, qty: int) -> None:
        r = await hold(self.client, self.event, self.token, *((qty, 0) if tier == 0 else (0, qty)))
        # 403 admission_ended: a buyer who has paid is done (their slot went on).
        assert r.status_code in (201, 403, 422), r.text
        if r.status_code == 201:
            self.holds.append(r.json()["hold_id"])

    async def release(self, *_: int) -> None:
        if self.holds:
            await self.client.delete(f"/api/holds/{self.holds.pop()}", headers=bearer(self.token))

    async def checkout(self, *_: int) -> None:
        if not self.holds:
            return
        r = await self.client.post(
            f"/api/holds/{self.holds[-1]}/checkout",
            json=BUYER,
            headers={"Idempotency-Key": self.holds[-1]},
        )
        if r.status_code == 201 and r.json()["order_id"] not in self.orders:
            self.orders[r.json()["order_id"]] = r.json()
            self.unpaid.append(r.json())

    async def pay(self, *_: int) -> None:
        if self.unpaid:
            await paid(self.client, self.stripe_url, self.event["id"], self.unpaid.pop(0))

    async def expire(self, *_: int) -> None:
        await expire_all(self.redis, self.event["id"])

    async def held(self) -> dict[str, int]:
        """Tickets per tier in this event's live holds."""
        held = {t["id"]: 0 for t in self.event["tiers"]}
        for record in (await self.redis.hgetall(keys.holds_data(self.event["id"]))).values():
            words = record.split("|", 2)[2].split()
            for i in range(0, len(words), 2):
                held[words[i]] += int(words[i + 1])
        return held


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(script=steps)
async def test_any_order_of_release_checkout_expiry_and_payment(
    client: Client, admin: dict[str, str], stripe_url: str, redis: Any, script: list[Any]
) -> None:
    limits = (3, 2)
    event = await sale(
        client,
        admin,
        {"name": "GA", "price": 1000, "capacity": 50, "per_order_limit": limits[0]},
        {"name": "VIP", "price": 3000, "capacity": 50, "per_order_limit": limits[1]},
    )
    token = (await admitted(client, event["id"]))["admission_token"]
    buyer = Determined(client, stripe_url, redis, event, token)
    for action, tier, qty in script:
        await getattr(buyer, action)(tier, qty)
    while buyer.unpaid:
        await buyer.pay()
    bought = await confirmed_tickets(client, list(buyer.orders.values()))
    held = await buyer.held()
    for limit, tier in zip(limits, event["tiers"], strict=True):
        assert bought.count(tier["id"]) + held[tier["id"]] <= limit, (bought, held)
