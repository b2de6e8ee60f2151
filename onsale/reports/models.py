"""The reports' shapes on the wire (CONTRACT.md, "Reports and exports"). Money is integer
minor units of the event's currency; times are UTC."""

from __future__ import annotations

from datetime import datetime

import msgspec


class TierSales(msgspec.Struct):
    tier_id: str
    name: str
    sold: int
    #: Its tickets' value at their tier prices (before any order-level discount).
    revenue: int


class Sales(msgspec.Struct):
    tickets_sold: int
    orders: int
    #: What the confirmed orders paid (after discounts).
    revenue: int
    #: What was refunded (the refunded orders' amounts), and how many orders.
    refunded: int
    average_order_value: int
    by_tier: list[TierSales]
    refunded_orders: int = 0
    #: Promo-code discounts given on the confirmed orders.
    discount: int = 0


class Funnel(msgspec.Struct):
    joined: int
    admitted: int
    held: int
    checkouts: int
    paid: int


class Minute(msgspec.Struct):
    at: datetime
    tickets: int
    revenue: int


class TierMinute(msgspec.Struct):
    at: datetime
    tier_id: str
    tickets: int


class QuarterHour(msgspec.Struct):
    at: datetime
    count: int


class Checkin(msgspec.Struct):
    checked_in: int
    #: Checked in over tickets sold (0 to 1).
    rate: float
    by_quarter_hour: list[QuarterHour]
    #: After the event (its end, else its start): the share of tickets sold never scanned;
    #: ``None`` before.
    no_show_rate: float | None = None


class PromoUse(msgspec.Struct):
    code: str
    uses: int
    discount: int
    revenue: int


class EventReport(msgspec.Struct):
    event_id: str
    title: str
    currency: str
    sales: Sales
    funnel: Funnel
    #: Per minute of sale.
    velocity: list[Minute]
    checkin: Checkin
    promo_codes: list[PromoUse]
    #: Per minute of sale and tier (the cumulative-by-tier chart).
    tier_velocity: list[TierMinute] = msgspec.field(default_factory=list)
    from_: datetime | None = msgspec.field(default=None, name="from")
    to: datetime | None = None


class TopEvent(msgspec.Struct):
    event_id: str
    title: str
    revenue: int


class FastEvent(msgspec.Struct):
    event_id: str
    title: str
    tickets_per_hour: float


class PlatformReport(msgspec.Struct):
    #: Minor units of every currency added together (the contract's figure): a volume, not
    #: an amount of money; ``gmv_by_currency`` has the amounts.
    gmv: int
    orders: int
    tickets: int
    events: int
    organizers: int
    top_events: list[TopEvent]
    fastest_selling: list[FastEvent]
    #: Currency -> confirmed revenue in its minor units (currencies with sales only).
    gmv_by_currency: dict[str, int] = msgspec.field(default_factory=dict)
    from_: datetime | None = msgspec.field(default=None, name="from")
    to: datetime | None = None
