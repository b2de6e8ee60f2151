"""Accounts over HTTP: sign in and out, ``/api/me``, personal API tokens, users (admins),
and an event's staff (its owner or an admin). Who may call what is decided by the guards
(onsale/accounts/guard.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.params import FromPath
from msgspec import Meta

from onsale.accounts import staff, tokens, users
from onsale.accounts.models import (
    AccountRejected,
    AccountRejection,
    Caller,
    Email,
    NewPassword,
    Password,
    PublicUser,
    Role,
    User,
    Via,
)
from onsale.accounts.sessions import COOKIE
from onsale.accounts.tokens import NewToken, TokenInfo
from onsale.errors import ApiError, Code
from onsale.events import catalog
from onsale.gateway.auth import account_guard, admin_only_guard, caller_of, event_guard
from onsale.gateway.body import decode
from onsale.gateway.errors import to_api
from onsale.gateway.ratelimit import client_address, network
from onsale.gateway.types import AnyRequest, Deps
from onsale.text import LINE

TokenName = Annotated[str, Meta(min_length=1, max_length=100), LINE]


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(max_length=254)]
    password: Password


class Me(msgspec.Struct):
    user: PublicUser
    #: Send as ``X-CSRF-Token`` with every change made with the session cookie (``null``
    #: for bearer callers, who need none).
    csrf_token: str | None


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    name: TokenName


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    role: Role
    password: NewPassword


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    role: Role | None = None
    disabled: bool | None = None


class StaffIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(max_length=254)]


class UserList(msgspec.Struct):
    items: list[User]


class TokenList(msgspec.Struct):
    items: list[TokenInfo]


def _public(caller: Caller) -> PublicUser:
    # The admin token is nobody: it has the admin role and no account.
    return PublicUser(caller.user_id, caller.email, caller.role)


def _session_cookie(value: str, services: Deps, *, max_age: int | None) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=value,
        path="/",
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=services.accounts.secure_cookies,
    )


def _account(caller: Caller) -> str:
    if caller.user_id is None:
        raise ApiError(Code.FORBIDDEN, "the admin token has no account: sign in as a user")
    return caller.user_id


@post("/api/auth/login", status_code=200)
async def login(request: AnyRequest, services: Deps) -> Response[Me]:
    data = decode(await request.body(), LoginIn)
    try:
        value, session, user = await services.accounts.login(
            data.email, data.password, network(client_address(request))
        )
    except AccountRejected as exc:
        err = to_api(exc)
        if exc.reason is AccountRejection.THROTTLED:
            err.headers["Retry-After"] = str(exc.retry_after)
        raise err from None
    me = Me(PublicUser(user.id, user.email, user.role), session.csrf_token)
    # No Max-Age: the browser keeps it until it closes, and the session's idle TTL in Redis
    # (renewed by each use) decides how long it is good for.
    cookie = _session_cookie(value, services, max_age=None)
    return Response(me, cookies=[cookie], headers={"Cache-Control": "no-store"})


@post("/api/auth/logout", guards=[account_guard], status_code=204)
async def logout(request: AnyRequest, services: Deps) -> Response[None]:
    caller = caller_of(request)
    if caller.session:
        await services.accounts.sessions.close(caller.session)
    return Response(None, status_code=204, cookies=[_session_cookie("", services, max_age=0)])


@get("/api/me", guards=[account_guard], cache_control=None)
async def me(request: AnyRequest) -> Response[Me]:
    caller = caller_of(request)
    csrf = caller.csrf_token if caller.via is Via.SESSION else None
    return Response(Me(_public(caller), csrf), headers={"Cache-Control": "no-store"})


@post("/api/tokens", guards=[account_guard], status_code=201)
async def create_token(request: AnyRequest, services: Deps) -> Response[NewToken]:
    user_id = _account(caller_of(request))
    data = decode(await request.body(), TokenIn)
    made = await tokens.create(services.pool, user_id, data.name)
    return Response(made, status_code=201, headers={"Cache-Control": "no-store"})


@get("/api/tokens", guards=[account_guard])
async def list_tokens(request: AnyRequest, services: Deps) -> TokenList:
    return TokenList(await tokens.listing(services.pool, _account(caller_of(request))))


@delete("/api/tokens/{token_id:str}", guards=[account_guard], status_code=204)
async def revoke_token(token_id: FromPath[str], request: AnyRequest, services: Deps) -> None:
    await tokens.revoke(services.pool, _account(caller_of(request)), token_id)


@post("/api/users", guards=[admin_only_guard], status_code=201)
async def create_user(request: AnyRequest, services: Deps) -> User:
    data = decode(await request.body(), UserIn)
    return await users.create(services.pool, data.email, data.role, data.password)


@get("/api/users", guards=[admin_only_guard])
async def list_users(services: Deps) -> UserList:
    return UserList(await users.listing(services.pool))


@patch("/api/users/{user_id:str}", guards=[admin_only_guard])
async def patch_user(user_id: FromPath[str], request: AnyRequest, services: Deps) -> User:
    data = decode(await request.body(), UserPatch)
    if data.role is None and data.disabled is None:
        raise ApiError(Code.INVALID_REQUEST, "send role, disabled, or both")
    caller = caller_of(request)
    if user_id == caller.user_id and (data.disabled or data.role not in (None, Role.ADMIN)):
        raise ApiError(Code.INVALID_REQUEST, "an admin cannot disable or demote themself")
    return await users.update(services.pool, user_id, role=data.role, disabled=data.disabled)


@get("/api/events/{event_id:str}/staff", guards=[event_guard])
async def list_staff(event_id: FromPath[str], services: Deps) -> UserList:
    return UserList(await staff.listing(services.pool, _event(event_id)))


@post("/api/events/{event_id:str}/staff", guards=[event_guard], status_code=204)
async def add_staff(event_id: FromPath[str], request: AnyRequest, services: Deps) -> None:
    data = decode(await request.body(), StaffIn)
    await staff.assign(services.pool, _event(event_id), data.email)


@delete("/api/events/{event_id:str}/staff/{user_id:str}", guards=[event_guard], status_code=204)
async def remove_staff(event_id: FromPath[str], user_id: FromPath[str], services: Deps) -> None:
    await staff.unassign(services.pool, _event(event_id), user_id)


def _event(event_id: str) -> str:
    return str(catalog.parse_id(event_id))


ROUTES = [
    login,
    logout,
    me,
    create_token,
    list_tokens,
    revoke_token,
    create_user,
    list_users,
    patch_user,
    list_staff,
    add_staff,
    remove_staff,
]
