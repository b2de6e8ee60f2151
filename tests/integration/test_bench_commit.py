"""``onsale bench commit`` in miniature: both ways of writing drain their stream exactly, and
the lag part runs a real ``onsale committer`` under a steady confirm rate."""

from __future__ import annotations

import argparse
import json

import pytest

from onsale.bench import commit


async def test_json_rows_and_exact_counts(
    redis_url: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    commit.add_arguments(parser)
    args = parser.parse_args(
        ["--json", "--orders", "400", "--batch", "100", "--rounds", "1",
         "--rate", "100", "--seconds", "1",
         "--redis-url", redis_url, "--database-url", database_url]
    )  # fmt: skip

    assert await commit.main(args) == 0  # 1 if Postgres disagreed with what was confirmed

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    throughput = [r for r in rows if r["part"] == "throughput"]
    assert {r["method"] for r in throughput} == {"copy", "executemany"}
    for row in throughput:
        assert row["orders"] == 400 and row["batch"] == 100 and row["orders_per_s"] > 0
        assert row["transactions"] >= 4
    (lag,) = [r for r in rows if r["part"] == "lag"]
    # Figures, not floors: how fast this machine confirms is the benchmark's to report.
    assert lag["rate"] == 100 and lag["achieved_per_s"] > 0 and lag["samples"] > 0
    assert 0 <= lag["p50_ms"] <= lag["p99_ms"] <= lag["max_ms"]
