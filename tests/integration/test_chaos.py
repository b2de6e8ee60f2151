"""``onsale loadtest --chaos``, short: a small stampede while a gateway worker and a committer
(mid-batch) are killed, Postgres stops for 2 s and Redis is killed and restarted from its
append-only file; every invariant passes and no order is lost. About a minute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(240)
def test_a_short_chaos_run_loses_nothing(tmp_path: Path) -> None:
    out, doc = tmp_path / "out", tmp_path / "reliability.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_")}
    done = subprocess.run(
        [sys.executable, "-m", "onsale", "loadtest", "--chaos", "--users", "40",
         "--tickets", "20", "--workers", "2", "--postgres-down", "2", "--redis-down", "1",
         "--fault-gap", "0.5", "--drain-timeout", "20", "--out", str(out),
         "--write", str(doc)],
        env=env, capture_output=True, text=True, timeout=230,
    )  # fmt: skip
    summary = done.stdout
    assert done.returncode == 0, summary + done.stderr[-4000:]
    for name in (
        "no oversell",
        "every paid order confirmed exactly once",
        "nothing lost",
        "reconcile clean",
    ):
        assert f"PASS  {name}" in summary, summary
    assert "FAIL" not in summary
    assert "orders lost: 0" in summary
    for fault in (
        "kill -9 one gateway worker",
        "kill -9 the committer",
        "stop Postgres for 2 s",
        "kill -9 Redis, restart after 1 s from its AOF",
    ):
        assert fault in summary, summary
    assert "the AOF kept everything" in summary, summary
    assert "uvicorn respawned it" in summary, summary
    # Progress as it goes: the faults, and the stampede.
    assert "FAULT kill -9 gateway worker" in done.stderr
    assert "users" in done.stderr
    text = doc.read_text()
    assert "Faults injected: 4." in text and "Orders lost: 0." in text, text
    assert (out / "requests.log").stat().st_size > 0
