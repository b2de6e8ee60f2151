"""The app factory: Litestar, its lifespan, dependency injection and error handlers."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.di import Provide

from onsale import config
from onsale.config import Settings
from onsale.gateway import metrics, openapi
from onsale.gateway.errors import HANDLERS
from onsale.gateway.fastpath import HotPaths
from onsale.gateway.routes import (
    access,
    accounts,
    challenge,
    checkout,
    console,
    events,
    health,
    holds,
    lookup,
    mail,
    orders_page,
    pages,
    promo,
    queue,
    refunds,
    reports,
    scan,
    tickets,
)
from onsale.gateway.services import Services, open_services

_frozen: list[bool] = []


def _freeze_once() -> None:
    """What start-up made lives as long as the process: out of the collector's sight, so
    that its full passes look only at what requests leave behind. Once per process (tests
    start many apps), after a collection, so that no garbage is frozen with it."""
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen.append(True)


def create_app(settings: Settings | None = None, *, hot_paths: bool = True) -> Litestar:
    """The gateway. ``hot_paths=False`` leaves queue polls and holds to their Litestar
    routes (the fast path's answers are tested against theirs)."""
    settings = settings or config.load()
    opened: list[Services] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services  # for guards, which get no dependencies
            app.state.live = events.live_hub(services)  # one per process: see events/live.py
            opened.append(services)
            _freeze_once()
            try:
                yield
            finally:
                await app.state.live.close()
            opened.clear()

    def provide_services() -> Services:
        # No parameters: Litestar then has nothing to parse per request (hot path).
        return opened[0]

    app = Litestar(
        route_handlers=[
            *health.ROUTES,
            *events.ROUTES,
            *queue.ROUTES,
            *challenge.ROUTES,
            *holds.ROUTES,
            *promo.ROUTES,
            *access.ROUTES,
            *checkout.ROUTES,
            *refunds.ROUTES,
            *reports.ROUTES,
            *tickets.ROUTES,
            *accounts.ROUTES,
            *lookup.ROUTES,
            *orders_page.ROUTES,
            *mail.ROUTES,
            *pages.ROUTES,
            *console.ROUTES,
            *scan.ROUTES,
            *metrics.ROUTES,
        ],
        lifespan=[lifespan],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        # /schema: the document and a docs UI served from our own static files.
        openapi_config=openapi.config(),
    )
    # Queue polls and holds first, past Litestar (see fastpath.py); then, outside
    # Litestar's exception handling, the observer, so every answer (404s, 500s) is seen.
    inner = HotPaths(app.asgi_handler, provide_services) if hot_paths else app.asgi_handler
    app.asgi_handler = metrics.RequestObserver(inner)
    return app
