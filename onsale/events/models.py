"""The catalog's request and response bodies, validated by msgspec at the boundary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar

import msgspec
from msgspec import Meta

from onsale.events.currencies import CURRENCIES
from onsale.text import LINE, TEXT

UtcTime = Annotated[datetime, Meta(tz=True)]
#: The times the stores and the scripts can hold: Redis keeps milliseconds since 1970 (the
#: Lua scripts read digits, never a sign), and Postgres converts every time to UTC, which a
#: time late in the year 9999 with a negative offset does not survive.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def out_of_range(times: dict[str, datetime | None]) -> list[str]:
    """A problem for each named time outside [:data:`EARLIEST`, :data:`LATEST`)."""
    return [
        f"{name} must be from 1970 and before the year 9999"
        for name, when in times.items()
        if when is not None and not EARLIEST <= when < LATEST
    ]


Name = Annotated[str, Meta(min_length=1, max_length=200), LINE]
Count = Annotated[int, Meta(ge=0, le=10_000_000)]
Money = Annotated[int, Meta(ge=0, le=100_000_000_00)]


class Venue(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Name
    city: Annotated[str, Meta(min_length=1, max_length=100), LINE] | None = None
    country: Annotated[str, Meta(pattern="^[A-Z]{2}$")] | None = None
    address: Annotated[str, Meta(max_length=300), LINE] | None = None


class TierIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100), LINE]
    price: Money
    capacity: Count
    per_order_limit: Annotated[int, Meta(ge=1, le=100)] | None = None
    description: Annotated[str, Meta(max_length=2000), TEXT] = ""
    sale_starts_at: UtcTime | None = None
    sale_ends_at: UtcTime | None = None


#: The largest counter a browser may have to reach to join (about half on average).
PowDifficulty = Annotated[int, Meta(ge=0, le=100_000_000)]


class OnsaleIn(msgspec.Struct, forbid_unknown_fields=True):
    opens_at: UtcTime
    admit_per_minute: Annotated[int, Meta(ge=1, le=1_000_000)]
    closes_at: UtcTime | None = None
    max_active: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    hold_seconds: Annotated[int, Meta(ge=30, le=3600)] = 600
    #: The bot tax on joining (docs/bot-tax.md); absent: ``ONSALE_POW_DIFFICULTY``; 0: none.
    pow_difficulty: PowDifficulty | None = None


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Name
    starts_at: UtcTime
    currency: Annotated[str, Meta(pattern="^[A-Z]{3}$")]
    tiers: Annotated[list[TierIn], Meta(min_length=1, max_length=50)]
    onsale: OnsaleIn
    ends_at: UtcTime | None = None
    venue: Venue | None = None
    description: Annotated[str, Meta(max_length=10_000), TEXT] = ""

    def problems(self) -> list[str]:
        """What msgspec's per-field checks cannot see: rules across fields."""
        o = self.onsale
        out = out_of_range(
            {"starts_at": self.starts_at, "ends_at": self.ends_at,
             "onsale.opens_at": o.opens_at, "onsale.closes_at": o.closes_at}
            | {f"tiers[{i}].sale_starts_at": t.sale_starts_at for i, t in enumerate(self.tiers)}
            | {f"tiers[{i}].sale_ends_at": t.sale_ends_at for i, t in enumerate(self.tiers)}
        )  # fmt: skip
        if self.currency not in CURRENCIES:
            out.append(f"currency {self.currency!r} is not an ISO 4217 currency we accept")
        if self.ends_at and self.ends_at <= self.starts_at:
            out.append("ends_at must be after starts_at")
        if o.closes_at and o.closes_at <= o.opens_at:
            out.append("onsale.closes_at must be after onsale.opens_at")
        if o.opens_at >= self.starts_at:
            out.append("onsale.opens_at must be before the event starts")
        names = [t.name.casefold() for t in self.tiers]
        if len(set(names)) != len(names):
            out.append("tier names must be unique within an event")
        for i, t in enumerate(self.tiers):
            if t.sale_starts_at and t.sale_ends_at and t.sale_ends_at <= t.sale_starts_at:
                out.append(f"tiers[{i}].sale_ends_at must be after its sale_starts_at")
        return out


class OnsalePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Metering (``admit_per_minute``, ``max_active``, ``paused``) changes any time; the
    schedule (the rest) only before the sale opens."""

    admit_per_minute: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    max_active: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    paused: bool | None = None
    #: The bot tax on new joins, any time (0: none); see docs/bot-tax.md.
    pow_difficulty: PowDifficulty | None = None
    #: A time in the past opens the sale now.
    opens_at: UtcTime | None = None
    closes_at: UtcTime | None = None
    hold_seconds: Annotated[int, Meta(ge=30, le=3600)] | None = None
    presale_opens_at: UtcTime | None = None

    #: The fields that change the schedule rather than the metering.
    SCHEDULE: ClassVar[tuple[str, ...]] = (
        "opens_at",
        "closes_at",
        "hold_seconds",
        "presale_opens_at",
    )


class TierPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """With ``id``: a change to that tier (name; price before its sale opens; capacity never
    below its tickets held and sold). Without: a new tier (name, price and capacity needed)."""

    id: str | None = None
    name: Annotated[str, Meta(min_length=1, max_length=100), LINE] | None = None
    price: Money | None = None
    capacity: Count | None = None
    per_order_limit: Annotated[int, Meta(ge=1, le=100)] | None = None
    description: Annotated[str, Meta(max_length=2000), TEXT] | None = None


class EventPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    title: Name | None = None
    description: Annotated[str, Meta(max_length=10_000), TEXT] | None = None
    venue: Venue | None = None
    starts_at: UtcTime | None = None
    tiers: Annotated[list[TierPatch], Meta(max_length=50)] | None = None


class Cancelled(msgspec.Struct):
    #: The event's refunded orders and its voided (refunded or returned) tickets, in all.
    refunded_orders: int
    voided_tickets: int


class Tier(msgspec.Struct):
    id: str
    name: str
    price: int
    capacity: int
    per_order_limit: int | None
    description: str = ""
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None


class Onsale(msgspec.Struct):
    opens_at: datetime
    closes_at: datetime | None
    admit_per_minute: int
    max_active: int | None
    hold_seconds: int
    paused: bool
    #: SHA-256 of the fair-start seed, published before anyone joins.
    shuffle_commitment: str = ""
    #: The seed itself, revealed once the on-sale has opened.
    shuffle_seed: str | None = None
    #: When a presale (access code holders only) opens, before ``opens_at``.
    presale_opens_at: datetime | None = None
    #: SHA-256 of the presale's fair-start seed (its own: revealing it at the presale's
    #: opening tells nothing of the general sale's order).
    presale_commitment: str = ""
    #: The proof-of-work asked of a new join (ALTCHA's maxnumber; 0: none), before it rises
    #: with the join rate; ``None``: the gateways' default (``ONSALE_POW_DIFFICULTY``).
    pow_difficulty: int | None = None
    #: The presale's seed, revealed once the presale has opened.
    presale_seed: str | None = None


class Event(msgspec.Struct):
    id: str
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime | None
    venue: Venue | None
    currency: str
    status: str
    tiers: list[Tier]
    onsale: Onsale
    created_at: datetime


class EventPage(msgspec.Struct):
    items: list[Event]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None


class QueueCounts(msgspec.Struct):
    waiting: int
    admitted: int
    active: int
    #: Places passed over because their visitor had stopped polling or left.
    skipped: int = 0
    #: Admissions that expired without their visitor ever coming back.
    no_shows: int = 0
    #: (skipped + no-shows) / (admitted + skipped).
    no_show_rate: float = 0.0


class TierStats(msgspec.Struct):
    id: str
    name: str
    capacity: int
    sold: int
    held: int
    available: int


class OrderCounts(msgspec.Struct):
    confirmed: int
    committed: int


class CommitterLag(msgspec.Struct):
    #: Orders on the event's stream not yet committed to Postgres.
    pending: int
    #: Age in ms of the oldest of them (0: none).
    oldest_ms: int


class Stats(msgspec.Struct):
    queue: QueueCounts
    tiers: list[TierStats]
    orders: OrderCounts
    revenue: int
    currency: str
    committer_lag: CommitterLag | None = None
