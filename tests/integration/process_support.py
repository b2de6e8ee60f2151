"""What the tests of real processes share: running ``onsale`` as an operator does, in an
environment of only the settings a test names, and a real ``onsale serve`` on a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from onsale.embedded import stop


def onsale(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onsale", *args], capture_output=True, text=True, env=env
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_")}
    return env | extra


@contextlib.contextmanager
def serving(log: Path, **env: str) -> Iterator[str]:
    """A real ``onsale serve`` on a free port, the kind a browser reaches over TCP."""
    port = free_port()
    argv = [sys.executable, "-m", "onsale", "serve", "--port", str(port)]
    # Its log goes to a file: a pipe nobody reads would stall the server once full.
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=clean_env(**env), stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        else:
            pytest.fail(f"onsale serve did not become ready:\n{log.read_text()}")
        yield base
    finally:
        stop(proc, timeout=20)
