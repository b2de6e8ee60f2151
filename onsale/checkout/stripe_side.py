"""The Stripe side of a reconcile: one event's PaymentIntents, searched and retrieved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import stripe

from onsale.checkout.event_report import EventReport
from onsale.checkout.orders import intents_named
from onsale.checkout.stripe_calls import (
    Stripe,
    describe,
    metadata_of,
    retrieve_intents,
    search_succeeded,
)
from onsale.connections import RedisClient


@dataclass
class Found:
    """What Stripe said about one event's PaymentIntents."""

    #: Succeeded intents by the order their metadata (or the naming order) gives.
    paid: dict[str, list[Any]] = field(default_factory=dict)
    #: PaymentIntent ids Stripe could not be asked about, with why.
    unchecked: dict[str, str] = field(default_factory=dict)
    #: Succeeded intents with no order id to file them under.
    orphans: list[Any] = field(default_factory=list)


async def named_intents(
    redis: RedisClient, event_id: str, rows: Sequence[asyncpg.Record]
) -> dict[str, str]:
    """PaymentIntent id -> the order naming it, from the event's orders in Redis (pending
    ones too: a payment whose webhook never came is found this way) and Postgres."""
    named = await intents_named(redis, event_id)
    named.update((r["payment_intent_id"], str(r["id"])) for r in rows if r["payment_intent_id"])
    return named


async def _stripe_side(
    api: Stripe, event_id: str, named: dict[str, str], report: EventReport
) -> Found:
    found = Found()
    seen: dict[str, Any] = {}
    try:
        searched = await search_succeeded(api, event_id)
    except stripe.StripeError as exc:
        report.differences.append(f"could not search Stripe: {describe(exc)}")
        searched = None
    if searched is None and api.search is False:
        report.notes.append("Stripe Search is not available: checked by the orders' own "
                            "PaymentIntents only")  # fmt: skip
    for intent in searched or ():
        seen[intent.id] = intent
    got, failed = await retrieve_intents(api, (pi for pi in sorted(named) if pi not in seen))
    seen.update(got)
    found.unchecked.update((pi, describe(exc)) for pi, exc in failed.items())
    for intent in seen.values():
        if intent.status != "succeeded":
            continue
        metadata = metadata_of(intent)
        if metadata.get("event_id", event_id) != event_id:
            report.differences.append(
                f"PaymentIntent {intent.id} of order {named.get(intent.id)} belongs to event "
                f"{metadata.get('event_id')}"
            )
            continue
        order_id = metadata.get("order_id") or named.get(intent.id)
        if not order_id:
            found.orphans.append(intent)
            continue
        found.paid.setdefault(order_id, []).append(intent)
    return found
