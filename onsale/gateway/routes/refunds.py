"""Refunding one order (the owner of its event, or an admin)."""

from __future__ import annotations

from litestar import post
from litestar.params import FromPath

from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.checkout.models import OrderOut
from onsale.checkout.refunds import RefundIn, Refunds, event_of_order
from onsale.gateway.auth import event_guard
from onsale.gateway.body import decode
from onsale.gateway.types import AnyRequest, Deps


@post("/api/orders/{order_id:str}/refund", guards=[event_guard], status_code=200)
async def refund_order(order_id: FromPath[str], request: AnyRequest, services: Deps) -> OrderOut:
    """Refund the order through Stripe and void its tickets (``return_to_sale``: they are on
    sale again); the order as ``GET /api/orders/{id}`` shows it. Again: ``409
    already_refunded``."""
    data = decode(await request.body(), RefundIn)
    # The guard found the same event (or the body's, for an order it could not find).
    event_id = await event_of_order(services.pool, services.redis, order_id, data.event_id)
    if event_id is None:
        raise CheckoutRejected(CheckoutRejection.ORDER_NOT_FOUND)
    refunds = Refunds(services.pool, services.checkout, services.orders)
    return await refunds.refund(
        event_id, order_id, reason=data.reason, return_to_sale=data.return_to_sale
    )


ROUTES = [refund_order]
