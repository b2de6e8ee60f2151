"""Every error leaves as ``{"code", "detail"}`` with a stable code; never a bare 500.

Domain packages refuse with their own errors (:class:`onsale.domain.DomainError`); this is
the one place that says which wire code (``onsale/errors.py``) each refusal is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import asyncpg
from litestar import MediaType, Response
from litestar.exceptions import HTTPException, ValidationException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from onsale.accounts.models import AccountRejected, AccountRejection
from onsale.botgate.errors import PowRejected, PowRejection
from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.checkout.refunds import RefundRejected, RefundRejection
from onsale.domain import DomainError
from onsale.errors import CATALOG, ApiError, Code
from onsale.events.errors import EventRejected, EventRejection
from onsale.gateway.types import AnyRequest
from onsale.inventory import HoldRejected, PromoWhy, Rejection
from onsale.promo.errors import PromoRejected, PromoRejection
from onsale.queue.errors import TokenRejected, TokenRejection
from onsale.reports.errors import ReportRejected, ReportRejection
from onsale.tickets.errors import TicketRejected, TicketRejection

log = logging.getLogger("onsale.gateway")

_BY_STATUS = {
    400: Code.INVALID_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    409: Code.CONFLICT,
    413: Code.PAYLOAD_TOO_LARGE,
    429: Code.RATE_LIMITED,
    503: Code.UNAVAILABLE,
}


#: Each domain error's reasons and their wire codes. A hold refused for a reason not here
#: (an unknown tier, a bad quantity) is ``invalid_request``, naming the reason.
CODES: dict[type[DomainError], Mapping[StrEnum, Code]] = {
    AccountRejected: {
        AccountRejection.NO_CREDENTIALS: Code.UNAUTHORIZED,
        AccountRejection.BAD_TOKEN: Code.UNAUTHORIZED,
        AccountRejection.LOGIN_REQUIRED: Code.LOGIN_REQUIRED,
        AccountRejection.CSRF_FAILED: Code.CSRF_FAILED,
        AccountRejection.FORBIDDEN: Code.FORBIDDEN,
        AccountRejection.EVENT_NOT_FOUND: Code.EVENT_NOT_FOUND,
        AccountRejection.INVALID_CREDENTIALS: Code.INVALID_CREDENTIALS,
        AccountRejection.THROTTLED: Code.RATE_LIMITED,
        AccountRejection.EMAIL_TAKEN: Code.EMAIL_TAKEN,
        AccountRejection.USER_NOT_FOUND: Code.USER_NOT_FOUND,
        AccountRejection.NOT_FOUND: Code.NOT_FOUND,
        AccountRejection.INVALID: Code.INVALID_REQUEST,
    },
    HoldRejected: {
        Rejection.SOLD_OUT: Code.SOLD_OUT,
        Rejection.INSUFFICIENT_INVENTORY: Code.INSUFFICIENT_INVENTORY,
        Rejection.LIMIT_EXCEEDED: Code.LIMIT_EXCEEDED,
        Rejection.ADMISSION_ENDED: Code.ADMISSION_ENDED,
        Rejection.UNKNOWN_EVENT: Code.EVENT_NOT_FOUND,
        Rejection.PROMO_INVALID: Code.PROMO_INVALID,
    },
    PromoRejected: {
        PromoRejection.INVALID: Code.INVALID_REQUEST,
        PromoRejection.CODE_TAKEN: Code.PROMO_CODE_TAKEN,
    },
    TokenRejected: {
        TokenRejection.VISITOR_TOKEN_INVALID: Code.VISITOR_TOKEN_INVALID,
        TokenRejection.ADMISSION_INVALID: Code.ADMISSION_INVALID,
        TokenRejection.TIER_NOT_IN_PRESALE: Code.TIER_NOT_IN_PRESALE,
    },
    CheckoutRejected: {
        CheckoutRejection.HOLD_EXPIRED: Code.HOLD_EXPIRED,
        CheckoutRejection.IDEMPOTENCY_CONFLICT: Code.IDEMPOTENCY_CONFLICT,
        CheckoutRejection.RETRY: Code.CONFLICT,
        CheckoutRejection.ORDER_NOT_FOUND: Code.ORDER_NOT_FOUND,
        CheckoutRejection.ORDER_TOKEN_INVALID: Code.ORDER_TOKEN_INVALID,
        CheckoutRejection.PAYMENT_FAILED: Code.PAYMENT_PROVIDER_ERROR,
        CheckoutRejection.INVALID_SIGNATURE: Code.INVALID_SIGNATURE,
    },
    RefundRejected: {
        RefundRejection.ALREADY_REFUNDED: Code.ALREADY_REFUNDED,
        RefundRejection.NOT_PAID: Code.ORDER_NOT_PAID,
    },
    TicketRejected: {
        TicketRejection.INVALID_EVENT_ID: Code.INVALID_REQUEST,
        TicketRejection.INVALID_TICKET: Code.INVALID_TICKET,
        TicketRejection.WRONG_EVENT: Code.WRONG_EVENT,
        TicketRejection.ALREADY_CHECKED_IN: Code.ALREADY_CHECKED_IN,
        TicketRejection.NOT_FOUND: Code.TICKET_NOT_FOUND,
        TicketRejection.NOT_VALID: Code.TICKET_NOT_VALID,
        TicketRejection.CHANGED: Code.CONFLICT,
    },
    ReportRejected: {ReportRejection.INVALID_RANGE: Code.INVALID_REQUEST},
    PowRejected: {
        PowRejection.POW_REQUIRED: Code.POW_REQUIRED,
        PowRejection.POW_INVALID: Code.POW_INVALID,
    },
    EventRejected: {
        EventRejection.NOT_FOUND: Code.EVENT_NOT_FOUND,
        EventRejection.CAPACITY_BELOW_TAKEN: Code.CAPACITY_BELOW_TAKEN,
        EventRejection.INVALID: Code.INVALID_REQUEST,
        EventRejection.SALE_STARTED: Code.SALE_STARTED,
        EventRejection.HAS_PAID_ORDERS: Code.HAS_PAID_ORDERS,
        EventRejection.CANCELLED: Code.EVENT_CANCELLED,
    },
}


#: What a buyer is told about a refused promo code (``reason`` in the body names the case).
PROMO_WORDS = {
    PromoWhy.UNKNOWN: "There is no such promo code for this event.",
    PromoWhy.USED_UP: "This promo code has been used up.",
    PromoWhy.NOT_STARTED: "This promo code is not valid yet.",
    PromoWhy.ENDED: "This promo code has expired.",
    PromoWhy.NOT_APPLICABLE: "This promo code does not apply to the tickets chosen.",
}


def _hold_rejected(exc: HoldRejected) -> ApiError:
    """Where a hold failed goes to the client: the tier, and what is left of it."""
    code = CODES[HoldRejected].get(exc.reason, Code.INVALID_REQUEST)
    if exc.reason is Rejection.PROMO_INVALID:  # tier_id carries why (hold.lua)
        why = exc.tier_id if exc.tier_id in PROMO_WORDS else PromoWhy.UNKNOWN
        return ApiError(code, PROMO_WORDS[PromoWhy(why)], extra={"reason": str(why)})
    extra: dict[str, Any] = {}
    if exc.tier_id:
        extra["tier_id"] = exc.tier_id
    if exc.reason in (Rejection.INSUFFICIENT_INVENTORY, Rejection.SOLD_OUT):
        extra["available"] = exc.available
        detail = None
    elif exc.reason is Rejection.LIMIT_EXCEEDED:
        detail = f"at most {exc.available} more ticket(s) allowed"
    elif code is Code.INVALID_REQUEST:
        detail = f"{exc.reason}: {exc.tier_id}" if exc.tier_id else str(exc.reason)
    else:
        detail = None
    return ApiError(code, detail, extra=extra)


def to_api(exc: DomainError) -> ApiError:
    """The wire error of a domain refusal (for Litestar's handler and the fast paths)."""
    if isinstance(exc, HoldRejected):
        return _hold_rejected(exc)
    code = next((CODES[t].get(exc.reason) for t in type(exc).__mro__ if t in CODES), None)
    if code is None:
        log.error("no wire code for %s (%s): answered as an internal error", type(exc), exc)
        return ApiError(Code.INTERNAL_ERROR)
    return ApiError(code, exc.detail, extra=exc.facts)


#: An error answers one request in one moment (a place, a hold, a limit): never cached, as
#: the fast path (gateway/fastpath.py) answers its errors too.
NO_STORE = {"Cache-Control": "no-store"}


def _respond(err: ApiError) -> Response[dict[str, object]]:
    return Response(err.body(), status_code=err.status, headers=NO_STORE | err.headers,
                    media_type=MediaType.JSON)  # fmt: skip


def api_error(_: AnyRequest, exc: ApiError) -> Response[dict[str, object]]:
    return _respond(exc)


def domain_error(_: AnyRequest, exc: DomainError) -> Response[dict[str, object]]:
    return _respond(to_api(exc))


def http_error(_: AnyRequest, exc: HTTPException) -> Response[dict[str, object]]:
    if isinstance(exc, ValidationException):
        return _respond(ApiError(Code.INVALID_REQUEST, str(exc.detail), status=400))
    code = _BY_STATUS.get(exc.status_code, Code.INVALID_REQUEST)
    detail = exc.detail if exc.detail and exc.detail != CATALOG[code][1] else None
    return _respond(ApiError(code, detail, status=exc.status_code, headers=exc.headers))


def unavailable(request: AnyRequest, exc: Exception) -> Response[dict[str, object]]:
    """Redis or Postgres is down: say which, as a 503 a client can retry."""
    backend = "Postgres" if isinstance(exc, asyncpg.PostgresError | OSError) else "Redis"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        backend = "Redis"
    log.error("%s unavailable on %s %s: %s", backend, request.method, request.url.path, exc)
    return _respond(ApiError(Code.UNAVAILABLE, f"{backend} is unavailable; retry shortly.",
                             headers={"Retry-After": "2"}))  # fmt: skip


def internal(request: AnyRequest, exc: Exception) -> Response[dict[str, object]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(ApiError(Code.INTERNAL_ERROR))


HANDLERS = {
    ApiError: api_error,
    DomainError: domain_error,
    HTTPException: http_error,
    RedisConnectionError: unavailable,
    RedisTimeoutError: unavailable,
    asyncpg.CannotConnectNowError: unavailable,
    asyncpg.InterfaceError: unavailable,
    ConnectionError: unavailable,
    OSError: unavailable,
    Exception: internal,
}
