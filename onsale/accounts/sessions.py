"""Server-side sessions in Redis.

Why Redis and not Postgres: a session is read on every console request and must vanish by
itself when it lapses; a Redis key with a TTL does both with no sweeper and no writes to
the system of record. Losing Redis signs people out, nothing more (they sign in again).
The cookie carries a random id; Redis stores only its sha256, so a copy of Redis holds no
usable cookie. The user is read from Postgres on each request, so disabling a user or
changing their role takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets

import msgspec

from onsale import keys
from onsale.connections import RedisClient

#: The session cookie's name.
COOKIE = "onsale_session"


class Session(msgspec.Struct, frozen=True):
    digest: str
    user_id: str
    csrf_token: str


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def open(self, user_id: str) -> tuple[str, Session]:
        """A new session: the cookie's value (shown once) and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(digest(session_id), user_id, secrets.token_urlsafe(32))
        key = keys.session(session.digest)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": user_id, "csrf": session.csrf_token})
            pipe.expire(key, self.ttl_s)
            await pipe.execute()
        return session_id, session

    async def find(self, session_id: str) -> Session | None:
        """The live session of a cookie; each use keeps it alive for another TTL."""
        if not session_id or len(session_id) > 100:
            return None
        found = digest(session_id)
        key = keys.session(found)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.expire(key, self.ttl_s)  # of a missing key: a no-op
            data, _ = await pipe.execute()
        if not data or "user" not in data:
            return None
        return Session(found, data["user"], data["csrf"])

    async def close(self, session_digest: str) -> None:
        await self.redis.delete(keys.session(session_digest))
