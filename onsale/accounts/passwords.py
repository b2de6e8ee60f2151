"""Argon2id password hashes (argon2-cffi's defaults: RFC 9106's low-memory profile).

Hashing takes tens of milliseconds of CPU on purpose, so it runs in a worker thread,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


def hash_sync(password: str) -> str:
    return _HASHER.hash(password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _dummy_hash() -> str:
    """A hash no password matches, with the parameters real hashes have: verified when there
    is no such user, so an unknown e-mail costs the same time as a wrong password."""
    h = _HASHER
    salt = base64.b64encode(bytes(h.salt_len)).decode().rstrip("=")
    digest = base64.b64encode(bytes(h.hash_len)).decode().rstrip("=")
    return f"$argon2id$v=19$m={h.memory_cost},t={h.time_cost},p={h.parallelism}${salt}${digest}"


DUMMY = _dummy_hash()


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; ``None`` (no such user) verifies a dummy
    hash and is never a match."""
    return await asyncio.to_thread(_verify, stored, password)
