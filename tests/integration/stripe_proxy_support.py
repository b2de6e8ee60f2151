"""A counting proxy in front of the Stripe emulator: every request that reaches "Stripe" is
counted (by method and path), and chosen paths can be made to fail as Stripe fails."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from onsale.embedded import free_port


class StripeProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: Counter[str] = Counter()
        #: Path -> statuses to answer instead of the emulator, one per request, in order;
        #: a path in ``broken`` fails every time.
        self.failures: dict[str, list[int]] = {}
        self.broken: dict[str, int] = {}
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
