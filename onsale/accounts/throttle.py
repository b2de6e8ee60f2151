"""Failed logins counted per account and per client in Redis; over either limit, logins
are refused (even with the right password: otherwise the refusal would be an oracle)
until the window ends."""

from __future__ import annotations

import hashlib

from onsale import keys
from onsale.accounts.models import AccountRejected, AccountRejection
from onsale.connections import RedisClient

#: How long failures are remembered (seconds since the first failure of the window).
WINDOW_S = 15 * 60


class LoginThrottle:
    def __init__(self, redis: RedisClient, per_account: int, per_client: int) -> None:
        self.redis = redis
        self.per_account = per_account
        self.per_client = per_client

    def _keys(self, email: str, client: str) -> tuple[str, str]:
        # Hashed: a Redis dump does not list who tried to sign in.
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return keys.login_failures("account", account), keys.login_failures("client", client)

    async def check(self, email: str, client: str) -> None:
        """Refuse (``THROTTLED`` with ``retry_after``) while either count is at its limit."""
        account_key, client_key = self._keys(email, client)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(account_key)
            pipe.ttl(account_key)
            pipe.get(client_key)
            pipe.ttl(client_key)
            account, account_ttl, by_client, client_ttl = await pipe.execute()
        waits = []
        if int(account or 0) >= self.per_account:
            waits.append(int(account_ttl))
        if int(by_client or 0) >= self.per_client:
            waits.append(int(client_ttl))
        if waits:
            retry = max(1, *waits)
            raise AccountRejected(
                AccountRejection.THROTTLED,
                f"too many failed logins; retry in {retry} s",
                retry_after=retry,
            )

    async def failed(self, email: str, client: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self._keys(email, client):
                # The window starts at the first failure (EXPIRE NX needs Redis 7).
                pipe.set(key, 0, ex=WINDOW_S, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        """A right password clears the account's count (not the client's)."""
        await self.redis.delete(self._keys(email, "")[0])
