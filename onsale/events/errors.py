"""Why the catalog refuses."""

from __future__ import annotations

from enum import StrEnum

from onsale.domain import DomainError


class EventRejection(StrEnum):
    NOT_FOUND = "event_not_found"
    #: A tier's capacity would go below the tickets already held or sold.
    CAPACITY_BELOW_TAKEN = "capacity_below_taken"
    #: The organizer's request does not make sense (the detail says why).
    INVALID = "invalid_event"


class EventRejected(DomainError):
    reason: EventRejection

    def __init__(self, reason: EventRejection, detail: str | None = None) -> None:
        super().__init__(reason, detail)
