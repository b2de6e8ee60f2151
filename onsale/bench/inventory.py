"""``onsale bench inventory``: Redis Lua holds against Postgres locking, on one hot tier.

For each approach and client count, clients hold tickets of a fresh hot tier as fast as
they can for ``--seconds``; then the tier's capacity is cut to a little above what is taken,
so that every cell ends in a sell-out under full contention, where overselling would happen.
Afterwards the holds the clients were granted and the store's own count are both checked
against the capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence

import msgspec

from onsale.bench.figures import percentile, progress, table
from onsale.bench.harness import START_LEAD_S, LoadPool
from onsale.bench.holds import (
    APPROACHES,
    PG_PESSIMISTIC,
    REDIS_LUA,
    PgStore,
    RedisStore,
    Store,
    make_session,
)
from onsale.db.url import redact
from onsale.servers import stores

#: Capacity until the sale is capped: never reached.
UNLIMITED = 2**31 - 1
#: When capped, a tier gets 1/LAST_SHARE of what it sold so far as its last tickets.
LAST_SHARE = 20
#: A cell that has not sold out after this many times ``--seconds`` is stopped anyway.
GRACE = 3.0


class Row(msgspec.Struct):
    """One ``--json`` line, exactly."""

    approach: str
    clients: int
    holds_per_s: float
    p50_ms: float
    p99_ms: float
    oversold: int


class Cell(msgspec.Struct):
    """One (approach, clients) measurement and its checks."""

    approach: str
    clients: int
    capacity: int
    granted: int
    #: Tickets gone according to the store itself (Redis held + sold, Postgres quantity_sold).
    store_taken: int
    attempts: int
    seconds: float
    holds_per_s: float
    p50_ms: float
    p99_ms: float
    sold_out: bool

    @property
    def oversold(self) -> int:
        return max(0, self.granted - self.capacity, self.store_taken - self.capacity)

    @property
    def problems(self) -> list[str]:
        found = []
        if self.oversold:
            found.append(f"OVERSOLD by {self.oversold}")
        if self.store_taken != self.granted:
            found.append(f"store counts {self.store_taken}, clients were granted {self.granted}")
        if not self.sold_out:
            found.append("did not sell out in time")
        return found

    def row(self) -> Row:
        return Row(
            approach=self.approach,
            clients=self.clients,
            holds_per_s=round(self.holds_per_s, 1),
            p50_ms=round(self.p50_ms, 3),
            p99_ms=round(self.p99_ms, 3),
            oversold=self.oversold,
        )


Progress = Callable[[str], None]


async def _close_sale(store: Store, target: str, clients: int, seconds: float) -> int:
    await asyncio.sleep(START_LEAD_S + seconds)
    # The last few percent of the sale (at least one ticket per client) go under contention.
    extra = max(clients, await store.taken(target) // LAST_SHARE)
    return await store.cap(target, extra)


def _quiet(_: str) -> None:
    pass


async def measure_cell(
    pool: LoadPool, store: Store, approach: str, url: str, clients: int, seconds: float
) -> Cell:
    """Sell freely for ``seconds``, then cap the tier a little above what is taken: every
    cell ends in a sell-out under full contention, whatever pace the machine allows today."""
    await pool.open(approach, url, clients)
    try:
        # Warm-up: connections, scripts and prepared statements, before the clock starts.
        warm = await store.create(UNLIMITED)
        try:
            await pool.run(warm, min(0.5, seconds / 4))
        finally:
            await store.drop(warm)
        target = await store.create(UNLIMITED)
        try:
            async with asyncio.TaskGroup() as group:
                running = group.create_task(pool.run(target, seconds * GRACE))
                capped = group.create_task(_close_sale(store, target, clients, seconds))
            run, capacity = running.result(), capped.result()
            store_taken = await store.taken(target)
        finally:
            await store.drop(target)
    finally:
        await pool.close()
    ms = sorted(x * 1000 for x in run.latencies)
    return Cell(
        approach=approach,
        clients=clients,
        capacity=capacity,
        granted=run.granted,
        store_taken=store_taken,
        attempts=run.attempts,
        seconds=run.elapsed,
        holds_per_s=run.rate,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        sold_out=run.exhausted,
    )


async def measure(
    redis_url: str,
    database_url: str,
    clients: Sequence[int],
    seconds: float,
    *,
    approaches: Sequence[str] = APPROACHES,
    processes: int = 0,
    progress: Progress = _quiet,
) -> list[Cell]:
    """Every (approach, clients) cell, ordered so; ``processes=0`` loads from this process."""
    redis_store = RedisStore(redis_url)
    pg_store = await PgStore.connect(database_url)
    pool = LoadPool(make_session, processes)
    pool.start()
    cells: list[Cell] = []
    try:
        # Approaches side by side per client count: on a shared machine, cells measured
        # close together in time see the same background load, which keeps ratios honest.
        todo = [(a, c) for c in clients for a in approaches]
        for i, (approach, n) in enumerate(todo, 1):
            store: Store = redis_store if approach == REDIS_LUA else pg_store
            url = redis_url if approach == REDIS_LUA else database_url
            progress(f"[{i}/{len(todo)}] {approach}, {n} clients ...")
            cell = await measure_cell(pool, store, approach, url, n, seconds)
            progress(
                f"[{i}/{len(todo)}] {approach}, {n} clients: {cell.holds_per_s:,.0f} holds/s,"
                f" {cell.granted}/{cell.capacity} in {cell.seconds:.1f} s"
                + "".join(f"; {p}" for p in cell.problems)
            )
            cells.append(cell)
    finally:
        pool.stop()
        await redis_store.aclose()
        await pg_store.aclose()
    return sorted(cells, key=lambda c: (approaches.index(c.approach), clients.index(c.clients)))


async def describe(redis_url: str, database_url: str) -> list[str]:
    """What the servers were set to, read from the servers themselves."""
    redis_store = RedisStore(redis_url)
    pg_store = await PgStore.connect(database_url)
    try:
        return [
            f"redis:    {await redis_store.describe()} at {redis_url}",
            f"postgres: {await pg_store.describe()} at {redact(database_url)}",
        ]
    finally:
        await redis_store.aclose()
        await pg_store.aclose()


def ratios(cells: Sequence[Cell]) -> list[str]:
    """redis_lua / pg_pessimistic holds per second, per client count."""
    rate = {(c.approach, c.clients): c.holds_per_s for c in cells}
    return [
        f"{REDIS_LUA} / {PG_PESSIMISTIC} at {n:>3} clients: {r / rate[PG_PESSIMISTIC, n]:.1f}x"
        for (a, n), r in rate.items()
        if a == REDIS_LUA and rate.get((PG_PESSIMISTIC, n), 0) > 0
    ]


NOTE = (
    "holds/s: granted holds over the whole run, sell-out included; latency per granted hold,\n"
    "retries included; oversold: holds beyond capacity, by the clients' and the store's counts"
)


def report(cells: Sequence[Cell]) -> str:
    headers = ["approach", "clients", "holds/s", "p50 ms", "p99 ms", "oversold", "sold/capacity"]
    rows = [
        [
            c.approach,
            str(c.clients),
            f"{c.holds_per_s:,.0f}",
            f"{c.p50_ms:.2f}",
            f"{c.p99_ms:.2f}",
            str(c.oversold),
            f"{c.store_taken}/{c.capacity}",
        ]
        for c in cells
    ]
    return table(headers, rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients", default="16,64,256", help="concurrent clients per cell, comma-separated"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="about how long each cell lasts (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per cell on stdout")
    parser.add_argument("--redis-url", help="default: a throwaway embedded Redis")
    parser.add_argument("--database-url", help="default: a throwaway embedded, durable Postgres")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="load-generator processes, each with its own uvloop (default 2; 0: this process)",
    )


async def main(args: argparse.Namespace) -> int:
    """Run every cell, print the table (or JSON lines); 1 if any cell oversold or miscounted."""
    clients = [int(c) for c in str(args.clients).split(",") if c.strip()]
    began = time.monotonic()
    with stores(args.redis_url, args.database_url) as (redis_url, database_url):
        load = f"{args.processes} load processes" if args.processes else "the bench process"
        header = [
            "onsale bench inventory: 1-ticket holds on one hot tier until it sells out",
            *await describe(redis_url, database_url),
            f"load: {load}, one connection per client, about {args.seconds:g} s per cell",
        ]
        # With --json, stdout carries the JSON lines only.
        print("\n".join(header), file=sys.stderr if args.json else sys.stdout, flush=True)
        cells = await measure(
            redis_url,
            database_url,
            clients,
            args.seconds,
            processes=args.processes,
            progress=progress,
        )
    if args.json:
        encode = msgspec.json.Encoder().encode
        sys.stdout.write("".join(encode(c.row()).decode() + "\n" for c in cells))
    else:
        print("\n".join(["", report(cells), "", NOTE, "", *ratios(cells)]))
    progress(f"bench took {time.monotonic() - began:.0f} s")
    return 1 if any(c.oversold or c.store_taken != c.granted for c in cells) else 0
