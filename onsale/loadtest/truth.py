"""What a chaos run is judged by, read straight from the stores: Postgres by SQL, Redis by
its keys, Stripe (localstripe) over its HTTP API, the buyers' own record of what they paid
for and saw confirmed, and ``onsale reconcile`` run as an operator runs it. Nothing here
goes through the engine's inventory, checkout or committer code."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import httpx
import msgspec

from onsale import keys
from onsale.loadtest.invariants import Check


class Tier(msgspec.Struct, frozen=True):
    tier_id: str
    capacity: int  # Postgres
    sold: int  # Redis
    held: int  # Redis
    tickets: int  # Postgres, valid or used


class OrderRow(msgspec.Struct, frozen=True):
    status: str
    payment_intent_id: str | None
    ordered: int
    tickets: int


class Truth(msgspec.Struct):
    tiers: list[Tier]
    #: Succeeded PaymentIntents of the event in Stripe: id -> its metadata's order id.
    intents: dict[str, str]
    refunded: set[str]
    orders: dict[str, OrderRow]
    #: The orders stream: delivered and unacknowledged, never delivered, dead letters.
    in_flight: int
    unread: int
    dead: int
    #: What the buyers saw (order ids), and webhooks the relay still owes.
    paid: list[str]
    confirmed: list[str]
    webhooks_owed: int
    reconcile_rc: int
    reconcile_out: str


_TIERS = """
SELECT t.id::text AS id, t.capacity,
       count(k.id) FILTER (WHERE k.status IN ('valid', 'used')) AS tickets
FROM ticket_tiers t LEFT JOIN tickets k ON k.tier_id = t.id
WHERE t.event_id = $1 GROUP BY t.id
"""
_ORDERS = """
SELECT o.id::text AS id, o.status::text AS status, o.payment_intent_id,
       coalesce((SELECT sum(i.quantity) FROM order_items i WHERE i.order_id = o.id), 0)
           AS ordered,
       (SELECT count(*) FROM tickets k WHERE k.order_id = o.id AND k.status IN ('valid', 'used'))
           AS tickets
FROM orders o WHERE o.event_id = $1
"""


def _stripe_list(stripe_url: str, key: str, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    with httpx.Client(base_url=stripe_url, auth=(key, ""), timeout=30) as api:
        while True:
            page = api.get(path, params=params)
            page.raise_for_status()
            doc = page.json()
            found += doc["data"]
            if not doc.get("has_more") or not doc["data"]:
                return found
            params["starting_after"] = doc["data"][-1]["id"]


async def stream_state(redis: Any, event_id: str) -> tuple[int, int, int]:
    stream = keys.orders_stream(event_id)
    groups = await redis.xinfo_groups(stream) if await redis.exists(stream) else []
    group = next((g for g in groups if g["name"] == keys.COMMITTERS), None)
    if group is None:
        unread = int(await redis.xlen(stream)) if await redis.exists(stream) else 0
        return 0, unread, 0
    last = group["last-delivered-id"]
    unread = len(await redis.xrange(stream, min=f"({last}", max="+", count=100_000))
    dead = int(await redis.xlen(keys.dead_letters(event_id)))
    return int(group["pending"]), unread, dead


def reconcile(event_id: str, env: dict[str, str]) -> tuple[int, str]:
    """``onsale reconcile --event ID``, as an operator runs it: (exit code, its output)."""
    done = subprocess.run(
        [sys.executable, "-m", "onsale", "reconcile", "--event", event_id],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ONSALE_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = done.stdout.strip()
    if done.returncode and done.stderr.strip():  # it could not compare: say why
        said += "\n" + done.stderr.strip().splitlines()[-1]
    return done.returncode, said


async def gather(
    conn: asyncpg.Connection,
    redis: Any,
    stripe: tuple[str, str],
    event_id: str,
    buyers: dict[str, Any],
    webhooks_owed: int,
    reconciled: tuple[int, str],
) -> Truth:
    eid = uuid.UUID(event_id)
    inv: dict[str, str] = await redis.hgetall(keys.inventory(event_id))
    rows = {r["id"]: r for r in await conn.fetch(_TIERS, eid)}
    tiers = [
        Tier(
            t,
            int(rows[t]["capacity"]) if t in rows else 0,
            int(inv.get(f"{t}:sold", 0)),
            int(inv.get(f"{t}:held", 0)),
            int(rows[t]["tickets"]) if t in rows else 0,
        )
        for t in sorted({*rows, *inv.get("tiers", "").split()})
    ]
    intents = {
        pi["id"]: str((pi.get("metadata") or {}).get("order_id") or "")
        for pi in _stripe_list(*stripe, "/v1/payment_intents")
        if pi.get("status") == "succeeded"
        and (pi.get("metadata") or {}).get("event_id") == event_id
    }
    refunded = {
        str(r.get("payment_intent"))
        for r in _stripe_list(*stripe, "/v1/refunds")
        if r.get("status") in ("succeeded", "pending")
    }
    orders = {
        r["id"]: OrderRow(r["status"], r["payment_intent_id"], int(r["ordered"]), int(r["tickets"]))
        for r in await conn.fetch(_ORDERS, eid)
    }
    in_flight, unread, dead = await stream_state(redis, event_id)
    return Truth(
        tiers,
        intents,
        refunded & set(intents),
        orders,
        in_flight,
        unread,
        dead,
        [str(x) for x in buyers.get("paid_orders", [])],
        [str(x) for x in buyers.get("confirmed_orders", [])],
        webhooks_owed,
        *reconciled,
    )


def _listed(problems: list[str], good: str) -> str:
    if not problems:
        return good
    return "; ".join(problems[:5]) + (
        f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    )


def lost(t: Truth) -> list[str]:
    """Paid orders not final in Postgres, and orders buyers saw confirmed that are not."""
    found = []
    for pi, order_id in sorted(t.intents.items()):
        row = t.orders.get(order_id)
        if row is None or row.status not in ("confirmed", "refunded"):
            found.append(f"{order_id} ({pi} succeeded; Postgres: {row.status if row else 'none'})")
    for order_id in sorted(set(t.paid) | set(t.confirmed)):
        row = t.orders.get(order_id)
        if row is None or row.status not in ("confirmed", "refunded"):
            if order_id not in t.intents.values():
                found.append(
                    f"{order_id} (a buyer paid; Postgres: {row.status if row else 'none'})"
                )
        elif order_id in t.confirmed and row.status != "confirmed":
            found.append(f"{order_id} (a buyer saw it confirmed; Postgres: {row.status})")
    return found


def check(t: Truth) -> list[Check]:
    over = [
        f"tier {x.tier_id}: Redis sold {x.sold} + held {x.held}, Postgres {x.tickets} tickets, "
        f"capacity {x.capacity}"
        for x in t.tiers
        if x.sold + x.held > x.capacity or x.tickets > x.capacity
    ]
    cap = sum(x.capacity for x in t.tiers)
    once: list[str] = []
    by_order: dict[str, list[str]] = {}
    for pi, order_id in t.intents.items():
        by_order.setdefault(order_id, []).append(pi)
    once += [
        f"order {o}: paid by {len(p)} PaymentIntents" for o, p in by_order.items() if len(p) > 1
    ]
    for pi, order_id in sorted(t.intents.items()):
        row = t.orders.get(order_id)
        if row is None or row.status not in ("confirmed", "refunded"):
            continue  # lost, counted below
        if row.payment_intent_id != pi:
            once.append(f"order {order_id}: Postgres names {row.payment_intent_id}, paid by {pi}")
        if row.status == "confirmed" and row.tickets != row.ordered:
            once.append(f"order {order_id}: {row.ordered} ordered, {row.tickets} tickets")
        if row.status == "refunded" and (row.tickets or pi not in t.refunded):
            once.append(
                f"order {order_id}: refunded, {row.tickets} tickets, Stripe refund "
                f"{'found' if pi in t.refunded else 'missing'}"
            )
    paid_by = set(t.intents)
    once += [
        f"order {o}: {r.status} in Postgres with no succeeded payment ({r.payment_intent_id})"
        for o, r in sorted(t.orders.items())
        if r.status == "confirmed" and r.payment_intent_id and r.payment_intent_id not in paid_by
    ]
    confirmed = sum(1 for r in t.orders.values() if r.status == "confirmed")
    refunds = sum(1 for r in t.orders.values() if r.status == "refunded")
    missing = lost(t)
    gaps = [
        f"tier {x.tier_id}: Redis sold {x.sold}, Postgres {x.tickets} tickets"
        for x in t.tiers
        if x.sold != x.tickets
    ]
    stuck = [
        f"{what} {n}"
        for what, n in (
            ("stream entries unacknowledged", t.in_flight),
            ("never read", t.unread),
            ("dead-lettered", t.dead),
            ("webhooks still undelivered", t.webhooks_owed),
        )
        if n
    ]
    sold = sum(x.sold for x in t.tiers)
    return [
        Check("no oversell", not over, _listed(over, f"sold {sold} of {cap}, Redis and Postgres")),
        Check(
            "every paid order confirmed exactly once",
            not once,
            _listed(
                once,
                f"{len(t.intents)} succeeded payments: {confirmed} confirmed orders, "
                f"{refunds} refunded",
            ),
        ),
        Check(
            "nothing lost",
            not (missing or gaps or stuck),
            _listed(
                missing + gaps + stuck,
                f"orders lost: 0 ({len(t.paid)} paid by buyers, "
                f"{len(t.confirmed)} seen confirmed; stream drained, no dead letters)",
            ),
        ),
        Check(
            "reconcile clean",
            t.reconcile_rc == 0,
            " / ".join(t.reconcile_out.splitlines()[-1 if t.reconcile_rc == 0 else -4 :])
            or f"exit {t.reconcile_rc}",
        ),
    ]
