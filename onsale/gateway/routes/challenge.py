"""The bot tax at the edge: challenges for the buyer's page, and the join's check.

A join without a visitor token calls :func:`require_pow` first, before anything else: a
refused one has touched nothing in Redis (the check reads an event's difficulty from each
process's cache and spends a solution with one script, only once it verified).
"""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response, get
from litestar.params import FromPath

from onsale.botgate import PowRejected
from onsale.errors import ApiError
from onsale.gateway.errors import to_api
from onsale.gateway.metrics import POW_JOINS
from onsale.gateway.types import Deps

_encode = msgspec.json.Encoder().encode


def challenge_url(event_id: str) -> str:
    return f"/api/events/{event_id}/challenge"


@get("/api/events/{event_id:str}/challenge")
async def challenge(event_id: FromPath[str], services: Deps) -> Response[bytes]:
    """A fresh challenge for one join (``required: false`` when the event asks none).

    Never cached: a solution is spent by one join, so a challenge shared by a cache would
    let one buyer in and turn the others away. Making one costs a SHA-256 and two HMACs."""
    body = await services.botgate.challenge(event_id)
    headers = {"Cache-Control": "no-store"}
    return Response(_encode(body), media_type=MediaType.JSON, headers=headers)


async def require_pow(services: Deps, event_id: str, header: str | None, field: str | None) -> None:
    """Let a new join through if the event asks no proof-of-work or brings a valid, unspent
    one (header ``X-Altcha`` or body field ``altcha``), now spent; else ``403 pow_required``
    or ``pow_invalid`` naming the challenge URL (body ``challenge``, ``WWW-Authenticate``)."""
    try:
        spent = await services.botgate.check(event_id, header or field)
    except PowRejected as exc:
        POW_JOINS.labels(str(exc.reason)).inc()
        err: ApiError = to_api(exc)
        url = challenge_url(event_id)
        err.extra["challenge"] = url
        err.headers["WWW-Authenticate"] = f'Altcha challenge="{url}"'
        raise err from None
    if spent:
        POW_JOINS.labels("spent").inc()


ROUTES = [challenge]
