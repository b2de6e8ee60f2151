"""The one place that decides who may do what.

Every guarded route names what it protects; the guard resolves the caller (a session
cookie, a personal API token, or ``ONSALE_ADMIN_TOKEN`` as an admin), the event (from the
path, or for check-in from the body), and decides:

=============  ==========================  ===================  =====================
guard          admin (user or token)       organizer            staff
=============  ==========================  ===================  =====================
organizer      yes                         yes                  403 ``forbidden``
event          yes                         owner; else 404      403 ``forbidden``
checkin        yes                         owner; else 404      assigned; else 403
admin_only     yes                         403 ``forbidden``    403 ``forbidden``
account        yes                         yes                  yes
=============  ==========================  ===================  =====================

Anonymous callers get 401: ``login_required`` on account routes (``/api/me``, tokens, sign
out) and for a lapsed session, ``unauthorized`` elsewhere (no credentials, or a bearer
token that is not live: unknown, revoked, or its user disabled). A write
authenticated by the session cookie must carry the session's ``X-CSRF-Token`` (403
``csrf_failed``); bearer requests need none (a browser never adds them by itself).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from onsale.accounts import staff, tokens, users
from onsale.accounts.models import AccountRejected, AccountRejection, Caller, Role, Via
from onsale.accounts.service import Accounts
from onsale.accounts.sessions import COOKIE
from onsale.checkout.refunds import event_of_order

Connection = ASGIConnection[Any, Any, Any, Any]
Guard = Callable[[Connection, BaseRouteHandler], Awaitable[None]]

#: Methods that change nothing, so need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


class Need(StrEnum):
    ORGANIZER = "organizer"
    EVENT = "event"
    CHECKIN = "checkin"
    ADMIN = "admin_only"
    ACCOUNT = "account"


class _EventRef(msgspec.Struct):
    event_id: str = ""


def bearer(connection: Connection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def accounts_of(connection: Connection) -> Accounts:
    accounts: Accounts = connection.app.state.services.accounts
    return accounts


async def resolve(connection: Connection, accounts: Accounts) -> Caller:
    """Who is asking, or refuse (``NO_CREDENTIALS``, ``BAD_TOKEN``, ``LOGIN_REQUIRED``,
    ``CSRF_FAILED``)."""
    token = bearer(connection)
    if token:
        admin = accounts.admin_token
        # Constant time: the comparison must not leak how much of the token was right.
        if admin and hmac.compare_digest(token.encode(), admin.encode()):
            return Caller(Role.ADMIN, Via.ADMIN_TOKEN)
        user = await tokens.user_of(accounts.pool, token)
        if user is None:
            raise AccountRejected(AccountRejection.BAD_TOKEN, "this bearer token is not valid")
        return Caller(user.role, Via.TOKEN, user.id, user.email)
    cookie = connection.cookies.get(COOKIE, "")
    if not cookie:
        raise AccountRejected(
            AccountRejection.NO_CREDENTIALS, "sign in, or send Authorization: Bearer <token>"
        )
    session = await accounts.sessions.find(cookie)
    user = await users.by_id(accounts.pool, session.user_id) if session else None
    if session is None or user is None or user.disabled:
        raise AccountRejected(AccountRejection.LOGIN_REQUIRED, "the session has ended")
    if connection.scope.get("method", "GET") not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise AccountRejected(AccountRejection.CSRF_FAILED)
    return Caller(user.role, Via.SESSION, user.id, user.email, session.csrf_token, session.digest)


async def _body_event(connection: Connection) -> str | None:
    """The event a request's body names (the handler reads the same, cached, bytes)."""
    if not hasattr(connection, "body"):
        return None
    try:
        return msgspec.json.decode(await connection.body(), type=_EventRef).event_id
    except msgspec.DecodeError:
        return None


async def _event_id(connection: Connection, need: Need) -> str | None:
    found = connection.path_params.get("event_id")
    if found is None and need is Need.CHECKIN:
        found = await _body_event(connection)  # check-in names its event in the body
    order_id = connection.path_params.get("order_id")
    if found is None and order_id is not None and need is Need.EVENT:
        # An order's route (a refund): the order's event, else the one the body names (the
        # handler then finds no such order in it).
        services = connection.app.state.services
        found = await event_of_order(services.pool, services.redis, str(order_id))
        if found is None:
            found = await _body_event(connection)
    return str(found) if found is not None else None


async def _decide_event(
    connection: Connection, accounts: Accounts, caller: Caller, need: Need
) -> None:
    if caller.admin:
        return  # every event; the handler says if there is no such event
    if caller.role is Role.STAFF and need is Need.EVENT:
        raise AccountRejected(AccountRejection.FORBIDDEN, "staff may only check tickets in")
    raw = await _event_id(connection, need)
    try:
        event_id = uuid.UUID(raw or "")
    except ValueError:
        if need is Need.CHECKIN:
            return  # a malformed or missing event id: the handler refuses the request
        raise AccountRejected(AccountRejection.EVENT_NOT_FOUND) from None
    standing = await staff.standing(accounts.pool, event_id, caller.user_id)
    if caller.role is Role.STAFF:
        if standing is None or not standing.staff:
            raise AccountRejected(AccountRejection.FORBIDDEN, "not on this event's staff")
    elif standing is None or standing.owner_id != caller.user_id:
        # Someone else's event is no one's business: it does not exist, to this organizer.
        raise AccountRejected(AccountRejection.EVENT_NOT_FOUND)


async def authorize(connection: Connection, need: Need) -> Caller:
    """Decide, and leave the caller on the connection (:func:`caller_of`)."""
    accounts = accounts_of(connection)
    try:
        caller = await resolve(connection, accounts)
    except AccountRejected as exc:
        lacking = (AccountRejection.NO_CREDENTIALS, AccountRejection.BAD_TOKEN)
        if need is Need.ACCOUNT and exc.reason in lacking:
            raise AccountRejected(AccountRejection.LOGIN_REQUIRED, exc.detail) from None
        raise
    if need is Need.ADMIN and not caller.admin:
        raise AccountRejected(AccountRejection.FORBIDDEN, "admins only")
    if need is Need.ORGANIZER and caller.role is Role.STAFF:
        raise AccountRejected(AccountRejection.FORBIDDEN, "staff may only check tickets in")
    if need in (Need.EVENT, Need.CHECKIN):
        await _decide_event(connection, accounts, caller, need)
    connection.state.caller = caller
    return caller


def guard(need: Need) -> Guard:
    async def check(connection: Connection, _: BaseRouteHandler) -> None:
        await authorize(connection, need)

    check.__name__ = check.__qualname__ = f"{need.value}_guard"
    return check


def caller_of(connection: Connection) -> Caller:
    """The caller a guard let through."""
    caller: Caller = connection.state.caller
    return caller


#: Creating events and listing one's own: an admin or an organizer.
organizer_guard = guard(Need.ORGANIZER)
#: Everything about one event (``event_id`` in the path): its owner or an admin.
event_guard = guard(Need.EVENT)
#: Check-in at one event (in the path or the body): its owner, an admin, or its staff.
checkin_guard = guard(Need.CHECKIN)
#: Users and the platform: admins only.
admin_only_guard = guard(Need.ADMIN)
#: One's own account (``/api/me``, tokens, sign out): anyone signed in.
account_guard = guard(Need.ACCOUNT)
