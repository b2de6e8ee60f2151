"""Promo codes as the organizer's API takes and shows them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from onsale.events.models import out_of_range

#: What a code may be (the column's own check): letters, digits, ``_`` and ``-``.
CODE_PATTERN = r"^[A-Za-z0-9_-]{3,40}$"
_CODE = re.compile(CODE_PATTERN)

Code = Annotated[str, Meta(pattern=CODE_PATTERN)]
UtcTime = Annotated[datetime, Meta(tz=True)]
#: Amounts in minor units; far below what a bigint or a Lua number holds exactly.
Money = Annotated[int, Meta(ge=1, le=1_000_000_000_00)]


def normal(code: str) -> str:
    """A code as it is stored and matched (upper case), or ``""`` when it cannot be one."""
    return code.upper() if _CODE.fullmatch(code) else ""


class PromoIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    percent_off: Annotated[int, Meta(ge=1, le=100)] | None = None
    amount_off: Money | None = None
    #: ``None``: no limit.
    max_uses: Annotated[int, Meta(ge=1, le=1_000_000_000)] | None = None
    #: ``None``: every tier of the event.
    tier_ids: Annotated[list[str], Meta(min_length=1, max_length=100)] | None = None
    starts_at: UtcTime | None = None
    ends_at: UtcTime | None = None

    def problems(self) -> list[str]:
        """Rules across fields, that msgspec's per-field checks cannot see."""
        out = []
        if not normal(self.code):  # the pattern's "$" lets a final newline through
            out.append(f"code: must match {CODE_PATTERN}")
        if (self.percent_off is None) == (self.amount_off is None):
            out.append("give exactly one of percent_off and amount_off")
        # The Redis mirror carries milliseconds since 1970: hold.lua reads digits only.
        out += out_of_range({"starts_at": self.starts_at, "ends_at": self.ends_at})
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            out.append("ends_at must be after starts_at")
        if self.tier_ids is not None and len(set(self.tier_ids)) != len(self.tier_ids):
            out.append("tier_ids must not repeat a tier")
        return out


class PromoOut(msgspec.Struct):
    id: str
    #: Upper case: codes match whatever the case a buyer types.
    code: str
    percent_off: int | None
    amount_off: int | None
    max_uses: int | None
    tier_ids: list[str] | None
    starts_at: datetime | None
    ends_at: datetime | None
    #: Live holds with the code plus confirmed orders with it (a refund keeps its use).
    uses: int
    created_at: datetime
