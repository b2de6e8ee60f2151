"""Why the catalog refuses."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from onsale.domain import DomainError


class EventRejection(StrEnum):
    NOT_FOUND = "event_not_found"
    #: A tier's capacity would go below the tickets already held or sold.
    CAPACITY_BELOW_TAKEN = "capacity_below_taken"
    #: The organizer's request does not make sense (the detail says why).
    INVALID = "invalid_event"
    #: A change allowed only before the sale opens (a price, the schedule), after it opened.
    SALE_STARTED = "sale_started"
    #: Cancelling an event with paid orders needs refunds, which do not exist yet.
    HAS_PAID_ORDERS = "has_paid_orders"
    #: The event is cancelled: nothing about it changes any more.
    CANCELLED = "event_cancelled"


class EventRejected(DomainError):
    reason: EventRejection

    def __init__(
        self,
        reason: EventRejection,
        detail: str | None = None,
        *,
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(reason, detail, facts=facts)
