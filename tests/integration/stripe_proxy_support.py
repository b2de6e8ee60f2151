"""A counting proxy in front of the Stripe emulator: every request that reaches "Stripe" is
counted (by method and path), and chosen paths can be made to fail as Stripe fails. With
``search`` on, it answers Stripe's PaymentIntent Search (which the emulator lacks) for
``metadata['event_id']:'<id>'`` queries, as an account with Search would."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from onsale.config import Settings, load
from onsale.embedded import EmbeddedStripe, free_port
from tests.integration.process_support import clean_env
from tests.integration.stripe_support import client as stripe_client

_QUERY = re.compile(r"metadata\['event_id'\]:'([^']+)'(?: AND status:'(\w+)')?")


class StripeProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: Counter[str] = Counter()
        #: Path -> statuses to answer instead of the emulator, one per request, in order;
        #: a path in ``broken`` fails every time.
        self.failures: dict[str, list[int]] = {}
        self.broken: dict[str, int] = {}
        #: Answer ``GET /v1/payment_intents/search`` (counted like any request).
        self.search = False
        self.url = ""
        #: One client for every forwarded request (a new one per request churns sockets).
        self.session: aiohttp.ClientSession | None = None

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        status = self.broken.get(request.path)
        queued = self.failures.get(request.path)
        if status is None and queued:
            status = queued.pop(0)
        if status is not None:
            kind = "rate_limit_error" if status == 429 else "api_error"
            body = {"error": {"type": kind, "message": f"injected {status}"}}
            return web.json_response(body, status=status)
        if self.search and request.path == "/v1/payment_intents/search":
            return await self._search(request)
        body_bytes = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        assert self.session is not None
        async with self.session.request(
            request.method, self.upstream + request.path_qs, data=body_bytes, headers=headers
        ) as answer:
            payload = await answer.read()
            return web.Response(
                body=payload,
                status=answer.status,
                content_type=answer.content_type,
            )

    async def _search(self, request: web.Request) -> web.Response:
        """Search's answer from the emulator's whole listing (read uncounted): the matching
        intents with their charges, ``limit`` a page, ``page`` an offset."""
        match = _QUERY.fullmatch(request.query.get("query", ""))
        if not match:
            body = {"error": {"type": "invalid_request_error", "message": "unsupported query"}}
            return web.json_response(body, status=400)
        event_id, status = match.groups()
        found = [
            pi
            for pi in await self.intents(request.headers["Authorization"])
            if (pi.get("metadata") or {}).get("event_id") == event_id
            and (status is None or pi["status"] == status)
        ]
        start, limit = int(request.query.get("page") or 0), int(request.query.get("limit") or 10)
        more = start + limit < len(found)
        return web.json_response(
            {
                "object": "search_result",
                "url": "/v1/payment_intents/search",
                "data": found[start : start + limit],
                "has_more": more,
                "next_page": str(start + limit) if more else None,
            }
        )

    async def intents(self, authorization: str) -> list[dict[str, Any]]:
        """Every PaymentIntent of the emulator's account, read around the count."""
        assert self.session is not None
        found: list[dict[str, Any]] = []
        params = {"limit": "100", "expand[0]": "data.latest_charge"}
        while True:
            async with self.session.get(
                f"{self.upstream}/v1/payment_intents",
                params=params,
                headers={"Authorization": authorization},
            ) as answer:
                page = await answer.json()
            found += page["data"]
            if not page["has_more"]:
                return found
            params["starting_after"] = page["data"][-1]["id"]


def settings_via(proxy: StripeProxy, settings: Settings) -> Settings:
    """The test's settings with Stripe reached through the proxy."""
    return load(
        clean_env(
            ONSALE_REDIS_URL=settings.redis.url,
            ONSALE_DATABASE_URL=settings.database.url,
            ONSALE_STRIPE_SECRET_KEY=EmbeddedStripe.SECRET_KEY,
            ONSALE_STRIPE_API_BASE=proxy.url,
            ONSALE_SIGNING_KEY=settings.security.signing_key,
        )
    )


async def other_events_intents(stripe_url: str, n: int) -> None:
    """``n`` PaymentIntents of other events in the account (half of them paid would cost
    minutes against the emulator; a scan reads them all the same)."""
    gate = asyncio.Semaphore(16)
    async with stripe_client(stripe_url) as api:

        async def one(i: int) -> None:
            async with gate:
                await api.v1.payment_intents.create_async(
                    params={
                        "amount": 1000 + i,
                        "currency": "usd",
                        "metadata": {"event_id": str(uuid.uuid4()), "order_id": str(i)},
                    }
                )

        await asyncio.gather(*(one(i) for i in range(n)))


@contextlib.asynccontextmanager
async def stripe_proxy(upstream: str) -> AsyncIterator[StripeProxy]:
    proxy = StripeProxy(upstream)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    proxy.url = f"http://127.0.0.1:{port}"
    proxy.session = aiohttp.ClientSession()
    try:
        yield proxy
    finally:
        await proxy.session.close()
        await runner.cleanup()
