"""The door scanner ``/scan``: a page for staff that scans tickets with the camera and keeps
working offline (its service worker keeps the page; scan.js keeps the event's manifest and
the public keys in IndexedDB and verifies signatures in the browser)."""

from __future__ import annotations

from urllib.parse import quote

from litestar import MediaType, Response, get
from litestar.response import Redirect

from onsale.accounts.sessions import COOKIE
from onsale.gateway.routes.pages import STATIC, _asset, render
from onsale.gateway.types import AnyRequest

ASSETS = {
    "css": _asset("buyer.css"),
    "scan_css": _asset("scan.css"),
    "scan_js": _asset("scan.js"),
    "jsqr_js": _asset("vendor/jsQR.js"),
}

_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; worker-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(self)",
    "X-Robots-Tag": "noindex",
    # The service worker asks the network first and keeps its own copy for offline use.
    "Cache-Control": "no-cache",
}


@get("/scan", include_in_schema=False)
async def scan_page(request: AnyRequest) -> Response[bytes] | Redirect:
    """The scanner, for a session or a bearer token (a kiosk that sends the header); anyone
    else signs in first. Whether the credentials are good is the API's answer to the page."""
    if not request.cookies.get(COOKIE) and not request.headers.get("authorization"):
        return Redirect(f"/login?next={quote('/scan', safe='/')}", status_code=303)
    body = render("scan.html", scan=ASSETS)
    return Response(body, media_type=MediaType.HTML, headers=_HEADERS)


@get("/scan/sw.js", include_in_schema=False)
async def scan_worker() -> Response[bytes]:
    """The scanner's service worker; allowed the scope ``/scan`` (the page itself)."""
    body = (STATIC / "scan-sw.js").read_bytes()
    headers = {
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Service-Worker-Allowed": "/scan",
    }
    return Response(body, media_type="text/javascript", headers=headers)


ROUTES = [scan_page, scan_worker]
