"""The baseline for HTTP benchmarks: Litestar with one endpoint that does no work.

It returns a body of the same shape and size as a queue status, encoded the same way,
so that the ratio measures what onsale adds: token checks, one Redis script, the answer.
"""

from __future__ import annotations

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
