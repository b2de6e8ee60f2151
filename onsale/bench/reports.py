"""``onsale bench reports``: an event's report, the platform report and the attendee export
over a launch of 1,000,000 tickets in 300,000 orders (``--tickets``/``--orders``).

On throwaway embedded servers (or the given ones, when both URLs are passed): the event's
orders, items and tickets are written with COPY, spread over three hours of sales, a few
refunded, some with a promo code, a third checked in; then the read model is rebuilt once
(onsale/reports/rollup.py), as the committer would have kept it, and the tables vacuumed.

Prints JSON lines on stdout: the event report's and the platform report's p50/p99 (in this
process, through the same functions as the routes), and the attendee export's rows/s and
the growth of this process's resident memory while streaming it, for the event and for one a
tenth of its size (memory flat in the row count: both grow alike).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from onsale.bench.figures import percentile, progress
from onsale.bench.orders import bench_event, drop
from onsale.connections import redis_client
from onsale.db import connect, create_pool, migrate
from onsale.events.models import Event
from onsale.reports import exports, queries, rollup
from onsale.reports.period import Period
from onsale.servers import stores

_ORDER_COLUMNS = (
    "id", "event_id", "email", "name", "amount", "currency", "status", "payment_intent_id",
    "created_at", "confirmed_at", "discount", "promo_code_id",
)  # fmt: skip
_ITEM_COLUMNS = ("order_id", "tier_id", "quantity", "unit_price")
_TICKET_COLUMNS = (
    "id", "order_id", "event_id", "tier_id", "qr_secret", "attendee_name", "attendee_email",
    "status", "checked_in_at", "created_at",
)  # fmt: skip

#: Orders written per COPY.
CHUNK = 20_000
#: Of the orders: refunded ones, and those with the promo code.
REFUNDED = 0.01
PROMO = 0.05
#: Of the tickets of confirmed orders: checked in (at the door, over two hours).
CHECKED_IN = 0.3


class Latency(msgspec.Struct):
    bench: str
    metric: str
    runs: int
    p50_ms: float
    p99_ms: float
    orders: int
    tickets: int


class ExportFigures(msgspec.Struct):
    bench: str
    metric: str
    rows: int
    seconds: float
    rows_per_s: float
    bytes: int
    #: Growth of the process's resident memory while streaming (peak minus start).
    rss_growth_mb: float
    #: Peak of Python's allocations while streaming it again under tracemalloc.
    traced_peak_mb: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orders", type=int, default=300_000, help="orders of the event")
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets of the event")
    parser.add_argument("--runs", type=int, default=50, help="report calls timed")
    parser.add_argument("--redis-url", help="a Redis to use instead of a throwaway one")
    parser.add_argument("--database-url", help="a Postgres to use instead of a throwaway one")


def _rows(
    event: Event, orders: int, tickets: int, promo_id: uuid.UUID, seed: int, refunds: float
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(orders, items, tickets) rows, :data:`CHUNK` orders at a time: ``tickets`` spread
    evenly over ``orders`` of one tier each, sold over three hours ending an hour ago."""
    rng = random.Random(seed)
    eid = uuid.UUID(event.id)
    end = datetime.now(UTC) - timedelta(hours=1)
    start, span = end - timedelta(hours=3), timedelta(hours=3)
    doors = datetime.now(UTC) - timedelta(hours=2)  # check-ins over the last two hours
    base, extra = divmod(tickets, orders)
    o_rows: list[tuple[Any, ...]] = []
    i_rows: list[tuple[Any, ...]] = []
    t_rows: list[tuple[Any, ...]] = []
    for n in range(orders):
        tier = event.tiers[n % len(event.tiers)]
        qty = base + (1 if n < extra else 0)
        oid = uuid.uuid4()
        # Front-loaded, as a launch is: most sales in the first minutes.
        at = start + span * (rng.random() ** 3)
        refunded = rng.random() < refunds
        promo = not refunded and rng.random() < PROMO
        gross = qty * tier.price
        discount = gross // 10 if promo else 0
        name = f"Buyer {n}"
        email = f"buyer{n}@example.com"
        status = "refunded" if refunded else "confirmed"
        o_rows.append((oid, eid, email, name, gross - discount, event.currency, status,
                       f"pi_bench_{oid.hex}", at, at, discount,
                       promo_id if promo else None))  # fmt: skip
        i_rows.append((oid, uuid.UUID(tier.id), qty, tier.price))
        for _ in range(qty):
            tid = uuid.uuid4()
            used = not refunded and rng.random() < CHECKED_IN
            t_status = "refunded" if refunded else ("used" if used else "valid")
            checked = doors + timedelta(seconds=rng.random() * 7200) if used else None
            t_rows.append((tid, oid, eid, uuid.UUID(tier.id), f"bench:{tid.hex}", name, email,
                           t_status, checked, at))  # fmt: skip
        if len(o_rows) >= CHUNK:
            yield o_rows, i_rows, t_rows
            o_rows, i_rows, t_rows = [], [], []
    if o_rows:
        yield o_rows, i_rows, t_rows


async def load(
    conn: asyncpg.Connection,
    event: Event,
    orders: int,
    tickets: int,
    seed: int = 1,
    refunds: float = REFUNDED,
) -> None:
    """The event's orders and tickets by COPY (``refunds``: the share of orders refunded), a
    promo code, then its rollups rebuilt."""
    promo_id = await conn.fetchval(
        """INSERT INTO promo_codes (event_id, code, discount_type, discount_value)
           VALUES ($1, $2, 'percentage', 10) RETURNING id""",
        uuid.UUID(event.id),
        f"LAUNCH{seed}",
    )
    for o_rows, i_rows, t_rows in _rows(event, orders, tickets, promo_id, seed, refunds):
        async with conn.transaction():
            await conn.copy_records_to_table("orders", records=o_rows, columns=_ORDER_COLUMNS)
            await conn.copy_records_to_table("order_items", records=i_rows, columns=_ITEM_COLUMNS)
            await conn.copy_records_to_table("tickets", records=t_rows, columns=_TICKET_COLUMNS)
    await rollup.rebuild(conn, event.id)


def _rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


async def time_calls(call: Any, runs: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``runs`` awaited calls (after two to warm up)."""
    for _ in range(2):
        await call()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return round(percentile(times, 50), 2), round(percentile(times, 99), 2)


async def _drain(pool: asyncpg.Pool, event_id: str) -> tuple[int, int, float]:
    """Stream the attendee export to nowhere: (rows, bytes, peak RSS in MB)."""
    size = rows = 0
    peak = _rss_mb()
    chunks = exports.stream(pool, exports.EXPORTS[exports.ATTENDEES], event_id, Period())
    async for chunk in chunks:
        size += len(chunk)
        rows += chunk.count(b"\n")
        peak = max(peak, _rss_mb())
    return rows - 1, size, peak  # less the header


async def export_figures(pool: asyncpg.Pool, event_id: str, label: str) -> ExportFigures:
    """The attendee export's traced peak (tracemalloc slows it, and the pass warms the
    caches), then, streamed again, its rows/s and resident memory."""
    tracemalloc.start()
    try:
        await _drain(pool, event_id)
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    before = _rss_mb()
    began = time.perf_counter()
    rows, size, peak = await _drain(pool, event_id)
    seconds = time.perf_counter() - began
    return ExportFigures(
        bench="reports",
        metric=label,
        rows=rows,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds, 1),
        bytes=size,
        rss_growth_mb=round(peak - before, 1),
        traced_peak_mb=round(traced / 1e6, 2),
    )


async def main(args: argparse.Namespace) -> int:
    if args.orders < 1 or args.tickets < args.orders:
        print("onsale bench reports: --tickets must be at least --orders >= 1", file=sys.stderr)
        return 2
    with stores(args.redis_url, args.database_url) as (redis_url, database_url):
        await migrate.apply(database_url)
        pool = await create_pool(database_url, min_size=1, max_size=4)
        redis = redis_client(redis_url)
        try:
            prices = (2500, 4500, 9000, 15000)
            big = await bench_event(pool, redis, prices, title="bench reports")
            small = await bench_event(pool, redis, prices, title="bench reports (a tenth)")
            conn = await connect(database_url)
            try:
                progress(f"writing {args.orders:,} orders, {args.tickets:,} tickets (COPY) ...")
                began = time.perf_counter()
                await load(conn, big, args.orders, args.tickets, seed=1)
                progress(f"... in {time.perf_counter() - began:.1f} s; and a tenth of it")
                await load(conn, small, max(args.orders // 10, 1), max(args.tickets // 10, 1), 2)
                await conn.execute("VACUUM ANALYZE orders, order_items, tickets, report_sales")
            finally:
                await conn.close()
            progress(f"timing {args.runs} event reports and {args.runs} platform reports ...")
            p50, p99 = await time_calls(
                lambda: queries.event_report(pool, big.id, Period()), args.runs
            )
            lines: list[msgspec.Struct] = [
                Latency("reports", "event_report", args.runs, p50, p99, args.orders, args.tickets)
            ]
            p50, p99 = await time_calls(lambda: queries.platform_report(pool, Period()), args.runs)
            lines.append(
                Latency("reports", "admin_report", args.runs, p50, p99, args.orders, args.tickets)
            )
            progress("streaming the attendee exports ...")
            lines.append(await export_figures(pool, small.id, "attendee_export_tenth"))
            lines.append(await export_figures(pool, big.id, "attendee_export"))
            if args.redis_url and args.database_url:  # someone's own servers: leave no trace
                for event in (big, small):
                    await drop(pool, redis, event.id)
        finally:
            await pool.close()
            await redis.aclose()
    for line in lines:
        sys.stdout.write(msgspec.json.encode(line).decode() + "\n")
    return 0
