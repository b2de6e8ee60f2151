"""Reports and exports: an event's report and CSV exports (its owner or an admin), and the
platform report (admins). Optional ``from``/``to`` (ISO 8601) on every one; a bad one is
``422 invalid_request``."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from onsale.events import catalog
from onsale.gateway.auth import admin_only_guard, caller_of, event_guard
from onsale.gateway.types import AnyRequest, Deps
from onsale.reports import exports, period, queries
from onsale.reports.models import EventReport, PlatformReport

CSV = "text/csv; charset=utf-8"


#: ``from`` and ``to``: declared for the OpenAPI document (``from`` is a Python keyword);
#: parsed by :func:`onsale.reports.period.parse`, which says what is wrong with them.
From = Annotated[
    str | None,
    QueryParameter(name="from", description="ISO 8601 time, inclusive"),
]
To = Annotated[str | None, QueryParameter(name="to", description="ISO 8601 time, exclusive")]


@get("/api/events/{event_id:str}/report", guards=[event_guard])
async def event_report(
    event_id: FromPath[str], services: Deps, start: From = None, end: To = None
) -> EventReport:
    """Sales, funnel, velocity per minute, check-ins per quarter hour and promo codes."""
    return await queries.event_report(services.pool, event_id, period.parse(start, end))


@get("/api/admin/report", guards=[admin_only_guard])
async def platform_report(services: Deps, start: From = None, end: To = None) -> PlatformReport:
    """GMV, orders, tickets, events, organizers, top-grossing and fastest-selling events."""
    return await queries.platform_report(services.pool, period.parse(start, end))


async def _export(
    kind: str, event_id: str, request: AnyRequest, services: Deps, span: period.Period
) -> Stream:
    event = await catalog.get(services.pool, event_id)  # 404 event_not_found (an admin's)
    caller = caller_of(request)
    audit = exports.Audit(services.pool)
    actor = caller.email or ("admin token" if caller.admin else str(caller.role))
    audit_id = await audit.start(kind, event.id, caller.user_id, actor, span)
    chunks = exports.stream(services.pool, exports.EXPORTS[kind], event.id, span, audit, audit_id)
    name = f"{kind}-{event.id}.csv"
    # Streamed: headers go out before the body exists, so every check is made above.
    return Stream(
        chunks,
        media_type=CSV,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@get("/api/events/{event_id:str}/attendees.csv", guards=[event_guard], media_type=CSV)
async def attendees_csv(
    event_id: FromPath[str], request: AnyRequest, services: Deps, start: From = None, end: To = None
) -> Stream:
    """``ticket_id,tier,name,email,order_id,checked_in_at``: every valid or used ticket."""
    span = period.parse(start, end)
    return await _export(exports.ATTENDEES, event_id, request, services, span)


@get("/api/events/{event_id:str}/orders.csv", guards=[event_guard], media_type=CSV)
async def orders_csv(
    event_id: FromPath[str], request: AnyRequest, services: Deps, start: From = None, end: To = None
) -> Stream:
    """``order_id,created_at,email,name,status,amount,discount,promo_code,currency``."""
    span = period.parse(start, end)
    return await _export(exports.ORDERS, event_id, request, services, span)


ROUTES = [event_report, platform_report, attendees_csv, orders_csv]
