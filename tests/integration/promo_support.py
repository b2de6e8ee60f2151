"""What the promo code tests share: an event on sale with two tiers, codes made through the
API, holds with a code, and a code's uses as the API and Redis count them."""

from __future__ import annotations

from typing import Any

from onsale import keys
from tests.integration.api_support import Client, admitted, bearer, create, iso

GA_PRICE, VIP_PRICE = 4500, 15000


async def promo_event(client: Client, admin: dict[str, str], **onsale: Any) -> dict[str, Any]:
    """An event on sale since a second ago with a GA and a VIP tier."""
    return await create(
        client,
        admin,
        tiers=[
            {"name": "GA", "price": GA_PRICE, "capacity": 50, "per_order_limit": 6},
            {"name": "VIP", "price": VIP_PRICE, "capacity": 10, "per_order_limit": 2},
        ],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60} | onsale,
    )


def tier(event: dict[str, Any], name: str) -> str:
    return str(next(t["id"] for t in event["tiers"] if t["name"] == name))


async def make_code(
    client: Client, headers: dict[str, str], event_id: str, **body: Any
) -> dict[str, Any]:
    r = await client.post(f"/api/events/{event_id}/promo-codes", json=body, headers=headers)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def hold(
    client: Client, event_id: str, items: dict[str, int], code: str | None = None
) -> Any:
    """A fresh admission's hold of ``items`` (tier id -> quantity), with ``code`` if given;
    the raw answer."""
    token = (await admitted(client, event_id))["admission_token"]
    body: dict[str, Any] = {"items": [{"tier_id": t, "quantity": q} for t, q in items.items()]}
    if code is not None:
        body["promo_code"] = code
    return await client.post(f"/api/events/{event_id}/holds", json=body, headers=bearer(token))


async def uses(client: Client, admin: dict[str, str], event_id: str) -> dict[str, int]:
    """Code -> uses, as ``GET .../promo-codes`` lists them."""
    r = await client.get(f"/api/events/{event_id}/promo-codes", headers=admin)
    assert r.status_code == 200, r.text
    return {c["code"]: c["uses"] for c in r.json()}


async def held(redis: Any, event_id: str) -> dict[str, int]:
    """Tier id -> tickets held, from the inventory hash."""
    inv = await redis.hgetall(keys.inventory(event_id))
    return {t: int(inv[f"{t}:held"]) for t in inv["tiers"].split()}
