"""The hottest route, answered without Litestar's machinery.

In a launch nearly every request is a waiting buyer's status poll. Routing, dependency
injection, parameter parsing and the response object cost as much as the poll itself
(py-spy, ``bench queue``), so ``GET /api/events/{event_id}/queue`` is answered here, by
the same function as the Litestar route (``routes.queue.poll``) and with the same errors.
Anything else passes through to Litestar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from onsale.errors import ApiError, Code
from onsale.gateway.routes import queue
from onsale.gateway.services import Services

log = logging.getLogger("onsale.gateway")

PREFIX, SUFFIX = "/api/events/", "/queue"
TEMPLATE = "/api/events/{event_id}/queue"
_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_encode = msgspec.json.Encoder().encode


class QueuePolls:
    def __init__(self, app: Any, services: Callable[[], Services]) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not path.startswith(PREFIX)
            or not path.endswith(SUFFIX)
            or "/" in path[len(PREFIX) : -len(SUFFIX)]
        ):
            await self.app(scope, receive, send)
            return
        scope["path_template"] = TEMPLATE  # for the latency histogram's label
        event_id = path[len(PREFIX) : -len(SUFFIX)]
        token = None
        for name, value in scope["headers"]:
            if name == b"x-visitor-token":
                token = value.decode("latin-1")
                break
        status, headers = 200, _JSON
        try:
            body = await queue.poll(self.services(), event_id, token)
        except ApiError as exc:
            status, body = exc.status, _encode(exc.body())
            headers = _JSON + [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.error("Redis unavailable on GET %s: %s", TEMPLATE, exc)
            error = ApiError(Code.UNAVAILABLE, "Redis is unavailable; retry shortly.")
            status, body = error.status, _encode(error.body())
            headers = [*_JSON, (b"retry-after", b"2")]
        except Exception:  # never a bare 500: the catalog's, as the Litestar routes answer
            log.exception("unhandled error on GET %s", TEMPLATE)
            error = ApiError(Code.INTERNAL_ERROR)
            status, body = error.status, _encode(error.body())
        headers = [*headers, (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
