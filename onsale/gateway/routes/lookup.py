"""``POST /api/orders/lookup``: Find my tickets. Always ``202``, with the same body."""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response, post
from litestar.background_tasks import BackgroundTask

from onsale import keys
from onsale.checkout import lookup
from onsale.errors import ApiError, Code
from onsale.gateway.body import decode
from onsale.gateway.ratelimit import client_address
from onsale.gateway.types import AnyRequest, Deps

#: Lookups per client address and minute (a person needs one; a form resent a few times).
PER_CLIENT = 10
#: Lookups of one address per minute, whoever asks (its mailbox is not to be flooded).
PER_ADDRESS = 3

ACCEPTED = {
    "status": "accepted",
    "detail": "If this address has orders, a message with links to them is on its way.",
}


class LookupIn(msgspec.Struct, forbid_unknown_fields=True):
    email: str


@post("/api/orders/lookup", status_code=202)
async def order_lookup(request: AnyRequest, services: Deps) -> Response[dict[str, str]]:
    await services.limiter.check(keys.LOOKUP_LIMIT, client_address(request), PER_CLIENT)
    data = decode(await request.body(), LookupIn)
    address = lookup.normalize(data.email)
    if address is None:
        raise ApiError(Code.INVALID_REQUEST, "email: not an e-mail address")
    await services.limiter.check(keys.LOOKUP_ADDRESS_LIMIT, lookup.digest(address), PER_ADDRESS)
    # After the answer is sent: its timing says nothing about whether the address bought.
    work = BackgroundTask(
        lookup.send_links_quietly,
        services.pool,
        services.order_tokens,
        lookup.public_url(services.settings),
        address,
    )
    return Response(ACCEPTED, status_code=202, media_type=MediaType.JSON, background=work)


ROUTES = [order_lookup]
