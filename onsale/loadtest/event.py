"""The event a load test sells: its tiers and on-sale as each scenario wants them, created
through the gateway's API like an organizer's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


def event_body(
    scenario: str, tickets: int, users: int, spawn_rate: float, admit: int, pow_difficulty: int = 0
) -> tuple[dict[str, Any], float]:
    """The event to create for a scenario, and its opening as epoch seconds; with
    ``pow_difficulty``, the bot tax on (the buyers solve it: scenarios/common.py)."""
    now = datetime.now(UTC)
    if scenario == "stampede":
        # Opens once every buyer has been started: they all arrive in its second.
        opens = now + timedelta(seconds=3 + (users / spawn_rate if spawn_rate else 2))
        tiers = [{"name": "GA", "price": 4500, "capacity": tickets, "per_order_limit": 2}]
        onsale = {"admit_per_minute": admit or 12_000, "hold_seconds": 300}
    elif scenario == "last_tickets":
        opens = now - timedelta(seconds=1)
        tiers = [{"name": "Last", "price": 2500, "capacity": tickets, "per_order_limit": 1}]
        onsale = {"admit_per_minute": admit or 1_000_000, "hold_seconds": 300}
    else:
        opens = now - timedelta(seconds=1)
        vip = max(1, tickets // 5)
        tiers = [
            {"name": "GA", "price": 4500, "capacity": tickets - vip, "per_order_limit": 4},
            {"name": "VIP", "price": 15000, "capacity": vip, "per_order_limit": 2},
        ]
        onsale = {"admit_per_minute": admit or 6_000, "hold_seconds": 300}
    body = {
        "title": f"loadtest {scenario}",
        "starts_at": (now + timedelta(days=30)).isoformat(),
        "currency": "USD",
        "tiers": tiers,
        "onsale": {"opens_at": opens.isoformat(), **onsale},
    }
    if pow_difficulty:
        body["onsale"]["pow_difficulty"] = pow_difficulty  # type: ignore[index]
    return body, opens.timestamp()


def create(base: str, admin: str, body: dict[str, Any]) -> dict[str, Any]:
    """The event, created through the API with the admin token; its JSON."""
    r = httpx.post(
        f"{base}/api/events",
        json=body,
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    if r.status_code != 201:
        raise RuntimeError(f"creating the event: {r.status_code} {r.text}")
    event: dict[str, Any] = r.json()
    return event
