"""A minimal HTTP/1.1 keep-alive client for load generation, and server launchers.

Load generators share two cores with the server here, so the client must cost as little
as possible: one connection per simulated client, pre-built request bytes, and just
enough parsing to find the status and skip the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import httpx

from onsale.embedded import stop


class Connection:
    """One keep-alive connection; ``request`` returns (status, body)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    def build(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(proc.args)}")  # type: ignore[arg-type]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} not ready within {seconds} s")


@contextlib.contextmanager
def server(argv: list[str], env: Mapping[str, str], ready_path: str, port: int) -> Iterator[str]:
    """Run a server process until the block ends; yields its base URL once ready."""
    base = f"http://127.0.0.1:{port}"
    # Quiet: the server's logs would drown the benchmark's own output.
    with subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        try:
            wait_ready(base + ready_path, proc)
            yield base
        finally:
            stop(proc, timeout=20)


def onsale_serve(env: Mapping[str, str], workers: int) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    argv = [sys.executable, "-m", "onsale", "serve", "--port", str(port)]
    return server([*argv, "--workers", str(workers)], env, "/readyz", port)


def bare_serve(workers: int) -> contextlib.AbstractContextManager[str]:
    """The baseline: a bare Litestar endpoint under the same server and settings."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "onsale.bench.bare:create_app", "--factory",
        "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
        "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return server(argv, {}, "/bare", port)
