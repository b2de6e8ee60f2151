"""Every domain refusal has a wire code, mapped in one place (onsale/gateway/errors.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import pytest

from onsale.botgate import PowRejected, PowRejection
from onsale.checkout.errors import CheckoutRejected, CheckoutRejection
from onsale.domain import DomainError
from onsale.errors import Code
from onsale.events.errors import EventRejected, EventRejection
from onsale.gateway.errors import CODES, to_api
from onsale.inventory import HoldRejected, Rejection
from onsale.queue.errors import TokenRejected, TokenRejection
from onsale.tickets.errors import TicketRejected, TicketRejection


@pytest.mark.parametrize(
    ("error", "reasons"),
    [
        (TokenRejected, TokenRejection),
        (CheckoutRejected, CheckoutRejection),
        (TicketRejected, TicketRejection),
        (EventRejected, EventRejection),
        (PowRejected, PowRejection),
    ],
)
def test_every_reason_has_a_code(error: type[DomainError], reasons: type[StrEnum]) -> None:
    assert set(CODES[error]) == set(reasons)


def test_refusals_keep_their_detail_and_facts() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    err = to_api(
        TicketRejected(
            TicketRejection.ALREADY_CHECKED_IN, facts={"ticket_id": "t", "checked_in_at": at}
        )
    )
    assert (err.code, err.status) == (Code.ALREADY_CHECKED_IN, 409)
    assert err.extra == {"ticket_id": "t", "checked_in_at": at}
    err = to_api(TokenRejected(TokenRejection.ADMISSION_INVALID, "the admission has expired"))
    assert (err.code, err.status, err.detail) == (
        Code.ADMISSION_INVALID,
        403,
        "the admission has expired",
    )
    err = to_api(CheckoutRejected(CheckoutRejection.RETRY, "this checkout failed; retry"))
    assert (err.code, err.status) == (Code.CONFLICT, 409)
    assert to_api(EventRejected(EventRejection.INVALID, "x")).status == 422


def test_hold_refusals_say_where() -> None:
    err = to_api(HoldRejected(Rejection.INSUFFICIENT_INVENTORY, "vip", 3))
    assert err.body() == {
        "code": "insufficient_inventory",
        "detail": "Not enough tickets left for this request.",
        "tier_id": "vip",
        "available": 3,
    }
    err = to_api(HoldRejected(Rejection.LIMIT_EXCEEDED, "", 2))
    assert (err.code, err.detail) == (Code.LIMIT_EXCEEDED, "at most 2 more ticket(s) allowed")
    err = to_api(HoldRejected(Rejection.UNKNOWN_TIER, "nope"))
    assert (err.code, err.status, err.detail) == (Code.INVALID_REQUEST, 422, "unknown_tier: nope")
    assert str(HoldRejected(Rejection.SOLD_OUT, "ga")) == "sold_out: tier=ga available=0"


def test_an_unmapped_refusal_is_an_internal_error() -> None:
    class Odd(DomainError):
        pass

    assert to_api(Odd(TokenRejection.ADMISSION_INVALID)).code is Code.INTERNAL_ERROR
