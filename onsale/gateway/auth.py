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


# The guards routes name by what they protect. Until accounts exist (issue 10) every one of
# them is the organizer token; the accounts module gives each its own rule.
#: Creating events and listing one's own: an admin or an organizer.
organizer_guard = admin_guard
#: Everything about one event (``event_id`` in the path): its owner or an admin.
event_guard = admin_guard
#: Check-in at one event: its owner, an admin, or staff assigned to it.
checkin_guard = admin_guard
#: Users and the platform: admins only.
admin_only_guard = admin_guard
