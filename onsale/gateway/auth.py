"""The organizer's bearer token."""

from __future__ import annotations

import hmac

from litestar.handlers.base import BaseRouteHandler

from onsale.errors import ApiError, Code
from onsale.gateway.types import AnyConnection


def bearer(connection: AnyConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def admin_guard(connection: AnyConnection, _: BaseRouteHandler) -> None:
    expected: str = connection.app.state.services.settings.security.admin_token
    token = bearer(connection)
    if not token:
        raise ApiError(Code.UNAUTHORIZED, "send Authorization: Bearer <ONSALE_ADMIN_TOKEN>")
    # Constant time: the comparison must not leak how much of the token was right.
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(Code.FORBIDDEN, "this token is not the organizer token")
