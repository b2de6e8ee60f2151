"""Roles, users, callers and why an account refuses: shared by the accounts modules."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from onsale.domain import DomainError


class Role(StrEnum):
    ADMIN = "admin"
    ORGANIZER = "organizer"
    STAFF = "staff"


class Via(StrEnum):
    """How a caller proved who they are (CSRF applies to the session cookie alone)."""

    SESSION = "session"
    TOKEN = "token"
    ADMIN_TOKEN = "admin_token"


class AccountRejection(StrEnum):
    #: Neither a session cookie nor a bearer token.
    NO_CREDENTIALS = "no_credentials"
    #: A session cookie that names no live session (expired, signed out).
    LOGIN_REQUIRED = "login_required"
    #: A bearer token that is not the admin token nor a live personal token.
    BAD_TOKEN = "bad_token"
    #: A cookie-authenticated write without the session's ``X-CSRF-Token``.
    CSRF_FAILED = "csrf_failed"
    #: The caller's role may not do this (staff on organizer routes, non-admins on users).
    FORBIDDEN = "forbidden"
    #: No such event, or (to an organizer) an event someone else owns.
    EVENT_NOT_FOUND = "event_not_found"
    #: Unknown e-mail, wrong password or disabled account: one answer for all three.
    INVALID_CREDENTIALS = "invalid_credentials"
    #: Too many failed logins for this account or from this client; ``retry_after`` says when.
    THROTTLED = "throttled"
    EMAIL_TAKEN = "email_taken"
    USER_NOT_FOUND = "user_not_found"
    NOT_FOUND = "not_found"
    #: The request does not make sense (the detail says why).
    INVALID = "invalid"


class AccountRejected(DomainError):
    reason: AccountRejection

    def __init__(
        self, reason: AccountRejection, detail: str | None = None, *, retry_after: int = 0
    ) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, Meta(min_length=1, max_length=1024)]
#: New passwords: long enough to matter, short enough that hashing stays cheap.
NewPassword = Annotated[str, Meta(min_length=10, max_length=1024)]


class User(msgspec.Struct):
    id: str
    email: str
    role: Role
    disabled: bool = False
    created_at: datetime | None = None


class PublicUser(msgspec.Struct):
    """What a user sees of themself at login and ``/api/me``."""

    #: ``null`` for the admin token, which is no one's account.
    id: str | None
    email: str | None
    role: Role


class Caller(msgspec.Struct, frozen=True):
    """Who is asking: a user (by session or personal token), or the admin token (no user)."""

    role: Role
    via: Via
    user_id: str | None = None
    email: str | None = None
    #: The session's CSRF token (session callers only).
    csrf_token: str | None = None
    #: The session id's digest (session callers only), to sign out.
    session: str | None = None

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN
