"""What the gateway holds of accounts: sessions, the login throttle, the admin token; and
the login itself."""

from __future__ import annotations

import asyncpg

from onsale.accounts import passwords, users
from onsale.accounts.models import AccountRejected, AccountRejection, User
from onsale.accounts.sessions import Session, Sessions
from onsale.accounts.throttle import LoginThrottle
from onsale.config import SecuritySettings
from onsale.connections import RedisClient


class Accounts:
    def __init__(self, pool: asyncpg.Pool, redis: RedisClient, security: SecuritySettings) -> None:
        self.pool = pool
        self.admin_token = security.admin_token
        self.secure_cookies = security.secure_cookies
        self.sessions = Sessions(redis, security.session_hours * 3600)
        self.throttle = LoginThrottle(
            redis, security.login_failures_per_account, security.login_failures_per_client
        )

    async def login(self, email: str, password: str, client: str) -> tuple[str, Session, User]:
        """A new session for the right e-mail and password: the cookie value, the session
        and its user. Unknown e-mail, wrong password and disabled account all answer
        ``INVALID_CREDENTIALS``, after the same work (one Argon2 verification)."""
        await self.throttle.check(email, client)
        user, stored = await users.credentials(self.pool, email)
        good = await passwords.verify(stored, password)
        if not good or user is None or user.disabled:
            await self.throttle.failed(email, client)
            raise AccountRejected(AccountRejection.INVALID_CREDENTIALS)
        await self.throttle.succeeded(email)
        cookie, session = await self.sessions.open(user.id)
        return cookie, session, user
