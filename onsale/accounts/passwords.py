"""Argon2id password hashes (argon2-cffi's defaults: RFC 9106's low-memory profile).

Hashing takes tens of milliseconds of CPU on purpose, so it runs in a worker thread,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


def hash_sync(password: str) -> str:
    return _HASHER.hash(password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


@functools.cache
def _dummy() -> str:
    """A hash nobody knows the password of: verified when there is no user, so an unknown
    e-mail costs the same time as a wrong password."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; ``None`` (no such user) verifies a dummy
    hash and is never a match."""
    return await asyncio.to_thread(_verify, stored, password)
