"""Access codes of an event's presale: generated in bulk and counted by its owner (or an
admin); the codes themselves are shown once, at generation."""

from __future__ import annotations

from litestar import Response, get, post
from litestar.params import FromPath

from onsale.events import catalog
from onsale.gateway import openapi
from onsale.gateway.auth import event_guard
from onsale.gateway.body import decode
from onsale.gateway.types import AnyRequest, Deps
from onsale.queue import access
from onsale.queue.access import AccessCodesIn, AccessCodesOut, AccessSummary


@post(
    "/api/events/{event_id:str}/access-codes",
    guards=[event_guard],
    status_code=201,
    operation_class=openapi.body(AccessCodesIn),
)
async def create_access_codes(
    event_id: FromPath[str], request: AnyRequest, services: Deps
) -> Response[AccessCodesOut]:
    data = decode(await request.body(), AccessCodesIn)
    out = await access.create(services.pool, services.redis, event_id, data)
    # The only copy of the codes: no cache may keep it.
    return Response(out, status_code=201, headers={"Cache-Control": "no-store"})


@get("/api/events/{event_id:str}/access-codes", guards=[event_guard])
async def list_access_codes(event_id: FromPath[str], services: Deps) -> AccessSummary:
    """Counts by batch (codes, uses), never the codes; ``404`` for no such event (an
    admin's: the guard answers an organizer so already)."""
    event = await catalog.get(services.pool, event_id)
    return await access.summary(services.pool, services.redis, event.id)


ROUTES = [create_access_codes, list_access_codes]
