"""The fast path (``gateway/fastpath.py``) answers queue polls, joins and holds exactly as their
Litestar routes would: the same status, body and headers for every answer the endpoints
can give, Redis down and an unexpected exception included.

Two gateways on the same Redis and Postgres: one as deployed, one built without the fast
path (``create_app(hot_paths=False)``), so that only the Litestar routes answer. Each case
sends the same request to both (a poll made again past its throttle; a successful hold,
which changes what the next one sees, set up afresh) and compares the answers. What
legitimately differs between two requests is normalized, and nothing else: the ids,
tokens and times a success makes fresh.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from onsale import keys
from onsale.config import Settings
from onsale.gateway.app import create_app
from onsale.gateway.body import MAX_BODY
from onsale.gateway.services import Services
from onsale.queue.room import State, WaitingRoom
from tests.integration.api_support import admitted, create, iso
from tests.integration.inventory_support import CREATED, forget
from tests.integration.room_support import make_poll_due

Client = AsyncTestClient[Litestar]

#: Sent with every request, so that the echoed X-Request-ID is the same on both sides.
REQUEST_ID = "parity-0123456789abcdef"
#: Fields whose values each success makes fresh (a new hold, a new admission token):
#: compared by type, not value.
FRESH = ("hold_id", "expires_at", "visitor_token", "admission_token", "admission_expires_at")
#: Each network may hold this many live places (the too_many_places case fills one).
PLACES = 2


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    client: str = ""
    #: Before the same request goes to the second gateway (a poll: past the throttle).
    again: Callable[[], Awaitable[None]] | None = None
    #: A request that changes what the next one sees (a hold taken): set up afresh for the
    #: second gateway rather than sent again.
    fresh: bool = False
    #: Made through each gateway just before the request (what a gateway process keeps in
    #: its own memory: the throttle of the polls it answered, the visitors it saw leave).
    before: Callable[[Client], Awaitable[Any]] | None = None


@dataclass
class World:
    """What every case may use: the session's gateway (to make events and admissions) and
    two events of this module."""

    client: Client
    redis: aioredis.Redis  # on the tests' loop (the gateways' connections are on theirs)
    admin: dict[str, str]
    event: dict[str, Any]
    later: dict[str, Any]  # opens in an hour: its visitors wait in the pre-queue
    slow: dict[str, Any]  # open, one admission at a time, taken: its visitors wait in line
    serial: int = 0

    @property
    def services(self) -> Services:
        services: Services = self.client.app.state.services
        return services

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    def tier(self, name: str) -> str:
        return next(str(t["id"]) for t in self.event["tiers"] if t["name"] == name)

    def address(self) -> str:
        """A client address of its own, so no case counts against another's network."""
        self.serial += 1
        return f"10.77.{self.serial // 250}.{self.serial % 250 + 1}"

    async def admission(self) -> tuple[str, str]:
        """(visitor token, admission token) of a newly admitted visitor of ``event``."""
        place = await admitted(self.client, self.event_id)
        return place["visitor_token"], place["admission_token"]


Setup = Callable[[World], Awaitable[Req]]
#: Breaks a gateway's services for one request (Redis down, a bug).
Fault = Callable[[Services, pytest.MonkeyPatch], None]


def poll(event_id: str, token: str | None = None) -> Req:
    headers = {"X-Visitor-Token": token} if token is not None else {}
    return Req("GET", f"/api/events/{event_id}/queue", headers)


def hold(event_id: str, token: str | None, body: Any, *, scheme: str = "Bearer") -> Req:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Req("POST", f"/api/events/{event_id}/holds", headers | CT, raw)


CT = {"Content-Type": "application/json"}


def items(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"items": [{"tier_id": t, "quantity": q} for t, q in pairs]}


# -- polls ----------------------------------------------------------------------------------


async def poll_no_token(w: World) -> Req:
    return poll(w.event_id)


async def poll_empty_token(w: World) -> Req:
    return poll(w.event_id, "")


async def poll_garbage_token(w: World) -> Req:
    return poll(w.event_id, "v1.nobody.0000")


async def poll_other_events_token(w: World) -> Req:
    _, token = w.services.visitors.issue(str(w.later["id"]))
    return poll(w.event_id, token)


async def poll_unknown_event(w: World) -> Req:
    event_id = uuid.uuid4().hex
    _, token = w.services.visitors.issue(event_id)
    return poll(event_id, token)


async def poll_admitted(w: World) -> Req:
    visitor, _ = await w.admission()
    return await _repeatable(w, poll(w.event_id, visitor), visitor, w.event_id)


async def poll_prequeue(w: World) -> Req:
    r = await w.client.post(f"/api/events/{w.later['id']}/queue")
    assert r.status_code == 200, r.text
    token = r.json()["visitor_token"]
    return await _repeatable(w, poll(str(w.later["id"]), token), token, str(w.later["id"]))


async def poll_waiting(w: World) -> Req:
    token = (await w.client.post(f"/api/events/{w.slow['id']}/queue")).json()["visitor_token"]
    return await _repeatable(w, poll(str(w.slow["id"]), token), token, str(w.slow["id"]))


async def poll_too_fast(w: World) -> Req:
    token = (await w.client.post(f"/api/events/{w.slow['id']}/queue")).json()["visitor_token"]
    await _wait_poll_allowed(w, token, str(w.slow["id"]))
    req = poll(str(w.slow["id"]), token)

    async def first(gateway: Client) -> None:
        r = await gateway.get(req.path, headers=req.headers)
        assert r.status_code == 200, r.text

    req.before = first  # the gateway answered a poll just now: the next is too fast
    return req


async def poll_old_token(w: World) -> Req:
    """A waiting visitor's token of the first shape (``v1``: no place in it), as held during
    an upgrade: Redis answers (with a token of the new shape)."""
    slow = str(w.slow["id"])
    token = (await w.client.post(f"/api/events/{slow}/queue")).json()["visitor_token"]
    visitor = w.services.visitors.verify(slow, token)
    old = f"v1.{visitor}.{w.services.visitors._mac(slow, visitor)}"
    return await _repeatable(w, poll(slow, old), token, slow)


async def poll_too_many_places(w: World) -> Req:
    """A visitor whose place ended polls again from a network that holds every place it may:
    a new place is refused."""
    address, later = w.address(), str(w.slow["id"])
    room = WaitingRoom(w.redis)
    for _ in range(PLACES):
        other, _ = w.services.visitors.issue(later)
        place = await room.join(later, other, client=address, cap=PLACES)
        assert place.state is State.WAITING, place
    _, token = w.services.visitors.issue(later)
    return Req("GET", f"/api/events/{later}/queue", {"X-Visitor-Token": token}, client=address)


async def poll_left(w: World) -> Req:
    token = (await w.client.post(f"/api/events/{w.slow['id']}/queue")).json()["visitor_token"]
    headers = {"X-Visitor-Token": token}
    r = await w.client.delete(f"/api/events/{w.slow['id']}/queue", headers=headers)
    assert r.status_code == 204, r.text
    req = await _repeatable(w, poll(str(w.slow["id"]), token), token, str(w.slow["id"]))

    async def leave(gateway: Client) -> None:  # (again: a leave is idempotent)
        r = await gateway.delete(req.path, headers=headers)
        assert r.status_code == 204, r.text

    req.before = leave  # the gateway saw the leave (one that did not: see lobby.py)
    return req


async def poll_no_event_id(w: World) -> Req:
    _, token = w.services.visitors.issue("")
    return poll("", token)


async def poll_path_without_event(w: World) -> Req:
    """``/api/events/queue``: no event id at all (the event ``queue``, to Litestar)."""
    return Req("GET", "/api/events/queue", {"X-Visitor-Token": "garbage"})


async def hold_path_without_event(w: World) -> Req:
    _, admission = await w.admission()
    req = hold(w.event_id, admission, items((w.tier("GA"), 1)))
    req.path = "/api/events/holds"
    return req


async def _repeatable(w: World, req: Req, token: str, event_id: str) -> Req:
    """A poll past the throttle now, and again before the second gateway's turn."""

    async def again() -> None:
        await _wait_poll_allowed(w, token, event_id)

    await again()
    req.again = again
    return req


async def _wait_poll_allowed(w: World, token: str, event_id: str | None = None) -> None:
    """Past the visitor's poll throttle (half the advised interval) without sleeping it:
    the earliest next poll the room recorded is now (room_support.make_poll_due)."""
    event_id = event_id or w.event_id
    visitor = w.services.visitors.verify(event_id, token)
    await make_poll_due(w.redis, event_id, visitor)


# -- joins ----------------------------------------------------------------------------------


def join(event_id: str, token: str | None = None, body: bytes = b"") -> Req:
    headers = {"X-Visitor-Token": token} if token is not None else {}
    return Req("POST", f"/api/events/{event_id}/queue", headers | (CT if body else {}), body)


async def join_prequeue(w: World) -> Req:
    """A new place (in the pre-queue: the same answer twice; a new place in a moving line
    would be one further back)."""
    return join(str(w.later["id"]))


async def join_again(w: World) -> Req:
    """Joining again with one's token gives one's place back (a poll, past the throttle)."""
    slow = str(w.slow["id"])
    token = (await w.client.post(f"/api/events/{slow}/queue")).json()["visitor_token"]
    return await _repeatable(w, join(slow, token), token, slow)


async def join_too_fast(w: World) -> Req:
    token = (await w.client.post(f"/api/events/{w.later['id']}/queue")).json()["visitor_token"]
    return join(str(w.later["id"]), token)


async def join_garbage_token(w: World) -> Req:
    return join(w.event_id, "v2.nobody.1.0.0000")


async def join_garbage_json(w: World) -> Req:
    return join(str(w.later["id"]), body=b'{"access_code": ')


async def join_unknown_field(w: World) -> Req:
    return join(str(w.later["id"]), body=b'{"coupon": "x"}')


async def join_oversize(w: World) -> Req:
    return join(str(w.later["id"]), body=b" " * (MAX_BODY + 1))


async def join_unknown_event(w: World) -> Req:
    return join(uuid.uuid4().hex)


async def join_too_many_places(w: World) -> Req:
    address, slow = w.address(), str(w.slow["id"])
    room = WaitingRoom(w.redis)
    for _ in range(PLACES):
        other, _ = w.services.visitors.issue(slow)
        place = await room.join(slow, other, client=address, cap=PLACES)
        assert place.state is State.WAITING, place
    req = join(slow)
    req.client = address
    return req


# -- holds ----------------------------------------------------------------------------------


async def hold_ok(w: World) -> Req:
    _, admission = await w.admission()
    req = hold(w.event_id, admission, items((w.tier("GA"), 2), (w.tier("VIP"), 1)))
    req.fresh = True
    return req


async def hold_no_authorization(w: World) -> Req:
    return hold(w.event_id, None, items((w.tier("GA"), 1)))


async def hold_basic_scheme(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("GA"), 1)), scheme="Basic")


async def hold_garbage_admission(w: World) -> Req:
    return hold(w.event_id, "not.a.jwt", items((w.tier("GA"), 1)))


async def hold_other_events_admission(w: World) -> Req:
    _, admission = await w.admission()
    return hold(str(w.later["id"]), admission, items((w.tier("GA"), 1)))


async def hold_expired_admission(w: World) -> Req:
    now_s = int(time.time())
    admission = w.services.admissions.issue(w.event_id, "gone", (now_s - 60) * 1000, now_s - 120)
    return hold(w.event_id, admission, items((w.tier("GA"), 1)))


async def hold_ended_admission(w: World) -> Req:
    """A signed, unexpired admission the waiting room no longer counts as live."""
    visitor, admission = await w.admission()
    sub = w.services.visitors.verify(w.event_id, visitor)
    await w.redis.zrem(keys.queue_active(w.event_id), sub)
    return hold(w.event_id, admission, items((w.tier("GA"), 1)))


async def hold_unknown_event(w: World) -> Req:
    event_id, now_s = uuid.uuid4().hex, int(time.time())
    admission = w.services.admissions.issue(event_id, "someone", (now_s + 600) * 1000, now_s)
    return hold(event_id, admission, items(("ga", 1)))


async def hold_garbage_json(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, b'{"items": [')


async def hold_not_json_object(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, b"[1, 2, 3]")


async def hold_empty_body(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, b"")


async def hold_unknown_field(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("GA"), 1)) | {"coupon": "FREE"})


async def hold_zero_quantity(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("GA"), 0)))


async def hold_no_items(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, {"items": []})


async def hold_oversize(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, b" " * (MAX_BODY + 1))


async def hold_unknown_tier(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items(("no-such-tier", 1)))


async def hold_over_per_order_limit(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("VIP"), 3)))


async def hold_over_limit_across_holds(w: World) -> Req:
    _, admission = await w.admission()
    first = hold(w.event_id, admission, items((w.tier("VIP"), 2)))
    r = await w.client.post(first.path, content=first.body, headers=first.headers)
    assert r.status_code == 201, r.text
    return hold(w.event_id, admission, items((w.tier("VIP"), 1)))


async def hold_unknown_promo(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("GA"), 1)) | {"promo_code": "NOSUCHCODE"})


async def hold_malformed_promo(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("GA"), 1)) | {"promo_code": "!?"})


async def hold_sold_out(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("Gone"), 1)))


async def hold_insufficient(w: World) -> Req:
    _, admission = await w.admission()
    return hold(w.event_id, admission, items((w.tier("Few"), 4)))


# -- faults ---------------------------------------------------------------------------------


def _raise(exc: Exception) -> Callable[..., Awaitable[Any]]:
    async def broken(*_: Any, **__: Any) -> Any:
        raise exc

    return broken


def redis_down(services: Services, mp: pytest.MonkeyPatch) -> None:
    """Every Redis command fails as it does when Redis is unreachable."""
    mp.setattr(services.redis, "execute_command", _raise(RedisConnectionError("refused")))
    for name in ("room", "inventory"):
        scripts = getattr(services, name).scripts
        mp.setattr(scripts, "run", _raise(RedisConnectionError("refused")))


def bug(services: Services, mp: pytest.MonkeyPatch) -> None:
    """A bug deep in the engine: an exception nobody expected."""
    mp.setattr(services.room, "status", _raise(ZeroDivisionError("a bug")))
    mp.setattr(services.room, "join", _raise(ZeroDivisionError("a bug")))
    mp.setattr(services.inventory, "hold", _raise(ZeroDivisionError("a bug")))


#: Each case: its setup, a fault if any, and the answer it must get (status, and the error
#: code or the queue state; "" for a hold), so that no case passes by testing nothing.
CASES: dict[str, tuple[Setup, Fault | None, int, str]] = {
    "poll_no_token": (poll_no_token, None, 401, "visitor_token_invalid"),
    "poll_empty_token": (poll_empty_token, None, 401, "visitor_token_invalid"),
    "poll_garbage_token": (poll_garbage_token, None, 401, "visitor_token_invalid"),
    "poll_other_events_token": (poll_other_events_token, None, 401, "visitor_token_invalid"),
    "poll_unknown_event": (poll_unknown_event, None, 404, "event_not_found"),
    "poll_admitted": (poll_admitted, None, 200, "admitted"),
    "poll_prequeue": (poll_prequeue, None, 200, "prequeue"),
    "poll_left": (poll_left, None, 200, "closed"),
    "poll_too_fast": (poll_too_fast, None, 429, "rate_limited"),
    "poll_too_many_places": (poll_too_many_places, None, 429, "too_many_places"),
    "poll_no_event_id": (poll_no_event_id, None, 404, "event_not_found"),
    "poll_path_without_event": (poll_path_without_event, None, 404, "event_not_found"),
    "hold_path_without_event": (hold_path_without_event, None, 405, "method_not_allowed"),
    "poll_waiting": (poll_waiting, None, 200, "waiting"),
    "poll_old_token": (poll_old_token, None, 200, "waiting"),
    # (A poll the gateway answers from its last read of the room's state does not see Redis
    # go for a few seconds, nor reach the room's code: one that Redis answers does.)
    "poll_redis_down": (poll_old_token, redis_down, 503, "unavailable"),
    "poll_unexpected_exception": (poll_old_token, bug, 500, "internal_error"),
    "join_prequeue": (join_prequeue, None, 200, "prequeue"),
    "join_again": (join_again, None, 200, "waiting"),
    "join_too_fast": (join_too_fast, None, 429, "rate_limited"),
    "join_garbage_token": (join_garbage_token, None, 401, "visitor_token_invalid"),
    "join_garbage_json": (join_garbage_json, None, 400, "invalid_request"),
    "join_unknown_field": (join_unknown_field, None, 422, "invalid_request"),
    "join_oversize": (join_oversize, None, 413, "payload_too_large"),
    "join_unknown_event": (join_unknown_event, None, 404, "event_not_found"),
    "join_too_many_places": (join_too_many_places, None, 429, "too_many_places"),
    "join_redis_down": (join_prequeue, redis_down, 503, "unavailable"),
    "join_unexpected_exception": (join_prequeue, bug, 500, "internal_error"),
    "hold_ok": (hold_ok, None, 201, ""),
    "hold_no_authorization": (hold_no_authorization, None, 401, "admission_required"),
    "hold_basic_scheme": (hold_basic_scheme, None, 401, "admission_required"),
    "hold_garbage_admission": (hold_garbage_admission, None, 403, "admission_invalid"),
    "hold_other_events_admission": (hold_other_events_admission, None, 403, "admission_invalid"),
    "hold_expired_admission": (hold_expired_admission, None, 403, "admission_invalid"),
    "hold_ended_admission": (hold_ended_admission, None, 403, "admission_ended"),
    "hold_unknown_event": (hold_unknown_event, None, 404, "event_not_found"),
    "hold_garbage_json": (hold_garbage_json, None, 400, "invalid_request"),
    "hold_not_json_object": (hold_not_json_object, None, 422, "invalid_request"),
    "hold_empty_body": (hold_empty_body, None, 400, "invalid_request"),
    "hold_unknown_field": (hold_unknown_field, None, 422, "invalid_request"),
    "hold_zero_quantity": (hold_zero_quantity, None, 422, "invalid_request"),
    "hold_no_items": (hold_no_items, None, 422, "invalid_request"),
    "hold_oversize": (hold_oversize, None, 413, "payload_too_large"),
    "hold_unknown_tier": (hold_unknown_tier, None, 422, "invalid_request"),
    "hold_over_per_order_limit": (hold_over_per_order_limit, None, 422, "limit_exceeded"),
    "hold_over_limit_across_holds": (hold_over_limit_across_holds, None, 422, "limit_exceeded"),
    "hold_unknown_promo": (hold_unknown_promo, None, 422, "promo_invalid"),
    "hold_malformed_promo": (hold_malformed_promo, None, 422, "promo_invalid"),
    "hold_sold_out": (hold_sold_out, None, 409, "sold_out"),
    "hold_insufficient": (hold_insufficient, None, 409, "insufficient_inventory"),
    "hold_redis_down": (hold_ok, redis_down, 503, "unavailable"),
    "hold_unexpected_exception": (hold_ok, bug, 500, "internal_error"),
}


# -- the two gateways -------------------------------------------------------------------------


def _settings(settings: Settings) -> Settings:
    security = msgspec.structs.replace(settings.security, places_per_client=PLACES)
    return msgspec.structs.replace(settings, security=security)


#: A request's client address, for the per-network cap on places (see ``address``).
CLIENT = "X-Test-Client"


def _from_header(app: Litestar) -> Litestar:
    """Requests come from the address in ``CLIENT``, if sent (the test client has one)."""
    inner = app.asgi_handler

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        for name, value in scope.get("headers", ()):
            if name == CLIENT.lower().encode():
                scope = {**scope, "client": (value.decode(), 40000)}
        await inner(scope, receive, send)

    app.asgi_handler = handler
    return app


@pytest.fixture(scope="module")
async def gateways(settings: Settings) -> AsyncIterator[dict[str, Client]]:
    fast = _from_header(create_app(_settings(settings)))
    routes = _from_header(create_app(_settings(settings), hot_paths=False))
    async with AsyncTestClient(app=fast) as f, AsyncTestClient(app=routes) as r:
        yield {"fast path": f, "routes": r}


@pytest.fixture(scope="module")
async def world(client: Client, redis: aioredis.Redis) -> AsyncIterator[World]:
    admin = {"Authorization": "Bearer test-admin-token"}
    tiers = [
        {"name": "GA", "price": 4500, "capacity": 10_000, "per_order_limit": 6},
        {"name": "VIP", "price": 15000, "capacity": 10_000, "per_order_limit": 2},
        {"name": "Few", "price": 2000, "capacity": 3},
        {"name": "Gone", "price": 1000, "capacity": 1},
    ]
    onsale = {"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": 60}
    event = await create(
        client,
        admin,
        starts_at=iso(30 * 86400),
        tiers=tiers,
        onsale=onsale,
    )
    later = await create(
        client, admin, starts_at=iso(30 * 86400), onsale=onsale | {"opens_at": iso(3600)}
    )
    slow = await create(
        client,
        admin,
        starts_at=iso(30 * 86400),
        onsale=onsale | {"admit_per_minute": 1, "max_active": 1},
    )
    mine = {event["id"], later["id"], slow["id"]}
    # Kept past each test's clean-up (tests/conftest.py), forgotten after the module.
    CREATED[:] = [c for c in CREATED if c[1] not in mine]
    w = World(client, redis, admin, event, later, slow)
    # First in the slow event's line: one admission a minute, at most one at a time, so
    # whoever joins after it waits for the module's life.
    r = await client.post(f"/api/events/{slow['id']}/queue")
    assert r.status_code == 200, r.text
    # Gone is gone: its one ticket sits in a hold for the module's life.
    _, admission = await w.admission()
    taken = hold(w.event_id, admission, items((w.tier("Gone"), 1)))
    r = await client.post(taken.path, content=taken.body, headers=taken.headers)
    assert r.status_code == 201, r.text
    yield w
    for event_id in mine:
        await forget(redis, event_id)


@pytest.fixture
def monkeypatch_factory() -> Iterator[Callable[[], pytest.MonkeyPatch]]:
    made: list[pytest.MonkeyPatch] = []

    def make() -> pytest.MonkeyPatch:
        made.append(pytest.MonkeyPatch())
        return made[-1]

    yield make
    for mp in made:
        mp.undo()


def _normalized(answer: Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers (content-length checked against the body, then left out: a fresh
    timestamp may be a digit shorter) and body (fresh values replaced by their type)."""
    raw = answer.headers.multi_items()
    headers = dict(raw)
    assert len(headers) == len(raw), f"a header sent twice: {raw}"
    assert int(headers.pop("content-length")) == len(answer.content)
    body: Any = json.loads(answer.content) if answer.content else None
    if isinstance(body, dict):
        body = {k: type(v).__name__ if k in FRESH and v is not None else v for k, v in body.items()}
    return answer.status_code, headers, body


@pytest.mark.parametrize("case", list(CASES))
async def test_fast_path_answers_as_the_routes(
    case: str,
    gateways: dict[str, Client],
    world: World,
    monkeypatch_factory: Callable[[], pytest.MonkeyPatch],
) -> None:
    setup, fault, want_status, want = CASES[case]
    answers: dict[str, tuple[int, dict[str, str], Any]] = {}
    req = await setup(world)
    for name, gateway in gateways.items():
        if name != "fast path":
            if req.fresh:
                req = await setup(world)
            elif req.again is not None:
                await req.again()
        if req.before is not None:
            await req.before(gateway)
        mp = monkeypatch_factory()
        if fault is not None:
            fault(gateway.app.state.services, mp)
        headers = req.headers | {"X-Request-ID": REQUEST_ID, CLIENT: req.client or world.address()}
        try:
            got = await gateway.request(req.method, req.path, headers=headers, content=req.body)
        finally:
            mp.undo()
        answers[name] = _normalized(got)
    fast, routes = answers["fast path"], answers["routes"]
    assert fast == routes, f"{case}:\n fast path: {fast}\n routes:    {routes}"
    status, _, body = fast
    # Every answer is the catalog's: a JSON object, an error's with its stable code.
    assert isinstance(body, dict), body
    assert status < 400 or set(body) >= {"code", "detail"}, body
    assert (status, body.get("code") or body.get("state") or "") == (want_status, want), body
