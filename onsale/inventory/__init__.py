"""Holds: typed async wrappers around the inventory Lua scripts."""

from onsale.inventory.engine import Inventory
from onsale.inventory.models import (
    Confirmation,
    Hold,
    HoldRejected,
    PromoWhy,
    Rejection,
    ReleaseOutcome,
    TierLevel,
    TierSpec,
)

__all__ = [
    "Confirmation",
    "Hold",
    "HoldRejected",
    "Inventory",
    "PromoWhy",
    "Rejection",
    "ReleaseOutcome",
    "TierLevel",
    "TierSpec",
]
