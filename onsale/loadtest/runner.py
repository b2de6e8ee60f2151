"""``onsale loadtest``'s run: a Locust scenario against a deployment, then the invariants.

By default it starts the whole deployment itself: embedded Redis and Postgres, localstripe
(delivering signed webhooks to the gateway), ``--workers`` gateway processes, the
committers and an event with ``--tickets`` tickets. With ``--target URL`` it drives that
gateway instead (see README, Load testing). Locust runs headless in a subprocess, so its
gevent monkey-patching never touches this process's asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from onsale import keys
from onsale.bench.figures import progress
from onsale.checkout.payments import Payments
from onsale.checkout.stream import lag
from onsale.config import StripeSettings
from onsale.connections import redis_client
from onsale.inventory import Inventory
from onsale.loadtest import invariants, over_api, report
from onsale.loadtest.deployment import Deployment, committers, limits, local
from onsale.loadtest.event import create, event_body
from onsale.loadtest.scenarios import DIRECTORY as LOCUSTFILES

SCENARIOS = ("stampede", "last_tickets", "steady")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", choices=SCENARIOS, default="stampede")
    p.add_argument("--users", type=int, default=200, help="simulated buyers (default 200)")
    p.add_argument(
        "--spawn-rate",
        type=float,
        default=0,
        help="buyers started per second (default: all within a second)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=60,
        help="seconds at most; the run ends earlier once every buyer is done",
    )
    p.add_argument("--tickets", type=int, default=50, help="the event's capacity")
    p.add_argument(
        "--admit-per-minute",
        type=int,
        default=0,
        help="the on-sale's admission rate (default: the scenario's)",
    )
    p.add_argument(
        "--pow-difficulty",
        type=int,
        default=0,
        help="the bot tax (docs/bot-tax.md): each buyer solves a proof-of-work of this "
        "difficulty before joining, reported as 'POW solve' (default 0: none)",
    )
    p.add_argument("--workers", type=int, default=2, help="gateway processes")
    p.add_argument("--committers", type=int, default=1, help="committer processes")
    p.add_argument("--out", default="loadtest-out", help="reports directory")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=60,
        help="seconds to wait for webhooks and the committer after the load",
    )
    p.add_argument("--locustfiles", default=str(LOCUSTFILES), help="the scenarios' directory")
    from onsale.loadtest.reliability import add_arguments as chaos_arguments

    chaos_arguments(p)
    target = p.add_argument_group("an existing deployment (instead of starting one)")
    target.add_argument("--target", help="gateway base URL, e.g. https://onsale.example")
    target.add_argument("--admin-token", help="its ONSALE_ADMIN_TOKEN (creates the event)")
    target.add_argument("--stripe-url", help="Stripe API base the buyers pay at (test mode)")
    target.add_argument("--stripe-key", help="a test secret key for it")
    target.add_argument("--redis-url", help="its Redis, for lag sampling and invariants")
    target.add_argument("--database-url", help="its Postgres, for the invariants")
    verdicts = p.add_argument_group("verdicts")
    verdicts.add_argument(
        "--strict",
        action="store_true",
        help="a check that could not run (SKIP) fails the run (CI uses it)",
    )
    verdicts.add_argument(
        "--allow-rate-limited",
        action="store_true",
        help="run even though the gateway rate-limits this generator's address",
    )
    spread = p.add_argument_group("distributed load (Locust master and workers)")
    spread.add_argument(
        "--expect-workers",
        type=int,
        default=0,
        help="be Locust's master: wait for N workers (onsale loadtest --worker) to connect",
    )
    spread.add_argument(
        "--master-bind-port", type=int, default=5557, help="the master's port (default 5557)"
    )
    spread.add_argument(
        "--worker",
        action="store_true",
        help="be a worker of the master at --master-host: the master sends the scenario, "
        "the event and the buyers' settings; this machine only generates load",
    )
    spread.add_argument("--master-host", default="127.0.0.1", help="the master (for --worker)")
    spread.add_argument("--master-port", type=int, default=5557, help="the master's port")


class Sampler:
    """Redis sampled once a second while the load runs: committer lag, tickets, orders; or,
    without Redis, the event's stats through the API (no lag)."""

    def __init__(self, redis: Any, event_id: str, api: over_api.Api | None = None) -> None:
        self.redis, self.event_id, self.api = redis, event_id, api
        self.lag_ms: list[float] = []
        self.most_pending = 0
        self.sold = self.held = self.orders = 0

    async def sample(self) -> None:
        if self.redis is None:
            if self.api is not None:
                stats = await self.api.stats(self.event_id)
                self.sold = sum(t["sold"] for t in stats["tiers"])
                self.held = sum(t["held"] for t in stats["tiers"])
                self.orders = stats["orders"]["confirmed"]
            return
        now = await lag(self.redis, self.event_id)
        self.lag_ms.append(float(now.oldest_ms))
        self.most_pending = max(self.most_pending, now.pending)
        levels = await Inventory(self.redis).levels(self.event_id)
        self.sold = sum(lv.sold for lv in levels)
        self.held = sum(lv.held for lv in levels)
        self.orders = int(await self.redis.xlen(keys.orders_stream(self.event_id)))


async def drive(
    args: argparse.Namespace,
    d: Deployment,
    event: dict[str, Any],
    opens_at: float,
    out: Path,
    extra_env: dict[str, str] | None = None,
) -> tuple[float, Sampler]:
    """Locust in a subprocess, sampled and reported on every few seconds."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "LOADTEST_EVENT_ID": event["id"],
        "LOADTEST_TIERS": ",".join(t["id"] for t in event["tiers"]),
        "LOADTEST_OPENS_AT": str(opens_at),
        "LOADTEST_STRIPE_URL": d.stripe_url or "",
        "LOADTEST_STRIPE_KEY": d.stripe_key or "",
        "LOADTEST_OUT": str(out),
    }
    spawn = args.spawn_rate or args.users
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(Path(args.locustfiles) / f"{args.scenario}.py"),
        "--headless",
        "--host",
        d.base,
        "-u",
        str(args.users),
        "-r",
        str(spawn),
        "-t",
        f"{int(args.duration)}s",
        "--stop-timeout",
        "5",
        "--html",
        str(out / "report.html"),
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    if args.expect_workers:
        argv += [
            "--master",
            "--expect-workers",
            str(args.expect_workers),
            "--master-bind-port",
            str(args.master_bind_port),
        ]
        progress(f"waiting for {args.expect_workers} worker(s) on port {args.master_bind_port}")
    redis = redis_client(d.redis_url) if d.redis_url else None
    api = None if redis is not None else over_api.Api(d.base, d.admin)
    sampler = Sampler(redis, event["id"], api)
    began = time.monotonic()
    with open(out / "locust.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=log, stderr=log)
        try:
            last = 0.0
            while proc.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 1.0)
                with contextlib.suppress(Exception):  # a sample is best effort, the run goes on
                    await sampler.sample()
                if time.monotonic() - last >= 3:
                    last = time.monotonic()
                    users, rps = report.latest(out / "locust_stats_history.csv")
                    lag_now = sampler.lag_ms[-1] if sampler.lag_ms else 0
                    progress(
                        f"[{last - began:5.0f} s] users {users}  rps {rps:.0f}  tickets held "
                        f"{sampler.held} sold {sampler.sold}  orders {sampler.orders}  "
                        f"lag {lag_now:.0f} ms"
                    )
        finally:
            if proc.returncode is None:  # interrupted (a fault injection failed, Ctrl-C)
                proc.kill()
    seconds = time.monotonic() - began
    if redis is not None:
        await redis.aclose()
    if api is not None:
        await api.aclose()
    return seconds, sampler


async def _settle(d: Deployment, event_id: str, deadline_s: float) -> None:
    """Webhooks still in flight, then the committer: until the stream is drained and the
    order count has stood still for 3 s, or the deadline."""
    if not d.redis_url:
        return
    redis = redis_client(d.redis_url)
    deadline = time.monotonic() + deadline_s
    still, seen = 0, -1
    try:
        while time.monotonic() < deadline and still < 3:
            await asyncio.sleep(1)
            now = await lag(redis, event_id)
            count = int(await redis.xlen(keys.orders_stream(event_id)))
            still = still + 1 if now.pending == 0 and count == seen else 0
            seen = count
    finally:
        await redis.aclose()


#: The checks that read Redis and Postgres directly (see :mod:`onsale.loadtest.invariants`).
DIRECT = (
    "committer drained",
    "no oversell in Redis (sold+held <= capacity)",
    "no oversell in Postgres (tickets <= capacity)",
    "Postgres tickets == Redis sold, per tier",
    "every paid order confirmed exactly once, reconcile clean",
)


async def _check(d: Deployment, event_id: str) -> tuple[list[invariants.Check], int]:
    """(checks, confirmed orders); SKIPs naming what is missing when the stores are out of
    reach (the checks over the API still run)."""
    if not (d.redis_url and d.database_url):
        why = "needs --redis-url and --database-url (the stores are out of reach)"
        return [invariants.Check(name, False, why, skipped=True) for name in DIRECT], 0
    redis = redis_client(d.redis_url)
    conn = await asyncpg.connect(d.database_url)
    payments = None
    if d.stripe_url and d.stripe_key:
        payments = Payments(StripeSettings(secret_key=d.stripe_key, api_base=d.stripe_url))
    try:
        state = await invariants.gather(conn, redis, payments, event_id)
    finally:
        if payments is not None:
            await payments.aclose()
        await conn.close()
        await redis.aclose()
    return invariants.check(state), state.confirmed


def worker(args: argparse.Namespace) -> int:
    """A Locust worker of ``onsale loadtest --expect-workers`` on another machine: it
    downloads the scenario from the master, which also sends the event and the buyers'
    settings; it only generates load."""
    argv = [
        sys.executable, "-m", "locust", "-f", "-", "--worker",
        "--master-host", args.master_host, "--master-port", str(args.master_port),
        "--loglevel", "WARNING",
    ]  # fmt: skip
    progress(f"worker of {args.master_host}:{args.master_port}; Ctrl-C stops it")
    return subprocess.call(argv)


def run(args: argparse.Namespace) -> int:
    if args.worker:
        return worker(args)
    if args.chaos:
        from onsale.loadtest import reliability

        return reliability.run(args)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("codes.json", "locust_stats.csv", "locust_stats_history.csv"):
        (out / stale).unlink(missing_ok=True)
    if args.target:
        if not args.admin_token:
            progress("onsale loadtest: --target needs --admin-token (to create the event)")
            return 2
        deployment: contextlib.AbstractContextManager[Deployment] = contextlib.nullcontext(
            Deployment(
                args.target.rstrip("/"),
                args.admin_token,
                args.stripe_url,
                args.stripe_key,
                args.redis_url,
                args.database_url,
            )
        )
    else:
        deployment = local(args.workers)
    with deployment as d:
        body, opens_at = event_body(
            args.scenario,
            args.tickets,
            args.users,
            args.spawn_rate,
            args.admit_per_minute,
            args.pow_difficulty,
        )
        event = create(d.base, d.admin, body)
        progress(
            f"event {event['id']} ({args.tickets} tickets); {args.users} buyers, "
            f"scenario {args.scenario}, reports in {out}"
        )
        problem = limits(d.base, event["id"], args.users)
        if problem and not args.allow_rate_limited:
            progress(f"onsale loadtest: FAIL before the load: {problem}")
            return 2
        with committers(args, d, event["id"], out):
            seconds, sampler = asyncio.run(drive(args, d, event, opens_at, out))
            progress("load done; waiting for webhooks and the committer to drain ...")
            asyncio.run(_settle(d, event["id"], args.drain_timeout))
            checks, confirmed = asyncio.run(_check(d, event["id"]))
            buyers = report.buyers(out / "codes.json")
            checks += asyncio.run(
                over_api.check(d.base, d.admin, event["id"], buyers, args.drain_timeout)
            )
    stats = report.endpoints(out / "locust_stats.csv")
    errors, outcomes = report.codes(out / "codes.json")
    checks.append(report.limiter_check(errors, args.allow_rate_limited))
    checks.insert(
        0,
        invariants.Check(
            "load generator ran",
            bool(stats),
            f"{len(stats)} stats rows in {out / 'locust_stats.csv'}",
        ),
    )
    summary = report.summary(
        report.Run(
            args.scenario,
            args.users,
            args.tickets,
            seconds,
            outcomes.get("holds", 0),
            confirmed or outcomes.get("orders", 0),
            sampler.lag_ms,
            sampler.most_pending,
        ),
        stats,
        errors,
        outcomes,
        checks,
        args.strict,
    )
    (out / "summary.txt").write_text(summary + "\n")
    print(summary, flush=True)
    return 0 if invariants.passed(checks, args.strict) else 1
