"""Why a join's proof-of-work is refused."""

from __future__ import annotations

from enum import StrEnum

from onsale.domain import DomainError


class PowRejection(StrEnum):
    #: The event asks for a proof-of-work and the join brought none.
    POW_REQUIRED = "pow_required"
    #: Malformed, forged, for another event, expired, too easy, or already spent.
    POW_INVALID = "pow_invalid"


class PowRejected(DomainError):
    reason: PowRejection

    def __init__(self, reason: PowRejection, detail: str | None = None) -> None:
        super().__init__(reason, detail)
