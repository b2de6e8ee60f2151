"""Orders as the API shows them, as Redis keeps them, and as the stream carries them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from onsale.text import EMAIL, LINE


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    #: Paid but to be given back (a late payment with no tickets left, or one that does not
    #: match its order): recorded before Stripe is asked, so nothing re-takes tickets after.
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    FAILED = "failed"


class Outcome(StrEnum):
    """What a payment notice did to its order (a webhook outcome in the metrics)."""

    CONFIRMED = "confirmed"
    DUPLICATE = "duplicate"
    REFUNDED = "refunded"
    MISMATCH = "mismatch"
    FAILED = "failed"
    IGNORED = "ignored"


class PaidIntent(msgspec.Struct, frozen=True):
    """A succeeded PaymentIntent as Stripe's signed event describes it."""

    id: str
    #: Minor units actually received.
    amount: int
    #: ISO 4217, any case (Stripe sends lower case).
    currency: str


class Item(msgspec.Struct, frozen=True):
    tier_id: str
    quantity: int
    unit_price: int


class Ticket(msgspec.Struct, frozen=True):
    ticket_id: str
    tier_id: str
    #: ``ticket:{ticket_id}:v1:{sig}`` (see onsale/tickets/qr.py).
    qr: str


class Order(msgspec.Struct):
    """An order's record in Redis (``keys.orders``), and the payload of its stream entry.

    The committer writes exactly this to Postgres, idempotently by ``order_id``.
    """

    order_id: str
    event_id: str
    hold_id: str
    email: str
    name: str
    amount: int
    currency: str
    items: list[Item]
    status: OrderStatus = OrderStatus.PENDING
    payment_intent_id: str | None = None
    client_secret: str | None = None
    #: Epoch ms.
    created_ms: int = 0
    confirmed_ms: int | None = None
    tickets: list[Ticket] = msgspec.field(default_factory=list)
    #: The body fingerprint of the checkout that created it (idempotency).
    fingerprint: str = ""
    #: The waiting-room visitor whose admission made the hold.
    visitor_id: str = ""
    #: The promo code the hold took a use of (upper case; "" = none) and the discount it
    #: fixed, in minor units: ``amount`` is the items' prices less it.
    promo_code: str = ""
    discount: int = 0


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(min_length=3, max_length=254), EMAIL]
    name: Annotated[str, Meta(min_length=1, max_length=200), LINE]


class Payment(msgspec.Struct):
    provider: str
    payment_intent_id: str
    client_secret: str


class CheckoutOut(msgspec.Struct):
    order_id: str
    order_token: str
    status: str
    amount: int
    currency: str
    payment: Payment | None


class TicketOut(msgspec.Struct):
    ticket_id: str
    tier_id: str
    qr: str


class OrderOut(msgspec.Struct):
    order_id: str
    status: str
    email: str
    amount: int
    currency: str
    tickets: list[TicketOut]
    event_id: str = ""
    name: str = ""
    discount: int = 0
    promo_code: str | None = None


encode = msgspec.json.Encoder().encode
decode_order = msgspec.json.Decoder(Order).decode
