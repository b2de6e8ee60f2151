"""``onsale preflight`` against a deliberately misconfigured stack names each FAIL (Redis
with allkeys-lru and no AOF, a skewed clock through the test hook, no webhook secret, an
unarmed event), within 10 s and changing nothing; against ``onsale dev`` all PASS but the
webhook endpoint the emulator cannot list."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.config import Settings, load
from onsale.embedded import EmbeddedStripe, free_port, redis_binary, stop
from onsale.preflight import runner
from onsale.preflight.result import Status, passed
from tests.conftest import ADMIN_TOKEN
from tests.integration.api_support import create, iso
from tests.integration.cluster_support import redis_cluster
from tests.integration.process_support import clean_env, onsale

Client = AsyncTestClient[Litestar]

SKEW_S = 40.0


@pytest.fixture(scope="module")
def lru_redis() -> Iterator[str]:
    """A Redis as a hurried operator leaves it: evicting keys, no append-only file."""
    folder = Path(tempfile.mkdtemp(prefix="onsale-lru-"))
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [redis_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "",
         "--appendonly", "no", "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not sock.exists():
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"unix://{sock}"
    stop(proc)


def env_of(settings: Settings, redis_url: str, **extra: str) -> dict[str, str]:
    return clean_env(
        ONSALE_REDIS_URL=redis_url,
        ONSALE_DATABASE_URL=settings.database.url,
        ONSALE_ADMIN_TOKEN=ADMIN_TOKEN,
        ONSALE_SIGNING_KEY=settings.security.signing_key,
        ONSALE_STRIPE_SECRET_KEY=EmbeddedStripe.SECRET_KEY,
        ONSALE_STRIPE_PUBLISHABLE_KEY=EmbeddedStripe.PUBLISHABLE_KEY,
        ONSALE_STRIPE_API_BASE=settings.stripe.api_base,
        # Nothing listens there: the JWKS check fails too, and is not what is asserted.
        ONSALE_PUBLIC_URL=f"http://127.0.0.1:{free_port()}",
        **extra,
    )


async def snapshot(url: str) -> dict[str, Any]:
    client = aioredis.from_url(url, decode_responses=True)
    try:
        return {k: await client.type(k) for k in sorted(await client.keys("*"))}
    finally:
        await client.aclose()


async def test_each_misconfiguration_is_a_named_fail(
    client: Client, admin: dict[str, str], settings: Settings, lru_redis: str, pool: asyncpg.Pool
) -> None:
    event = await create(
        client, admin, onsale={"opens_at": iso(3600), "admit_per_minute": 600, "max_active": 50}
    )  # armed in the session's Redis, not in this one
    before = await snapshot(lru_redis)
    rows = await pool.fetchval("SELECT count(*) FROM orders")

    bad = load(env_of(settings, lru_redis))
    report = await runner.run(
        bad, runner.Options(event=event["id"]), clock=lambda: time.time() + SKEW_S
    )
    failing = {c.name: c for c in report.checks if c.status is Status.FAIL}
    for name in ("redis.eviction", "redis.persistence", "clock.redis", "clock.postgres",
                 "stripe.webhook_secret", "event.armed"):  # fmt: skip
        assert name in failing, report.text()
    assert "allkeys-lru" in failing["redis.eviction"].detail
    assert "noeviction" in failing["redis.eviction"].fix
    assert "appendonly is off" in failing["redis.persistence"].detail
    for name in ("clock.redis", "clock.postgres"):
        detail = failing[name].detail  # "Redis's clock is 40.001 s behind this host (...)"
        assert "s behind this host" in detail, detail
        assert abs(float(detail.split(" is ")[1].split(" s ")[0]) - SKEW_S) < 1, detail
    # Only this host is off: Redis and Postgres still agree with each other.
    assert report.by_name("clock.agree").status is Status.PASS  # type: ignore[union-attr]
    assert "not armed in Redis" in failing["event.armed"].detail
    assert f"onsale recover --event {event['id']}" in failing["event.armed"].fix
    # What is right is said so: the keys, the migrations, the Postgres connections.
    for name in ("stripe.keys", "postgres.migrations", "postgres.connections", "keys.signing"):
        assert report.by_name(name) is not None
        assert report.by_name(name).status is Status.PASS, report.text()  # type: ignore[union-attr]
    assert report.failed

    # The command, with the clock skewed through the test hook: the same FAILs, exit 1,
    # under 10 s, and nothing written.
    started = time.monotonic()
    done = onsale(
        "preflight", "--event", event["id"],
        env=env_of(settings, lru_redis, **{runner.SKEW_ENV: str(SKEW_S)}),
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert took < 10, took
    lines = done.stdout.splitlines()
    for name in failing:
        assert any(line.startswith("FAIL") and f" {name} " in line for line in lines), name
    assert lines[-1].startswith("preflight: ") and "failing: " in lines[-1]
    assert await snapshot(lru_redis) == before
    assert await pool.fetchval("SELECT count(*) FROM orders") == rows


async def test_a_sound_stack_passes_and_an_event_is_checked(
    client: Client, admin: dict[str, str], settings: Settings, redis: Any
) -> None:
    """The session's services (durable enough for a test: no AOF) with the event armed and
    a committer group on its stream: the event's checks pass."""
    event = await create(
        client, admin, onsale={"opens_at": iso(-1), "admit_per_minute": 600, "max_active": 50}
    )
    report = await runner.run(settings, runner.Options(event=event["id"]))
    got = {c.name: c.status for c in report.checks}
    for name in ("event.armed", "event.tiers", "event.schedule", "event.admission",
                 "event.hold", "event.dead_letters", "clock.redis", "clock.postgres", "clock.agree",
                 "stripe.keys", "stripe.webhook_secret"):  # fmt: skip
        assert got[name] is Status.PASS, report.text()
    # A dead-lettered order and a closed sale are FAILs naming them.
    await redis.xadd(keys.dead_letters(event["id"]), {"reason": "test"})
    await redis.hset(keys.onsale(event["id"]), "closes_ms", int(time.time() * 1000) - 1000)
    report = await runner.run(settings, runner.Options(event=event["id"]))
    got = {c.name: c.status for c in report.checks}
    assert got["event.dead_letters"] is Status.FAIL, report.text()
    assert got["event.schedule"] is Status.FAIL, report.text()
    await redis.delete(keys.dead_letters(event["id"]))


async def test_hung_services_are_fails_within_the_deadline(
    client: Client, admin: dict[str, str], settings: Settings
) -> None:
    """A Redis and an SMTP server that accept connections and never answer: preflight
    still answers within 10 s, naming them."""
    silent: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)  # kept open, never written to

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    event = await create(client, admin)
    hung = load(env_of(settings, f"redis://127.0.0.1:{port}",
                       ONSALE_SMTP_URL=f"smtp://127.0.0.1:{port}"))  # fmt: skip
    started = time.monotonic()
    try:
        report = await runner.run(hung, runner.Options(event=event["id"]))
    finally:
        for writer in silent:
            writer.close()
        server.close()
    assert time.monotonic() - started < 10
    failing = {c.name: c for c in report.checks if c.status is Status.FAIL}
    assert "deadline" in failing["redis.reachable"].detail, report.text()
    assert "event.armed" in failing and "smtp" in failing, report.text()
    assert report.by_name("postgres.migrations") is not None  # the others still answered


async def test_a_cluster_is_checked_on_every_primary(settings: Settings) -> None:
    with redis_cluster() as ports:
        url = f"redis://127.0.0.1:{ports[0]}"
        on_cluster = msgspec.structs.replace(
            settings, redis=msgspec.structs.replace(settings.redis, url=url, cluster=True)
        )
        report = await runner.run(on_cluster)
        assert report.by_name("redis.cluster") == passed(
            "redis.cluster", "cluster_state ok, all 16384 slots served"
        ), report.text()
        assert report.by_name("redis.eviction").status is Status.PASS  # type: ignore[union-attr]
        # The test cluster keeps no AOF: the node that says so is named.
        persistence = report.by_name("redis.persistence")
        assert persistence is not None and persistence.status is Status.FAIL
        assert persistence.detail.startswith("127.0.0.1:"), persistence.detail
        assert report.by_name("clock.redis").status is Status.PASS  # type: ignore[union-attr]


@contextlib.contextmanager
def onsale_dev(data: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    env = clean_env(ONSALE_DATA_DIR=str(data))
    proc = subprocess.Popen(
        [sys.executable, "-m", "onsale", "dev", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        yield proc
    finally:
        stop(proc, signal.SIGINT, timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def read_until(proc: subprocess.Popen[str], prefix: tuple[str, ...], timeout: float) -> list[str]:
    """stderr lines up to and including the first that starts with one of ``prefix`` (read
    by a thread: a select on a buffered pipe misses lines already in the buffer)."""
    assert proc.stderr is not None
    stream = proc.stderr
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            raise AssertionError("onsale dev ended:\n" + "\n".join(seen))
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no {prefix!r} line within {timeout} s:\n" + "\n".join(seen))


def test_onsale_dev_runs_preflight_and_it_passes() -> None:
    # Not under pytest's tmp_path (0700): the embedded Postgres may run as nobody.
    data = Path(tempfile.mkdtemp(prefix="onsale-dev-"))
    data.chmod(0o755)
    try:
        with onsale_dev(data, free_port()) as proc:
            lines = read_until(proc, ("preflight: ", "onsale dev: preflight"), timeout=90)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    checks = [line for line in lines if line[:4] in ("PASS", "WARN", "FAIL")]
    summary = lines[-1]
    assert " 0 FAIL" in summary, "\n".join(checks)
    # The one WARN a dev stack cannot help: the emulator cannot list webhook endpoints
    # (and 127.0.0.1 is no address Stripe could call).
    warned = [line.split()[1] for line in checks if line.startswith("WARN")]
    assert warned == ["stripe.webhook"], "\n".join(checks)
    names = {line.split()[1] for line in checks}
    for name in ("redis.eviction", "redis.persistence", "clock.redis", "keys.jwks",
                 "event.armed", "event.committers", "smtp"):  # fmt: skip
        assert name in names
