"""The fair start, recomputable by anyone: pre-queue order from the revealed seed.

Each visitor who arrived before opening is ranked by the first 52 bits of
``sha1(seed + visitor_id)`` (ties by visitor id), exactly as ``lua/queue_join.lua`` scores
them (a presale ranks its own pre-queue the same way with :func:`presale_seed`, revealed
at the presale's opening). The seed is drawn when the event is armed and only its SHA-256
is published until Redis has frozen the pre-queue at opening (``catalog.reveal_seeds``),
so nobody can know or steer their rank by arriving early, nor by joining again and again
just before the freeze.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable


def new_seed() -> str:
    return secrets.token_hex(16)


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def presale_seed(seed: str) -> str:
    """The presale's seed, derived from the event's: one secret to keep and restore, yet
    revealing it (at the presale's opening) reveals nothing of the general sale's seed."""
    return hashlib.sha256(b"onsale presale seed v1:" + seed.encode()).hexdigest()


def score(seed: str, visitor_id: str) -> int:
    return int(hashlib.sha1((seed + visitor_id).encode()).hexdigest()[:13], 16)


def order(seed: str, visitor_ids: Iterable[str]) -> list[str]:
    """The pre-queue in admission order."""
    return sorted(visitor_ids, key=lambda v: (score(seed, v), v))
