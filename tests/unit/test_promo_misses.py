"""The per-process memory of refused promo codes (routes/holds.py): per admission, per clock
minute, with the minute's end as Retry-After."""

from __future__ import annotations

import pytest

from onsale.errors import ApiError, Code
from onsale.gateway.routes.holds import PromoMisses


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_refusals_past_the_limit_wait_for_the_next_minute() -> None:
    clock = Clock(600.0)  # the start of a minute
    misses = PromoMisses(3, clock)
    for _ in range(3):
        misses.check("v1")
        misses.missed("v1")
    clock.now = 615.5
    with pytest.raises(ApiError) as refused:
        misses.check("v1")
    assert refused.value.code is Code.RATE_LIMITED
    assert refused.value.headers["Retry-After"] == "44"
    misses.check("v2")  # another admission is not held back
    clock.now = 660.0  # the next minute
    misses.check("v1")


def test_a_flood_of_admissions_starts_the_minute_over() -> None:
    misses = PromoMisses(1, Clock(0.0))
    misses.missed("first")
    for n in range(PromoMisses.MAX_KEPT + 1):
        misses.missed(f"v{n}")
    misses.check("first")  # forgotten rather than kept without bound
