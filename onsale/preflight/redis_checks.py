"""Redis: reachable, its version, no eviction, persistence, memory headroom for the crowd,
the cluster's slots, and the Lua scripts. Read-only: INFO, CONFIG GET, SCRIPT EXISTS."""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import RedisError, ResponseError

from onsale import scripts
from onsale.connections import RedisClient
from onsale.preflight.result import Check, Status, fail, passed, warn

#: Redis bytes one waiting-room visitor costs: its place, sequence, liveness and admission
#: entries, plus its hold and order when it buys. ``python -m onsale.preflight.measure``
#: measured 605-616 bytes in the waiting room (20,000 visitors, embedded Redis); rounded up
#: for a buyer's hold and order.
BYTES_PER_VISITOR = 1_024
#: Under this much free memory per expected visitor's need, warn; under 1x, fail.
HEADROOM_WARN = 2.0
MIB = 1024 * 1024


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


async def _config(redis: RedisClient, name: str) -> str | None:
    """A CONFIG GET value, or None where CONFIG is disabled (managed Redis services)."""
    try:
        found: dict[str, str] = await redis.config_get(name)
    except ResponseError:
        return None
    return found.get(name)


async def checks(
    redis: RedisClient, *, cluster: bool, expect_visitors: int | None, url: str
) -> list[Check]:
    try:
        server: dict[str, Any] = await redis.info("server")
    except (RedisError, OSError) as exc:
        return [
            fail(
                "redis.reachable",
                f"{url}: {type(exc).__name__}: {exc}",
                "start Redis or fix ONSALE_REDIS_URL (and the network between)",
            )
        ]
    found = [passed("redis.reachable", f"{url} answers")]
    found.append(_version_check(str(server.get("redis_version", "0"))))
    if cluster:
        # Every primary holds some events' keys: each must be right, the worst is said.
        nodes = await _primaries(redis)
        found.append(_worst([_named(n, _eviction(_policy(m))) for n, m, _, _ in nodes]))
        found.append(_worst([_named(n, _persistence(p, f)) for n, _, p, f in nodes]))
        found.append(_worst([_named(n, _headroom(m, expect_visitors)) for n, m, _, _ in nodes]))
        found.append(await _cluster(redis))
    else:
        memory: dict[str, Any] = await redis.info("memory")
        persistence: dict[str, Any] = await redis.info("persistence")
        found.append(_eviction(_policy(memory)))
        found.append(_persistence(persistence, await _config(redis, "appendfsync")))
        found.append(_headroom(memory, expect_visitors))
    found.append(await _scripts(redis))
    return found


def _policy(memory: dict[str, Any]) -> str:
    return str(memory.get("maxmemory_policy", "unknown"))


_RANK = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


def _worst(checks: list[Check]) -> Check:
    return max(checks, key=lambda c: _RANK[c.status])


def _named(node: str, check: Check) -> Check:
    return Check(check.name, check.status, f"{node}: {check.detail}", check.fix)


async def _primaries(
    redis: Any,
) -> list[tuple[str, dict[str, Any], dict[str, Any], str | None]]:
    """(node, INFO memory, INFO persistence, appendfsync) of every primary of a cluster."""
    primaries = redis.get_primaries()
    memory = await redis.info("memory", target_nodes=primaries)
    persistence = await redis.info("persistence", target_nodes=primaries)
    found = []
    for node in primaries:
        try:
            fsync = (await redis.config_get("appendfsync", target_nodes=node)).get("appendfsync")
        except ResponseError:
            fsync = None
        found.append((node.name, memory[node.name], persistence[node.name], fsync))
    return found


def _version_check(version: str) -> Check:
    if _version(version) >= (6, 2):
        return passed("redis.version", f"Redis {version}")
    return fail(
        "redis.version",
        f"Redis {version} is older than 6.2",
        "upgrade (6.2 or later): the committers' XAUTOCLAIM and the scripts need it",
    )


def _eviction(policy: str) -> Check:
    if policy == "noeviction":
        return passed("redis.eviction", "maxmemory-policy noeviction")
    return fail(
        "redis.eviction",
        f"maxmemory-policy is {policy}: under memory pressure Redis would silently drop "
        "holds, orders not yet committed, or the inventory itself",
        "set maxmemory-policy noeviction (redis.conf, or CONFIG SET then CONFIG REWRITE)",
    )


def _persistence(info: dict[str, Any], fsync: str | None) -> Check:
    if int(info.get("aof_enabled", 0)) != 1:
        last = int(info.get("rdb_last_save_time", 0))
        ago = (time.time() - last) / 60
        snap = f" (the last RDB snapshot, {ago:.0f} min ago)" if last else ""
        return fail(
            "redis.persistence",
            "appendonly is off: a crash loses every hold, sale and order not yet in "
            f"Postgres since the last snapshot{snap}",
            "set appendonly yes with appendfsync everysec (see the runbook's Redis "
            "persistence section)",
        )
    if fsync == "always":
        return passed(
            "redis.persistence", "AOF, appendfsync always: a crash loses nothing Redis acknowledged"
        )
    if fsync == "everysec":
        return passed(
            "redis.persistence",
            "AOF, appendfsync everysec: a crash loses at most "
            "the last second of writes (onsale recover rebuilds paid orders)",
        )
    if fsync is None:
        return warn(
            "redis.persistence",
            "AOF on; appendfsync cannot be read (CONFIG is disabled)",
            "confirm appendfsync everysec with your Redis provider",
        )
    return warn(
        "redis.persistence",
        f"AOF, appendfsync {fsync}: the OS flushes when it likes, a crash may lose ~30 s",
        "set appendfsync everysec",
    )


def _headroom(memory: dict[str, Any], expect_visitors: int | None) -> Check:
    used = int(memory.get("used_memory", 0))
    limit = int(memory.get("maxmemory", 0)) or int(memory.get("total_system_memory", 0))
    if not limit:
        return warn(
            "redis.memory",
            f"{used / MIB:.0f} MiB used, no limit known",
            "set maxmemory so Redis refuses writes instead of being killed",
        )
    free = limit - used
    where = "maxmemory" if int(memory.get("maxmemory", 0)) else "system memory (no maxmemory)"
    head = f"{used / MIB:.0f} MiB used of {limit / MIB:.0f} MiB {where}"
    if expect_visitors is None:
        return passed("redis.memory", f"{head}; --expect-visitors N checks the crowd fits")
    need = expect_visitors * BYTES_PER_VISITOR
    need_text = (
        f"{expect_visitors:,} visitors need ~{need / MIB:.0f} MiB ({BYTES_PER_VISITOR} B each)"
    )
    if need > free:
        return fail(
            "redis.memory",
            f"{head}; {need_text}, {free / MIB:.0f} MiB free",
            "raise maxmemory (or the instance size) before the launch",
        )
    if need * HEADROOM_WARN > free:
        return warn(
            "redis.memory",
            f"{head}; {need_text}, under {HEADROOM_WARN:.0f}x headroom",
            "raise maxmemory: a bigger crowd than expected would fill it",
        )
    return passed("redis.memory", f"{head}; {need_text}")


async def _cluster(redis: RedisClient) -> Check:
    try:
        info: Any = await redis.cluster_info()
    except (RedisError, AttributeError) as exc:
        return fail(
            "redis.cluster",
            f"CLUSTER INFO failed: {exc}",
            "ONSALE_REDIS_CLUSTER=1 needs a Redis Cluster",
        )
    state = str(info.get("cluster_state", "?"))
    slots = int(info.get("cluster_slots_ok", 0))
    if state != "ok" or slots != 16384:
        return fail(
            "redis.cluster",
            f"cluster_state {state}, {slots} of 16384 slots served",
            "assign every slot to a primary (redis-cli --cluster fix)",
        )
    return passed("redis.cluster", "cluster_state ok, all 16384 slots served")


async def _scripts(redis: RedisClient) -> Check:
    names = sorted(scripts.PRELUDES)
    loaded = await redis.script_exists(*(scripts.sha(n) for n in names))
    missing = [n for n, ok in zip(names, loaded, strict=True) if not ok]
    if not missing:
        return passed("redis.scripts", f"all {len(names)} Lua scripts loaded")
    return warn(
        "redis.scripts",
        f"{len(missing)} of {len(names)} Lua scripts not loaded ({', '.join(missing[:4])}"
        f"{', ...' if len(missing) > 4 else ''})",
        "start the gateways (each loads every script at start); if they run, Redis was "
        "restarted or flushed since: they reload on first use",
    )
