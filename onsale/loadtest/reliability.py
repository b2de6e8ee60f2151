"""``onsale loadtest --chaos``: the stampede while faults are injected (see
:mod:`onsale.loadtest.chaos`), then the invariants read straight from the stores (see
:mod:`onsale.loadtest.truth`). With ``--write docs/reliability.md`` it regenerates that page.

It always starts its own deployment (faults need the processes): embedded Redis with
``appendfsync always`` and Postgres, localstripe delivering through a relay that redelivers
like Stripe (:mod:`onsale.loadtest.relay`), ``--workers`` gateway processes under uvicorn's
supervisor, and ``--committers`` committers under the harness's.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from onsale import keys
from onsale.bench.figures import progress
from onsale.connections import redis_client
from onsale.db import migrate
from onsale.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe
from onsale.loadtest import report, truth
from onsale.loadtest.chaos import Committers, Estate, Fault, Plan, during, inject, requests
from onsale.loadtest.deployment import WEBHOOK_SECRET, Deployment, settings
from onsale.loadtest.event import create, event_body
from onsale.loadtest.relay import Relay
from onsale.loadtest.runner import drive
from onsale.servers import environment, onsale_serve

#: Buyer outcomes (and counters) that are not a buyer turned away.
_FINISHED = ("bought", "sold_out", "holds", "orders", "retries")
COMMAND = "onsale loadtest --chaos --users 600 --tickets 300 --write docs/reliability.md"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chaos (faults injected during a stampede; see docs/reliability.md)")
    g.add_argument(
        "--chaos",
        action="store_true",
        help="the stampede on a deployment of its own while faults are injected",
    )
    g.add_argument("--postgres-down", type=float, default=10, help="seconds Postgres is stopped")
    g.add_argument("--redis-down", type=float, default=3, help="seconds Redis stays killed")
    g.add_argument("--fault-gap", type=float, default=3, help="seconds between faults")
    g.add_argument("--write", metavar="PATH", help="write the figures there (docs/reliability.md)")


def _say(opens_at: float) -> Any:
    return lambda message: progress(f"[chaos {time.time() - opens_at:+6.1f} s] {message}")


async def _settle(client: Any, relay: Relay, event_id: str, deadline_s: float) -> None:
    """Until no webhook is owed, the stream is committed and stands still 3 s (or deadline)."""
    deadline, still, seen = time.monotonic() + deadline_s, 0, -1
    while time.monotonic() < deadline and still < 3:
        await asyncio.sleep(1)
        with contextlib.suppress(Exception):
            in_flight, unread, _ = await truth.stream_state(client, event_id)
            count = int(await client.xlen(keys.orders_stream(event_id)))
            quiet = not (in_flight or unread or relay.owed) and count == seen
            still, seen = (still + 1 if quiet else 0), count


async def _load_and_faults(
    args: argparse.Namespace,
    d: Deployment,
    estate: Estate,
    event: dict[str, Any],
    opens_at: float,
    out: Path,
    plan: Plan,
    relay: Relay,
) -> tuple[float, Any, list[Fault]]:
    estate.client = redis_client(d.redis_url or "")
    extra = {"LOADTEST_REQUESTS": str(out / "requests.log"), "LOADTEST_RETRY_FOR": "90"}
    try:
        (seconds, sampler), faults = await asyncio.gather(
            drive(args, d, event, opens_at, out, extra),
            inject(estate, plan, opens_at, _say(opens_at)),
        )
        progress("load done; waiting for webhooks and the committer to drain ...")
        await _settle(estate.client, relay, event["id"], args.drain_timeout)
        return seconds, sampler, faults
    finally:
        await estate.client.aclose()


async def _truth(d: Deployment, event_id: str, out: Path, relay: Relay, env: dict[str, str]) -> Any:
    buyers: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        buyers = json.loads((out / "codes.json").read_text())
    reconciled = await asyncio.to_thread(truth.reconcile, event_id, env)
    client = redis_client(d.redis_url or "")
    conn = await asyncpg.connect(d.database_url)
    try:
        return await truth.gather(
            conn,
            client,
            (d.stripe_url or "", d.stripe_key or ""),
            event_id,
            buyers,
            relay.owed,
            reconciled,
        )
    finally:
        await conn.close()
        await client.aclose()


def _faults_text(faults: list[Fault], reqs: list[Any], relay: Relay, t0: float) -> list[str]:
    lines = ["faults injected (requests to the gateway whose lifetime overlapped each window):"]
    for i, f in enumerate(faults, 1):
        hooks = relay.counts(f.started, f.ended)
        lines += [
            f"{i}. {f.name}: at +{f.started - t0:.1f} s after the opening, "
            f"{f.ended - f.started:.1f} s until healed",
            f"   {f.detail}",
            f"   {during(reqs, f).text()}",
            f"   webhook deliveries in the window: {hooks['delivered']} acknowledged, "
            f"{hooks['redelivered']} of them redeliveries; {hooks['refused']} refused or "
            "unanswered (redelivered later)",
        ]
    lines.append(
        f"webhooks: {relay.received} events, {len(relay.redelivered)} of them refused or "
        f"unanswered at first and redelivered until acknowledged; {relay.owed} still owed"
    )
    return lines


_DOC = """# Reliability: faults under load

Regenerated by `{command}`
(see docs/runbook.md, "Chaos run"); a short version runs in CI
(`tests/integration/test_chaos.py`).

Measured {date} on {cpus} CPU(s) ({cpu}), Python {python}: {users} buyers for {tickets}
tickets, {workers} gateway workers, {committers} committer(s), {seconds:.0f} s of load.

While the stampede runs, the harness injects one fault after another: kill -9 of one
gateway worker (uvicorn respawns it); kill -9 of a committer while it holds a batch read
and not acknowledged (the harness restarts it, as a supervisor would, and the new one
reclaims the entries); Postgres stopped for {pg:g} s; kill -9 of Redis (`appendfsync
always`), started again after {redis:g} s on its append-only file. Buyers retry 502, 503,
504 and unanswered requests, as the buyer's page does; webhooks reach the gateway through
a relay that redelivers unacknowledged events, as Stripe does. The verdicts read
Postgres, Redis and the Stripe emulator directly, and run `onsale reconcile`.

**Faults injected: {faults}. Requests during faults: {during}. Orders lost: {lost}.**

Buyers stranded (ended with neither tickets nor a sold-out answer): {stranded}. Nothing
was paid for them, so nothing is lost, but each is a buyer a fault turned away: see the
outcome codes in the output below and docs/runbook.md, "Chaos run".

| fault | window | requests during | in flight at injection | failed (retried) | by status |
|---|---:|---:|---:|---:|---|
{rows}

{details}

| invariant | verdict | seen |
|---|---|---|
{checks}

The run's own output:

```
{summary}
```
"""


def _doc(
    args: argparse.Namespace,
    summary: str,
    faults: list[Fault],
    reqs: list[Any],
    t: truth.Truth,
    checks: list[Any],
    seconds: float,
    stranded: str,
) -> str:
    rows = []
    for f in faults:
        d = during(reqs, f)
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(d.by_status.items()))
        window = f"{f.ended - f.started:.1f} s"
        rows.append(
            f"| {f.name} | {window} | {d.total} | {d.in_flight} | {d.failed} | {statuses} |"
        )
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        x.split(":", 1)[1].strip() for x in cpuinfo.splitlines() if x.startswith("model name")
    ]
    return _DOC.format(
        command=COMMAND,
        date=f"{datetime.now(UTC):%Y-%m-%d}",
        cpus=os.cpu_count(),
        cpu=models[0] if models else platform.machine(),
        python=platform.python_version(),
        users=args.users,
        tickets=args.tickets,
        workers=args.workers,
        committers=args.committers,
        seconds=seconds,
        pg=args.postgres_down,
        redis=args.redis_down,
        faults=len(faults),
        during=sum(during(reqs, f).total for f in faults),
        lost=len(truth.lost(t)),
        stranded=stranded,
        details="\n".join(f"{i}. {f.name}: {f.detail}." for i, f in enumerate(faults, 1)),
        rows="\n".join(rows),
        checks="\n".join(f"| {c.name} | {c.verdict} | {c.detail} |" for c in checks),
        summary=summary,
    )


@contextlib.contextmanager
def _deployment(
    args: argparse.Namespace, out: Path, starter: concurrent.futures.Executor
) -> Iterator[tuple[Deployment, Estate, Relay, dict[str, str]]]:
    """Everything started, and the estate the faults act on (without its event yet)."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="onsale-chaos-")))
        tmp.chmod(0o755)  # the embedded Postgres runs as nobody when we are root
        progress(f"starting Redis (appendfsync always), Postgres and localstripe in {tmp} ...")
        redis = EmbeddedRedis(tmp, durable=True, appendfsync="always")
        postgres = EmbeddedPostgres(tmp, database="onsale_chaos", durable=True)
        stripe = EmbeddedStripe(tmp)
        # Started where they are restarted: they die with the thread that started them.
        urls = [starter.submit(s.start).result() for s in (redis, postgres, stripe)]
        for service in (stripe, postgres, redis):
            stack.callback(service.stop)
        redis_url, database_url, stripe_url = urls
        asyncio.run(migrate.apply(database_url))
        # Only these settings, none of the caller's: the faults act on this deployment alone.
        env = environment(settings(redis_url, database_url, stripe_url), inherit_settings=False)
        admin = env["ONSALE_ADMIN_TOKEN"]
        progress(f"starting {args.workers} gateway workers; logs in {out} ...")
        base, gw = stack.enter_context(
            onsale_serve(env, args.workers, log=out / "gateway.log", inherit_settings=False)
        )
        d = Deployment(base, admin, stripe_url, EmbeddedStripe.SECRET_KEY, redis_url, database_url)
        relay = stack.enter_context(Relay(f"{base}/api/webhooks/stripe", WEBHOOK_SECRET).running())
        stripe.register_webhook(relay.url, WEBHOOK_SECRET)
        committers = Committers([], env, out, args.committers)
        yield (
            d,
            Estate(gw, out / "gateway.log", redis, postgres, committers, None, "", starter),
            relay,
            env,
        )


def run(args: argparse.Namespace) -> int:
    if args.target:
        progress("onsale loadtest --chaos starts its own deployment; --target is not for it")
        return 2
    if args.workers < 2 or args.committers < 1:
        progress("onsale loadtest --chaos needs --workers 2 or more and a committer")
        return 2
    args.scenario = "stampede"
    plan = Plan(
        gap_s=args.fault_gap, postgres_down_s=args.postgres_down, redis_down_s=args.redis_down
    )
    # Sized to sell out after the last fault: purchases go on through all of them.
    selling_s = plan.seconds() + 5
    admit = args.admit_per_minute or max(6, math.ceil(args.tickets / 1.33 / selling_s * 60))
    args.duration = max(args.duration, selling_s + 30)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("codes.json", "locust_stats.csv", "locust_stats_history.csv", "requests.log"):
        (out / stale).unlink(missing_ok=True)
    starter = concurrent.futures.ThreadPoolExecutor(1, "chaos-starter")
    try:
        with _deployment(args, out, starter) as (d, estate, relay, env):
            body, opens_at = event_body(
                "stampede", args.tickets, args.users, args.spawn_rate, admit
            )
            body["onsale"]["hold_seconds"] = 60  # a hold whose answer a fault lost frees up soon
            event = create(d.base, d.admin, body)
            estate.event_id = event["id"]
            progress(
                f"event {event['id']} ({args.tickets} tickets, {admit} admissions/min); "
                f"{args.users} buyers; faults from {plan.first_s:g} s after the opening; "
                f"reports in {out}"
            )
            estate.committers.args = ["--event", event["id"], "--claim-idle", "2"]
            with estate.committers.running():
                seconds, sampler, faults = asyncio.run(
                    _load_and_faults(args, d, estate, event, opens_at, out, plan, relay)
                )
                t = asyncio.run(_truth(d, event["id"], out, relay, env))
            hooks = _faults_text(faults, requests(out / "requests.log"), relay, opens_at)
    finally:
        starter.shutdown()
    checks = truth.check(t)
    stats = report.endpoints(out / "locust_stats.csv")
    errors, outcomes = report.codes(out / "codes.json")
    run = report.Run(
        "stampede (chaos)",
        args.users,
        args.tickets,
        seconds,
        outcomes.get("holds", 0),
        sum(1 for r in t.orders.values() if r.status == "confirmed"),
        sampler.lag_ms,
        sampler.most_pending,
    )
    reqs = requests(out / "requests.log")
    (out / "faults.json").write_bytes(msgspec.json.encode(faults))
    others = {k: v for k, v in outcomes.items() if k not in _FINISHED}
    stranded = f"{sum(others.values())}" + (
        f" ({', '.join(f'{k} {v}' for k, v in sorted(others.items()))})" if others else ""
    )
    summary = "\n".join(
        [
            report.summary(run, stats, errors, outcomes, checks),
            "",
            *hooks,
            f"orders lost: {len(truth.lost(t))}",
            f"buyers stranded (neither tickets nor sold out): {stranded}",
        ]
    )
    (out / "summary.txt").write_text(summary + "\n")
    print(summary, flush=True)
    if args.write:
        Path(args.write).write_text(_doc(args, summary, faults, reqs, t, checks, seconds, stranded))
        progress(f"wrote {args.write}")
    return 0 if all(c.ok for c in checks) and len(faults) == 4 else 1
