"""The engine's pure helpers: what the scripts are sent, and how their replies are read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onsale.inventory import Confirmation, Rejection
from onsale.inventory.engine import _flat, _pairs, _rejected

tiers = st.sampled_from(("ga", "vip", "box", "floor"))
requests = st.lists(st.tuples(tiers, st.integers(0, 10)), max_size=12)


def test_pairs_merges_repeated_tiers_in_first_seen_order() -> None:
    assert _pairs([("vip", 1), ("ga", 2), ("vip", 3)]) == [("vip", 4), ("ga", 2)]


def test_pairs_takes_a_mapping() -> None:
    assert _pairs({"ga": 2, "vip": 1}) == [("ga", 2), ("vip", 1)]


def test_pairs_takes_a_generator_once() -> None:
    assert _pairs((t, 1) for t in ("ga", "ga")) == [("ga", 2)]


@given(requests)
def test_pairs_keeps_each_tiers_total_and_names_it_once(items: list[tuple[str, int]]) -> None:
    pairs = _pairs(items)
    names = [tier for tier, _ in pairs]
    assert len(names) == len(set(names))
    assert names == list(dict.fromkeys(tier for tier, _ in items))
    for tier, qty in pairs:
        assert qty == sum(q for t, q in items if t == tier)


@given(requests)
def test_flat_is_the_count_then_the_pairs(items: list[tuple[str, int]]) -> None:
    pairs = _pairs(items)
    flat = _flat(pairs)
    assert flat[0] == len(pairs)
    assert list(zip(flat[1::2], flat[2::2], strict=True)) == pairs


def test_rejected_reads_tier_and_availability() -> None:
    exc = _rejected(["err", "insufficient_inventory", "vip", 3])
    assert (exc.reason, exc.tier_id, exc.available) == (Rejection.INSUFFICIENT_INVENTORY, "vip", 3)


def test_rejected_without_tier_or_availability() -> None:
    exc = _rejected(["err", "hold_used"])
    assert (exc.reason, exc.tier_id, exc.available) == (Rejection.HOLD_USED, "", 0)


def test_a_confirmation_without_stream_entry_is_a_duplicate() -> None:
    assert Confirmation("o1", "").duplicate
    assert not Confirmation("o1", "1-0").duplicate
