"""Per-client rate limits in Redis (shared by every gateway), with exempt networks."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from onsale import keys
from onsale.connections import RedisClient
from onsale.errors import ApiError, Code


def client_address(request: Any) -> str:
    """The peer's address (a proxy's, behind one: exempt trusted proxies' networks)."""
    return request.client.host if request.client else ""


def scope_address(scope: Any) -> str:
    """:func:`client_address` of an ASGI scope (the fast path has no request object)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def network(address: str) -> str:
    """The network one client is counted as: its IPv4 address, or its IPv6 address's /64 (a
    single subscriber gets a whole /64 and may use any address in it)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    """Fixed one-minute windows per (scope, client address); one pipelined round trip."""

    #: Addresses whose exemption and owner are remembered (a flood of new ones starts over).
    KEPT = 65_536

    def __init__(self, redis: RedisClient, exempt: Iterable[str] = ()) -> None:
        self.redis = redis
        self._exempt = [ipaddress.ip_network(cidr, strict=False) for cidr in exempt]
        # address -> (exempt, owner): parsing an address cost a tenth of a join's CPU, and
        # a join asks twice (bench queue); a client's next request asks for the same one.
        self._known: dict[str, tuple[bool, str]] = {}

    def _decide(self, address: str) -> tuple[bool, str]:
        known = self._known.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
                exempt = any(ip in net for net in self._exempt)
            except ValueError:
                exempt = False
            if len(self._known) >= self.KEPT:
                self._known.clear()
            known = self._known[address] = (exempt, "" if exempt else network(address))
        return known

    def exempt(self, address: str) -> bool:
        return self._decide(address)[0]

    def owner(self, address: str) -> str:
        """Whom per-client caps count a place against: the address's :func:`network`, or
        ``""`` (nobody: uncapped) for an exempt address."""
        return self._decide(address)[1]

    async def check(self, scope: str, address: str, per_minute: int) -> int | None:
        """Count one request of ``scope`` (a Redis key prefix, e.g. an event's tag and the
        action); over the limit raises ``rate_limited`` with Retry-After. Returns how many
        more this window allows, or None for an exempt address (unlimited)."""
        if self.exempt(address):
            return None
        now = time.time()
        window = int(now // 60)
        key = keys.rate_limit(scope, address, window)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        if count > per_minute:
            retry = max(1, int(60 - now % 60))
            raise ApiError(Code.RATE_LIMITED, headers={"Retry-After": str(retry)})
        return int(per_minute - count)


def limit_headers(per_minute: int, remaining: int | None) -> dict[str, str]:
    """``RateLimit-Limit``/``-Remaining`` for a limited client (none for an exempt one), so
    a load generator can tell before its crowd that it will be limited."""
    if remaining is None:
        return {}
    return {"RateLimit-Limit": str(per_minute), "RateLimit-Remaining": str(remaining)}
