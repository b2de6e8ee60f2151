"""``onsale loadtest`` end to end: a small last-tickets fight (its invariant checker on
crafted states is in tests/unit/test_loadtest_invariants.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_small_last_tickets_fight_passes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_")}
    done = subprocess.run(
        [sys.executable, "-m", "onsale", "loadtest", "--scenario", "last_tickets",
         "--users", "100", "--tickets", "30", "--duration", "20", "--workers", "2",
         "--drain-timeout", "20", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    summary = done.stdout
    for name in (
        "committer drained",
        "no oversell in Redis",
        "no oversell in Postgres",
        "Postgres tickets == Redis sold",
        "every paid order confirmed exactly once",
    ):
        assert f"PASS  {name}" in summary, summary
    assert "FAIL" not in summary
    assert "sold 30 of 30" in summary, summary
    assert "POST /api/events/[id]/holds" in summary  # grouped by route template
    assert (out / "report.html").stat().st_size > 0
    assert (out / "locust_stats.csv").exists()
    assert "users" in done.stderr  # the progress line
