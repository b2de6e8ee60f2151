"""What the tests of real processes share: running ``onsale`` as an operator does, in an
environment of only the settings a test names, and a real ``onsale serve`` on a free port."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from onsale import signing
from onsale.embedded import free_port
from onsale.servers import environment, onsale_serve
from tests.conftest import ADMIN_TOKEN

__all__ = ["clean_env", "free_port", "gateway", "onsale", "serving"]


def onsale(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onsale", *args], capture_output=True, text=True, env=env
    )


def clean_env(**extra: str) -> dict[str, str]:
    return environment(extra, inherit_settings=False)


@contextlib.contextmanager
def serving(log: Path | None, *, workers: int = 1, **env: str) -> Iterator[str]:
    """A real ``onsale serve`` on a free port, the kind a browser reaches over TCP, with
    only the settings given; its log goes to ``log`` (else nowhere: a pipe nobody reads
    would stall the server once full)."""
    with onsale_serve(env, workers, log=log, inherit_settings=False) as (base, _):
        yield base


@contextlib.contextmanager
def gateway(
    log: Path | None, redis_url: str, database_url: str, *, workers: int = 1, **env: str
) -> Iterator[str]:
    """:func:`serving` a gateway on these stores, with the tests' admin token, a fresh
    signing key and ``env`` besides."""
    with serving(
        log,
        workers=workers,
        ONSALE_REDIS_URL=redis_url,
        ONSALE_DATABASE_URL=database_url,
        ONSALE_ADMIN_TOKEN=ADMIN_TOKEN,
        ONSALE_SIGNING_KEY=signing.generate_pem(),
        **env,
    ) as base:
        yield base
