"""The error catalog: stable codes, their HTTP status and default message.

Every error a client sees is ``{"code": ..., "detail": ...}`` with a code from here.
Domain packages never raise these: they raise their own refusals
(:class:`onsale.domain.DomainError`), which ``onsale/gateway/errors.py`` maps to a code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Code(StrEnum):
    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    LOGIN_REQUIRED = "login_required"
    INVALID_CREDENTIALS = "invalid_credentials"
    CSRF_FAILED = "csrf_failed"
    EMAIL_TAKEN = "email_taken"
    USER_NOT_FOUND = "user_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_PLACES = "too_many_places"
    EVENT_NOT_FOUND = "event_not_found"
    SOLD_OUT = "sold_out"
    INSUFFICIENT_INVENTORY = "insufficient_inventory"
    LIMIT_EXCEEDED = "limit_exceeded"
    CAPACITY_BELOW_TAKEN = "capacity_below_taken"
    SALE_STARTED = "sale_started"
    HAS_PAID_ORDERS = "has_paid_orders"
    EVENT_CANCELLED = "event_cancelled"
    VISITOR_TOKEN_INVALID = "visitor_token_invalid"
    ADMISSION_REQUIRED = "admission_required"
    ADMISSION_INVALID = "admission_invalid"
    ADMISSION_ENDED = "admission_ended"
    ACCESS_CODE_INVALID = "access_code_invalid"
    TIER_NOT_IN_PRESALE = "tier_not_in_presale"
    POW_REQUIRED = "pow_required"
    POW_INVALID = "pow_invalid"
    HOLD_NOT_FOUND = "hold_not_found"
    HOLD_EXPIRED = "hold_expired"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    ORDER_TOKEN_INVALID = "order_token_invalid"
    ORDER_NOT_FOUND = "order_not_found"
    ALREADY_REFUNDED = "already_refunded"
    ORDER_NOT_PAID = "order_not_paid"
    INVALID_SIGNATURE = "invalid_signature"
    PAYMENT_PROVIDER_ERROR = "payment_provider_error"
    INVALID_TICKET = "invalid_ticket"
    WRONG_EVENT = "wrong_event"
    ALREADY_CHECKED_IN = "already_checked_in"
    TICKET_NOT_FOUND = "ticket_not_found"
    TICKET_NOT_VALID = "ticket_not_valid"
    PROMO_INVALID = "promo_invalid"
    PROMO_CODE_TAKEN = "promo_code_taken"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


CATALOG: dict[Code, tuple[int, str]] = {
    Code.INVALID_REQUEST: (422, "The request is not valid."),
    Code.UNAUTHORIZED: (401, "A valid bearer token is required."),
    Code.FORBIDDEN: (403, "This token may not do that."),
    Code.LOGIN_REQUIRED: (401, "Sign in first."),
    Code.INVALID_CREDENTIALS: (401, "Wrong e-mail or password."),
    Code.CSRF_FAILED: (403, "Send the session's X-CSRF-Token with every change."),
    Code.EMAIL_TAKEN: (409, "A user with this e-mail exists."),
    Code.USER_NOT_FOUND: (404, "No such user."),
    Code.NOT_FOUND: (404, "No such resource."),
    Code.METHOD_NOT_ALLOWED: (405, "Method not allowed on this resource."),
    Code.CONFLICT: (409, "The request conflicts with the current state."),
    Code.PAYLOAD_TOO_LARGE: (413, "The request body is too large."),
    Code.RATE_LIMITED: (429, "Too many requests; retry later."),
    Code.TOO_MANY_PLACES: (
        429,
        "Your network already holds as many places in this queue as it may; retry once one "
        "has ended.",
    ),
    Code.EVENT_NOT_FOUND: (404, "No such event."),
    Code.SOLD_OUT: (409, "Sold out: no tickets of this tier are available."),
    Code.INSUFFICIENT_INVENTORY: (409, "Not enough tickets left for this request."),
    Code.LIMIT_EXCEEDED: (422, "More tickets than the per-order limit allows."),
    Code.CAPACITY_BELOW_TAKEN: (409, "Capacity cannot go below tickets already held or sold."),
    Code.SALE_STARTED: (409, "The sale has opened: this can only change before it opens."),
    Code.HAS_PAID_ORDERS: (
        409,
        "This event has paid orders: cancelling it needs refunds, which are not available yet.",
    ),
    Code.EVENT_CANCELLED: (409, "This event is cancelled."),
    Code.VISITOR_TOKEN_INVALID: (401, "The visitor token is not valid for this event."),
    Code.ADMISSION_REQUIRED: (401, "An admission token is required: wait in the queue first."),
    Code.ADMISSION_INVALID: (403, "The admission token is not valid for this event."),
    Code.ADMISSION_ENDED: (403, "This admission has ended; join the queue again."),
    Code.ACCESS_CODE_INVALID: (
        403,
        "This access code is not valid for this event's presale, or has been used up.",
    ),
    Code.TIER_NOT_IN_PRESALE: (403, "This presale admission does not include that tier."),
    Code.POW_REQUIRED: (
        403,
        "Joining this queue needs a solved proof-of-work challenge (header X-Altcha); get one "
        "from the challenge URL.",
    ),
    Code.POW_INVALID: (
        403,
        "This proof-of-work is not valid for this event (forged, expired or already used); "
        "solve a new challenge.",
    ),
    Code.HOLD_NOT_FOUND: (404, "No such live hold."),
    Code.HOLD_EXPIRED: (409, "The hold has expired or does not exist; hold tickets again."),
    Code.IDEMPOTENCY_CONFLICT: (409, "This Idempotency-Key was used with another request."),
    Code.ORDER_TOKEN_INVALID: (401, "A valid order token is required for this order."),
    Code.ORDER_NOT_FOUND: (404, "No such order."),
    Code.ALREADY_REFUNDED: (409, "This order has already been refunded."),
    Code.ORDER_NOT_PAID: (409, "This order was never paid, so it cannot be refunded."),
    Code.INVALID_SIGNATURE: (400, "The Stripe-Signature header does not verify."),
    Code.PAYMENT_PROVIDER_ERROR: (502, "The payment provider failed; retry shortly."),
    Code.INVALID_TICKET: (422, "Not a valid ticket."),
    Code.WRONG_EVENT: (403, "This ticket is for another event."),
    Code.ALREADY_CHECKED_IN: (409, "This ticket has already been checked in."),
    Code.TICKET_NOT_FOUND: (404, "No such ticket."),
    Code.TICKET_NOT_VALID: (409, "This ticket is no longer valid: it was refunded or cancelled."),
    Code.PROMO_INVALID: (422, "This promo code is not valid for these tickets now."),
    Code.PROMO_CODE_TAKEN: (409, "This event has a promo code of that name already."),
    Code.UNAVAILABLE: (503, "A backing service is unavailable; retry shortly."),
    Code.INTERNAL_ERROR: (500, "Internal error."),
}


class ApiError(Exception):
    """Raised by the gateway, or made there from a domain error; rendered as the catalog's
    status and body."""

    def __init__(
        self,
        code: Code,
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        default_status, default_detail = CATALOG[code]
        self.code = code
        self.detail = detail or default_detail
        self.status = status or default_status
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(f"{code}: {self.detail}")

    def body(self) -> dict[str, Any]:
        return {"code": str(self.code), "detail": self.detail, **self.extra}
