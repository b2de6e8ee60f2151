"""Pages for people: the buyer's page, server-rendered, then driven by a small script."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from onsale.config import StripeSettings
from onsale.events import catalog
from onsale.events.currencies import ZERO_DECIMAL
from onsale.events.errors import EventRejected, EventRejection
from onsale.events.models import Event
from onsale.gateway.types import Deps

log = logging.getLogger("onsale.gateway")

_GATEWAY = Path(__file__).resolve().parent.parent
TEMPLATES = _GATEWAY / "templates"
STATIC = _GATEWAY / "static"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _asset(name: str) -> str:
    """A static file's URL with a content hash, so browsers may cache it for long."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


ASSETS = {
    "css": _asset("buyer.css"),
    "js": _asset("buyer.js"),
    "checkout_js": _asset("checkout.js"),
    # Find my tickets: on this page and on the order page.
    "lookup_css": _asset("lookup.css"),
    "lookup_js": _asset("lookup.js"),
    "presale_js": _asset("presale.js"),
    "presale_css": _asset("presale.css"),
    "promo_js": _asset("buyer_promo.js"),
    # The bot tax: the ALTCHA widget (npm altcha 3.2.2, vendored) and its SHA-256 worker,
    # loaded by buyer_pow.js only when the event asks for a proof-of-work.
    "pow_js": _asset("buyer_pow.js"),
    "altcha_js": _asset("vendor/altcha.min.js"),
    "altcha_worker": _asset("vendor/altcha-sha.worker.js"),
}

#: Stripe.js must be loaded from Stripe itself (never bundled or self-hosted).
STRIPE_JS = "https://js.stripe.com/v3/"

#: ISO 4217 currencies with three minor digits (1 BHD = 1000 fils).
_THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def minor_exponent(currency: str) -> int:
    """Digits after the point: ``price`` 4500 in USD is 45.00, in JPY it is 4500."""
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in _THREE_DECIMAL else 2


def money(minor: int, currency: str) -> str:
    """A plain rendering for the server (the script reformats it for the reader's locale)."""
    exponent = minor_exponent(currency)
    whole, fraction = divmod(minor, 10**exponent)
    return f"{currency} {whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")


def when(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc:%A} {utc.day} {utc:%B %Y, %H:%M} UTC"


def stripe_js(stripe: StripeSettings) -> str:
    """Where the buyer's browser gets Stripe.js: Stripe's, or the emulator's stand-in."""
    if stripe.api_base:
        return stripe.api_base.rstrip("/") + "/js.stripe.com/v3/"
    return STRIPE_JS


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _context(event: Event) -> dict[str, Any]:
    # Once the general sale has opened a code no longer helps: the page says nothing of it.
    presale = event.onsale.presale_opens_at
    if datetime.now(UTC) >= event.onsale.opens_at:
        presale = None
    venue = event.venue
    place = ", ".join(p for p in (venue.name, venue.city, venue.country) if p) if venue else ""
    tiers = [
        {
            "id": t.id,
            "name": t.name,
            "description": t.description,
            "price": t.price,
            "price_text": "Free" if t.price == 0 else money(t.price, event.currency),
            # The per-order limit the inventory enforces; the picker offers no more than exist.
            "limit": t.per_order_limit or catalog.DEFAULT_TIER_LIMIT,
            "most": min(t.per_order_limit or catalog.DEFAULT_TIER_LIMIT, t.capacity),
        }
        for t in event.tiers
    ]
    return {
        "event": event,
        "venue": place,
        "starts_iso": event.starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "starts_text": when(event.starts_at),
        "opens_iso": event.onsale.opens_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "opens_text": when(event.onsale.opens_at),
        # A presale (access codes) before the general sale: the page offers the code field.
        "presale_iso": _iso(presale) if presale else "",
        "presale_text": when(presale) if presale else "",
        "exponent": minor_exponent(event.currency),
        "tiers": tiers,
    }


def render(template: str, **context: Any) -> bytes:
    return _env.get_template(template).render(assets=ASSETS, **context).encode()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


#: Same-origin scripts and styles only, nothing inline. Pages that take payment add
#: Stripe's origins (see ``csp``).
_CSP_BASE = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def _policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


@functools.cache
def csp(stripe: StripeSettings) -> str:
    """The buyer page's policy: ours, plus what Stripe.js needs to load, talk and frame.

    Stripe's list (its integration security guide): the script and its frames from
    js.stripe.com, API calls to api.stripe.com, 3-D Secure frames from hooks.stripe.com.
    The emulator serves all of that from its one origin. QR images arrive as blob: URLs.
    """
    if stripe.api_base:
        origin = _origin(stripe.api_base)
        script = frame = connect = origin
    else:
        script = "https://js.stripe.com https://*.js.stripe.com"
        frame = f"{script} https://hooks.stripe.com"
        connect = "https://api.stripe.com"
    return _policy(
        {
            **_CSP_BASE,
            "script-src": f"'self' {script}",
            "connect-src": f"'self' {connect}",
            "frame-src": frame,
            "img-src": "'self' data: blob:",
        }
    )


#: Seconds a rendered page is reused. At opening time thousands of people load the same
#: page each second; without this every load would be a Postgres query.
PAGE_TTL_S = 5.0
_MAX_CACHED = 512
_cache: dict[str, tuple[float, bytes]] = {}

_HEADERS = {
    "Content-Security-Policy": _policy(_CSP_BASE),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _page(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    headers = {**_HEADERS, "Cache-Control": "no-store", **(headers or {})}
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=headers)


def _pow_on(event: Event, default: int) -> bool:
    own = event.onsale.pow_difficulty
    return (default if own is None else own) > 0


async def _event_page(services: Deps, event_id: str) -> bytes:
    now = time.monotonic()
    hit = _cache.get(event_id)
    if hit and hit[0] > now:
        return hit[1]
    stripe = services.settings.stripe
    body = render(
        "event.html",
        **_context(event := await catalog.get(services.pool, event_id)),
        # Without a publishable key the page says card payment is unavailable.
        stripe_js=stripe_js(stripe) if stripe.publishable_key else "",
        stripe_key=stripe.publishable_key,
        # The emulator's Stripe.js cannot take a card alone: this completes it (dev only).
        stripe_bridge="/static/stripe-emulator.js" if stripe.emulated else "",
        # Solve the proof-of-work before the first join (a 403 pow_required says it too).
        pow=_pow_on(event, services.settings.pow.difficulty),
    )
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    _cache[event_id] = (now + PAGE_TTL_S, body)
    return body


@get("/e/{event_id:str}", include_in_schema=False)
async def buyer_page(event_id: FromPath[str], services: Deps) -> Response[bytes]:
    try:
        body = await _event_page(services, event_id)
    except EventRejected as exc:
        if exc.reason is not EventRejection.NOT_FOUND:
            raise
        return _page(
            render(
                "message.html",
                title="Event not found",
                heading="We can't find that event",
                message="The link may be mistyped, or the event may have been removed. "
                "Check the address, or go back to where you found the link.",
            ),
            status=404,
        )
    except (OSError, asyncpg.CannotConnectNowError, asyncpg.InterfaceError) as exc:
        log.error("buyer page for %s unavailable: %s", event_id, exc)
        page = render(
            "message.html",
            title="Busy right now",
            heading="We're busy right now",
            message="This page could not load. Please try again in a few seconds.",
        )
        return _page(page, status=503, headers={"Retry-After": "5"})
    headers = {
        "Cache-Control": f"public, max-age={int(PAGE_TTL_S)}",
        "Content-Security-Policy": csp(services.settings.stripe),
    }
    return _page(body, headers=headers)


static = create_static_files_router(
    path="/static",
    directories=[STATIC],
    name="static",
    # Pages link assets with a content hash (?v=...), so a new release is a new URL.
    cache_control=CacheControlHeader(max_age=86_400, public=True),
)

ROUTES: list[ControllerRouterHandler] = [buyer_page, static]
