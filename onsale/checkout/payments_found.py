"""The Stripe side of a recover: an event's paid PaymentIntents that Postgres has not seen."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import stripe

from onsale.checkout import stripe_calls
from onsale.checkout.orders import intents_named
from onsale.checkout.stripe_calls import Listing, Stripe, describe, metadata_of
from onsale.connections import RedisClient
from onsale.events.models import Event

# Orders Postgres has, not (yet) paid there, that name a PaymentIntent: Stripe may have it paid.
_PENDING_SQL = """
SELECT id::text, payment_intent_id FROM orders
WHERE event_id = $1 AND status NOT IN ('confirmed', 'refunded') AND payment_intent_id IS NOT NULL
"""
#: Pages of the account's listing between two progress lines (100 PaymentIntents a page).
LISTING_PROGRESS_PAGES = 50
#: Seconds before the event's creation that a ``created`` window starts (clock skew).
WINDOW_MARGIN_S = 3600


class Refused(Exception):
    """This event is left as it is; the message says why, in one line."""


async def _named(
    pool: asyncpg.Pool, redis: RedisClient, event_id: str, known: set[str]
) -> dict[str, str]:
    """PaymentIntent id -> the order naming it, for orders not confirmed or refunded in
    Postgres: its pending ones, and any order Redis still has (a partial loss)."""
    named = await intents_named(redis, event_id)
    rows = await pool.fetch(_PENDING_SQL, uuid.UUID(event_id))
    named.update((r["payment_intent_id"], r["id"]) for r in rows)
    return {pi: order_id for pi, order_id in named.items() if order_id not in known}


async def _listed(
    api: Stripe, pool: asyncpg.Pool, event: Event, progress: Callable[[str], None]
) -> list[Any]:
    """The event's succeeded PaymentIntents, found by listing the account (no Search)."""
    created = await pool.fetchval(
        "SELECT extract(epoch FROM created_at)::bigint FROM events WHERE id = $1",
        uuid.UUID(event.id),
    )
    since = int(created) - WINDOW_MARGIN_S  # no PaymentIntent of it is older than the event
    minutes = 10_000 / api.calls.rate / 60
    progress(
        f"event {event.id}: warning: Stripe Search is not available: listing the account's "
        f"PaymentIntents created since {datetime.fromtimestamp(since, UTC).isoformat()} to "
        "find this event's payments, one Stripe call per 100 PaymentIntents of any event "
        f"(a million cost 10,000 calls, about {minutes:.0f} min at {api.calls.rate:g} calls/s)"
    )
    listing, found, count = Listing(api, since), [], 0
    async for page in listing:
        count += len(page)
        mine = (i for i in page if metadata_of(i).get("event_id") == event.id)
        found += [i for i in mine if i.status == "succeeded"]
        if listing.pages == 1 and not listing.windowed:
            progress(f"event {event.id}: Stripe refused the created window: listing the "
                     "whole account")  # fmt: skip
        if listing.pages % LISTING_PROGRESS_PAGES == 0:
            progress(f"event {event.id}: listed {count} PaymentIntents ({listing.pages} "
                     f"calls), {len(found)} paid for this event so far")  # fmt: skip
    progress(f"event {event.id}: listed {count} PaymentIntents in {listing.pages} Stripe "
             f"calls, {len(found)} paid for this event")  # fmt: skip
    return found


async def paid(
    api: Stripe,
    pool: asyncpg.Pool,
    redis: RedisClient,
    event: Event,
    known: set[str],
    progress: Callable[[str], None],
) -> list[tuple[Any, dict[str, str]]]:
    """The event's succeeded PaymentIntents that an order Postgres has not seen paid may
    own, with their metadata (``order_id`` filled in from the order naming it): Search (or
    the listing) for those no order in Postgres names, a retrieval for each one named that
    the search did not return (Search lags writes by up to a minute)."""
    named = await _named(pool, redis, event.id, known)
    searched = await stripe_calls.search_succeeded(api, event.id)
    if searched is None:
        searched = await _listed(api, pool, event, progress)
    seen = {intent.id: intent for intent in searched}
    got, failed = await stripe_calls.retrieve_intents(
        api, (pi for pi in sorted(named) if pi not in seen)
    )
    seen.update(got)
    for exc in failed.values():
        if isinstance(exc, stripe.AuthenticationError):
            raise exc  # no event can be recovered with a key Stripe refuses
    if failed:
        pi, exc = next(iter(sorted(failed.items())))
        raise Refused(
            f"Stripe could not be asked about {len(failed)} PaymentIntent(s) of pending "
            f"orders ({pi}: {describe(exc)}); nothing was written, recover again"
        )
    paid = []
    for intent in seen.values():
        metadata = metadata_of(intent)
        if intent.status != "succeeded" or metadata.get("event_id", event.id) != event.id:
            continue  # another event's payment that an order of this one names is not its
        if not metadata.get("order_id") and intent.id in named:
            metadata["order_id"] = named[intent.id]
        paid.append((intent, metadata))
    return paid
