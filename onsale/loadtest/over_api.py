"""The invariants read through the HTTP API, for a deployment whose stores are out of reach.

With the organizer's token the checker reads the event's stats (and its report, where the
deployment has one); with each order's token it reads back every order the buyers checked
out. Both are compared with what the buyers themselves saw: the tickets they received, and
no ticket in two buyers' hands. Nothing here trusts the engine's own bookkeeping alone: the
stats must agree with the orders, and the orders with the buyers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import msgspec

from onsale.bench.figures import progress
from onsale.loadtest.invariants import Check


class Order(msgspec.Struct):
    """One order as a buyer recorded it at checkout, and as the API answers it after."""

    order_id: str
    order_token: str
    amount: int
    items: list[dict[str, Any]]
    #: ``[ticket_id, tier_id]`` pairs the buyer received, or None if it never saw them.
    tickets: list[list[str]] | None = None
    status: str = ""
    read_back: list[list[str]] = msgspec.field(default_factory=list)


class Api:
    """The deployment's API as the organizer and the buyers reach it."""

    def __init__(self, base: str, admin: str) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=30)
        self.admin = {"Authorization": f"Bearer {admin}"}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        """(status, JSON body or None), retrying a restart's 502/503/504 for a while."""
        for attempt in range(10):
            r = await self.http.get(path, headers=headers)
            if r.status_code not in (502, 503, 504):
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, None

    async def stats(self, event_id: str) -> dict[str, Any]:
        status, body = await self.get(f"/api/events/{event_id}/stats", self.admin)
        if status != 200:
            raise RuntimeError(f"GET /api/events/{event_id}/stats answered {status}: {body}")
        return dict(body)


async def settle(api: Api, event_id: str, deadline_s: float) -> dict[str, Any]:
    """The event's stats once every confirmed order is committed and the counts have stood
    still for 3 s (webhooks still in flight, then the committer), or at the deadline."""
    deadline = time.monotonic() + deadline_s
    last, still = None, 0
    while True:
        stats = await api.stats(event_id)
        orders = stats["orders"]
        now = (orders["confirmed"], orders["committed"], stats["revenue"])
        still = still + 1 if now == last and orders["confirmed"] == orders["committed"] else 0
        last = now
        if still >= 3 or time.monotonic() >= deadline:
            return stats
        await asyncio.sleep(1)


async def read_back(api: Api, orders: list[Order], parallel: int = 16) -> None:
    """Each order's final status and tickets, read with its own order token."""
    gate = asyncio.Semaphore(parallel)

    async def one(order: Order) -> None:
        async with gate:
            auth = {"Authorization": f"Bearer {order.order_token}"}
            status, body = await api.get(f"/api/orders/{order.order_id}", auth)
        if status != 200 or not isinstance(body, dict):
            order.status = f"unreadable ({status})"
            return
        order.status = str(body.get("status"))
        order.read_back = [[t["ticket_id"], t["tier_id"]] for t in body.get("tickets") or []]

    await asyncio.gather(*(one(o) for o in orders))


def _held(order: Order) -> Counter[str]:
    held: Counter[str] = Counter()
    for item in order.items:
        held[str(item["tier_id"])] += int(item["quantity"])
    return held


def _has(order: Order) -> Counter[str]:
    return Counter(tier for _, tier in order.read_back)


def verdicts(
    stats: dict[str, Any],
    orders: list[Order],
    paid: set[str],
    report: tuple[int, Any],
) -> list[Check]:
    """PASS or FAIL (or SKIP) per invariant, from what the API answered and buyers saw."""
    confirmed = [o for o in orders if o.status == "confirmed"]
    tiers = stats["tiers"]
    over = [
        f"tier {t['id']}: sold {t['sold']} + held {t['held']} > capacity {t['capacity']}"
        for t in tiers
        if t["sold"] + t["held"] > t["capacity"]
    ]
    # A payment that arrives after its hold ended and finds the tickets gone is refunded:
    # the one honest end for it besides a confirmation.
    refunded = [o for o in orders if o.order_id in paid and o.status == "refunded"]
    unconfirmed = sorted(
        o.order_id
        for o in orders
        if o.order_id in paid and o.status not in ("confirmed", "refunded")
    )
    wrong_tickets = [
        f"order {o.order_id}: holds {dict(_held(o))}, has {dict(_has(o))}"
        for o in confirmed
        if _has(o) != _held(o)
    ]
    changed = [
        f"order {o.order_id}: the buyer got {len(o.tickets or [])} ticket(s), the API shows "
        f"{len(o.read_back)}"
        for o in confirmed
        if o.tickets is not None
        and sorted(map(tuple, o.tickets)) != sorted(map(tuple, o.read_back))
    ]
    owners: dict[str, set[str]] = {}
    for o in orders:
        for ticket_id, _ in [*o.read_back, *(o.tickets or [])]:
            owners.setdefault(ticket_id, set()).add(o.order_id)
    doubled = sorted(t for t, who in owners.items() if len(who) > 1)
    sold: Counter[str] = Counter()
    for o in confirmed:
        sold.update(t[1] for t in o.read_back)
    mismatch = [
        f"tier {t['id']}: stats sold {t['sold']}, buyers hold {sold.get(t['id'], 0)}"
        for t in tiers
        if t["sold"] != sold.get(t["id"], 0)
    ]
    revenue = sum(o.amount for o in confirmed)
    counted = stats["orders"]
    checks = [
        Check(
            "committer drained (stats: committed == confirmed)",
            counted["confirmed"] == counted["committed"],
            f"{counted['confirmed']} confirmed, {counted['committed']} committed",
        ),
        Check(
            "no oversell (stats: sold + held <= capacity)",
            not over,
            "; ".join(over)
            or f"sold {sum(t['sold'] for t in tiers)} of {sum(t['capacity'] for t in tiers)}",
        ),
        Check(
            "every paid order confirmed, with the tickets it held",
            not unconfirmed and not wrong_tickets,
            "; ".join(
                [f"paid but {len(unconfirmed)} not confirmed: {', '.join(unconfirmed[:3])}"]
                * bool(unconfirmed)
                + wrong_tickets[:3]
            )
            or f"{len(paid)} paid, {len(confirmed)} of {len(orders)} orders confirmed"
            + (f", {len(refunded)} refunded (paid after the hold ended)" if refunded else ""),
        ),
        Check(
            "buyers' tickets as the API shows them, no ticket twice",
            not changed and not doubled,
            "; ".join(changed[:3] + [f"ticket {t} in two orders" for t in doubled[:3]])
            or f"{len(owners)} distinct tickets",
        ),
        Check(
            "stats sold == tickets buyers hold, per tier",
            not mismatch,
            "; ".join(mismatch) or f"{len(tiers)} tier(s) equal",
        ),
        Check(
            "stats orders and revenue == the confirmed orders",
            counted["confirmed"] == len(confirmed) and stats["revenue"] == revenue,
            f"stats {counted['confirmed']} orders, {stats['revenue']} revenue; "
            f"buyers {len(confirmed)} orders, {revenue} revenue",
        ),
    ]
    checks.append(_report(report, confirmed, revenue))
    return checks


def _report(report: tuple[int, Any], confirmed: list[Order], revenue: int) -> Check:
    name = "report == the confirmed orders"
    status, body = report
    code = body.get("code") if isinstance(body, dict) else None
    if status in (404, 405) and code != "event_not_found":  # no such route: an older release
        return Check(name, False, "the deployment has no event report", skipped=True)
    if status != 200 or not isinstance(body, dict):
        return Check(name, False, f"GET report answered {status}: {str(body)[:200]}")
    sales = body.get("sales", {})
    tickets = sum(len(o.read_back) for o in confirmed)
    seen = (sales.get("tickets_sold"), sales.get("orders"), sales.get("revenue"))
    want = (tickets, len(confirmed), revenue)
    return Check(
        name,
        seen == want,
        f"report tickets/orders/revenue {seen}, buyers {want}",
    )


async def check(
    base: str, admin: str, event_id: str, buyers: dict[str, Any], deadline_s: float
) -> list[Check]:
    """Settles, reads back every order, and judges (see :func:`verdicts`)."""
    api = Api(base, admin)
    try:
        progress("checking through the API: waiting for the stats to settle ...")
        stats = await settle(api, event_id, deadline_s)
        orders = [msgspec.convert(o, Order) for o in buyers.get("orders", [])]
        progress(f"reading back {len(orders)} order(s) with their tokens ...")
        await read_back(api, orders)
        report = await api.get(f"/api/events/{event_id}/report", api.admin)
    finally:
        await api.aclose()
    return verdicts(stats, orders, {str(p) for p in buyers.get("paid_orders", [])}, report)
