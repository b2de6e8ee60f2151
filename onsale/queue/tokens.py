"""Visitor tokens (HMAC, checked on every poll) and admission tokens (EdDSA JWTs).

A visitor token names one visitor of one event and the place they hold:
``v2.<visitor_id>.<place>.<epoch>.<mac>``, the MAC over the event id and the rest, keyed by
a secret derived from the signing key. HMAC, not Ed25519, because it is checked on every
poll and costs a microsecond; the place in it lets a poll be answered without Redis.

An admission token is a JWT anyone can verify with the JWKS: ``aud`` the event,
``sub`` the visitor, ``exp`` the admission's end, ``kid`` the key.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import signing
from onsale.queue.errors import TokenRejected, TokenRejection

ISSUER = "onsale"


#: A place a visitor token may carry: ``""`` none (a ``v1`` token), ``"0"`` the general
#: pre-queue, ``"p"`` the presale's pre-queue (ranks not drawn yet), else a sequence number.
PRE_GENERAL, PRE_PRESALE = "0", "p"


class Pass(NamedTuple):
    """A verified visitor token: who, and the place it says they hold (signed with it)."""

    visitor_id: str
    #: See :data:`PRE_GENERAL`; ``""`` when the token names no place (an old ``v1`` token).
    place: str
    #: The room's numbering the place belongs to (the first freeze's time, ms; 0 for none):
    #: a room rebuilt after Redis lost it numbers again, and a stale number is not trusted.
    epoch: int


class VisitorTokens:
    """``v2.<visitor_id>.<place>.<epoch>.<mac>``: the MAC over the event id and the rest, so
    a poll learns the visitor's place in line without asking Redis. ``v1.<visitor_id>.<mac>``
    tokens (issued before places were signed in) still verify, with no place."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._secret = signing.derive(key, b"onsale visitor token v1")

    def _mac(self, event_id: str, visitor_id: str) -> str:
        return signing.mac(self._secret, f"{event_id}:{visitor_id}")

    def _mac2(self, event_id: str, visitor_id: str, place: str, epoch: int) -> str:
        # signing.mac's tag, by the one-shot HMAC (a poll checks one: a microsecond counts)
        message = f"v2:{event_id}:{visitor_id}:{place}:{epoch}".encode()
        return signing.b64url(hmac.digest(self._secret, message, "sha256")[:18])

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(9)  # 72 bits, 12 characters: a short key in q:vis

    def issue(self, event_id: str) -> tuple[str, str]:
        """A new visitor, in no place yet: (visitor_id, token)."""
        visitor_id = self.new_id()
        return visitor_id, self.token(event_id, visitor_id, PRE_GENERAL, 0)

    def token(self, event_id: str, visitor_id: str, place: str, epoch: int) -> str:
        """The token of a visitor holding ``place`` (see :class:`Pass`)."""
        mac = self._mac2(event_id, visitor_id, place, epoch)
        return f"v2.{visitor_id}.{place}.{epoch}.{mac}"

    def verify(self, event_id: str, token: str) -> str:
        """The visitor id, or :class:`TokenRejected` ``visitor_token_invalid``."""
        return self.check(event_id, token).visitor_id

    def check(self, event_id: str, token: str) -> Pass:
        """The token's visitor and place, or :class:`TokenRejected` ``visitor_token_invalid``."""
        parts = token.split(".") if len(token) <= 140 else []
        if len(parts) == 5 and parts[0] == "v2":
            _, visitor_id, place, epoch, mac = parts
            if (
                visitor_id
                and (place == PRE_PRESALE or (place.isdigit() and place.isascii()))
                and epoch.isdigit()
                and epoch.isascii()
                and len(place) <= 15
                and len(epoch) <= 15
                and hmac.compare_digest(
                    mac.encode(), self._mac2(event_id, visitor_id, place, int(epoch)).encode()
                )
            ):
                return Pass(visitor_id, place, int(epoch))
        elif len(parts) == 3 and parts[0] == "v1":
            _, visitor_id, mac = parts
            if visitor_id and hmac.compare_digest(
                mac.encode(), self._mac(event_id, visitor_id).encode()
            ):
                return Pass(visitor_id, "", 0)
        raise TokenRejected(TokenRejection.VISITOR_TOKEN_INVALID)


def _invalid(detail: str) -> TokenRejected:
    return TokenRejected(TokenRejection.ADMISSION_INVALID, detail)


#: Verified admission tokens remembered per process (a buyer holds several times).
VERIFIED_CACHE = 50_000
#: How far a gateway's clock may be off another's or Redis's. Redis's clock decides when an
#: admission ends (hold.lua refuses a hold after it); the token's own times ("iat", "exp")
#: are checked this loosely, so that a fast clock does not cut an admission short, a slow one
#: does not refuse a token a faster gateway issued (its "iat" ahead), and Redis still ends
#: the admission on time at a slow one.
CLOCK_SKEW_S = 60


class AdmissionTokens:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key()
        self.kid = signing.key_id(self._public)
        # token -> its verified claims. A signature check costs ~100 us of the hold path;
        # a token's bytes never change, so it is checked once. Expiry and audience are
        # still checked on every use.
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(
        self,
        event_id: str,
        visitor_id: str,
        expires_ms: int,
        now_s: int,
        tiers: Sequence[str] = (),
    ) -> str:
        """An admission; with ``tiers`` (a presale's, from its access code) its holds may take
        only those tiers (claim ``tiers``)."""
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": event_id,
            "sub": visitor_id,
            "iat": now_s,
            "exp": expires_ms // 1000,
        }
        if tiers:
            claims["tiers"] = list(tiers)
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def verify(self, event_id: str | None, token: str) -> dict[str, Any]:
        """The claims of a valid admission for this event (or, with ``None``, for the event
        it names in ``aud``), else ``admission_invalid``."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token] = claims
        if claims["exp"] + CLOCK_SKEW_S <= time.time():
            raise _invalid("the admission has expired")
        if event_id is not None and claims["aud"] != event_id:
            raise _invalid("the admission is for another event")
        return claims

    @staticmethod
    def check_tiers(claims: dict[str, Any], tier_ids: Iterable[str]) -> None:
        """Refuse (``tier_not_in_presale``) a tier that a presale admission does not open."""
        allowed = claims.get("tiers")
        if allowed is None:
            return
        others = sorted({t for t in tier_ids if t not in allowed})
        if others:
            raise TokenRejected(
                TokenRejection.TIER_NOT_IN_PRESALE,
                f"this presale admission may hold only tiers {', '.join(allowed)}; "
                f"not {', '.join(others)}",
            )

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid:
                raise _invalid("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=["EdDSA"],
                issuer=ISSUER,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "aud", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("the admission has expired") from None
        except jwt.PyJWTError as exc:
            raise _invalid(f"invalid admission token: {exc}") from None
        return claims
