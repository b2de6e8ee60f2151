"""Which clients the per-client rate limits leave alone."""

from __future__ import annotations

from onsale.gateway.ratelimit import RateLimiter


def test_exempt_networks() -> None:
    limiter = RateLimiter(None, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"])
    assert limiter.exempt("10.1.2.3") and limiter.exempt("127.0.0.1") and limiter.exempt("::1")
    assert not limiter.exempt("127.0.0.2") and not limiter.exempt("testclient")
