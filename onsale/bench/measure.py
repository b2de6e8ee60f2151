"""``onsale bench report``'s measurements: one run on this machine, every figure that
matters beside a baseline of the same run (see :mod:`onsale.bench.report`).

1. the stampede load test (``onsale loadtest``) beside two Locust baselines under the
   same uvicorn worker count: the bare Litestar endpoint, and a canned-bytes server that
   costs next to nothing (the Locust generator's own ceiling);
2. ``onsale bench queue``'s HTTP micro-benchmarks (status polls, joins, holds vs bare);
3. a py-spy profile of the one gateway worker under the hold load;
4. scaling: gateway workers 1 vs 2, and one Redis vs a three-primary Redis Cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from onsale.bench import queue
from onsale.bench.cluster import redis_servers
from onsale.bench.figures import percentile, progress
from onsale.bench.harness import LoadPool
from onsale.bench.profile import Profile, recorder, spy, summarise
from onsale.db import migrate
from onsale.embedded import postgres_bin_dir, redis_binary
from onsale.loadtest import report as loadtest_report
from onsale.loadtest.scenarios import DIRECTORY as SCENARIOS
from onsale.servers import bare_serve, canned_serve, gateway_settings, onsale_serve, stores

TAG = "bench report"


class Route(msgspec.Struct):
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float


class Stampede(msgspec.Struct):
    users: int
    tickets: int
    workers: int
    seconds: float
    holds_per_s: float
    orders_per_s: float
    routes: list[Route]
    #: The load test's own PASS/FAIL lines (invariants).
    checks: list[str]
    exit_code: int


class Baseline(msgspec.Struct):
    """One closed-loop Locust run of GET /bare against one server."""

    server: str
    users: int
    seconds: float
    route: Route | None


class ShardRow(msgspec.Struct):
    setup: str
    holds_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    #: Why it was not measured, if it was not.
    note: str = ""


class Machine(msgspec.Struct):
    date: str
    nproc: int
    cpu: str
    system: str
    python: str
    redis: str
    postgres: str
    locust: str


class Measurements(msgspec.Struct):
    command: str
    machine: Machine
    runtime_s: float
    stampede: Stampede | None
    bare: Baseline | None
    ceiling: Baseline | None
    #: ``bench queue`` rows with 1 gateway worker, then with 2.
    queue_1: list[queue.Row]
    queue_2: list[queue.Row]
    bench_clients: int
    bench_seconds: float
    profile: Profile | None
    shards: list[ShardRow]


def _version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def machine() -> Machine:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_v = _version([redis_binary(), "--version"])
    found = re.search(r"v=(\S+)", redis_v)
    try:
        pg = _version([str(postgres_bin_dir() / "postgres"), "--version"])
    except Exception:  # no embedded Postgres: say so rather than fail the report
        pg = "unknown"
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        nproc=os.cpu_count() or 0,
        cpu=cpu,
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        redis=found[1] if found else redis_v,
        postgres=pg.removeprefix("postgres (PostgreSQL) "),
        locust=_version([sys.executable, "-m", "locust", "--version"]).split(" from ")[0],
    )


def _routes(stats_csv: Path) -> list[Route]:
    return [
        Route(e.name, e.requests, e.failures, round(e.rps, 1), e.p50, e.p99)
        for e in loadtest_report.endpoints(stats_csv)
    ]


def stampede(args: argparse.Namespace, out: Path) -> Stampede:
    argv = [
        sys.executable, "-m", "onsale", "loadtest", "--scenario", "stampede",
        "--users", str(args.users), "--tickets", str(args.tickets),
        "--workers", str(args.workers), "--duration", str(args.duration),
        "--out", str(out),
    ]  # fmt: skip
    progress("stampede: " + " ".join(argv[2:]), TAG)
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    text = done.stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, text, re.MULTILINE)
        return float(found[1]) if found else 0.0

    return Stampede(
        users=args.users,
        tickets=args.tickets,
        workers=args.workers,
        seconds=number(r"tickets, ([\d.]+) s$"),
        holds_per_s=number(r"holds/s ([\d.]+)"),
        orders_per_s=number(r"orders/s ([\d.]+)"),
        routes=_routes(out / "locust_stats.csv"),
        checks=[ln for ln in text.splitlines() if ln.startswith(("PASS", "FAIL"))],
        exit_code=done.returncode,
    )


def locust(host: str, users: int, seconds: float, out: Path) -> Route | None:
    """Closed-loop GET /bare (scenarios/bare.py); the /bare row of Locust's CSV."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "locust", "-f", str(SCENARIOS / "bare.py"), "--headless",
        "--host", host, "-u", str(users), "-r", str(users), "-t", f"{int(seconds)}s",
        "--csv", str(out / "locust"), "--only-summary", "--loglevel", "WARNING",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    with open(out / "locust.log", "wb") as log:
        subprocess.run(argv, stdout=log, stderr=log, check=False)
    return next((r for r in _routes(out / "locust_stats.csv") if r.name == "GET /bare"), None)


def baselines(args: argparse.Namespace, out: Path) -> tuple[Baseline, Baseline]:
    users, secs = args.baseline_users, args.baseline_seconds
    progress(f"bare Litestar, {args.workers} workers: Locust {users} users for {secs:g} s ...", TAG)
    with bare_serve(args.workers) as server:
        bare = Baseline(
            "bare Litestar (uvicorn)", users, secs, locust(server.url, users, secs, out / "bare")
        )
    progress(f"canned-bytes server, {args.workers} processes: Locust ceiling ...", TAG)
    with canned_serve(args.workers) as server:
        ceiling = Baseline(
            "canned bytes (asyncio): generator ceiling",
            users,
            secs,
            locust(server.url, users, secs, out / "ceiling"),
        )
    return bare, ceiling


async def holds(
    env: Mapping[str, str],
    clients: int,
    seconds: float,
    admitted: int,
    tmp: Path,
    during: Callable[[int], object] | None = None,
) -> queue.Row:
    """Holds by admitted buyers against one gateway worker; ``during(pid)`` (a coroutine
    factory) runs beside the load, e.g. py-spy."""
    cluster = env.get("ONSALE_REDIS_CLUSTER") == "1"
    # One worker: the server process is the worker, which is what py-spy must attach to.
    log = tmp / f"gateway-{uuid.uuid4().hex[:6]}.log"
    with onsale_serve(env, 1, log=log) as (base, gateway):
        pid = gateway.pid
        event_id, tier = await queue._event(base, env["ONSALE_ADMIN_TOKEN"], holds=True)
        tokens = tmp / f"admissions-{event_id}"
        await queue.admitted(
            env["ONSALE_REDIS_URL"], env["ONSALE_SIGNING_KEY"], event_id, admitted, tokens,
            cluster=cluster,
        )  # fmt: skip
        pool = LoadPool(queue.make_session, 1)
        pool.start()
        try:
            await pool.open(queue.HOLD, f"{base}|{event_id}|{tokens}|{tier}", clients)
            side = during(pid) if during else None
            if asyncio.iscoroutine(side):
                result, _ = await asyncio.gather(pool.run("", seconds), side)
            else:
                result = await pool.run("", seconds)
            await pool.close()
        finally:
            pool.stop()
    ordered = sorted(result.latencies)
    return queue.Row(
        endpoint=queue.HOLD,
        clients=clients,
        requests_per_s=round(result.rate, 1),
        p50_ms=round(percentile(ordered, 50) * 1000, 2),
        p99_ms=round(percentile(ordered, 99) * 1000, 2),
        ratio_to_bare=0.0,
        refused=result.attempts - result.granted,
    )


async def profile(
    args: argparse.Namespace, redis_url: str, database_url: str, tmp: Path
) -> Profile:
    executable = spy()
    load = f"the hold load ({args.clients} clients)"
    if executable is None:
        return Profile(load, 0, 0, [], note="py-spy is not installed")
    raw = tmp / "profile.txt"
    secs = args.profile_seconds
    log = tmp / "py-spy.log"
    progress(f"profile: py-spy on the gateway worker for {secs:g} s under {load} ...", TAG)
    env = gateway_settings(redis_url, database_url)
    record = recorder(executable, secs, raw, log)
    await holds(env, args.clients, secs + 2.5, args.admitted, tmp, during=record)
    if not raw.exists():
        tail = log.read_text(errors="replace")[-300:] if log.exists() else ""
        return Profile(load, secs, 0, [], note=f"py-spy wrote nothing: {tail.strip()}")
    samples, frames = summarise(raw.read_text(errors="replace"))
    return Profile(load, secs, samples, frames)


@contextlib.contextmanager
def redis_nodes(cluster: bool) -> Iterator[str]:
    """One plain Redis, or a three-primary Redis Cluster on loopback; a URL of one node."""
    with redis_servers(cluster) as ports:
        yield f"redis://127.0.0.1:{ports[0]}/0"


async def shards(args: argparse.Namespace, database_url: str, tmp: Path) -> list[ShardRow]:
    rows = []
    for setup, cluster in (("1 Redis", False), ("3-primary Redis Cluster", True)):
        progress(f"shards: holds against {setup} ...", TAG)
        try:
            with redis_nodes(cluster) as url:
                env = gateway_settings(url, database_url, cluster=cluster)
                row = await holds(env, args.clients, args.seconds, args.admitted, tmp)
            rows.append(ShardRow(setup, row.requests_per_s, row.p50_ms, row.p99_ms))
        except Exception as exc:  # report the row as not measured, with the reason
            reason = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
            progress(f"shards: {setup} {reason}", TAG)
            rows.append(ShardRow(setup, None, None, None, note=reason))
    return rows


def _queue_args(args: argparse.Namespace, workers: int) -> argparse.Namespace:
    return argparse.Namespace(
        clients=args.clients,
        seconds=args.seconds,
        workers=workers,
        processes=1,
        visitors=args.visitors,
        admitted=args.admitted,
    )


async def measure_all(args: argparse.Namespace, command: str) -> Measurements:
    began = time.monotonic()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="onsale-report-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)
        st = stampede(args, tmp / "stampede") if not args.skip_stampede else None
        bare, ceiling = baselines(args, tmp) if not args.skip_stampede else (None, None)
        with stores(None, None) as (redis_url, database_url):
            await migrate.apply(database_url)
            queue_1: list[queue.Row] = []
            queue_2: list[queue.Row] = []
            for workers, rows in ((1, queue_1), (2, queue_2)):
                progress(f"bench queue with {workers} gateway worker(s) ...", TAG)
                rows += await queue.measure(_queue_args(args, workers), redis_url, database_url)
            prof = await profile(args, redis_url, database_url, tmp)
            shard_rows = await shards(args, database_url, tmp)
    return Measurements(
        command=command,
        machine=info,
        runtime_s=time.monotonic() - began,
        stampede=st,
        bare=bare,
        ceiling=ceiling,
        queue_1=queue_1,
        queue_2=queue_2,
        bench_clients=args.clients,
        bench_seconds=args.seconds,
        profile=prof,
        shards=shard_rows,
    )
