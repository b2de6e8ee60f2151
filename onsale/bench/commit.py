"""``onsale bench commit``: how fast the committer writes, and how far behind it stays.

1. Throughput: for each batch size and each way of sending a batch (COPY into temporary
   tables, then ``INSERT ... SELECT ... ON CONFLICT``; or ``executemany``), a fresh event's
   stream is filled with synthetic confirmed orders of 1 to 4 tickets and a committer drains
   it: orders committed per second, from start to the last acknowledgement.
2. Lag: orders are confirmed at a steady rate through the real path (a hold, then the
   confirm script) while an ``onsale committer`` process runs; the lag it exposes (age of
   the oldest uncommitted entry) is sampled all along.

Afterwards Postgres is checked against Redis: every order once, tickets == sold per tier.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from onsale import keys
from onsale.bench.figures import percentile, progress, table
from onsale.bench.orders import bench_event, check, confirm_at_rate, drop, synthetic_order
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.models import encode
from onsale.checkout.stream import lag
from onsale.checkout.writer import COPY, METHODS
from onsale.connections import redis_client
from onsale.db import create_pool, migrate
from onsale.inventory import Inventory
from onsale.servers import committer as committer_process
from onsale.servers import stores

#: Lag samples are taken this often (seconds).
SAMPLE_EVERY_S = 0.02


class Throughput(msgspec.Struct):
    part: str
    method: str
    batch: int
    orders: int
    tickets: int
    seconds: float
    orders_per_s: float
    tickets_per_s: float
    transactions: int


class Lag(msgspec.Struct):
    part: str
    method: str
    rate: int
    achieved_per_s: float
    seconds: float
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    max_pending: int
    drain_ms: float


async def throughput(
    pool: asyncpg.Pool,
    redis: Any,
    database_url: str,
    method: str,
    batch: int,
    n: int,
    created: list[str],
) -> tuple[Throughput, list[str]]:
    """One cell: ``n`` orders in a fresh stream, drained by one in-process committer.

    The event is appended to ``created`` and dropped later by the caller: deleting rows
    between cells would leave the next cell to pay for the vacuum."""
    event = await bench_event(pool, redis)
    created.append(event.id)
    rng = random.Random(7)
    orders = [synthetic_order(event, rng) for _ in range(n)]
    stream = keys.orders_stream(event.id)
    for i in range(0, n, 1000):
        pipe = redis.pipeline(transaction=False)
        for o in orders[i : i + 1000]:
            pipe.xadd(stream, {"order": o.order_id, "data": encode(o)})
        await pipe.execute()
    options = CommitterOptions(batch=batch, method=method, events=(event.id,))
    committer = Committer(redis, database_url, options)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(committer.run(stop))
    deadline = time.monotonic() + 600
    while committer.committed < n and not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.002)
    seconds = time.perf_counter() - started
    stop.set()
    await task
    problems = await check(pool, redis, event.id, n)
    tickets = sum(len(o.tickets) for o in orders)
    cell = Throughput(
        part="throughput", method=method, batch=batch, orders=n, tickets=tickets,
        seconds=round(seconds, 3), orders_per_s=round(n / seconds, 1),
        tickets_per_s=round(tickets / seconds, 1), transactions=committer.batches,
    )  # fmt: skip
    return cell, problems


async def steady_lag(
    pool: asyncpg.Pool,
    redis: Any,
    urls: tuple[str, str],
    rate: int,
    seconds: float,
    created: list[str],
) -> tuple[Lag, list[str]]:
    """Confirm at ``rate`` for ``seconds`` with an ``onsale committer`` process running."""
    event = await bench_event(pool, redis)
    created.append(event.id)
    redis_url, database_url = urls
    settings = {"ONSALE_REDIS_URL": redis_url, "ONSALE_DATABASE_URL": database_url}
    proc = committer_process(settings, "--event", event.id)
    try:
        stream = keys.orders_stream(event.id)
        deadline = time.monotonic() + 60
        while not await redis.exists(stream):  # the committer creates it with its group
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"onsale committer did not start ({proc.poll()})")
            await asyncio.sleep(0.05)
        samples: list[float] = []
        pending: list[int] = []
        load = asyncio.create_task(confirm_at_rate(Inventory(redis), event, rate, seconds))
        try:
            while not load.done():
                now = await lag(redis, event.id)
                samples.append(now.oldest_ms)
                pending.append(now.pending)
                await asyncio.sleep(SAMPLE_EVERY_S)
        finally:
            if not load.done():
                load.cancel()
        confirmed, elapsed = await load
        drain_started = time.monotonic()
        while (await lag(redis, event.id)).pending and time.monotonic() < drain_started + 120:
            await asyncio.sleep(0.005)
        drain_ms = (time.monotonic() - drain_started) * 1000
        problems = await check(pool, redis, event.id, confirmed)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    ordered = sorted(samples)
    cell = Lag(
        part="lag", method=COPY, rate=rate, achieved_per_s=round(confirmed / elapsed, 1),
        seconds=round(elapsed, 2), samples=len(samples), p50_ms=percentile(ordered, 50),
        p99_ms=percentile(ordered, 99), max_ms=max(ordered, default=0.0),
        max_pending=max(pending, default=0), drain_ms=round(drain_ms, 1),
    )  # fmt: skip
    return cell, problems


def report(cells: Sequence[Throughput], lagged: Lag | None) -> str:
    parts = [
        table(
            ["method", "batch", "orders", "tickets", "seconds", "orders/s", "tickets/s", "txns"],
            [
                [
                    c.method,
                    str(c.batch),
                    f"{c.orders:,}",
                    f"{c.tickets:,}",
                    f"{c.seconds:.2f}",
                    f"{c.orders_per_s:,.0f}",
                    f"{c.tickets_per_s:,.0f}",
                    str(c.transactions),
                ]
                for c in cells
            ],
        )
    ]
    rate = {(c.method, c.batch): c.orders_per_s for c in cells}
    parts += [
        f"copy / executemany at batch {b}: {r / rate['executemany', b]:.2f}x"
        for (m, b), r in rate.items()
        if m == COPY and rate.get(("executemany", b))
    ]
    if lagged:
        parts += [
            "",
            table(
                ["committer lag", "rate/s", "achieved/s", "samples", "p50 ms", "p99 ms",
                 "max ms", "max pending", "drain ms"],
                [[lagged.method, str(lagged.rate), f"{lagged.achieved_per_s:,.0f}",
                  str(lagged.samples), f"{lagged.p50_ms:.0f}", f"{lagged.p99_ms:.0f}",
                  f"{lagged.max_ms:.0f}", str(lagged.max_pending), f"{lagged.drain_ms:.0f}"]],
            ),
        ]  # fmt: skip
    return "\n".join(parts)


NOTE = (
    "orders/s: synthetic confirmed orders (1-4 tickets) drained from a pre-filled stream by\n"
    "one committer, one transaction per read, the median of --rounds runs.\n"
    f"lag: age of the oldest uncommitted entry, sampled every {SAMPLE_EVERY_S * 1000:.0f} ms "
    "while this process\nconfirms orders (hold, then confirm) and an `onsale committer` "
    "process writes them;\ndrain: until nothing is pending once the load stops"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orders", type=int, default=20_000, help="orders per throughput cell")
    parser.add_argument("--batch", default="100,500", help="batch sizes, comma-separated")
    parser.add_argument(
        "--rounds", type=int, default=3, help="each throughput cell's median of this many runs"
    )
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--rate", type=int, default=1000, help="confirms per second (lag part)")
    parser.add_argument("--seconds", type=float, default=10.0, help="lag part duration (0: skip)")
    parser.add_argument("--json", action="store_true", help="one JSON object per row on stdout")
    parser.add_argument("--redis-url", help="default: a throwaway embedded Redis")
    parser.add_argument("--database-url", help="default: a throwaway embedded, durable Postgres")


async def _throughputs(
    pool: asyncpg.Pool,
    redis: Any,
    database_url: str,
    args: argparse.Namespace,
    created: list[str],
    problems: list[str],
) -> list[Throughput]:
    """Every (method, batch) cell ``--rounds`` times; each one's median round."""
    batches = [int(b) for b in str(args.batch).split(",") if b.strip()]
    methods = [m.strip() for m in str(args.methods).split(",") if m.strip()]
    for method in methods:  # warm-up: connections, plans, caches
        await throughput(pool, redis, database_url, method, batches[0], 1000, created)
    runs: dict[tuple[str, int], list[Throughput]] = {}
    for r in range(args.rounds):
        for i, batch in enumerate(batches):
            # Alternating, so that both see the same background load on a shared machine.
            for method in methods if (r + i) % 2 else reversed(methods):
                progress(f"throughput round {r + 1}/{args.rounds}: {method}, batch {batch}, "
                          f"{args.orders:,} orders ...")  # fmt: skip
                cell, found = await throughput(
                    pool, redis, database_url, method, batch, args.orders, created
                )
                progress(f"  {cell.orders_per_s:,.0f} orders/s")
                runs.setdefault((method, batch), []).append(cell)
                problems += found
    return [
        sorted(runs[m, b], key=lambda c: c.orders_per_s)[len(runs[m, b]) // 2]
        for b in batches
        for m in methods
    ]


async def main(args: argparse.Namespace) -> int:
    """Both parts; 1 if Postgres disagrees with what was confirmed."""
    began = time.monotonic()
    problems: list[str] = []
    created: list[str] = []
    with stores(args.redis_url, args.database_url) as (redis_url, database_url):
        await migrate.apply(database_url)
        pool = await create_pool(database_url)
        redis = redis_client(redis_url)
        try:
            print("onsale bench commit: committer throughput and lag",
                  file=sys.stderr if args.json else sys.stdout, flush=True)  # fmt: skip
            cells = await _throughputs(pool, redis, database_url, args, created, problems)
            lagged = None
            if args.seconds > 0:
                progress(f"lag: {args.rate} orders/s for {args.seconds:g} s ...")
                lagged, found = await steady_lag(
                    pool, redis, (redis_url, database_url), args.rate, args.seconds, created
                )
                problems += found
        finally:
            for event_id in created:
                await drop(pool, redis, event_id)
            await pool.close()
            await redis.aclose()
    if args.json:
        encode_row = msgspec.json.Encoder().encode
        rows: list[Any] = [*cells, *([lagged] if lagged else [])]
        sys.stdout.write("".join(encode_row(r).decode() + "\n" for r in rows))
    else:
        print("\n".join(["", report(cells, lagged), "", NOTE]))
    for problem in problems:
        progress(f"PROBLEM: {problem}")
    progress(f"bench took {time.monotonic() - began:.0f} s")
    return 1 if problems else 0
