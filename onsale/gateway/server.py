"""Run the gateway under uvicorn with uvloop and httptools."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence

import uvicorn

from onsale import config, logs

#: Read by prometheus_client at import (in each worker); see onsale.gateway.metrics.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def forwarded_allow_ips(trusted_proxies: Sequence[str]) -> list[str] | None:
    """What uvicorn trusts ``X-Forwarded-For`` from: exactly ``ONSALE_TRUSTED_PROXIES``
    (networks in canonical form: uvicorn takes a CIDR with host bits set for a mere name,
    which would silently trust nobody), or None to trust no one."""
    if not trusted_proxies:
        return None
    return [str(net) for net in config.networks(tuple(trusted_proxies), "ONSALE_TRUSTED_PROXIES")]


def serve(
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    trusted_proxies: Sequence[str] = (),
) -> None:
    # Several workers: each writes its counters to files that any of them sums on a scrape.
    # Set before the workers start, which import prometheus_client with it already set.
    own_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="onsale-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    # Never uvicorn's own default: it reads FORWARDED_ALLOW_IPS, which deployments set to
    # "*", and then any client picks the address that rate limits and exemptions key on.
    allow = forwarded_allow_ips(trusted_proxies)
    try:
        uvicorn.run(
            "onsale.gateway.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,  # one log line per request is a cost the hot path does not pay
            log_level=log_level,
            log_config=logs.dict_config(log_level),  # applied again in every worker
            timeout_graceful_shutdown=10,
            proxy_headers=allow is not None,
            forwarded_allow_ips=allow or "",
        )
    finally:
        if own_dir:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(own_dir, ignore_errors=True)
