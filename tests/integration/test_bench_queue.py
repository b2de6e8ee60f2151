"""``onsale bench queue`` in miniature: every endpoint runs in its alternating slices against
a real ``onsale serve``, no status poll comes too early (each slice polls visitors not
polled yet), and the room row reports the waiting room's bytes and Redis calls."""

from __future__ import annotations

import argparse
import json

import pytest

from onsale.bench import queue


async def test_json_rows_and_the_room(
    redis_url: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    queue.add_arguments(parser)
    args = parser.parse_args(
        ["--json", "--visitors", "20000", "--admitted", "200", "--clients", "8",
         "--seconds", "1", "--redis-url", redis_url, "--database-url", database_url]
    )  # fmt: skip

    assert await queue.main(args) == 0

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by = {r["endpoint"]: r for r in rows}
    assert set(by) == {"bare", "status", "join", "hold", "hold_promo", "room"}
    for name in ("bare", "status", "join", "hold", "hold_promo"):
        assert by[name]["requests_per_s"] > 0 and by[name]["clients"] == 8
    assert by["bare"]["ratio_to_bare"] == 1.0
    # Polls from eight slices of the run, each going on where the last stopped: no visitor twice.
    assert by["status"]["refused"] == 0
    assert by["hold"]["script_us"] > 0 and by["hold_promo"]["script_us"] > 0
    room = by["room"]
    assert room["visitors"] == 20000
    # Figures, not floors (the bench's targets are for a million visitors): present, sane.
    assert 0 < room["redis_bytes_per_visitor"] < 1000
    assert 0 <= room["redis_calls_per_poll"] < 1
