"""``onsale loadtest`` end to end (a small last-tickets fight), and its invariant checker
failing on a crafted inconsistent state."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from onsale.loadtest.invariants import State, TierState, check

# Not importorskip: importing locust would gevent-patch this test process.
needs_locust = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="locust is not installed (extra 'load')"
)


@needs_locust
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


def _tier(sold: int, held: int, tickets: int, capacity: int = 30) -> TierState:
    return TierState("t1", capacity, sold, held, tickets)


def test_the_checker_passes_a_consistent_state() -> None:
    checks = check(State([_tier(30, 0, 30)], pending=0, differences=[], payments=30))
    assert all(c.ok for c in checks), checks


def test_the_checker_fails_when_postgres_and_redis_disagree() -> None:
    checks = {c.name: c for c in check(State([_tier(30, 0, 31)], pending=0, differences=[]))}
    assert not checks["Postgres tickets == Redis sold, per tier"].ok
    assert not checks["no oversell in Postgres (tickets <= capacity)"].ok
    assert (
        "31 tickets > capacity 30" in checks["no oversell in Postgres (tickets <= capacity)"].detail
    )


def test_the_checker_fails_on_an_oversell_in_redis_a_lag_or_a_lost_order() -> None:
    checks = check(
        State([_tier(29, 2, 29)], pending=3, differences=["order x: no such order in Postgres"])
    )
    failed = {c.name for c in checks if not c.ok}
    assert failed == {
        "committer drained",
        "no oversell in Redis (sold+held <= capacity)",
        "every paid order confirmed exactly once, reconcile clean",
    }
