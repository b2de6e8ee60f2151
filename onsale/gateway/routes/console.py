"""Pages for organizers and admins: sign-in, my events, an event's form and live dashboard,
and the admin's users and events. Server-rendered shells; console.js does the rest through
the JSON API, signed in by the session cookie (and sends people without one to /login)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from onsale.accounts.sessions import COOKIE
from onsale.gateway.routes.pages import _asset, _page, render
from onsale.gateway.types import AnyRequest

ASSETS = {
    "console_css": _asset("console.css"),
    "console_js": _asset("console.js"),
    "dashboard_js": _asset("dashboard.js"),
    "chart_js": _asset("vendor/chart.umd.js"),
    "promo_js": _asset("console_promo.js"),
    "promo_css": _asset("console_promo.css"),
    "report_js": _asset("report.js"),
    "report_css": _asset("report.css"),
    "access_js": _asset("console_access.js"),
    "access_css": _asset("console_access.css"),
}


def _console(
    request: AnyRequest | None, template: str, page: str, title: str, **context: Any
) -> Response[bytes] | Redirect:
    """A console page, or without a session cookie the way to sign in and come back.

    Whether the cookie's session is alive (and what its person may see) is the API's
    decision: the page's script asks /api/me and sends a lapsed session to /login too.
    """
    if request is not None and not request.cookies.get(COOKIE):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(target, safe='/')}", status_code=303)
    body = render(template, console=ASSETS, page=page, title=title, **context)
    return _page(body, headers={"X-Robots-Tag": "noindex"})


@get("/login", include_in_schema=False)
async def login_page() -> Response[bytes] | Redirect:
    return _console(None, "console_login.html", "login", "Sign in")


@get("/organizer", include_in_schema=False)
async def organizer_page(request: AnyRequest) -> Response[bytes] | Redirect:
    return _console(request, "console_events.html", "events", "My events")


@get("/organizer/events/new", include_in_schema=False)
async def new_event_page(request: AnyRequest) -> Response[bytes] | Redirect:
    return _console(request, "console_event_form.html", "event-form", "New event", event_id="")


@get("/organizer/events/{event_id:str}/edit", include_in_schema=False)
async def edit_event_page(
    request: AnyRequest, event_id: FromPath[str]
) -> Response[bytes] | Redirect:
    return _console(
        request, "console_event_form.html", "event-form", "Edit event", event_id=event_id
    )


@get("/organizer/events/{event_id:str}", include_in_schema=False)
async def dashboard_page(
    request: AnyRequest, event_id: FromPath[str]
) -> Response[bytes] | Redirect:
    return _console(
        request, "console_dashboard.html", "dashboard", "Live dashboard", event_id=event_id
    )


@get("/organizer/events/{event_id:str}/report", include_in_schema=False)
async def report_page(request: AnyRequest, event_id: FromPath[str]) -> Response[bytes] | Redirect:
    return _console(request, "console_report.html", "report", "Report", event_id=event_id)


@get("/admin", include_in_schema=False)
async def admin_page(request: AnyRequest) -> Response[bytes] | Redirect:
    return _console(request, "console_admin.html", "admin", "Admin")


ROUTES: list[ControllerRouterHandler] = [
    login_page,
    organizer_page,
    new_event_page,
    edit_event_page,
    dashboard_page,
    report_page,
    admin_page,
]
