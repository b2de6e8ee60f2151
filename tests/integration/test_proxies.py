"""Client addresses behind a proxy, through ``onsale serve`` as deployed: X-Forwarded-For is
believed only from ``ONSALE_TRUSTED_PROXIES``, so nobody else picks their rate-limit key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.integration import process_support
from tests.integration.api_support import EVENT, fresh_window

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JOINS_PER_MINUTE = 3
#: Load generators' network: exempt from the limits.
EXEMPT = "10.9.0.0/16"


@contextlib.contextmanager
def serving(redis_url: str, database_url: str, **env: str) -> Iterator[str]:
    """``onsale serve`` with the given extra environment; yields its base URL once ready."""
    with process_support.gateway(
        None,
        redis_url,
        database_url,
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
    fresh_window()  # the joins are counted in one window
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


#: Two loopback addresses of this host, to be a trusted proxy and an untrusted peer.
PROXY, STRANGER = "127.0.0.1", "127.0.0.2"


def from_address(source: str) -> httpx.Client:
    """A client whose connections leave from ``source`` (any 127/8 address is this host)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source))


def test_each_trusted_forwarded_address_has_a_bucket_and_a_stranger_has_one(
    redis_url: str, database_url: str
) -> None:
    with (
        serving(redis_url, database_url, ONSALE_TRUSTED_PROXIES=f"{PROXY}/32") as base,
        from_address(PROXY) as proxy,
        from_address(STRANGER) as stranger,
    ):
        r = httpx.post(f"{base}/api/events", json=EVENT, headers=ADMIN)
        assert r.status_code == 201, r.text
        url = f"{base}/api/events/{r.json()['id']}/queue"

        def join(client: httpx.Client, **headers: str) -> int:
            return client.post(url, headers=headers).status_code

        n = JOINS_PER_MINUTE
        fresh_window(30)  # the 4n + 2 requests below are counted in one window
        # From the untrusted peer, whatever it says it forwards (X-Forwarded-For or RFC
        # 7239's Forwarded, addresses fresh each time): one client, 127.0.0.2.
        said = [
            {"X-Forwarded-For": f"198.51.100.{i}", "Forwarded": f"for=198.51.100.{i}"}
            for i in range(n + 2)
        ]
        assert [join(stranger, **h) for h in said] == [200] * n + [429] * 2
        # It did not spend the budget of the address it named either: through the trusted
        # proxy that buyer still has all of theirs, and then no more.
        named = {"X-Forwarded-For": "198.51.100.0"}
        assert [join(proxy, **named) for _ in range(n + 1)] == [200] * n + [429]
        # Each address the trusted proxy forwards is a client of its own ...
        fresh = [join(proxy, **{"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(2 * n)]
        assert fresh == [200] * (2 * n)
        # ... none of them the proxy itself, nor the stranger, who is still limited.
        assert join(proxy) == 200
        assert join(stranger, **{"X-Forwarded-For": "203.0.113.200"}) == 429
