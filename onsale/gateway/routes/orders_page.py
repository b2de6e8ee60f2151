"""The buyer's order page ``/o/{order_id}?t={order_token}``, from the e-mailed link.

Rendered whole on the server, QR codes inlined as images, so that once loaded the page
needs nothing more: a service worker (``/o/sw.js``, scope ``/o/``) keeps it for the door,
where there may be no signal. The token is in the URL; it is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC
from typing import Any

import asyncpg
from litestar import MediaType, Response, get
from litestar.params import FromPath
from redis.exceptions import RedisError

from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.events import catalog
from onsale.events.errors import EventRejected
from onsale.gateway.routes.pages import STATIC, _asset, money, render, when
from onsale.gateway.types import AnyRequest, Deps
from onsale.tickets import render as qr

log = logging.getLogger("onsale.gateway")

ASSETS = {"order_css": _asset("order.css"), "order_js": _asset("order.js")}

_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # The URL carries the order token: never sent on to another page.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}

#: What each status tells the buyer: (headline, explanation, QR codes shown).
STATUS: dict[str, tuple[str, str, bool]] = {
    "confirmed": ("Paid", "Show a ticket's QR code at the door.", True),
    "pending": (
        "Payment not confirmed yet",
        "We have not received the payment for this order yet. Reload this page in a minute.",
        False,
    ),
    "refunding": (
        "Being refunded: these tickets are void",
        "This order is being refunded. Its tickets are no longer valid and will not be "
        "accepted at the door.",
        False,
    ),
    "refunded": (
        "Refunded: these tickets are void",
        "This order was refunded. Its tickets are no longer valid and will not be accepted "
        "at the door.",
        False,
    ),
    "failed": (
        "Payment failed",
        "The payment for this order did not go through, so it has no valid tickets.",
        False,
    ),
}


def _page(body: bytes, status: int = 200) -> Response[bytes]:
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=_HEADERS)


def _message(heading: str, message: str, status: int) -> Response[bytes]:
    page = render(
        "order_message.html",
        title=heading,
        heading=heading,
        message=message,
        order_assets=ASSETS,
    )
    return _page(page, status)


def _data_url(payload: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr.png(payload)).decode()


async def _context(services: Deps, order_id: str, token: str) -> dict[str, Any]:
    event_id = services.order_tokens.verify(order_id, token)
    order = await services.orders.find(event_id, order_id)
    event = await catalog.get(services.pool, event_id)
    tiers = {t.id: t.name for t in event.tiers}
    headline, explanation, valid = STATUS.get(order.status, (order.status.capitalize(), "", False))
    # Pure Python, tens of milliseconds per code the first time: off the event loop.
    payloads = [t.qr for t in order.tickets] if valid else []
    images = await asyncio.to_thread(lambda: [_data_url(p) for p in payloads])
    tickets = [
        {
            "id": t.ticket_id,
            "tier": tiers.get(t.tier_id, "Ticket"),
            "qr": images[i] if valid else "",
            "payload": t.qr if valid else "",
        }
        for i, t in enumerate(order.tickets)
    ]
    venue = event.venue
    place = ", ".join(p for p in (venue.name, venue.city, venue.country) if p) if venue else ""
    return {
        "event": event,
        "venue": place,
        "starts_text": when(event.starts_at.astimezone(UTC)),
        "order": order,
        "amount_text": "Free" if order.amount == 0 else money(order.amount, order.currency),
        "headline": headline,
        "explanation": explanation,
        "valid": valid,
        "tickets": tickets,
    }


@get("/o/{order_id:str}", include_in_schema=False)
async def order_page(
    order_id: FromPath[str], request: AnyRequest, services: Deps
) -> Response[bytes]:
    token = request.query_params.get("t", "")
    if not token:
        return _message(
            "This link is incomplete",
            "The link to your order is missing its code. Open the link from your "
            "confirmation e-mail again, or ask for a new one below.",
            403,
        )
    try:
        context = await _context(services, order_id, token)
    except CheckoutRejected as exc:
        if exc.reason is CheckoutRejection.ORDER_NOT_FOUND:
            return _message(
                "Order not found yet",
                "We can't find this order right now. If you paid a moment ago, reload in a "
                "minute; otherwise ask for a new link below.",
                404,
            )
        return _message(
            "This link is not valid",
            "The link to this order is wrong or incomplete. Open the link from your "
            "confirmation e-mail again, or ask for a new one below.",
            403,
        )
    except EventRejected:
        return _message("Event not found", "The event of this order no longer exists.", 404)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RedisError) as exc:
        # The order id only: the token stays out of the logs.
        log.error("order page for %s unavailable: %s", order_id, type(exc).__name__)
        return _message(
            "We're busy right now", "This page could not load. Try again in a few seconds.", 503
        )  # the service worker shows its kept copy of the page instead, if it has one
    return _page(render("order.html", order_assets=ASSETS, **context))


@get("/o/sw.js", include_in_schema=False)
async def order_worker() -> Response[bytes]:
    """The order pages' service worker, served from /o/ so that its scope covers them."""
    body = (STATIC / "order-sw.js").read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type="text/javascript", headers=headers)


ROUTES = [order_page, order_worker]
