"""The attendee export at 100,000 rows: memory flat in the row count; and ``onsale bench
reports`` in miniature."""

from __future__ import annotations

import argparse
import csv
import io
import json
import tracemalloc
from typing import Any

import asyncpg
import pytest

from onsale.bench import reports as bench
from onsale.bench.orders import bench_event, drop
from onsale.reports import exports
from onsale.reports.period import Period


async def _peak(pool: asyncpg.Pool, event_id: str) -> tuple[int, int]:
    """(rows, peak bytes traced) of streaming an event's attendee export."""
    rows = 0
    tracemalloc.start()
    try:
        stream = exports.stream(pool, exports.EXPORTS[exports.ATTENDEES], event_id, Period())
        async for chunk in stream:
            rows += chunk.count(b"\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rows - 1, peak


@pytest.mark.timeout(300)
async def test_a_100000_row_export_keeps_memory_flat(pool: asyncpg.Pool, redis: Any) -> None:
    small = await bench_event(pool, redis, (1000, 2000), title="export memory: small")
    big = await bench_event(pool, redis, (1000, 2000), title="export memory: big")
    try:
        async with pool.acquire() as conn:
            await bench.load(conn, small, 3_000, 10_000, seed=3, refunds=0)
            await bench.load(conn, big, 30_000, 100_000, seed=4, refunds=0)
        small_rows, small_peak = await _peak(pool, small.id)
        big_rows, big_peak = await _peak(pool, big.id)
        assert (small_rows, big_rows) == (10_000, 100_000)
        # Ten times the rows, the same memory: a chunk's worth (not the export's ~12 MB).
        assert big_peak < small_peak * 1.5 + 256_000, (small_peak, big_peak)
        assert big_peak < 8_000_000, (small_peak, big_peak)
    finally:
        for event in (small, big):
            await drop(pool, redis, event.id)


async def test_bench_reports_prints_its_figures(
    redis_url: str, database_url: str, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM events")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        ["--orders", "300", "--tickets", "1000", "--runs", "3",
         "--redis-url", redis_url, "--database-url", database_url]
    )  # fmt: skip
    assert await bench.main(args) == 0
    lines = {r["metric"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(lines) == {"event_report", "admin_report", "attendee_export",
                          "attendee_export_tenth"}  # fmt: skip
    for name in ("event_report", "admin_report"):
        assert 0 < lines[name]["p50_ms"] <= lines[name]["p99_ms"]
    export = lines["attendee_export"]
    # 1% of orders refunded: their tickets are not attendees.
    assert 900 <= export["rows"] <= 1000 and export["rows_per_s"] > 0
    assert lines["attendee_export_tenth"]["rows"] <= 100
    # Someone's own servers: the bench's events are gone afterwards.
    assert await pool.fetchval("SELECT count(*) FROM events") == before
    assert not await pool.fetchval(
        "SELECT count(*) FROM report_sales r LEFT JOIN events e ON e.id = r.event_id "
        "WHERE e.id IS NULL"
    )


NASTY = [
    None, "", "plain", "=1+1", "+SUM(A1)", "-2", "@cmd", "\tindent", "\rcarriage", "a,b",
    'say "hi"', "line\nbreak", "crlf\r\nend", " =not first", "'already", "Zoë ünïcode ✓",
    '=HYPERLINK("http://x","y")', ",", '"', "\n",
]  # fmt: skip


@pytest.mark.parametrize("value", NASTY)
async def test_postgres_cells_match_the_reference(pool: asyncpg.Pool, value: str | None) -> None:
    """Postgres writes the cells: each one reads back, as CSV, as the reference escaping."""
    cell = await pool.fetchval(f"SELECT {exports.text_cell('$1::text')}", value)
    assert next(csv.reader(io.StringIO(cell + "\r\n"))) == [exports.safe(value)]
