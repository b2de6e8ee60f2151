"""The organizer API: events, their on-sale settings and live stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import get, patch, post
from litestar.params import FromPath, FromQuery, QueryParameter

from onsale.accounts.listing import owned_page
from onsale.accounts.staff import set_owner
from onsale.events import catalog
from onsale.events.models import Event, EventIn, EventPage, OnsalePatch, QueueCounts, Stats
from onsale.gateway.auth import caller_of, event_guard, organizer_guard
from onsale.gateway.body import decode
from onsale.gateway.types import AnyRequest, Deps


@post("/api/events", guards=[organizer_guard], status_code=201)
async def create_event(request: AnyRequest, services: Deps) -> Event:
    data = decode(await request.body(), EventIn)
    event = await catalog.create(services.pool, services.redis, services.inventory, data)
    owner = caller_of(request).user_id
    if owner is not None:  # the admin token's events have no owner: admins only
        await set_owner(services.pool, event.id, owner)
    return event


@get("/api/events/{event_id:str}")
async def get_event(event_id: FromPath[str], services: Deps) -> Event:
    event = await catalog.get(services.pool, event_id)
    return (await catalog.reveal_seeds(services.redis, [event]))[0]


@get("/api/events")
async def list_events(
    request: AnyRequest,
    services: Deps,
    starts_after: FromQuery[datetime | None] = None,
    starts_before: FromQuery[datetime | None] = None,
    city: Annotated[str | None, QueryParameter(max_length=100)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> EventPage:
    # An organizer signed in (the console) sees their own events; anyone else, all of them.
    page = await owned_page(request, services.pool, limit=limit, cursor=cursor)
    if page is None:
        page = await catalog.listing(
            services.pool,
            starts_after=starts_after,
            starts_before=starts_before,
            city=city,
            limit=limit,
            cursor=cursor,
        )
    await catalog.reveal_seeds(services.redis, page.items)
    return page


@patch("/api/events/{event_id:str}/onsale", guards=[event_guard])
async def patch_onsale(event_id: FromPath[str], request: AnyRequest, services: Deps) -> Event:
    change = decode(await request.body(), OnsalePatch)
    return await catalog.patch_onsale(services.pool, services.redis, event_id, change)


@get("/api/events/{event_id:str}/stats", guards=[event_guard])
async def event_stats(event_id: FromPath[str], services: Deps) -> Stats:
    catalog.parse_id(event_id)
    counts = await services.room.advance(event_id)
    queue = QueueCounts(0, 0, 0)
    if counts:
        queue = QueueCounts(
            waiting=counts.waiting,
            admitted=counts.admitted,
            active=counts.active,
            skipped=counts.skipped,
            no_shows=counts.noshow,
            no_show_rate=round(counts.no_show_rate, 4),
        )
    return await catalog.stats(services.pool, services.inventory, event_id, queue)


ROUTES = [create_event, get_event, list_events, patch_onsale, event_stats]
