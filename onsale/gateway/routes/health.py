"""Liveness, readiness and the public signing keys."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import MediaType, Response, get

from onsale import keys, signing
from onsale.checkout.stream import lag
from onsale.gateway.types import Deps

READY_TIMEOUT_S = 2.0


@get("/healthz", media_type=MediaType.JSON)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(what: Any) -> str:
    try:
        await asyncio.wait_for(what, READY_TIMEOUT_S)
        return "ok"
    except Exception as exc:  # any failure means "not ready", and says why
        return f"unavailable: {type(exc).__name__}: {exc}"[:200]


async def _committer_lag(redis: Any) -> dict[str, int]:
    """Over every armed event: entries not yet in Postgres, and the oldest one's age."""
    lags = [await lag(redis, e) for e in await redis.smembers(keys.ARMED_EVENTS)]
    return {
        "pending": sum(x.pending for x in lags),
        "oldest_ms": max((x.oldest_ms for x in lags), default=0),
    }


async def _informational(what: Any) -> Any:
    try:
        return await asyncio.wait_for(what, READY_TIMEOUT_S)
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"[:200]


@get("/readyz", media_type=MediaType.JSON)
async def readyz(services: Deps) -> Response[dict[str, Any]]:
    redis, postgres, behind = await asyncio.gather(
        _check(services.redis.ping()),
        _check(services.pool.fetchval("SELECT 1")),
        _informational(_committer_lag(services.redis)),
    )
    # The committer's lag is for operators: a gateway serves buyers whatever it is.
    body = {"redis": redis, "postgres": postgres, "committer_lag": behind}
    ready = redis == "ok" and postgres == "ok"
    return Response(body, status_code=200 if ready else 503)


@get("/.well-known/jwks.json", media_type=MediaType.JSON, cache=300)
async def jwks(services: Deps) -> dict[str, list[dict[str, str]]]:
    return {"keys": [signing.jwk(services.signing_key.public_key())]}


ROUTES = [healthz, readyz, jwks]
