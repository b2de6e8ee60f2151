"""Promo codes of an event: made and listed by its owner (or an admin)."""

from __future__ import annotations

from litestar import get, post
from litestar.params import FromPath

from onsale.gateway import openapi
from onsale.gateway.auth import event_guard
from onsale.gateway.body import decode
from onsale.gateway.types import AnyRequest, Deps
from onsale.promo import codes
from onsale.promo.models import PromoIn, PromoOut


@post(
    "/api/events/{event_id:str}/promo-codes",
    guards=[event_guard],
    status_code=201,
    operation_class=openapi.body(PromoIn),
)
async def create_promo_code(
    event_id: FromPath[str], request: AnyRequest, services: Deps
) -> PromoOut:
    data = decode(await request.body(), PromoIn)
    return await codes.create(services.pool, services.redis, event_id, data)


@get("/api/events/{event_id:str}/promo-codes", guards=[event_guard])
async def list_promo_codes(event_id: FromPath[str], services: Deps) -> list[PromoOut]:
    return await codes.listing(services.pool, services.redis, event_id)


ROUTES = [create_promo_code, list_promo_codes]
