"""What the inventory engine takes and returns."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from onsale.domain import DomainError


class Rejection(StrEnum):
    """Why a hold or a confirmation was refused (the Lua scripts' reason strings)."""

    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_TIER = "unknown_tier"
    DUPLICATE_HOLD = "duplicate_hold"
    INVALID_QUANTITY = "invalid_quantity"
    LIMIT_EXCEEDED = "limit_exceeded"
    SOLD_OUT = "sold_out"
    INSUFFICIENT_INVENTORY = "insufficient_inventory"
    HOLD_EXPIRED = "hold_expired"
    HOLD_USED = "hold_used"
    CAPACITY_BELOW_TAKEN = "capacity_below_taken"
    ADMISSION_ENDED = "admission_ended"
    ORDER_SETTLED = "order_settled"
    #: A promo code that is unknown, not yet or no longer valid, used up, or for none of
    #: the hold's tiers (``HoldRejected.tier_id`` then says which of these: :class:`PromoWhy`).
    PROMO_INVALID = "promo_invalid"


class PromoWhy(StrEnum):
    """Why a promo code was refused (hold.lua's words)."""

    UNKNOWN = "unknown"
    USED_UP = "used_up"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    NOT_APPLICABLE = "not_applicable"


class HoldRejected(DomainError):
    """The engine refused; ``tier_id`` and ``available`` say where, when it knows."""

    reason: Rejection

    def __init__(self, reason: Rejection, tier_id: str = "", available: int = 0) -> None:
        super().__init__(reason)
        self.tier_id = tier_id
        self.available = available

    def __str__(self) -> str:
        return f"{self.reason}: tier={self.tier_id or '-'} available={self.available}"


class ReleaseOutcome(StrEnum):
    RELEASED = "ok"  # this call gave the tickets back
    EXPIRED = "expired"
    ALREADY_RELEASED = "released"
    CONFIRMED = "confirmed"
    NOT_FOUND = "not_found"


class TierSpec(msgspec.Struct, frozen=True):
    """A tier as the engine needs it when an event is armed."""

    tier_id: str
    capacity: int
    per_order_limit: int = 0  # 0: no limit
    price: int = 0


class TierLevel(msgspec.Struct, frozen=True):
    tier_id: str
    capacity: int
    held: int
    sold: int
    per_order_limit: int
    price: int

    @property
    def available(self) -> int:
        return max(self.capacity - self.held - self.sold, 0)


class Hold(msgspec.Struct, frozen=True):
    hold_id: str
    event_id: str
    expires_ms: int
    items: tuple[tuple[str, int], ...]
    owner: str = ""
    #: Sum of price * quantity less the discount, in minor units (-1 when read back without
    #: prices).
    amount: int = -1
    #: The promo code the hold took a use of (upper case; "" = none) and the discount it
    #: fixed (minor units).
    promo_code: str = ""
    discount: int = 0


class Confirmation(msgspec.Struct, frozen=True):
    order_id: str
    #: Stream entry id; empty when this order had already been confirmed (a duplicate call).
    stream_id: str
    #: The hold had expired and the tickets were taken again for a late payment.
    retaken: bool = False

    @property
    def duplicate(self) -> bool:
        return not self.stream_id
