"""ONSALE_TRUSTED_PROXIES: parsed, checked at start, and what uvicorn is told."""

from __future__ import annotations

import pytest

from onsale.config import ConfigError, load
from onsale.gateway.server import forwarded_allow_ips


def test_none_by_default_and_then_nobody_is_trusted() -> None:
    assert load({}).security.trusted_proxies == ()
    assert forwarded_allow_ips(()) is None


def test_ips_and_networks_in_canonical_form() -> None:
    s = load({"ONSALE_TRUSTED_PROXIES": "172.30.0.10, 10.1.2.3/8 ,fd00::1/64,"})
    assert s.security.trusted_proxies == ("172.30.0.10", "10.1.2.3/8", "fd00::1/64")
    # uvicorn takes a CIDR with host bits set for a host name: it would trust nobody.
    assert forwarded_allow_ips(s.security.trusted_proxies) == [
        "172.30.0.10/32",
        "10.0.0.0/8",
        "fd00::/64",
    ]


@pytest.mark.parametrize("value", ["*", "nginx", "10.0.0.0/33"])
def test_anything_else_stops_the_start(value: str) -> None:
    with pytest.raises(ConfigError, match="ONSALE_TRUSTED_PROXIES"):
        load({"ONSALE_TRUSTED_PROXIES": value})
