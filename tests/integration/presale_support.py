"""What the presale tests share: an event whose presale opens in a few seconds, its codes,
and a buyer polling as told until a state, with a deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.integration.api_support import Client, create, iso

#: Seconds from now: the presale opens, then the general sale.
PRESALE_IN = 4
OPENS_IN = 14


async def presale_event(
    client: Client, admin: dict[str, str], *, presale_in: float = PRESALE_IN,
    opens_in: float = OPENS_IN,
) -> dict[str, Any]:  # fmt: skip
    """GA and VIP, the general sale opening in ``opens_in`` s, the presale in ``presale_in``;
    admitting fast."""
    event = await create(
        client,
        admin,
        tiers=[
            {"name": "GA", "price": 4500, "capacity": 100, "per_order_limit": 4},
            {"name": "VIP", "price": 15000, "capacity": 10, "per_order_limit": 2},
        ],
        onsale={"opens_at": iso(opens_in), "admit_per_minute": 60_000, "hold_seconds": 60},
    )
    path = f"/api/events/{event['id']}/onsale"
    r = await client.patch(path, json={"presale_opens_at": iso(presale_in)}, headers=admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def codes(
    client: Client, admin: dict[str, str], event_id: str, count: int, max_uses: int,
    tier_ids: list[str] | None = None,
) -> list[str]:  # fmt: skip
    body: dict[str, Any] = {"count": count, "max_uses": max_uses}
    if tier_ids is not None:
        body["tier_ids"] = tier_ids
    r = await client.post(f"/api/events/{event_id}/access-codes", json=body, headers=admin)
    assert r.status_code == 201, r.text
    made: list[str] = r.json()["codes"]
    return made


async def poll_until(
    client: Client, event_id: str, token: str, states: set[str], deadline_s: float
) -> dict[str, Any]:
    """Poll (as the page does: at most once a second, waiting out a 429) until the place's
    state is one of ``states``; fails past the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        r = await client.get(f"/api/events/{event_id}/queue", headers={"X-Visitor-Token": token})
        if r.status_code == 200 and r.json()["state"] in states:
            body: dict[str, Any] = r.json()
            return body
        assert r.status_code in (200, 429), r.text
        assert time.monotonic() < deadline, r.text
        wait = int(r.headers["Retry-After"]) if r.status_code == 429 else 1
        await asyncio.sleep(min(wait, 1))


async def rejoin(
    client: Client, event_id: str, token: str, body: dict[str, Any] | None = None
) -> Any:
    """Join again with the visitor's token, waiting out the poll throttle (429)."""
    deadline = time.monotonic() + 10
    while True:
        r = await client.post(
            f"/api/events/{event_id}/queue", json=body, headers={"X-Visitor-Token": token}
        )
        if r.status_code != 429:
            return r
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(min(int(r.headers["Retry-After"]), 1))
