"""The hottest routes, answered without Litestar's machinery.

In a launch nearly every request is a waiting buyer's status poll, a join, or an admitted
buyer's hold. Routing, dependency injection, parameter parsing and the response object cost
as much as the work itself (py-spy, ``bench queue``), so ``GET /api/events/{id}/queue``,
``POST /api/events/{id}/queue`` and ``POST /api/events/{id}/holds`` are answered here, by
the same functions as their Litestar routes (``routes.queue.poll``, ``routes.queue.enter``,
``routes.holds.place``) and with the same errors (domain
errors mapped by ``gateway.errors.to_api``, as Litestar's handler does). Anything else
passes through to Litestar.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from onsale.domain import DomainError
from onsale.errors import ApiError, Code
from onsale.gateway.body import MAX_BODY
from onsale.gateway.errors import to_api
from onsale.gateway.ratelimit import scope_address
from onsale.gateway.routes import holds, queue
from onsale.gateway.services import Services

log = logging.getLogger("onsale.gateway")

PREFIX = "/api/events/"
_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_encode = msgspec.json.Encoder().encode

Headers = dict[bytes, str]
#: (services, event id, headers, body, client address) -> the answer's body and any
#: headers of its own.
Handler = Callable[[Services, str, Headers, bytes, str], Awaitable[tuple[bytes, dict[str, str]]]]


async def _poll(
    services: Services, event_id: str, headers: Headers, _: bytes, address: str
) -> tuple[bytes, dict[str, str]]:
    return await queue.poll(services, event_id, headers.get(b"x-visitor-token"), address), {}


async def _join(
    services: Services, event_id: str, headers: Headers, body: bytes, address: str
) -> tuple[bytes, dict[str, str]]:
    token, altcha = headers.get(b"x-visitor-token"), headers.get(b"x-altcha")
    return await queue.enter(services, event_id, token, body, address, altcha)


async def _hold(
    services: Services, event_id: str, headers: Headers, body: bytes, _address: str
) -> tuple[bytes, dict[str, str]]:
    scheme, _, token = headers.get(b"authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    return await holds.place(services, event_id, token, body), {}


#: (method, last path segment) -> (route template, success status, handler)
ROUTES: dict[tuple[str, str], tuple[str, int, Handler]] = {
    ("GET", "/queue"): ("/api/events/{event_id}/queue", 200, _poll),
    ("POST", "/queue"): ("/api/events/{event_id}/queue", 200, _join),
    ("POST", "/holds"): ("/api/events/{event_id}/holds", 201, _hold),
}


async def _body(receive: Any) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(Code.PAYLOAD_TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


class HotPaths:
    def __init__(self, app: Any, services: Callable[[], Services]) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        cut = path.rfind("/")
        route = ROUTES.get((scope.get("method", ""), path[cut:])) if cut > 0 else None
        event_id = path[len(PREFIX) : cut]
        # No event id (``/api/events/queue``): not a poll nor a hold; Litestar's routes say
        # what it is (the event ``queue``, or a method not allowed), as without this path.
        if route is None or not path.startswith(PREFIX) or not event_id or "/" in event_id:
            await self.app(scope, receive, send)
            return
        template, status, handler = route
        scope["path_template"] = template  # the latency histogram's label
        wanted = (b"x-visitor-token", b"authorization", b"x-altcha")
        headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in wanted}
        extra: list[tuple[bytes, bytes]] = []
        try:
            payload = await _body(receive) if scope["method"] == "POST" else b""
            body, own = await handler(
                self.services(), event_id, headers, payload, scope_address(scope)
            )
            extra = [(k.lower().encode(), v.encode()) for k, v in own.items()]
        except (ApiError, DomainError) as exc:
            error = to_api(exc) if isinstance(exc, DomainError) else exc
            status, body = error.status, _encode(error.body())
            extra = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.error("Redis unavailable on %s %s: %s", scope["method"], template, exc)
            error = ApiError(Code.UNAVAILABLE, "Redis is unavailable; retry shortly.")
            status, body = error.status, _encode(error.body())
            extra = [(b"retry-after", b"2")]
        except Exception:  # never a bare 500: the catalog's, as the Litestar routes answer
            log.exception("unhandled error on %s %s", scope["method"], template)
            status, body = 500, _encode(ApiError(Code.INTERNAL_ERROR).body())
        head = [*_JSON, *extra, (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})
