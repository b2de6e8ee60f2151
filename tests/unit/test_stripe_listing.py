"""Listing an account's PaymentIntents (recover without Search): every one once, a page of
100 per call, the ``created`` window where the API takes it and the whole account where it
refuses it (the emulator), and a 429 on a page retried, not a page lost."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from onsale.checkout.stripe_calls import Listing, Stripe, StripeCalls


class FakeIntents:
    """An account of ``n`` PaymentIntents, ``created`` 0..n-1, newest first as Stripe lists."""

    def __init__(
        self, n: int, *, filters: bool, rate_limited: frozenset[int] = frozenset()
    ) -> None:
        self.all = [SimpleNamespace(id=f"pi_{i}", created=i) for i in reversed(range(n))]
        self.filters = filters
        self.rate_limited = set(rate_limited)  # page numbers answered 429 once
        self.asked: list[dict[str, Any]] = []

    async def list_async(self, params: dict[str, Any]) -> Any:
        self.asked.append(params)
        assert params["limit"] == 100 and params["expand"] == ["data.latest_charge"]
        if "created" in params and not self.filters:
            raise stripe.InvalidRequestError("Unexpected created", None, http_status=400)
        found = [i for i in self.all if i.created >= params.get("created", {}).get("gte", 0)]
        if "starting_after" in params:
            at = next(k for k, i in enumerate(found) if i.id == params["starting_after"])
            found = found[at + 1 :]
        page = len(self.asked)
        if page in self.rate_limited:
            self.rate_limited.discard(page)
            raise stripe.RateLimitError("slow down", http_status=429)
        return SimpleNamespace(data=found[:100], has_more=len(found) > 100)


def api_with(intents: FakeIntents) -> Stripe:
    client = SimpleNamespace(v1=SimpleNamespace(payment_intents=intents))

    async def no_wait(_: float) -> None:
        return None

    return Stripe(client, StripeCalls(rate=1000, sleep=no_wait))  # type: ignore[arg-type]


async def listed(listing: Listing) -> list[str]:
    return [intent.id async for page in listing for intent in page]


@given(n=st.integers(0, 450), since=st.integers(0, 450), filters=st.booleans())
async def test_every_intent_once_a_page_per_hundred(n: int, since: int, filters: bool) -> None:
    fake = FakeIntents(n, filters=filters)
    listing = Listing(api_with(fake), since)
    ids = await listed(listing)
    expected = [i.id for i in fake.all if i.created >= since or not filters]
    assert ids == expected
    assert listing.windowed is filters
    assert listing.pages == max(1, -(-len(expected) // 100))
    # A refused window costs one call more: the first page, asked again without it.
    assert len(fake.asked) == listing.pages + (0 if filters else 1)
    assert all("created" not in p for p in fake.asked[1:]) or filters


async def test_a_rate_limited_page_is_retried_not_lost() -> None:
    fake = FakeIntents(250, filters=True, rate_limited={2})
    api = api_with(fake)
    assert len(await listed(Listing(api))) == 250
    assert (api.calls.sent, api.calls.retried) == (4, 1)


async def test_a_refusal_after_the_first_page_is_the_callers() -> None:
    class Refusing(FakeIntents):
        async def list_async(self, params: dict[str, Any]) -> Any:
            if "starting_after" in params:
                raise stripe.InvalidRequestError("No such PaymentIntent", None, http_status=400)
            return await super().list_async(params)

    with pytest.raises(stripe.InvalidRequestError):
        await listed(Listing(api_with(Refusing(150, filters=True)), 0))
