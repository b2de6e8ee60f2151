"""The organizer API: events, their on-sale settings, live stats, changes and cancelling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import get, patch, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from onsale.accounts.listing import owned_page
from onsale.accounts.staff import set_owner
from onsale.checkout.refunds import Refunds
from onsale.events import cancel, catalog, changes
from onsale.events.live import LiveHub, with_member
from onsale.events.models import (
    Cancelled,
    Event,
    EventIn,
    EventPage,
    EventPatch,
    OnsalePatch,
    QueueCounts,
    Stats,
)
from onsale.gateway import openapi
from onsale.gateway.auth import caller_of, event_guard, organizer_guard
from onsale.gateway.body import decode
from onsale.gateway.services import Services
from onsale.gateway.types import AnyRequest, Deps
from onsale.tickets import scans

_encode = msgspec.json.Encoder().encode


@post(
    "/api/events",
    guards=[organizer_guard],
    status_code=201,
    operation_class=openapi.body(EventIn),
)
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


@patch("/api/events/{event_id:str}", guards=[event_guard], operation_class=openapi.body(EventPatch))
async def patch_event(event_id: FromPath[str], request: AnyRequest, services: Deps) -> Event:
    """Change the title, description, venue, start or tiers (a tier with ``id`` is changed,
    one without is added)."""
    change = decode(await request.body(), EventPatch)
    return await changes.patch_event(
        services.pool, services.redis, services.inventory, event_id, change
    )


@patch(
    "/api/events/{event_id:str}/onsale",
    guards=[event_guard],
    operation_class=openapi.body(OnsalePatch),
)
async def patch_onsale(event_id: FromPath[str], request: AnyRequest, services: Deps) -> Event:
    """Metering (``admit_per_minute``, ``max_active``, ``paused``) any time; the schedule
    (``opens_at``, ``closes_at``, ``hold_seconds``, ``presale_opens_at``) before the sale
    opens."""
    change = decode(await request.body(), OnsalePatch)
    return await changes.patch_onsale(services.pool, services.redis, event_id, change)


@post("/api/events/{event_id:str}/cancel", guards=[event_guard], status_code=200)
async def cancel_event(event_id: FromPath[str], services: Deps) -> Cancelled:
    """Close the queue, end admissions, release holds, mark the event cancelled, then refund
    every paid order and void its tickets. Idempotent: cancelling again finishes a
    cancellation cut off midway, and refunds nothing twice."""
    refunds = Refunds(services.pool, services.checkout, services.orders)
    return await cancel.cancel(services.pool, services.inventory, event_id, refunds)


async def stats_of(services: Services, event_id: str) -> Stats:
    """What ``/stats`` answers, and each second of ``/live``."""
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


@get("/api/events/{event_id:str}/stats", guards=[event_guard])
async def event_stats(event_id: FromPath[str], services: Deps) -> Stats:
    return await stats_of(services, event_id)


def live_hub(services: Services) -> LiveHub:
    """The process's hub of live feeds, reading ``/stats`` once a second per watched event."""

    async def snapshot(event_id: str) -> bytes:
        stats = _encode(await stats_of(services, event_id))
        # The door's fraud signals ride along (the body of /checkin/alerts).
        found = await scans.alerts(services.pool, event_id, datetime.now(UTC))
        return with_member(stats, "checkin_alerts", _encode(found))

    return LiveHub(snapshot)


@get("/api/events/{event_id:str}/live", guards=[event_guard])
async def live(event_id: FromPath[str], request: AnyRequest, services: Deps) -> ServerSentEvent:
    """Server-Sent Events: one ``stats`` event a second (the body of ``/stats``), for
    dashboards. Every dashboard watching an event shares one read per second."""
    await catalog.get(services.pool, event_id)  # an unknown event is a 404, not a stream
    hub: LiveHub = request.app.state.live

    async def frames() -> AsyncIterator[ServerSentEventMessage]:
        async for snapshot in hub.listen(event_id):
            yield ServerSentEventMessage(data=snapshot.decode(), event="stats")

    return ServerSentEvent(frames(), headers={"Cache-Control": "no-store"})


ROUTES = [
    create_event,
    get_event,
    list_events,
    patch_event,
    patch_onsale,
    cancel_event,
    event_stats,
    live,
]
