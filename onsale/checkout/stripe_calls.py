"""Stripe calls for operator tools (reconcile, recover, preflight): paced, retried, counted.

Stripe answers ``429`` when an account goes over its rate (25 requests/s in test mode, 100
in live mode, shared with the gateways selling tickets), ``5xx`` now and then, and the
network drops. A tool that walks thousands of orders must neither add to a launch's load
in bursts nor give up on the first hiccup: every call waits for its turn in a token
bucket, and a retryable failure is tried again after an exponential, jittered pause.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import stripe

from onsale.config import StripeSettings

T = TypeVar("T")

#: Requests per second by default: a fifth of live mode's limit, under test mode's.
DEFAULT_RATE = 20.0
#: Tries of one call before its error is the caller's (the first and four retries).
DEFAULT_ATTEMPTS = 5


def client(settings: StripeSettings) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """A client that never retries on its own, so :class:`StripeCalls` counts every request."""
    base = {"api": settings.api_base.rstrip("/")} if settings.api_base else None
    http = stripe.HTTPXClient()
    made = stripe.StripeClient(
        settings.secret_key or "sk_missing",
        base_addresses=base,  # type: ignore[arg-type]
        http_client=http,
        max_network_retries=0,
    )
    return made, http


def retryable(exc: BaseException) -> bool:
    """429, 5xx, a lock timeout and a dropped connection are worth another try."""
    if isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError):
        return True
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        return status == 429 or status == 409 or status >= 500
    return False


def describe(exc: BaseException) -> str:
    """One line for a report: Stripe's message, never the request (it may carry secrets)."""
    if isinstance(exc, stripe.StripeError):
        status = f"HTTP {exc.http_status}: " if exc.http_status else ""
        message = exc.user_message or type(exc).__name__
        return f"Stripe {status}{message}".strip()
    return f"{type(exc).__name__}: {exc}"


class StripeCalls:
    """Run Stripe calls at most ``rate`` per second, retrying what is retryable."""

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        attempts: int = DEFAULT_ATTEMPTS,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or attempts < 1:
            raise ValueError("rate must be positive and attempts at least 1")
        self.rate = rate
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self._next = 0.0  # when the next request may go (the bucket holds one second)
        self._lock = asyncio.Lock()
        #: Requests sent (retries included) and retries, for the progress line.
        self.sent = 0
        self.retried = 0

    async def _turn(self) -> None:
        async with self._lock:
            now = self._clock()
            # Up to a second's worth may go at once after a quiet spell, then one per 1/rate.
            start = max(self._next, now - 1.0 + 1.0 / self.rate)
            self._next = start + 1.0 / self.rate
            wait = start - now
        if wait > 0:
            await self._sleep(wait)

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random pause up to ``base * 2**attempt``, capped."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            await self._turn()
            self.sent += 1
            try:
                return await call()
            except Exception as exc:
                attempt += 1
                if attempt >= self.attempts or not retryable(exc):
                    raise
                self.retried += 1
                await self._sleep(self.backoff(attempt))


@dataclass
class Stripe:
    """One run's way to Stripe: the client, its paced calls, and whether Search works."""

    client: stripe.StripeClient
    calls: StripeCalls = field(default_factory=StripeCalls)
    #: None until the first search answers; False once the account refused it.
    search: bool | None = None


async def search_succeeded(api: Stripe, event_id: str) -> list[Any] | None:
    """The event's succeeded PaymentIntents by Search (``metadata['event_id']``), each with
    its latest charge; None where the account has no Search (the emulator answers 404: the
    first refusal turns it off for the run)."""
    if api.search is False:
        return None
    query = f"metadata['event_id']:'{event_id}' AND status:'succeeded'"
    found: list[Any] = []
    page: str | None = None
    while True:
        params: Any = {"query": query, "limit": 100, "expand": ["data.latest_charge"]}
        if page:
            params["page"] = page

        def ask(p: Any = params) -> Awaitable[Any]:
            return api.client.v1.payment_intents.search_async(params=p)

        try:
            result = await api.calls(ask)
        except (stripe.InvalidRequestError, stripe.PermissionError):
            if api.search:
                raise  # it worked before: this is an error, not a missing feature
            api.search = False  # the emulator (404), or an account without Search
            return None
        api.search = True
        found.extend(result.data)
        page = getattr(result, "next_page", None)
        if not getattr(result, "has_more", False) or not page:
            return found


#: PaymentIntents retrieved at once (the rate limit paces them further).
RETRIEVALS_AT_ONCE = 8


def metadata_of(intent: Any) -> dict[str, str]:
    """A PaymentIntent's metadata as a dict (the library's objects have no ``.get``)."""
    return intent.metadata.to_dict() if intent.metadata else {}


async def retrieve_intents(
    api: Stripe, ids: Iterable[str]
) -> tuple[dict[str, Any], dict[str, stripe.StripeError]]:
    """Each PaymentIntent by id with its latest charge, :data:`RETRIEVALS_AT_ONCE` at a
    time: those retrieved, and why Stripe could not be asked about the others."""
    got: dict[str, Any] = {}
    failed: dict[str, stripe.StripeError] = {}
    gate = asyncio.Semaphore(RETRIEVALS_AT_ONCE)

    async def retrieve(pi: str) -> None:
        async with gate:
            try:
                got[pi] = await api.calls(
                    lambda: api.client.v1.payment_intents.retrieve_async(
                        pi, params={"expand": ["latest_charge"]}
                    )
                )
            except stripe.StripeError as exc:
                failed[pi] = exc

    await asyncio.gather(*(retrieve(pi) for pi in ids))
    return got, failed


class Listing:
    """Every PaymentIntent of the account, page by page (100 per call, each paced and
    retried), created at or after ``created_gte`` where the API filters by it. An account
    that refuses the ``created`` filter (the emulator: ``400 Unexpected created``) is listed
    whole, and :attr:`windowed` says so."""

    def __init__(self, api: Stripe, created_gte: int | None = None) -> None:
        self.api = api
        self.created_gte = created_gte
        #: Pages read so far; whether the ``created`` filter held (None before a page).
        self.pages = 0
        self.windowed: bool | None = None

    async def __aiter__(self) -> AsyncIterator[list[Any]]:
        created, after = self.created_gte, None
        while True:
            params: Any = {"limit": 100, "expand": ["data.latest_charge"]}
            if created is not None:
                params["created"] = {"gte": created}
            if after:
                params["starting_after"] = after

            def ask(p: Any = params) -> Awaitable[Any]:
                return self.api.client.v1.payment_intents.list_async(params=p)

            try:
                page = await self.api.calls(ask)
            except stripe.InvalidRequestError:
                if created is None or after is not None:
                    raise
                created = None  # only the first page can be refused for its filter
                continue
            self.windowed = created is not None
            self.pages += 1
            yield list(page.data)
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id


async def refunded(api: Stripe, intent: Any) -> bool:
    """Whether Stripe refunded (or is refunding) the intent: its expanded charge says so;
    a charge left as an id (not expanded) costs one more call."""
    charge = intent.latest_charge
    if charge is not None and not isinstance(charge, str):
        return int(charge.amount_refunded or 0) > 0
    page = await api.calls(
        lambda: api.client.v1.refunds.list_async(params={"payment_intent": intent.id, "limit": 100})
    )
    return any(r.status in ("succeeded", "pending") for r in page.data)
