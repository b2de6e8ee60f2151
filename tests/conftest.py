"""Real Redis and Postgres for the tests: embedded throwaway servers, or the ones named by
``ONSALE_TEST_REDIS_URL`` / ``ONSALE_TEST_DATABASE_URL``."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis

from onsale import keys, signing
from onsale.config import Settings, load
from onsale.db import connect, migrate
from onsale.db.url import with_database
from onsale.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe
from onsale.gateway.app import create_app
from onsale.gateway.services import Services

# The helpers the tests share (the *_support modules) fail with pytest's own assertion
# messages, as test modules do.
pytest.register_assert_rewrite("tests.integration", "tests.qr_support")

#: Set to 1 to let tests skip (a developer without Chromium or faketime); CI never sets it.
ALLOW_SKIPS = "ONSALE_TEST_ALLOW_SKIPS"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A skipped test fails: a suite that skips what it cannot run (no Chromium, no
    faketime, a missing command) goes green having proved nothing. A developer without
    one of them may set ONSALE_TEST_ALLOW_SKIPS=1; CI never does."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail") or os.environ.get(ALLOW_SKIPS):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped, and this suite does not skip ({ALLOW_SKIPS}=1 allows it): {reason}"


def _armed(url: str) -> set[str]:
    """The events the gateways' ticks and the committers walk: armed, or retired."""
    with _sync_redis(url) as r:
        members = r.smembers(keys.ARMED_EVENTS) | set(r.zrange(keys.RETIRED_EVENTS, 0, -1))
    return {m.decode() for m in members}


def _sync_redis(url: str) -> SyncRedis:
    if url.startswith("unix:/") and not url.startswith("unix://"):
        url = "unix://" + url.removeprefix("unix:")  # as urlunsplit writes a socket's
    return SyncRedis.from_url(url)


@pytest.fixture(autouse=True)
def forget_created_events(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests remove the events they arm: every gateway's periodic tick walks all armed
    events (admitting, sweeping, retiring), so one test's events would otherwise be work,
    and state, in every later test. After each test, the events it armed leave the armed
    and retired sets and lose their Redis keys: those it created through the API helpers
    (on whichever Redis), and any other that appeared in the session's own Redis while it
    ran (not in a Redis named by ONSALE_TEST_REDIS_URL: others' runs may share that one).
    Events of module fixtures are armed before this runs, and stay."""
    # Imported here, not above: the support modules must be imported after
    # register_assert_rewrite has named them.
    from tests.integration.inventory_support import CREATED, event_keys

    own = "redis_url" in request.fixturenames and not os.environ.get("ONSALE_TEST_REDIS_URL")
    session_url: str | None = request.getfixturevalue("redis_url") if own else None
    before = _armed(session_url) if session_url else set()
    yield
    created, CREATED[:] = list(CREATED), []
    by_url: dict[str, set[str]] = {}
    for url, event_id in created:
        by_url.setdefault(url or request.getfixturevalue("redis_url"), set()).add(event_id)
    if session_url:
        by_url.setdefault(session_url, set()).update(_armed(session_url) - before)
    for url, ids in by_url.items():
        with _sync_redis(url) as r, r.pipeline(transaction=False) as pipe:
            for event_id in ids:
                pipe.srem(keys.ARMED_EVENTS, event_id)
                pipe.zrem(keys.RETIRED_EVENTS, event_id)
                pipe.delete(*event_keys(event_id))
            pipe.execute()


@pytest.fixture
async def event(redis: aioredis.Redis) -> AsyncIterator[str]:
    """A fresh event id for a test that arms the inventory itself, forgotten afterwards.
    (Modules whose tests need an event stored in Postgres too, test_committer and
    test_reconcile, override it with one.)"""
    from tests.integration.inventory_support import forget

    event_id = uuid.uuid4().hex
    yield event_id
    await forget(redis, event_id)


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    # Not under pytest's basetemp: pytest makes that 0700 (again, at every session start),
    # and the embedded Postgres runs as nobody when we are root.
    path = Path(tempfile.mkdtemp(prefix="onsale-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(services_dir: Path) -> Iterator[str]:
    url = os.environ.get("ONSALE_TEST_REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedRedis(services_dir, durable=False) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server_url(services_dir: Path) -> Iterator[str]:
    url = os.environ.get("ONSALE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    with EmbeddedPostgres(services_dir, database="postgres", durable=False) as url:
        yield url


@pytest.fixture(scope="session")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this run, dropped afterwards."""
    name = f"onsale_test_{uuid.uuid4().hex[:12]}"
    admin = await connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(postgres_server_url, name)
        await migrate.apply(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, decode_responses=True, max_connections=64, timeout=30
    )
    client = aioredis.Redis.from_pool(pool)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    from onsale.db import create_pool

    p = await create_pool(database_url, min_size=1, max_size=10)
    yield p
    await p.close()


ADMIN_TOKEN = "test-admin-token"
WEBHOOK_SECRET = "whsec_test_onsale"


@pytest.fixture(scope="session")
def stripe_url(services_dir: Path) -> Iterator[str]:
    """A real Stripe emulator (localstripe) for the real ``stripe`` library to talk to."""
    with EmbeddedStripe(services_dir) as url:
        yield url


@pytest.fixture(scope="session")
def settings(redis_url: str, database_url: str, stripe_url: str) -> Settings:
    return load(
        {
            "ONSALE_STRIPE_SECRET_KEY": EmbeddedStripe.SECRET_KEY,
            "ONSALE_STRIPE_PUBLISHABLE_KEY": EmbeddedStripe.PUBLISHABLE_KEY,
            "ONSALE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ONSALE_STRIPE_API_BASE": stripe_url,
            "ONSALE_REDIS_URL": redis_url,
            "ONSALE_DATABASE_URL": database_url,
            "ONSALE_ADMIN_TOKEN": ADMIN_TOKEN,
            "ONSALE_SIGNING_KEY": signing.generate_pem(),
            # The in-process client is one address for the whole run; tests of the join
            # limit build their own app with a low one.
            "ONSALE_JOINS_PER_MINUTE": "1000000",
            "ONSALE_PLACES_PER_CLIENT": "0",
            "ONSALE_CHECKINS_PER_MINUTE": "1000000",
            "ONSALE_CHECKOUTS_PER_MINUTE": "1000000",
            # Failed logins per account stay at the default; tests of the per-client limit
            # build their own app.
            "ONSALE_LOGIN_FAILURES_PER_CLIENT": "1000000",
        }
    )


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The gateway in-process, over ASGI, with its real lifespan and services."""
    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


@pytest.fixture
def app_services(client: AsyncTestClient[Litestar]) -> Services:
    """The services of the session's gateway (to fail a dependency on purpose)."""
    services: Services = client.app.state.services
    return services


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
