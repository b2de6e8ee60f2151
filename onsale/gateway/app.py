"""The app factory: Litestar, its lifespan, dependency injection and error handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from onsale import config
from onsale.config import Settings
from onsale.gateway.errors import HANDLERS
from onsale.gateway.routes import events, health, holds, pages, queue
from onsale.gateway.services import Services, open_services


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or config.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            yield

    return Litestar(
        route_handlers=[
            *health.ROUTES,
            *events.ROUTES,
            *queue.ROUTES,
            *holds.ROUTES,
            *pages.ROUTES,
        ],
        lifespan=[lifespan],
        dependencies={"services": Provide(_services, sync_to_thread=False)},
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        openapi_config=None,
    )
