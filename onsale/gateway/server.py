"""Run the gateway under uvicorn with uvloop and httptools."""

from __future__ import annotations

import os
import shutil
import tempfile

import uvicorn

from onsale import logs

#: Read by prometheus_client at import (in each worker); see onsale.gateway.metrics.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve(*, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    # Several workers: each writes its counters to files that any of them sums on a scrape.
    # Set before the workers start, which import prometheus_client with it already set.
    own_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="onsale-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
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
        )
    finally:
        if own_dir:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(own_dir, ignore_errors=True)
