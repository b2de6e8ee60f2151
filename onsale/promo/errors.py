"""Why a promo code is refused when an organizer makes one."""

from __future__ import annotations

from enum import StrEnum

from onsale.domain import DomainError


class PromoRejection(StrEnum):
    #: The request does not make sense (the detail says why).
    INVALID = "invalid_promo_code"
    #: The event has a code of this name already (names are case-insensitive).
    CODE_TAKEN = "promo_code_taken"


class PromoRejected(DomainError):
    reason: PromoRejection

    def __init__(self, reason: PromoRejection, detail: str | None = None) -> None:
        super().__init__(reason, detail)
