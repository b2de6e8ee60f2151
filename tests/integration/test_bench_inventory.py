"""``onsale bench inventory`` in miniature: every approach sells out a tiny tier, none oversells."""

from __future__ import annotations

import argparse
import json

import pytest

from onsale.bench import holds, inventory
from onsale.bench.harness import Exhausted, LoadPool, Session
from onsale.bench.holds import APPROACHES


async def test_every_approach_sells_out_without_overselling(
    redis_url: str, database_url: str
) -> None:
    cells = await inventory.measure(redis_url, database_url, [4], 0.4)

    assert [(c.approach, c.clients) for c in cells] == [(a, 4) for a in APPROACHES]
    for cell in cells:
        assert cell.oversold == 0, cell
        assert cell.sold_out, cell
        # Sold out exactly: the clients' count, the store's count and the capacity agree.
        assert cell.granted == cell.store_taken == cell.capacity, cell
        assert cell.attempts >= cell.granted
        assert cell.holds_per_s > 0
        assert 0 < cell.p50_ms <= cell.p99_ms
        assert cell.problems == []
    table = inventory.report(cells)
    assert all(a in table for a in APPROACHES)
    (ratio,) = inventory.ratios(cells)
    assert ratio.startswith("redis_lua / pg_pessimistic at   4 clients: ")


async def test_json_lines_from_a_load_process(
    redis_url: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    inventory.add_arguments(parser)
    servers = ["--redis-url", redis_url, "--database-url", database_url]
    args = parser.parse_args(
        ["--json", "--clients", "2", "--seconds", "0.3", "--processes", "1", *servers]
    )

    assert await inventory.main(args) == 0

    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["approach"], r["clients"]) for r in rows] == [(a, 2) for a in APPROACHES]
    for row in rows:
        assert list(row) == ["approach", "clients", "holds_per_s", "p50_ms", "p99_ms", "oversold"]
        assert row["oversold"] == 0
        assert isinstance(row["holds_per_s"], float) and row["holds_per_s"] > 0
        assert isinstance(row["p50_ms"], float) and isinstance(row["p99_ms"], float)


RACY_WRITE = "UPDATE bench_tiers SET quantity_sold = $2 WHERE id = $1"


class CheckThenAct(holds.PgPessimistic):
    """A broken way to sell: read, decide, write, with nothing holding the row in between."""

    async def take(self, client: int, target: str) -> int:
        conn = self.conns[client]
        row = await conn.fetchrow(holds.READ_VERSION, target)
        assert row is not None
        sold, total = row[0], row[1]
        if sold >= total:
            raise Exhausted
        await conn.execute(RACY_WRITE, target, sold + 1)
        return 1


def check_then_act(approach: str, url: str, clients: int) -> Session:
    return CheckThenAct(url, clients)


async def test_a_racy_approach_is_caught(database_url: str) -> None:
    # The checks must be able to fail: lost updates make the store's count fall short of
    # what the clients were granted, which is overselling.
    store = await holds.PgStore.connect(database_url)
    try:
        cell = await inventory.measure_cell(
            LoadPool(check_then_act), store, "racy", database_url, 8, 0.3
        )
    finally:
        await store.aclose()
    assert cell.oversold > 0
    assert cell.store_taken < cell.granted
