"""The connections a gateway process holds, opened at startup and injected into handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import connections, keys, signing
from onsale.accounts.service import Accounts
from onsale.botgate import BotGate
from onsale.checkout.finder import OrderFinder
from onsale.checkout.orders import Checkout
from onsale.checkout.payments import Payments
from onsale.checkout.refunds import Refunds
from onsale.checkout.tokens import OrderTokens
from onsale.checkout.webhooks import Webhooks
from onsale.config import Settings
from onsale.db import create_pool
from onsale.events.retirement import Retirer
from onsale.events.terms import EventTerms
from onsale.gateway.ratelimit import RateLimiter
from onsale.inventory import Inventory
from onsale.queue.room import WaitingRoom
from onsale.queue.tokens import AdmissionTokens, VisitorTokens
from onsale.scripts import Scripts
from onsale.tickets.lookup import TicketFinder

log = logging.getLogger("onsale.gateway")

#: How often each gateway process expires holds and moves the waiting rooms' cursors.
TICK_EVERY_S = 1.0


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: connections.RedisClient
    pool: asyncpg.Pool
    inventory: Inventory
    room: WaitingRoom
    signing_key: Ed25519PrivateKey
    visitors: VisitorTokens
    admissions: AdmissionTokens
    limiter: RateLimiter
    payments: Payments | None
    order_tokens: OrderTokens
    checkout: Checkout
    #: Each event's currency and buyer limit, cached for the hold path.
    terms: EventTerms
    orders: OrderFinder
    tickets: TicketFinder
    #: ``None`` without payments (no Stripe key).
    webhooks: Webhooks | None
    #: Sessions, the login throttle and the admin token (onsale/accounts).
    accounts: Accounts
    #: The bot tax: proof-of-work challenges and the join's check (onsale/botgate).
    botgate: BotGate


def redis_client(settings: Settings) -> Any:
    return connections.redis_client(
        settings.redis.url,
        cluster=settings.redis.cluster,
        max_connections=settings.redis.max_connections,
    )


async def tick(inventory: Inventory, room: WaitingRoom, retirer: Retirer | None = None) -> None:
    """Expired holds go back to the pool and admissions go on even when nobody polls; now
    and then, ended events leave the armed set, so this stays as cheap as the live ones."""
    for event_id in await inventory.redis.smembers(keys.ARMED_EVENTS):
        await inventory.sweep(event_id)
        await room.advance(event_id)
    if retirer is not None:
        await retirer.maybe_run()


async def _tick_forever(
    inventory: Inventory, room: WaitingRoom, pool: asyncpg.Pool | None = None
) -> None:
    retirer = Retirer(inventory.redis, pool)
    try:
        # Every script once, at start, off the startup path: should Redis be away now (or
        # fail over later), NOSCRIPT reloads each script where it is first asked for.
        await inventory.scripts.load_all()
    except (aioredis.RedisError, OSError) as exc:
        log.warning("could not load the Lua scripts at start: %s", exc)
    while True:
        try:
            await tick(inventory, room, retirer)
        except (aioredis.RedisError, OSError) as exc:
            log.warning("periodic tick failed: %s", exc)
        await asyncio.sleep(TICK_EVERY_S)


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    # A log line per Stripe call (with URLs) is noise on the hot path, and not ours to emit.
    for name in ("stripe", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    key = signing.load(settings.security.signing_key)
    redis = redis_client(settings)
    # The pool connects lazily (min_size=0): a gateway starts, and says "not ready",
    # while Postgres is down, instead of failing to start.
    pool = await create_pool(settings.database.url, min_size=0, max_size=settings.database.pool_max)
    lanes = None
    if not settings.redis.cluster:
        lanes = connections.Lanes(redis.connection_pool, settings.redis.max_connections)
    scripts = Scripts(redis, lanes)
    inventory, room = Inventory(redis, scripts=scripts), WaitingRoom(redis, scripts=scripts)
    ticker = asyncio.create_task(_tick_forever(inventory, room, pool))
    payments = Payments(settings.stripe) if settings.stripe.secret_key else None
    order_tokens = OrderTokens(key)
    terms = EventTerms(redis)
    checkout = Checkout(redis, inventory, payments, key, order_tokens, terms)
    orders = OrderFinder(checkout, pool)
    webhooks = Webhooks(redis, payments, checkout) if payments else None
    if webhooks is not None:
        webhooks.refunds = Refunds(pool, checkout, orders)
    try:
        yield Services(
            settings=settings,
            redis=redis,
            pool=pool,
            inventory=inventory,
            room=room,
            signing_key=key,
            visitors=VisitorTokens(key),
            admissions=AdmissionTokens(key),
            limiter=RateLimiter(redis, settings.security.rate_limit_exempt),
            payments=payments,
            order_tokens=order_tokens,
            checkout=checkout,
            terms=terms,
            orders=orders,
            tickets=TicketFinder(orders, pool),
            webhooks=webhooks,
            accounts=Accounts(pool, redis, settings.security),
            botgate=BotGate(redis, settings.pow, key, scripts=scripts),
        )
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        with contextlib.suppress(aioredis.RedisError, OSError):
            await room.lobby.close()  # the waiting rooms' refreshes, and their last marks
        await pool.close()
        if payments:
            await payments.aclose()
        if lanes:
            await lanes.aclose()
        await redis.aclose()
