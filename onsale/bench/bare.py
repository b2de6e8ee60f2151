"""The baselines for HTTP benchmarks: Litestar with one endpoint that does no work, and
a server of canned bytes that costs next to nothing (the load generator's own ceiling).

Both return a body of the same shape and size as a queue status, encoded the same way,
so that the ratio measures what onsale adds: token checks, one Redis script, the answer.
"""

from __future__ import annotations

import asyncio
from typing import cast

import msgspec
from litestar import Litestar, MediaType, Response, get

_BODY = msgspec.json.encode(
    {
        "visitor_token": "v1.AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBB",
        "state": "waiting",
        "position": 1234,
        "eta_seconds": 61,
        "poll_after_seconds": 12,
        "admission_token": None,
        "admission_expires_at": None,
        "note": None,
    }
)


@get("/bare")
async def bare() -> Response[bytes]:
    return Response(_BODY, media_type=MediaType.JSON, headers={"Cache-Control": "no-store"})


def create_app() -> Litestar:
    return Litestar(route_handlers=[bare], openapi_config=None)


# The generator's ceiling: canned bytes from a bare asyncio protocol.
_CANNED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class _Canned(asyncio.Protocol):
    """Answers every request head with the same bytes; requests carry no body."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport, self.buffer = cast(asyncio.Transport, transport), b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        heads = self.buffer.count(b"\r\n\r\n")
        if heads:
            self.buffer = self.buffer.rsplit(b"\r\n\r\n", 1)[1]
            self.transport.write(_CANNED * heads)


def canned_main(port: int) -> None:
    """One process of the canned server (several share the port with SO_REUSEPORT)."""
    import uvloop

    async def run() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(_Canned, "127.0.0.1", port, reuse_port=True, backlog=2048)
        await srv.serve_forever()

    uvloop.run(run())
