"""Run the gateway under uvicorn with uvloop and httptools."""

from __future__ import annotations

import uvicorn


def serve(*, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
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
        timeout_graceful_shutdown=10,
    )
