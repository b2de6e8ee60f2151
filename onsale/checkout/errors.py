"""Why checkout, payments and orders refuse."""

from __future__ import annotations

from enum import StrEnum

from onsale.domain import DomainError


class CheckoutRejection(StrEnum):
    #: The hold has expired, was released, or never was: hold tickets again.
    HOLD_EXPIRED = "hold_expired"
    #: The Idempotency-Key, or the hold, already belongs to another checkout.
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    #: A twin checkout of the same hold is still settling, or failed: retry.
    RETRY = "retry"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_TOKEN_INVALID = "order_token_invalid"
    #: Stripe refused or could not be reached, or payments are not configured.
    PAYMENT_FAILED = "payment_failed"
    #: A webhook whose ``Stripe-Signature`` does not verify (or is stale).
    INVALID_SIGNATURE = "invalid_signature"


class CheckoutRejected(DomainError):
    reason: CheckoutRejection

    def __init__(self, reason: CheckoutRejection, detail: str | None = None) -> None:
        super().__init__(reason, detail)
