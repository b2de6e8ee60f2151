"""Holds: an admitted buyer takes tickets for a few minutes, or gives them back."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Response, delete, post
from litestar.params import FromPath
from msgspec import Meta

from onsale.domain import DomainError
from onsale.errors import ApiError, Code
from onsale.gateway.auth import bearer
from onsale.gateway.body import decode
from onsale.gateway.metrics import HOLD_FAILURES, HOLDS
from onsale.gateway.types import AnyRequest, Deps
from onsale.inventory import HoldRejected, PromoWhy, Rejection, ReleaseOutcome
from onsale.inventory.holds import new_hold_id
from onsale.promo.models import normal


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    tier_id: Annotated[str, Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, Meta(ge=1, le=100)]


class HoldIn(msgspec.Struct, forbid_unknown_fields=True):
    items: Annotated[list[ItemIn], Meta(min_length=1, max_length=50)]
    #: Any case; one that cannot be a code is refused as an unknown one (promo_invalid).
    promo_code: Annotated[str, Meta(max_length=100)] | None = None


class ItemOut(msgspec.Struct):
    tier_id: str
    quantity: int


class HoldOut(msgspec.Struct):
    hold_id: str
    expires_at: datetime
    items: list[ItemOut]
    #: What is to be paid: the tickets' prices less ``discount``.
    amount: int
    currency: str
    discount: int = 0
    promo_code: str | None = None


def _admission(token: str, services: Deps, event_id: str) -> dict[str, Any]:
    """The claims of a valid admission to this event (``sub`` is the visitor)."""
    if not token:
        raise ApiError(Code.ADMISSION_REQUIRED)
    return services.admissions.verify(event_id, token)


#: Refused promo codes one admission may have a minute: enough to fix a typo, too few to
#: walk a dictionary of codes (each refusal says whether a code exists).
PROMO_MISSES_PER_MINUTE = 10


class PromoMisses:
    """Refused promo codes per admission in this process's memory, per clock minute. Past
    the limit a hold with a code is ``429 rate_limited`` before Redis is asked: a guess costs
    Redis nothing, and a code that works is never counted (a load test holding with one
    code all day is not held back). A visitor whose holds a balancer spreads over N
    processes gets N times the guesses: still a handful."""

    #: Admissions remembered at most in one minute (a flood of them starts the minute over).
    MAX_KEPT = 200_000

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._minute = -1
        self._counts: dict[str, int] = {}

    def _now(self) -> float:
        now = self._clock()
        minute = int(now // 60)
        if minute != self._minute or len(self._counts) > self.MAX_KEPT:
            self._minute, self._counts = minute, {}
        return now

    def check(self, visitor: str) -> None:
        now = self._now()
        if self._counts.get(visitor, 0) >= self.limit:
            retry = max(1, int(60 - now % 60))
            raise ApiError(Code.RATE_LIMITED, headers={"Retry-After": str(retry)})

    def missed(self, visitor: str) -> None:
        self._now()
        self._counts[visitor] = self._counts.get(visitor, 0) + 1


promo_misses = PromoMisses(PROMO_MISSES_PER_MINUTE)

_encode = msgspec.json.Encoder().encode
#: A hold is one buyer's, as the fast path answers it: never cached.
NO_STORE = {"Cache-Control": "no-store"}


async def place(services: Deps, event_id: str, token: str, body: bytes) -> bytes:
    """A hold's answer (the 201 body), or why not (a domain error, or :class:`ApiError`);
    counted for the metrics."""
    try:
        out = await _place(services, event_id, token, body)
    except DomainError as exc:
        HOLD_FAILURES.labels(str(exc.reason)).inc()
        raise
    except ApiError as exc:
        HOLD_FAILURES.labels(str(exc.code)).inc()
        raise
    HOLDS.inc()
    return _encode(out)


@post("/api/events/{event_id:str}/holds", status_code=201)
async def create_hold(
    event_id: FromPath[str], request: AnyRequest, services: Deps
) -> Response[bytes]:
    """Served by :class:`onsale.gateway.fastpath.HotPaths` first; the same answer here."""
    body = await place(services, event_id, bearer(request), await request.body())
    return Response(body, status_code=201, media_type=MediaType.JSON, headers=NO_STORE)


async def _place(services: Deps, event_id: str, token: str, body: bytes) -> HoldOut:
    claims = _admission(token, services, event_id)
    visitor = str(claims["sub"])
    data = decode(body, HoldIn)
    # A presale admission may hold only its access code's tiers.
    services.admissions.check_tiers(claims, (i.tier_id for i in data.items))
    promo = ""
    if data.promo_code is not None and data.promo_code.strip():
        promo_misses.check(visitor)
        promo = normal(data.promo_code.strip())
        if not promo:
            promo_misses.missed(visitor)
            raise HoldRejected(Rejection.PROMO_INVALID, PromoWhy.UNKNOWN)
    currency, limit = await services.terms.get(event_id)
    try:
        hold = await services.inventory.hold(
            event_id,
            [(i.tier_id, i.quantity) for i in data.items],
            owner=visitor,
            owner_limit=limit,
            admitted=True,
            hold_id=new_hold_id(event_id),
            promo_code=promo,
        )
    except HoldRejected as exc:
        if exc.reason is Rejection.PROMO_INVALID:
            promo_misses.missed(visitor)
        raise
    return HoldOut(
        hold_id=hold.hold_id,
        expires_at=datetime.fromtimestamp(hold.expires_ms / 1000, UTC),
        items=[ItemOut(t, q) for t, q in hold.items],
        amount=hold.amount,
        currency=currency,
        discount=hold.discount,
        promo_code=hold.promo_code or None,
    )


@delete("/api/holds/{hold_id:str}", status_code=204)
async def release_hold(hold_id: FromPath[str], request: AnyRequest, services: Deps) -> None:
    token = bearer(request)
    if not token:
        raise ApiError(Code.ADMISSION_REQUIRED)
    # The path names no event: the (verified) admission does, in its audience.
    claims = services.admissions.verify(None, token)
    event_id, visitor = str(claims["aud"]), str(claims["sub"])
    hold = await services.inventory.live_hold(event_id, hold_id)
    if hold is None or hold.owner != visitor:
        raise ApiError(Code.HOLD_NOT_FOUND)
    outcome = await services.inventory.release(event_id, hold_id)
    if outcome is ReleaseOutcome.CONFIRMED:
        raise ApiError(Code.CONFLICT, "this hold has been paid for")


ROUTES = [create_hold, release_hold]
