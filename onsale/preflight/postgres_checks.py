"""Postgres: reachable, every shipped migration applied, and connections enough for the
planned gateways, committers and mailers. Read-only: SELECTs and SHOW."""

from __future__ import annotations

import asyncpg

from onsale.db import migrate
from onsale.preflight.result import Check, fail, passed, warn

#: Connections each committer and each mailer holds at most (a pool of 2).
WORKER_CONNECTIONS = 2
#: Kept free for an operator's psql, `onsale reconcile` and `onsale migrate`.
SPARE_CONNECTIONS = 5
#: Above this share of the usable connections, warn.
USAGE_WARN = 0.8


async def checks(
    conn: asyncpg.Connection, *, pool_max: int, gateways: int, workers: int
) -> list[Check]:
    version = await conn.fetchval("SHOW server_version")
    found = [passed("postgres.reachable", f"PostgreSQL {version} answers")]
    found.append(await _migrations(conn))
    found.append(await _connections(conn, pool_max=pool_max, gateways=gateways, workers=workers))
    return found


async def _migrations(conn: asyncpg.Connection) -> Check:
    shipped = {version: name for version, name, _ in migrate.migrations()}
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = set()
    if exists:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    missing = [shipped[v] for v in sorted(shipped) if v not in done]
    unknown = sorted(v for v in done if v not in shipped)
    if missing:
        return fail(
            "postgres.migrations",
            f"{len(missing)} migration(s) not applied: {', '.join(missing)}",
            "run `onsale migrate` (idempotent)",
        )
    if unknown:
        return fail(
            "postgres.migrations",
            f"the database has migrations this onsale does not ship ({unknown}): it is "
            "newer than this code",
            "deploy the onsale version that migrated it",
        )
    return passed("postgres.migrations", f"all {len(shipped)} migrations applied")


async def _connections(
    conn: asyncpg.Connection, *, pool_max: int, gateways: int, workers: int
) -> Check:
    limit = int(await conn.fetchval("SHOW max_connections"))
    reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
    usable = limit - reserved - SPARE_CONNECTIONS
    need = gateways * pool_max + workers * WORKER_CONNECTIONS
    plan = (
        f"{gateways} gateway process(es) x pool {pool_max} + {workers} committer/mailer "
        f"process(es) x {WORKER_CONNECTIONS} = {need} of {usable} usable "
        f"(max_connections {limit})"
    )
    if need > usable:
        return fail(
            "postgres.connections",
            plan,
            "raise max_connections, lower ONSALE_DATABASE_POOL_MAX, or put "
            "PgBouncer (transaction mode) in front",
        )
    if need > usable * USAGE_WARN:
        return warn(
            "postgres.connections",
            plan,
            "little room for a scale-out: raise max_connections or use PgBouncer",
        )
    return passed("postgres.connections", plan)
