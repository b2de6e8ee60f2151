"""The processes that benchmarks and load tests start: ``onsale serve`` and its baselines,
committers, and throwaway stores; with what they share: readiness, settings, stopping.

A child gets this process's environment with its settings over it. Committers, and
gateways started with ``inherit_settings=False``, get none of our own ``ONSALE_*``
settings: only what is passed configures them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import httpx

from onsale import signing
from onsale.bench.figures import progress
from onsale.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, stop

#: The load generator is one address: it must not be limited like one client.
LOAD_GENERATOR = "127.0.0.1/32"


class Server(NamedTuple):
    """A server process that answers: its base URL, and the process (with one worker, the
    worker itself, which is what py-spy attaches to)."""

    url: str
    proc: subprocess.Popen[bytes]


def environment(settings: Mapping[str, str], *, inherit_settings: bool = True) -> dict[str, str]:
    """A child's environment: ours, without our ``ONSALE_*`` settings unless
    ``inherit_settings``, and ``settings`` over it."""
    ours = {k: v for k, v in os.environ.items() if inherit_settings or not k.startswith("ONSALE_")}
    return ours | dict(settings)


def gateway_settings(redis_url: str, database_url: str, *, cluster: bool = False) -> dict[str, str]:
    """A gateway under load: these stores, a fresh admin token and signing key, and the load
    generator's address exempt from rate limits."""
    settings = {
        "ONSALE_REDIS_URL": redis_url,
        "ONSALE_DATABASE_URL": database_url,
        "ONSALE_ADMIN_TOKEN": uuid.uuid4().hex,
        "ONSALE_SIGNING_KEY": signing.generate_pem(),
        "ONSALE_RATE_LIMIT_EXEMPT": LOAD_GENERATOR,
    }
    if cluster:
        settings["ONSALE_REDIS_CLUSTER"] = "1"
    return settings


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Until ``url`` answers 200; an error if ``proc`` exits or ``seconds`` pass first."""
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
def server(
    argv: Sequence[str], env: Mapping[str, str], port: int, ready_path: str, log: Path | None
) -> Iterator[Server]:
    """Run a server process until the block ends; yields once ``ready_path`` answers.

    Its output goes to ``log``, else nowhere: its logs would drown a benchmark's output."""
    with contextlib.ExitStack() as stack:
        out: IO[bytes] | int = stack.enter_context(open(log, "wb")) if log else subprocess.DEVNULL
        proc = stack.enter_context(
            subprocess.Popen(list(argv), env=dict(env), stdout=out, stderr=out)
        )
        stack.callback(stop, proc, timeout=20)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url + ready_path, proc)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"{exc}; its log:\n{tail}" if tail else str(exc)) from None
        yield Server(url, proc)


def onsale_serve(
    settings: Mapping[str, str],
    workers: int,
    *,
    log: Path | None = None,
    inherit_settings: bool = True,
) -> contextlib.AbstractContextManager[Server]:
    """``onsale serve --workers N`` on a free port, until the block ends."""
    port = free_port()
    argv = [sys.executable, "-m", "onsale", "serve", "--port", str(port), "--workers", str(workers)]
    env = environment(settings, inherit_settings=inherit_settings)
    return server(argv, env, port, "/readyz", log)


def bare_serve(workers: int) -> contextlib.AbstractContextManager[Server]:
    """The baseline: a bare Litestar endpoint under the same server and settings."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "onsale.bench.bare:create_app", "--factory",
        "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
        "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return server(argv, environment({}), port, "/bare", None)


@contextlib.contextmanager
def canned_serve(workers: int) -> Iterator[Server]:
    """The generator's ceiling: ``workers`` processes answering canned bytes on one port
    (:func:`onsale.bench.bare.canned_main`); the first process is the one yielded."""
    port = free_port()
    code = f"from onsale.bench.bare import canned_main; canned_main({port})"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(workers)]
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/bare", procs[0])
        yield Server(url, procs[0])
    finally:
        stop_all(procs, signal.SIGKILL, timeout=10)


def committer(
    settings: Mapping[str, str], *args: str, out: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``onsale committer *args`` as an operator runs it, configured by ``settings`` alone;
    its output to ``out``."""
    argv = [sys.executable, "-m", "onsale", "committer", *args]
    env = environment(settings, inherit_settings=False)
    return subprocess.Popen(argv, env=env, stdout=out, stderr=out)


def stop_all(
    procs: Sequence[subprocess.Popen[Any]], sig: int = signal.SIGTERM, timeout: float = 30
) -> None:
    """Signal every process at once, then wait for each, killed if not gone in ``timeout``."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    for proc in procs:
        stop(proc, sig, timeout)  # waits (the signal again is harmless), kills if need be


@contextlib.contextmanager
def stores(redis_url: str | None, database_url: str | None) -> Iterator[tuple[str, str]]:
    """The given URLs, or throwaway embedded servers in a temporary directory for the rest."""
    if redis_url and database_url:
        yield redis_url, database_url
        return
    with (
        tempfile.TemporaryDirectory(prefix="onsale-bench-") as name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(name)
        tmp.chmod(0o755)  # the embedded Postgres runs as nobody when we are root
        progress(f"starting throwaway servers in {tmp} ...")
        # Durable as in production: Redis with its AOF, Postgres with fsync and synchronous
        # commit, as a database that confirms ticket sales must be.
        yield (
            redis_url or stack.enter_context(EmbeddedRedis(tmp, durable=True)),
            database_url
            or stack.enter_context(EmbeddedPostgres(tmp, database="onsale_bench", durable=True)),
        )
