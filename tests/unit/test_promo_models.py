"""Promo codes as the organizer's API takes them, as Redis mirrors them, and as a lost
order's PaymentIntent carries them back to ``onsale recover``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import MagicMock

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onsale.checkout.recover import rebuild
from onsale.promo.codes import mirror
from onsale.promo.models import CODE_PATTERN, PromoIn, normal


@given(st.from_regex(CODE_PATTERN, fullmatch=True))
def test_every_valid_code_is_matched_upper_case(code: str) -> None:
    assert normal(code) == code.upper() == normal(code.lower())


@pytest.mark.parametrize(
    "text", ["", "ab", "a b c", "X" * 41, "semi;colon", "pipe|d", "c:used", "ABC\n"]
)
def test_what_cannot_be_a_code_is_none(text: str) -> None:
    # Never a code: so never a field of the Redis hash (":used") or a broken record ("|").
    assert normal(text) == ""


def _promo(**body: Any) -> PromoIn:
    return msgspec.convert({"code": "ABC"} | body, PromoIn)


def test_rules_across_fields() -> None:
    now = datetime.now(UTC)
    assert _promo(percent_off=10).problems() == []
    assert _promo(code="ABC\n", percent_off=10).problems()[0].startswith("code: must match")
    assert "exactly one" in _promo().problems()[0]
    assert "exactly one" in _promo(percent_off=5, amount_off=100).problems()[0]
    assert _promo(amount_off=100, starts_at=now, ends_at=now).problems() == [
        "ends_at must be after starts_at"
    ]
    assert _promo(amount_off=1, ends_at=now + timedelta(days=1)).problems() == []
    assert _promo(percent_off=5, tier_ids=["a", "a"]).problems() == [
        "tier_ids must not repeat a tier"
    ]


def test_the_redis_mirror_is_what_hold_lua_parses() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    row = {
        "discount_type": "percentage", "discount_value": 15, "max_uses": None,
        "valid_from": start, "valid_until": None, "tier_ids": None,
    }  # fmt: skip
    assert mirror(row) == f"p|15|0|{int(start.timestamp() * 1000)}|0|"
    row |= {"discount_type": "fixed_amount", "discount_value": 500, "max_uses": 3,
            "valid_from": None, "tier_ids": ["t1", "t2"]}  # fmt: skip
    assert mirror(row) == "a|500|3|0|0|t1 t2"


def test_a_lost_order_keeps_its_code_and_discount() -> None:
    intent = {"id": "pi_1", "amount": 8100, "currency": "usd", "created": 1_900_000_000}
    event = MagicMock(id="ev")
    meta = {"order_id": "o", "hold_id": "h", "promo_code": "ten-off", "discount": "900"}
    order = rebuild(intent, meta, event, [])
    assert (order.promo_code, order.discount, order.amount) == ("TEN-OFF", 900, 8100)
    for bad in ("-5", "1e9", "x", "9" * 20):
        assert rebuild(intent, meta | {"discount": bad}, event, []).discount == 0
    assert rebuild(intent, {"order_id": "o"}, event, []).promo_code == ""


#: What hold.lua's promo_room reads from a code's mirror (Lua's %d+ is the ASCII digits).
_MIRROR = re.compile(r"^([a-zA-Z])\|([0-9]+)\|([0-9]+)\|([0-9]+)\|([0-9]+)\|(.*)$")


@given(
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
def test_every_accepted_window_is_one_hold_lua_reads(
    start: datetime | None, end: datetime | None
) -> None:
    """Any starts_at/ends_at the API takes makes a mirror hold.lua parses (a time before
    1970 made negative milliseconds: no match, so every hold with the code failed)."""
    data = _promo(percent_off=10, starts_at=start, ends_at=end)
    if data.problems():
        return
    row = {
        "discount_type": "percentage", "discount_value": 10, "max_uses": None,
        "valid_from": start, "valid_until": end, "tier_ids": None,
    }  # fmt: skip
    assert _MIRROR.match(mirror(row))


def test_times_outside_the_mirror_are_refused() -> None:
    old = datetime(1969, 12, 31, 23, 59, tzinfo=UTC)
    assert _promo(percent_off=10, starts_at=old).problems()[0].startswith("starts_at")
    assert _promo(percent_off=10, ends_at=old).problems()[0].startswith("ends_at")
    far = datetime(9999, 6, 1, tzinfo=UTC)
    assert _promo(percent_off=10, ends_at=far).problems()[0].startswith("ends_at")
