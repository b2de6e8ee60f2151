"""Tickets: the buyer's QR images, and check-in at the door (online, and offline scanners)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from litestar import MediaType, Response, get, post
from litestar.params import FromPath
from litestar.response import Stream

from onsale import keys, signing
from onsale.errors import ApiError, Code
from onsale.events import catalog
from onsale.events.models import out_of_range
from onsale.gateway.auth import account_guard, bearer, caller_of, checkin_guard, event_guard
from onsale.gateway.body import decode
from onsale.gateway.ratelimit import client_address
from onsale.gateway.types import AnyRequest, Deps
from onsale.tickets import checkin, render, scans
from onsale.tickets.checkin import CheckedIn, CheckInIn, SyncIn, SyncOut
from onsale.tickets.errors import TicketRejected
from onsale.tickets.scans import Alert, DoorStats, ScanEvent, ScanRow

#: A ticket's image never changes; only its buyer (who holds the order token) may keep it.
IMAGE_CACHE = "private, max-age=86400"
#: Syncs and manifest downloads are heavy (up to 1000 scans, every ticket of an event).
HEAVY_SHARE = 10
#: A full sync (1000 scans of ~250 bytes) is larger than ``body.MAX_BODY`` (64 KiB).
SYNC_MAX_BODY = 512 * 1024


async def _limit(request: AnyRequest, services: Deps, event_id: str, action: str) -> None:
    per_minute = services.settings.security.checkins_per_minute
    if action != "checkin":
        per_minute = max(1, per_minute // HEAVY_SHARE)
    await services.limiter.check(
        keys.event_limit(event_id, action), client_address(request), per_minute
    )


async def _ticket_payload(request: AnyRequest, services: Deps, ticket_id: str) -> str:
    """The QR payload of a ticket of the order whose token the request carries."""
    token = bearer(request)
    if not token:
        raise ApiError(Code.ORDER_TOKEN_INVALID, "send Authorization: Bearer <order_token>")
    # The token names its order: verified before anything is looked up, so that a forged
    # token learns nothing (not even whether the ticket exists).
    event_id, order_id = services.order_tokens.open(token)
    return await services.tickets.payload(event_id, order_id, ticket_id)


async def _image(
    request: AnyRequest, services: Deps, ticket_id: str, draw: Callable[[str], bytes], media: str
) -> Response[bytes]:
    payload = await _ticket_payload(request, services, ticket_id)
    # Tens of milliseconds of pure Python the first time: off the event loop (cached after).
    image = await asyncio.to_thread(draw, payload)
    return Response(image, media_type=media, headers={"Cache-Control": IMAGE_CACHE})


@get("/api/tickets/{ticket_id:str}/qr.png")
async def ticket_png(
    ticket_id: FromPath[str], request: AnyRequest, services: Deps
) -> Response[bytes]:
    return await _image(request, services, ticket_id, render.png, "image/png")


@get("/api/tickets/{ticket_id:str}/qr.svg")
async def ticket_svg(
    ticket_id: FromPath[str], request: AnyRequest, services: Deps
) -> Response[bytes]:
    return await _image(request, services, ticket_id, render.svg, "image/svg+xml")


@post("/api/checkin", guards=[checkin_guard], status_code=200)
async def check_in(request: AnyRequest, services: Deps) -> CheckedIn:
    data = decode(await request.body(), CheckInIn)
    event_id = checkin.event_uuid(data.event_id)
    await _limit(request, services, event_id, "checkin")
    public = services.signing_key.public_key()
    try:
        done = await checkin.check_in(
            services.pool,
            public,
            event_id,
            data.qr,
            data.scanner,
            redis=services.redis,
            gate=data.gate,
        )
    except TicketRejected as exc:
        await _log(services, event_id, data, exc.reason.value)
        raise
    await _log(services, event_id, data, checkin.Outcome.CHECKED_IN.value)
    return done


async def _log(services: Deps, event_id: str, data: CheckInIn, result: str) -> None:
    row = ScanRow(data.qr, result, datetime.now(UTC), data.gate, data.device)
    await scans.record(services.pool, event_id, [row])


@post("/api/checkin/sync", guards=[checkin_guard], status_code=200)
async def checkin_sync(request: AnyRequest, services: Deps) -> SyncOut:
    data = decode(await request.body(), SyncIn, limit=SYNC_MAX_BODY)
    # A time Postgres cannot hold in UTC (or a clock far before any sale): refused whole,
    # before anything is checked in.
    if bad := out_of_range({f"scans[{i}].scanned_at": s.scanned_at
                            for i, s in enumerate(data.scans)}):  # fmt: skip
        raise ApiError(Code.INVALID_REQUEST, "; ".join(bad[:5]))
    event_id = checkin.event_uuid(data.event_id)
    await _limit(request, services, event_id, "checkin-sync")
    public = services.signing_key.public_key()
    now = datetime.now(UTC)
    results = await checkin.sync(
        services.pool, public, event_id, data.scans, now, redis=services.redis
    )
    rows = [
        ScanRow(s.qr, r.result.value, min(s.scanned_at, now), s.gate, s.device, offline=True)
        for s, r in zip(data.scans, results, strict=True)
    ]
    await scans.record(services.pool, event_id, rows)
    return SyncOut(event_id, results)


@get("/api/events/{event_id:str}/checkin/manifest", guards=[checkin_guard])
async def checkin_manifest(event_id: FromPath[str], request: AnyRequest, services: Deps) -> Stream:
    event = str(catalog.parse_id(event_id))
    await _limit(request, services, event, "checkin-manifest")
    jwks = [signing.jwk(services.signing_key.public_key())]
    chunks = await checkin.open_manifest(services.pool, event, jwks, datetime.now(UTC))
    # Streamed: headers go out before the body exists, so every check is made above.
    return Stream(chunks, media_type=MediaType.JSON, headers={"Cache-Control": "no-store"})


@get("/api/checkin/events", guards=[account_guard])
async def checkin_events(request: AnyRequest, services: Deps) -> list[ScanEvent]:
    """The events the caller may scan at (the scanner's choice of event)."""
    return await scans.events_for(services.pool, caller_of(request), datetime.now(UTC))


@get("/api/events/{event_id:str}/checkin/stats", guards=[checkin_guard])
async def checkin_stats(event_id: FromPath[str], services: Deps) -> DoorStats:
    """The door's live counts: checked in, expected, check-ins in the last minute."""
    event = str(catalog.parse_id(event_id))
    await catalog.get(services.pool, event)  # an unknown event is a 404
    return await scans.stats(services.pool, event, datetime.now(UTC))


@get("/api/events/{event_id:str}/checkin/alerts", guards=[event_guard])
async def checkin_alerts(event_id: FromPath[str], services: Deps) -> list[Alert]:
    """Fraud signals at the door (the organizer's dashboard shows them)."""
    event = str(catalog.parse_id(event_id))
    await catalog.get(services.pool, event)
    return await scans.alerts(services.pool, event, datetime.now(UTC))


ROUTES = [
    ticket_png,
    ticket_svg,
    check_in,
    checkin_sync,
    checkin_manifest,
    checkin_events,
    checkin_stats,
    checkin_alerts,
]
