"""Why the waiting room refuses a token."""

from __future__ import annotations

from enum import StrEnum

from onsale.domain import DomainError


class TokenRejection(StrEnum):
    #: Not a visitor token this engine issued for this event.
    VISITOR_TOKEN_INVALID = "visitor_token_invalid"
    #: A bad signature, an expired admission, or one for another event.
    ADMISSION_INVALID = "admission_invalid"
    #: A presale admission used for a tier its access code does not open.
    TIER_NOT_IN_PRESALE = "tier_not_in_presale"


class TokenRejected(DomainError):
    reason: TokenRejection

    def __init__(self, reason: TokenRejection, detail: str | None = None) -> None:
        super().__init__(reason, detail)
