"""Every error leaves as ``{"code", "detail"}`` with a stable code; never a bare 500."""

from __future__ import annotations

import logging

import asyncpg
from litestar import MediaType, Response
from litestar.exceptions import HTTPException, ValidationException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from onsale.errors import CATALOG, ApiError, Code
from onsale.gateway.types import AnyRequest

log = logging.getLogger("onsale.gateway")

_BY_STATUS = {
    400: Code.INVALID_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    409: Code.CONFLICT,
    413: Code.PAYLOAD_TOO_LARGE,
    429: Code.RATE_LIMITED,
    503: Code.UNAVAILABLE,
}


def _respond(err: ApiError) -> Response[dict[str, object]]:
    return Response(err.body(), status_code=err.status, headers=err.headers,
                    media_type=MediaType.JSON)  # fmt: skip


def api_error(_: AnyRequest, exc: ApiError) -> Response[dict[str, object]]:
    return _respond(exc)


def http_error(_: AnyRequest, exc: HTTPException) -> Response[dict[str, object]]:
    if isinstance(exc, ValidationException):
        return _respond(ApiError(Code.INVALID_REQUEST, str(exc.detail), status=400))
    code = _BY_STATUS.get(exc.status_code, Code.INVALID_REQUEST)
    detail = exc.detail if exc.detail and exc.detail != CATALOG[code][1] else None
    return _respond(ApiError(code, detail, status=exc.status_code, headers=exc.headers))


def unavailable(request: AnyRequest, exc: Exception) -> Response[dict[str, object]]:
    """Redis or Postgres is down: say which, as a 503 a client can retry."""
    backend = "Postgres" if isinstance(exc, asyncpg.PostgresError | OSError) else "Redis"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        backend = "Redis"
    log.error("%s unavailable on %s %s: %s", backend, request.method, request.url.path, exc)
    return _respond(ApiError(Code.UNAVAILABLE, f"{backend} is unavailable; retry shortly.",
                             headers={"Retry-After": "2"}))  # fmt: skip


def internal(request: AnyRequest, exc: Exception) -> Response[dict[str, object]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(ApiError(Code.INTERNAL_ERROR))


HANDLERS = {
    ApiError: api_error,
    HTTPException: http_error,
    RedisConnectionError: unavailable,
    RedisTimeoutError: unavailable,
    asyncpg.CannotConnectNowError: unavailable,
    asyncpg.InterfaceError: unavailable,
    ConnectionError: unavailable,
    OSError: unavailable,
    Exception: internal,
}
