"""Every preflight check, run at once against the services ``serve``'s settings name, each
group under one deadline, and the report in a fixed order."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec

from onsale.config import Settings
from onsale.connections import RedisClient, redis_client
from onsale.db.url import redact
from onsale.preflight import (
    clocks,
    event_checks,
    mail_checks,
    postgres_checks,
    redis_checks,
    signing_checks,
    stripe_checks,
)
from onsale.preflight.result import Check, Report, fail, passed

#: The whole run answers within this (the issue's bound is 10 s; a second is kept for
#: connecting and printing).
DEADLINE_S = 8.0
#: The event's checks (inside the Postgres group) end this much before the rest.
INNER_MARGIN_S = 0.5
#: Test hook: seconds added to this host's clock as preflight reads it (a skewed clock
#: without touching the machine's). Never set it in production.
SKEW_ENV = "ONSALE_PREFLIGHT_CLOCK_SKEW_S"


class Options(msgspec.Struct, frozen=True):
    event: str | None = None
    expect_visitors: int | None = None
    #: Gateway processes planned (pods x workers), and committers plus mailers.
    gateways: int = 2
    workers: int = 3


def host_clock(environ: dict[str, str] | None = None) -> clocks.Clock:
    """This host's clock, skewed by the :data:`SKEW_ENV` test hook when set."""
    raw = (environ if environ is not None else os.environ).get(SKEW_ENV, "").strip()
    skew = float(raw) if raw else 0.0
    if not skew:
        return time.time
    return lambda: time.time() + skew


Group = Callable[[], Awaitable[list[Check]]]


async def _bounded(name: str, group: Group, deadline: float) -> list[Check]:
    """A group's checks, or one FAIL naming it when it errs or outlives the deadline."""
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
            return await group()
    except TimeoutError:
        return [
            fail(
                name,
                "no answer before preflight's deadline",
                "a service this check talks to is hung (or a firewall drops packets to it)",
            )
        ]
    except Exception as exc:  # one broken service must not hide the others' verdicts
        return [fail(name, f"{type(exc).__name__}: {exc}", "see the error")]


def _config(settings: Settings) -> Check:
    missing = [
        name
        for name, value in (
            ("ONSALE_REDIS_URL", settings.redis.url),
            ("ONSALE_DATABASE_URL", settings.database.url),
            ("ONSALE_ADMIN_TOKEN", settings.security.admin_token),
        )
        if not value
    ]
    if missing:
        return fail("config", f"not set: {', '.join(missing)}", "set them as for `onsale serve`")
    return passed("config", f"as for `onsale serve`; public URL {settings.mail.public_url}")


class _Run:
    """One run's shared state: the settings, the deadline, one Redis client, the clocks'
    offsets from this host."""

    def __init__(self, settings: Settings, options: Options, now: clocks.Clock) -> None:
        self.settings = settings
        self.options = options
        self.now = now
        self.started = time.monotonic()
        self.deadline = self.started + DEADLINE_S
        self.offsets: dict[str, float] = {}
        self.redis: RedisClient | None = None
        if settings.redis.url:
            self.redis = redis_client(
                settings.redis.url, cluster=settings.redis.cluster, max_connections=4
            )

    async def redis_group(self) -> list[Check]:
        if self.redis is None:
            return [fail("redis.reachable", "ONSALE_REDIS_URL is not set", "set it")]
        found = await redis_checks.checks(
            self.redis,
            cluster=self.settings.redis.cluster,
            expect_visitors=self.options.expect_visitors,
            url=redact(self.settings.redis.url),
        )
        if found[0].status.value == "PASS":
            check, self.offsets["redis"] = await clocks.redis_clock(self.redis, self.now)
            found.append(check)
        return found

    async def postgres_group(self) -> list[Check]:
        url = self.settings.database.url
        if not url:
            return [fail("postgres.reachable", "ONSALE_DATABASE_URL is not set", "set it")]
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return [
                fail(
                    "postgres.reachable",
                    f"{redact(url)}: {type(exc).__name__}: {exc}",
                    "start Postgres or fix ONSALE_DATABASE_URL",
                )
            ]
        try:
            found = await postgres_checks.checks(
                conn,
                pool_max=self.settings.database.pool_max,
                gateways=self.options.gateways,
                workers=self.options.workers,
            )
            check, self.offsets["postgres"] = await clocks.postgres_clock(conn, self.now)
            found.append(check)
            if self.options.event:
                found += await self._event(conn, self.options.event)
            return found
        finally:
            await conn.close(timeout=1)

    async def _event(self, conn: asyncpg.Connection, event_id: str) -> list[Check]:
        redis = self.redis
        if redis is None:
            return [fail("event.armed", "no Redis to check it in", "set ONSALE_REDIS_URL")]
        # Done before the group's own deadline: a hung Redis must not cost the Postgres
        # lines before it.
        return await _bounded(
            "event.armed",
            lambda: event_checks.checks(conn, redis, event_id),
            self.deadline - INNER_MARGIN_S,
        )

    async def all(self) -> Report:
        settings = self.settings
        # Named by the check a hang or an error in the group stands for.
        groups: list[tuple[str, Group]] = [
            ("redis.reachable", self.redis_group),
            ("postgres.reachable", self.postgres_group),
            (
                "stripe.keys",
                lambda: stripe_checks.checks(settings.stripe, settings.mail.public_url),
            ),
            (
                "keys.jwks",
                lambda: signing_checks.checks(
                    settings.security.signing_key, settings.mail.public_url
                ),
            ),
            ("smtp", lambda: mail_checks.checks(settings.mail.smtp_url)),
        ]
        try:
            results = await asyncio.gather(*(_bounded(n, g, self.deadline) for n, g in groups))
        finally:
            if self.redis is not None:
                await self.redis.aclose()
        checks = [_config(settings)]
        for found in results:
            checks += found
        if len(self.offsets) == 2:
            checks.append(clocks.between(self.offsets["redis"], self.offsets["postgres"]))
        order = ("config", "redis", "postgres", "clock", "stripe", "keys", "event", "smtp")
        checks.sort(key=lambda c: order.index(c.name.split(".")[0]))
        return Report(checks, seconds=time.monotonic() - self.started)


async def run(
    settings: Settings, options: Options | None = None, *, clock: clocks.Clock | None = None
) -> Report:
    """Every check; read-only, and done within :data:`DEADLINE_S`."""
    return await _Run(settings, options or Options(), clock or host_clock()).all()
