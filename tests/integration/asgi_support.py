"""A gateway app run on the test's own event loop (the test client runs it on another
thread's loop and hands it one request at a time): requests sent with ``asyncio.gather``
then really interleave inside the app, at every await, as they do under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx


@contextlib.asynccontextmanager
async def on_this_loop(
    app: Any, base_url: str = "http://gateway", client: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """``app``'s lifespan started here, and an HTTP client that calls it in-process from
    the address ``client``."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=60) as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan
