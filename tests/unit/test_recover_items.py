"""How ``onsale recover`` tells a lost order's tickets from its PaymentIntent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onsale.checkout.models import Item
from onsale.checkout.recover import items_from_amount, items_from_metadata
from onsale.events.models import Tier

GA = Tier(id="ga", name="GA", price=4500, capacity=100, per_order_limit=6)
VIP = Tier(id="vip", name="VIP", price=15000, capacity=10, per_order_limit=2)
FREE = Tier(id="free", name="Free", price=0, capacity=10, per_order_limit=None)


def test_one_combination_is_the_order() -> None:
    assert items_from_amount(9000, [GA, VIP], 8) == [Item("ga", 2, 4500)]
    assert items_from_amount(24000, [GA, VIP], 8) == [Item("ga", 2, 4500), Item("vip", 1, 15000)]


def test_none_or_several_combinations_tell_nothing() -> None:
    pair = Tier(id="pair", name="Pair", price=9000, capacity=10, per_order_limit=None)
    assert items_from_amount(9000, [GA, pair], 16) is None  # two GA, or one pair
    assert items_from_amount(4000, [GA, VIP], 8) is None
    assert items_from_amount(0, [GA, FREE], 8) is None


def test_limits_rule_combinations_out() -> None:
    one = Tier(id="one", name="One", price=1000, capacity=100, per_order_limit=2)
    three = Tier(id="three", name="Three", price=3000, capacity=100, per_order_limit=2)
    # Three of "one" would make 3000 too, but that tier allows two per order.
    assert items_from_amount(3000, [one, three], 4) == [Item("three", 1, 3000)]
    assert items_from_amount(3000, [one, three], 4) == items_from_amount(3000, [three, one], 4)
    assert items_from_amount(45000, [GA, VIP], 8) is None  # ten GA or three VIP: both too many


def test_metadata_items_name_tiers_of_the_event() -> None:
    assert items_from_metadata("ga 2 vip 1", [GA, VIP]) == [
        Item("ga", 2, 4500),
        Item("vip", 1, 15000),
    ]
    for bad in ("", "ga", "ga 0", "ga two", "other 1", "ga 1 vip"):
        assert items_from_metadata(bad, [GA, VIP]) is None


@given(st.integers(0, 6), st.integers(0, 2), st.integers(0, 3))
def test_an_answer_always_adds_up_within_limits(ga: int, vip: int, box: int) -> None:
    boxes = Tier(id="box", name="Box", price=30000, capacity=3, per_order_limit=3)
    amount = ga * GA.price + vip * VIP.price + box * boxes.price
    found = items_from_amount(amount, [GA, VIP, boxes, FREE], 11)
    if found is None:
        return
    quantities = {i.tier_id: i.quantity for i in found}
    assert sum(i.quantity * i.unit_price for i in found) == amount
    assert quantities.get("ga", 0) <= 6 and quantities.get("vip", 0) <= 2
    assert quantities.get("box", 0) <= 3 and "free" not in quantities
