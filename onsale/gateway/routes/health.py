"""Liveness, readiness and the public signing keys."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import MediaType, Response, get
from litestar.params import QueryParameter

from onsale import keys, signing
from onsale.checkout.stream import lag
from onsale.connections import RedisClient
from onsale.errors import ApiError, Code
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


async def _committer_lag(redis: RedisClient) -> dict[str, int]:
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


BACKENDS = ("redis", "postgres")


@get("/readyz", media_type=MediaType.JSON)
async def readyz(
    services: Deps, require: Annotated[str, QueryParameter(max_length=40)] = "redis,postgres"
) -> Response[dict[str, Any]]:
    """200 when the required backends answer (both by default; ``?require=redis`` for a
    probe that keeps a gateway in service while Postgres is away: selling needs only
    Redis, and the committer catches up)."""
    needed = {b.strip() for b in require.split(",") if b.strip()}
    if not needed or not needed <= set(BACKENDS):
        raise ApiError(Code.INVALID_REQUEST, "require is a comma-separated subset of "
                       "redis,postgres")  # fmt: skip
    redis, postgres, behind = await asyncio.gather(
        _check(services.redis.ping()),
        _check(services.pool.fetchval("SELECT 1")),
        _informational(_committer_lag(services.redis)),
    )
    # The committer's lag is for operators: a gateway serves buyers whatever it is.
    body = {"redis": redis, "postgres": postgres, "committer_lag": behind}
    ready = all(body[b] == "ok" for b in needed)
    return Response(body, status_code=200 if ready else 503)


@get("/.well-known/jwks.json", media_type=MediaType.JSON, cache=300)
async def jwks(services: Deps) -> dict[str, list[dict[str, str]]]:
    return {"keys": [signing.jwk(services.signing_key.public_key())]}


ROUTES = [healthz, readyz, jwks]
