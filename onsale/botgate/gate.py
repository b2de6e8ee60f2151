"""Challenges out, solutions in: each solution buys one join, once, before it expires.

ALTCHA's v2 protocol (the ``altcha`` package; its widget solves in the browser): the server
picks a secret counter up to the event's difficulty and publishes the SHA-256 of it (salted,
with a nonce) as the key prefix to find; the browser tries counters from 0 until one derives
that key, about ``difficulty / 2`` hashes. The challenge is signed (HMAC) with the event and
the difficulty in it, and so is the derived key: checking a solution is two HMACs, no hash
search, no Redis. Only spending it touches Redis: one script, one ``SADD`` of its salt.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import altcha
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import keys, signing
from onsale.botgate.difficulty import WINDOW_S, Rule, effective
from onsale.botgate.errors import PowRejected, PowRejection
from onsale.config import PowSettings
from onsale.connections import RedisClient
from onsale.events.errors import EventRejected, EventRejection
from onsale.scripts import Scripts

#: Iterated SHA-256, one round per counter: bundled with the widget, fast in WebCrypto.
ALGORITHM = "SHA-256"
#: Seconds a challenge may be solved and spent in (and its salt remembered).
CHALLENGE_TTL_S = 300
#: Seconds a process trusts an event's difficulty and join rate it read from Redis.
REFRESH_S = 1.0
#: A payload is about 750 bytes of base64; anything much longer is not one of ours.
MAX_PAYLOAD = 4096
MAX_CACHED = 10_000


@dataclass(frozen=True)
class PowState:
    """An event's proof-of-work as one process sees it, for :data:`REFRESH_S`."""

    armed: bool
    #: The event's own difficulty (or the default): the least a spent challenge may have.
    base: int
    #: What a challenge asks now: ``base``, risen with the join rate.
    difficulty: int
    joins_per_s: float


def secrets_for(settings: PowSettings, key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """(challenge HMAC secret, derived-key HMAC secret): from ``ONSALE_POW_SECRET``, else
    from the signing key, so every gateway of a deployment agrees without a new setting."""
    if settings.secret:
        root = hashlib.sha256(b"onsale pow\0" + settings.secret.encode()).digest()
    else:
        root = signing.derive(key, b"onsale pow")
    return (
        hmac.new(root, b"challenge", hashlib.sha256).digest(),
        hmac.new(root, b"derived key", hashlib.sha256).digest(),
    )


class BotGate:
    def __init__(
        self,
        redis: RedisClient,
        settings: PowSettings,
        key: Ed25519PrivateKey,
        *,
        scripts: Scripts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.scripts = scripts or Scripts(redis)
        self.default = settings.difficulty
        self.rule = Rule(settings.rate_step, settings.max_difficulty)
        self._secret, self._key_secret = secrets_for(settings, key)
        self._clock = clock
        self._cache: dict[str, tuple[float, PowState]] = {}
        self._reading: dict[str, asyncio.Future[PowState]] = {}

    # ---- the event's difficulty -----------------------------------------------------------
    async def state(self, event_id: str) -> PowState:
        """The event's difficulty now; read from Redis at most once per :data:`REFRESH_S`
        per process, whatever the number of joins asking at once (one read in flight, in a
        task of its own: a caller that goes away does not cancel it for the others)."""
        hit = self._cache.get(event_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        reading = self._reading.get(event_id)
        if reading is None:
            reading = self._reading[event_id] = asyncio.ensure_future(self._refresh(event_id))
            reading.add_done_callback(functools.partial(self._done, event_id))
        return await asyncio.shield(reading)

    def _done(self, event_id: str, reading: asyncio.Future[PowState]) -> None:
        self._reading.pop(event_id, None)
        if not reading.cancelled():
            reading.exception()  # retrieved: a failed read is the waiters' to raise, or no one's

    async def _refresh(self, event_id: str) -> PowState:
        started = time.monotonic()
        state = await self._read(event_id)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[event_id] = (started + REFRESH_S, state)
        return state

    async def _read(self, event_id: str) -> PowState:
        second = int(self._clock())
        seconds = range(second - WINDOW_S + 1, second + 1)
        names = [keys.onsale(event_id), *(keys.pow_joins(event_id, s) for s in seconds)]
        armed, own, joins = await self.scripts.run("pow_state", names, [])
        base = self.default if int(own) < 0 else int(own)
        rate = int(joins) / WINDOW_S
        return PowState(bool(armed), base, effective(base, rate, self.rule), rate)

    # ---- challenges -------------------------------------------------------------------
    async def challenge(self, event_id: str) -> dict[str, Any]:
        """A fresh signed challenge for one join (``required: false`` and no challenge when
        the event asks for none); ``event_not_found`` for an event not on sale here."""
        state = await self.state(event_id)
        if not state.armed:
            raise EventRejected(EventRejection.NOT_FOUND)
        if state.difficulty <= 0:
            return {"required": False, "difficulty": 0}
        made = altcha.create_challenge(
            ALGORITHM,
            1,
            # The secret counter, uniform in 1..difficulty: ALTCHA's maxnumber.
            counter=1 + secrets.randbelow(state.difficulty),
            expires_at=int(self._clock()) + CHALLENGE_TTL_S,
            data={"event": event_id, "difficulty": state.difficulty},
            hmac_secret=self._secret,
            hmac_key_secret=self._key_secret,
        )
        return {**made.to_dict(), "required": True, "difficulty": state.difficulty}

    # ---- solutions --------------------------------------------------------------------
    async def check(self, event_id: str, payload: str | None) -> bool:
        """Pass a join that may take a place: the event asks for no proof-of-work (False),
        or this one is valid for it and is now spent (True). Else :class:`PowRejected`, and
        nothing was written."""
        state = await self.state(event_id)
        if state.base <= 0:
            return False
        if not payload:
            raise PowRejected(PowRejection.POW_REQUIRED)
        params = self._verified(event_id, payload, state)
        expires = int(params.expires_at or 0)
        minute = expires // 60
        spent = keys.pow_spent(event_id, minute)
        joins = keys.pow_joins(event_id, int(self._clock()))
        args = [params.salt, (minute + 2) * 60, WINDOW_S + 5]
        if await self.scripts.run("pow_spend", [spent, joins], args) != 1:
            raise PowRejected(PowRejection.POW_INVALID, "this proof-of-work was used already")
        return True

    def _verified(self, event_id: str, payload: str, state: PowState) -> Any:
        """The challenge's parameters if ``payload`` solves a challenge of ours for this
        event at least as hard as the event's own difficulty, unexpired."""
        if len(payload) > MAX_PAYLOAD:
            raise PowRejected(PowRejection.POW_INVALID, "not an ALTCHA payload")
        try:
            parsed = altcha.Payload.from_base64(payload)
            result = altcha.verify_solution(parsed, self._secret, hmac_key_secret=self._key_secret)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, binascii.Error):
            raise PowRejected(PowRejection.POW_INVALID, "not an ALTCHA payload") from None
        if result.expired:
            raise PowRejected(PowRejection.POW_INVALID, "this challenge has expired")
        if not result.verified:
            raise PowRejected(PowRejection.POW_INVALID, "this proof-of-work does not verify")
        params = parsed.challenge.parameters
        data = params.data if isinstance(params.data, dict) else {}
        if data.get("event") != event_id:
            raise PowRejected(PowRejection.POW_INVALID, "this challenge is for another event")
        difficulty = data.get("difficulty")
        if not isinstance(difficulty, int) or difficulty < state.base:
            raise PowRejected(PowRejection.POW_INVALID, "this challenge is easier than the "
                              "event now asks; solve a new one")  # fmt: skip
        if not isinstance(params.expires_at, int):
            raise PowRejected(PowRejection.POW_INVALID, "this challenge does not expire")
        return params
