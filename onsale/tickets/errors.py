"""Why a ticket is refused: at the door, or to a buyer asking for its image."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from onsale.domain import DomainError


class TicketRejection(StrEnum):
    #: The event id a scanner sent is not a UUID.
    INVALID_EVENT_ID = "invalid_event_id"
    #: Malformed, or the signature does not verify.
    INVALID_TICKET = "invalid_ticket"
    #: Genuine, for another event (``facts``: ``event_id``).
    WRONG_EVENT = "wrong_event"
    #: First scan won already (``facts``: ``ticket_id``, ``checked_in_at``, ``checked_in_by``).
    ALREADY_CHECKED_IN = "already_checked_in"
    #: Unknown: not a ticket of that order, or genuine but not recorded yet.
    NOT_FOUND = "ticket_not_found"
    #: Refunded or cancelled (``facts``: ``ticket_id``, ``status``).
    NOT_VALID = "ticket_not_valid"
    #: The ticket changed under the check-in: scan again.
    CHANGED = "ticket_changed"


class TicketRejected(DomainError):
    reason: TicketRejection

    def __init__(
        self,
        reason: TicketRejection,
        detail: str | None = None,
        *,
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(reason, detail, facts=facts)
