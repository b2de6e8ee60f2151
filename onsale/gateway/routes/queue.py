"""The buyer's waiting room: join, status, leave."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import MediaType, Response, delete, get, post
from litestar.params import FromPath

from onsale import keys
from onsale.errors import ApiError, Code
from onsale.gateway.body import MAX_BODY, decode
from onsale.gateway.ratelimit import client_address, limit_headers
from onsale.gateway.routes.challenge import require_pow
from onsale.gateway.types import AnyRequest, Deps
from onsale.queue import access
from onsale.queue.lobby import answer
from onsale.queue.room import Place, State
from onsale.queue.tokens import PRE_GENERAL, Pass


class JoinIn(msgspec.Struct, forbid_unknown_fields=True):
    #: A presale's access code (any case; spaces and dashes do not matter).
    access_code: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    #: A solved proof-of-work (ALTCHA payload), as header ``X-Altcha`` may carry it instead.
    altcha: Annotated[str, msgspec.Meta(max_length=4096)] | None = None


class QueueOut(msgspec.Struct):
    visitor_token: str
    state: str
    position: int | None
    eta_seconds: int | None
    poll_after_seconds: int
    admission_token: str | None
    admission_expires_at: datetime | None = None
    #: ``held_only``: every ticket left is in someone's cart; some may come back.
    note: str | None = None
    #: ``presale``: a place in the presale's line (or an admission it gave), else absent.
    line: str | None = None


_encode = msgspec.json.Encoder().encode


#: Every queue answer's headers: positions change by the second, never cache one.
HEADERS = {"Cache-Control": "no-store"}


def _body(
    services: Deps,
    event_id: str,
    visitor: str,
    token: str,
    place: Place,
    held: Pass | None = None,
) -> bytes:
    """The answer's body; its token is the one given, or, when the answer names the
    visitor's place (:attr:`Place.number`) and the token (``held``, checked) does not
    carry it, the token carrying that place (``token`` ``""``: a new visitor's)."""
    if place.state is State.UNKNOWN_EVENT:
        raise ApiError(Code.EVENT_NOT_FOUND)
    if place.state is State.TOO_FAST:
        raise too_fast(place.poll_after_seconds)
    if place.state is State.TOO_MANY:
        raise ApiError(Code.TOO_MANY_PLACES, headers={"Retry-After": str(place.poll_after_seconds)})
    if place.state is State.CODE_INVALID:
        raise ApiError(Code.ACCESS_CODE_INVALID)
    admission, expires = None, None
    if place.state is State.ADMITTED:
        expires = datetime.fromtimestamp(place.admission_expires_ms / 1000, UTC)
        admission = services.admissions.issue(
            event_id, visitor, place.admission_expires_ms, int(time.time()), place.tiers
        )
    if place.number and (held is None or (held.place, held.epoch) != (place.number, place.epoch)):
        token = services.visitors.token(event_id, visitor, place.number, place.epoch)
    elif not token:  # a new visitor without a place to name: their token names none yet
        token = services.visitors.token(event_id, visitor, PRE_GENERAL, 0)
    state = "closed" if place.state is State.LEFT else str(place.state)
    body = QueueOut(
        visitor_token=token,
        state=state,
        position=place.position,
        eta_seconds=place.eta_seconds,
        poll_after_seconds=place.poll_after_seconds,
        admission_token=admission,
        admission_expires_at=expires,
        note=place.note or None,
        line=place.line or None,
    )
    return _encode(body)


def too_fast(retry_after: int) -> ApiError:
    return ApiError(
        Code.RATE_LIMITED,
        f"poll again in {retry_after} s (as poll_after_seconds said)",
        headers={"Retry-After": str(retry_after)},
    )


async def take_place(
    services: Deps,
    event_id: str,
    visitor: str,
    address: str,
    *,
    strict: bool = False,
    code_hash: str = "",
) -> Place:
    """Join: a new place counts against the client's network, up to its cap of live places.
    With ``strict``, joining again while holding a place is a poll, throttled like one; with
    ``code_hash``, an access code for the presale's line."""
    return await services.room.join(
        event_id,
        visitor,
        client=services.limiter.owner(address),
        cap=services.settings.security.places_per_client,
        strict=strict,
        code_hash=code_hash,
    )


async def enter(
    services: Deps,
    event_id: str,
    token: str | None,
    raw: bytes,
    address: str,
    altcha: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A join's answer (``POST .../queue``) and its rate-limit headers, or :class:`ApiError`:
    for the Litestar route and the fast path alike. ``altcha``: header ``X-Altcha``."""
    limits: dict[str, str] = {}
    if len(raw) > MAX_BODY:  # (blank or not: the fast path stops reading there)
        raise ApiError(Code.PAYLOAD_TOO_LARGE)
    joined = decode(raw, JoinIn) if raw.strip() else JoinIn()
    if not token:  # a new place pays the bot tax first (onsale/botgate), if the event asks
        await require_pow(services, event_id, altcha, joined.altcha)
    code = joined.access_code
    code_hash = access.digest(event_id, code) if code and code.strip() else ""
    lobby = services.room.lobby
    if token:
        visitor = services.visitors.verify(event_id, token)
        # Joining again while holding a place is a poll, which the room refuses when it
        # comes too fast after the last answer Redis gave (a join, or a poll it answered).
        place = await take_place(
            services, event_id, visitor, address, strict=True, code_hash=code_hash
        )
    else:
        limit = services.settings.security.joins_per_minute
        left = await services.limiter.check(keys.event_limit(event_id, "join"), address, limit)
        limits = limit_headers(limit, left)
        # The token is made with the answer, naming the place taken (one HMAC, not two).
        visitor, token = services.visitors.new_id(), ""
        place = await take_place(services, event_id, visitor, address, code_hash=code_hash)
    if place.state in (State.WAITING, State.PREQUEUE):
        # (Only then: an unknown event's id, which anyone may send, starts no refreshing.)
        _, now = await lobby.view(event_id)
        lobby.answered(event_id, visitor, place, now)
    return _body(services, event_id, visitor, token, place), limits


@post("/api/events/{event_id:str}/queue", status_code=200)
async def join(event_id: FromPath[str], request: AnyRequest, services: Deps) -> Response[bytes]:
    """Served by :class:`onsale.gateway.fastpath.HotPaths` first; the same answer here."""
    token = request.headers.get("x-visitor-token")
    raw = await request.body()
    altcha = request.headers.get("x-altcha")
    body, limits = await enter(services, event_id, token, raw, client_address(request), altcha)
    return Response(body, media_type=MediaType.JSON, headers=HEADERS | limits)


async def poll(services: Deps, event_id: str, token: str | None, address: str) -> bytes:
    """A status poll's answer (``GET .../queue``), or :class:`ApiError`: from the event's
    public state and the place the token carries when they tell (no Redis), else from the
    room (:mod:`onsale.queue.lobby`)."""
    if not token:
        raise ApiError(Code.VISITOR_TOKEN_INVALID, "send the X-Visitor-Token from your join")
    signed = services.visitors.check(event_id, token)
    visitor, lobby = signed.visitor_id, services.room.lobby
    board, now = await lobby.view(event_id)
    place = None
    if board is not None:  # (else Redis is away, or the event unknown: Redis says which)
        wait = lobby.too_fast(event_id, visitor, now)
        if wait:
            raise too_fast(wait)
        if not lobby.has_left(event_id, visitor):
            place = answer(board, now, signed)
    if place is not None:
        lobby.seen(event_id, visitor, place, now)
    else:
        place = await services.room.status(event_id, visitor, strict=True)
        if place.state is State.UNKNOWN:
            # A valid token without a live place (Redis lost it, or it ended): a new one, if
            # the client's network may take one more.
            place = await take_place(services, event_id, visitor, address)
    lobby.answered(event_id, visitor, place, now)
    return _body(services, event_id, visitor, token, place, signed)


@get("/api/events/{event_id:str}/queue")
async def status(event_id: FromPath[str], request: AnyRequest, services: Deps) -> Response[bytes]:
    """Served by :class:`onsale.gateway.fastpath.HotPaths` first; the same answer here."""
    token = request.headers.get("x-visitor-token")
    body = await poll(services, event_id, token, client_address(request))
    return Response(body, media_type=MediaType.JSON, headers=HEADERS)


@delete("/api/events/{event_id:str}/queue", status_code=204)
async def leave(event_id: FromPath[str], request: AnyRequest, services: Deps) -> None:
    token = request.headers.get("x-visitor-token") or ""
    visitor = services.visitors.verify(event_id, token)
    services.room.lobby.left(event_id, visitor)
    await services.room.leave(event_id, visitor)


ROUTES = [join, status, leave]
