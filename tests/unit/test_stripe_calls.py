"""StripeCalls: paced to its rate, retried with backoff on what Stripe says to retry, and
given up on (the caller's error) otherwise; and reconcile's --since windows."""

from __future__ import annotations

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from onsale.checkout.reconcile import parse_window
from onsale.checkout.stripe_calls import StripeCalls, describe, retryable


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def calls(t: FakeTime, **kw: float) -> StripeCalls:
    return StripeCalls(sleep=t.sleep, clock=t.clock, **kw)  # type: ignore[arg-type]


async def ok() -> str:
    return "ok"


@given(rate=st.floats(1, 200), n=st.integers(1, 400))
async def test_never_faster_than_the_rate_after_a_seconds_burst(rate: float, n: int) -> None:
    t = FakeTime()
    paced = calls(t, rate=rate)
    for _ in range(n):
        assert await paced(ok) == "ok"
    # A second's worth may go at once; every further request waits its 1/rate.
    assert t.now - 1000.0 >= (n - rate) / rate - 1e-6
    assert paced.sent == n


def error(kind: type[stripe.StripeError], status: int | None) -> stripe.StripeError:
    if kind is stripe.InvalidRequestError:
        return stripe.InvalidRequestError("boom", None, http_status=status)
    return kind("boom", http_status=status)


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (error(stripe.RateLimitError, 429), True),
        (error(stripe.APIError, 500), True),
        (error(stripe.APIError, 503), True),
        (stripe.APIConnectionError("reset"), True),
        (error(stripe.InvalidRequestError, 404), False),
        (error(stripe.AuthenticationError, 401), False),
        (ValueError("not Stripe"), False),
    ],
)
def test_what_is_retried(exc: BaseException, retry: bool) -> None:
    assert retryable(exc) is retry


async def test_retries_then_succeeds_with_growing_pauses() -> None:
    t = FakeTime()
    paced = calls(t, rate=1000, base_delay=1.0, max_delay=100.0)
    failures = [error(stripe.RateLimitError, 429), error(stripe.APIError, 502)]

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert await paced(flaky) == "done"
    assert (paced.sent, paced.retried) == (3, 2)
    pauses = [s for s in t.slept if s > 0.01]
    assert all(p <= 1.0 * 2**i for i, p in enumerate(pauses, 1))


async def test_gives_up_after_its_attempts_and_at_once_on_a_client_error() -> None:
    t = FakeTime()
    paced = calls(t, rate=1000, attempts=3, base_delay=0.1)

    async def down() -> str:
        raise error(stripe.APIError, 500)

    with pytest.raises(stripe.APIError):
        await paced(down)
    assert paced.sent == 3

    async def missing() -> str:
        raise error(stripe.InvalidRequestError, 404)

    with pytest.raises(stripe.InvalidRequestError):
        await paced(missing)
    assert paced.sent == 4
    assert describe(error(stripe.APIError, 500)).startswith("Stripe HTTP 500")


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86_400), ("90m", 5_400), ("7d", 604_800), (" 30s ", 30)]
)
def test_windows(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "-1h", "0h", "1w", "1h30m", "1e3s"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError, match="not a window"):
        parse_window(text)
