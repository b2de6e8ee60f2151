"""Reconcile's Stripe side where the account has Search (the emulator has not): the search's
pages are followed, intents it found are not retrieved again, a payment no order names is
a difference, and an account without Search falls back to retrieval for the whole run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import stripe

from onsale.checkout.reconcile import EventReport, Stripe, _stripe_side
from onsale.checkout.stripe_calls import StripeCalls

EVENT = "6b0c3f0e-6a53-4c3e-9d6f-2f7f1b9d2a10"


class Meta(dict[str, str]):
    def to_dict(self) -> dict[str, str]:
        return dict(self)


def intent(pi: str, status: str = "succeeded", order: str | None = None) -> Any:
    metadata = Meta(event_id=EVENT, **({"order_id": order} if order else {}))
    charge = SimpleNamespace(amount_refunded=0)
    return SimpleNamespace(
        id=pi, status=status, amount=4500, currency="usd", metadata=metadata, latest_charge=charge
    )


class FakeIntents:
    def __init__(self, pages: list[list[Any]] | None, stored: dict[str, Any]) -> None:
        self.pages = pages
        self.stored = stored
        self.searches: list[dict[str, Any]] = []
        self.retrieved: list[str] = []

    async def search_async(self, params: dict[str, Any]) -> Any:
        self.searches.append(params)
        if self.pages is None:
            raise stripe.InvalidRequestError("Unrecognized request URL", None, http_status=404)
        index = int(params.get("page") or 0)
        more = index + 1 < len(self.pages)
        return SimpleNamespace(
            data=self.pages[index], has_more=more, next_page=str(index + 1) if more else None
        )

    async def retrieve_async(self, pi: str, params: dict[str, Any]) -> Any:
        self.retrieved.append(pi)
        assert params == {"expand": ["latest_charge"]}
        return self.stored[pi]


def api_with(intents: FakeIntents) -> Stripe:
    client = SimpleNamespace(v1=SimpleNamespace(payment_intents=intents))

    async def no_wait(_: float) -> None:
        return None

    return Stripe(client, StripeCalls(rate=1000, sleep=no_wait))  # type: ignore[arg-type]


async def test_search_pages_are_followed_and_what_they_found_is_not_retrieved() -> None:
    pages = [[intent("pi_a", order="o-a"), intent("pi_b", order="o-b")],
             [intent("pi_orphan")]]  # fmt: skip
    stored = {"pi_c": intent("pi_c", status="requires_payment_method", order="o-c")}
    fake = FakeIntents(pages, stored)
    api = api_with(fake)
    report = EventReport(EVENT)
    named = {"pi_a": "o-a", "pi_b": "o-b", "pi_c": "o-c"}
    found = await _stripe_side(api, EVENT, named, report)
    assert api.search is True
    assert [s.get("page") for s in fake.searches] == [None, "1"]
    assert fake.searches[0]["query"] == f"metadata['event_id']:'{EVENT}' AND status:'succeeded'"
    assert fake.retrieved == ["pi_c"]  # only what the search did not return
    assert sorted(found.paid) == ["o-a", "o-b"]
    assert [i.id for i in found.orphans] == ["pi_orphan"]
    assert report.notes == []
    assert api.calls.sent == 3


async def test_without_search_every_named_intent_is_retrieved_and_search_is_off() -> None:
    stored = {"pi_a": intent("pi_a", order="o-a"), "pi_b": intent("pi_b", status="canceled")}
    fake = FakeIntents(None, stored)
    api = api_with(fake)
    for _ in range(2):  # a second event does not ask again
        report = EventReport(EVENT)
        found = await _stripe_side(api, EVENT, {"pi_a": "o-a", "pi_b": "o-b"}, report)
        assert sorted(found.paid) == ["o-a"]
        assert "Stripe Search is not available" in report.notes[0]
    assert api.search is False
    assert len(fake.searches) == 1
    assert sorted(fake.retrieved) == ["pi_a", "pi_a", "pi_b", "pi_b"]


async def test_a_search_that_worked_and_then_fails_is_a_difference() -> None:
    fake = FakeIntents([[intent("pi_a", order="o-a")]], {"pi_a": intent("pi_a", order="o-a")})
    api = api_with(fake)
    await _stripe_side(api, EVENT, {"pi_a": "o-a"}, EventReport(EVENT))
    fake.pages = None  # Search now answers 404: an error, not a missing feature
    report = EventReport(EVENT)
    found = await _stripe_side(api, EVENT, {"pi_a": "o-a"}, report)
    assert report.differences == ["could not search Stripe: Stripe HTTP 404: Unrecognized "
                                  "request URL"]  # fmt: skip
    assert sorted(found.paid) == ["o-a"]  # still checked by retrieval
