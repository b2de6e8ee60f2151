"""The bot tax's rule: an event's difficulty, doubled per step of joins a second, capped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onsale.botgate import Rule, effective

RULE = Rule(rate_step=200, max_difficulty=5_000_000)

bases = st.integers(min_value=0, max_value=100_000_000)
rates = st.floats(min_value=0, max_value=1e9, allow_nan=False)
rules = st.builds(Rule, st.integers(0, 10_000), st.integers(0, 100_000_000))


def test_the_rule_by_example() -> None:
    assert effective(100_000, 0, RULE) == 100_000
    assert effective(100_000, 199.9, RULE) == 100_000
    assert effective(100_000, 200, RULE) == 200_000
    assert effective(100_000, 650, RULE) == 800_000
    assert effective(100_000, 10_000, RULE) == 5_000_000  # capped
    assert effective(0, 10_000, RULE) == 0  # off stays off
    assert effective(8_000_000, 10_000, RULE) == 8_000_000  # never below the event's own
    assert effective(100_000, 10_000, Rule(rate_step=0, max_difficulty=5_000_000)) == 100_000


@given(bases, rates, rates, rules)
def test_more_joins_never_make_it_easier(base: int, a: float, b: float, rule: Rule) -> None:
    low, high = sorted((a, b))
    assert effective(base, low, rule) <= effective(base, high, rule)


@given(bases, rates, rules)
def test_between_the_event_s_own_and_the_cap(base: int, rate: float, rule: Rule) -> None:
    d = effective(base, rate, rule)
    if base == 0:
        assert d == 0
    else:
        assert base <= d <= max(base, rule.max_difficulty)
        steps = int(rate // rule.rate_step) if rule.rate_step else 0
        assert d == min(max(base, rule.max_difficulty), base * 2 ** min(steps, 64))
