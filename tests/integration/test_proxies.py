"""Client addresses behind a proxy, through ``onsale serve`` as deployed: X-Forwarded-For is
believed only from ``ONSALE_TRUSTED_PROXIES``, so nobody else picks their rate-limit key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from onsale import signing
from tests.conftest import ADMIN_TOKEN
from tests.integration import process_support
from tests.integration.api_support import EVENT

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JOINS_PER_MINUTE = 3
#: Load generators' network: exempt from the limits.
EXEMPT = "10.9.0.0/16"


@contextlib.contextmanager
def serving(redis_url: str, database_url: str, **env: str) -> Iterator[str]:
    """``onsale serve`` with the given extra environment; yields its base URL once ready."""
    with process_support.serving(
        None,
        ONSALE_REDIS_URL=redis_url,
        ONSALE_DATABASE_URL=database_url,
        ONSALE_ADMIN_TOKEN=ADMIN_TOKEN,
        ONSALE_SIGNING_KEY=signing.generate_pem(),
        ONSALE_JOINS_PER_MINUTE=str(JOINS_PER_MINUTE),
        ONSALE_RATE_LIMIT_EXEMPT=EXEMPT,
        **env,
    ) as base:
        yield base


def joins(base: str, forwarded_for: list[str]) -> list[int]:
    """A new event, then one join per X-Forwarded-For value; the status codes."""
    r = httpx.post(f"{base}/api/events", json=EVENT, headers=ADMIN)
    assert r.status_code == 201, r.text
    url = f"{base}/api/events/{r.json()['id']}/queue"
    return [httpx.post(url, headers={"X-Forwarded-For": xff}).status_code for xff in forwarded_for]


def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(
    redis_url: str, database_url: str
) -> None:
    # What deploy/onsale.env.example used to set: uvicorn's "trust everyone".
    with serving(redis_url, database_url, FORWARDED_ALLOW_IPS="*") as base:
        # A fresh address per request, and then addresses of the exempt network: all of
        # them are this test's own address (127.0.0.1), limited as one client.
        forged = [f"198.51.100.{i}" for i in range(3)] + [f"10.9.0.{i}" for i in range(3)]
        codes = joins(base, forged)
    assert codes == [200] * JOINS_PER_MINUTE + [429] * 3


def test_a_trusted_proxy_names_the_client(redis_url: str, database_url: str) -> None:
    # Host bits set on purpose: uvicorn alone would take "127.0.0.1/8" for a name and
    # trust nobody; onsale passes it on as the network it means.
    with serving(redis_url, database_url, ONSALE_TRUSTED_PROXIES="127.0.0.1/8") as base:
        # Each buyer behind the proxy has a budget of their own ...
        assert joins(base, [f"203.0.113.{i}" for i in range(6)]) == [200] * 6
        # ... the same buyer is limited ...
        same = joins(base, ["203.0.113.1"] * (JOINS_PER_MINUTE + 1))
        assert same == [200] * JOINS_PER_MINUTE + [429]
        # ... and what a client wrote in front of what the proxy appended is not believed:
        # the client is the right-most address that is not a trusted proxy.
        chain = joins(base, ["10.9.9.9, 203.0.113.50"] * (JOINS_PER_MINUTE + 1))
        assert chain == [200] * JOINS_PER_MINUTE + [429]
