"""``onsale loadtest --target`` against a deployment reached only over HTTP: the invariants
checked through the API (failing when the event's state is changed behind the engine's
back), honest SKIPs, the per-client limiter named before the crowd, and Locust's
distributed mode (a master and a worker)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from onsale import keys
from onsale.loadtest import runner
from onsale.servers import committer, stop_all

DIRECT = runner.DIRECT


@pytest.fixture(scope="module")
def deployment() -> Iterator[runner.Deployment]:
    with runner.local(2) as d:
        assert d.redis_url and d.database_url
        urls = {"ONSALE_REDIS_URL": d.redis_url, "ONSALE_DATABASE_URL": d.database_url}
        proc = committer(urls)
        try:
            yield d
        finally:
            stop_all([proc])


def loadtest(d: runner.Deployment, out: Path, *extra: str) -> subprocess.Popen[str]:
    """``onsale loadtest`` aimed at the deployment by URL and tokens only (no stores)."""
    assert d.stripe_url and d.stripe_key
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_")}
    argv = [
        sys.executable, "-m", "onsale", "loadtest", "--target", d.base,
        "--admin-token", d.admin, "--stripe-url", d.stripe_url, "--stripe-key", d.stripe_key,
        "--scenario", "last_tickets", "--users", "40", "--tickets", "15",
        "--duration", "40", "--drain-timeout", "30", "--out", str(out), *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def event_of(proc: subprocess.Popen[str], errors: list[str]) -> str:
    """The event id from the run's progress line (stderr), keeping every line read."""
    assert proc.stderr is not None
    for line in proc.stderr:
        errors.append(line)
        if line.startswith("event "):
            return line.split()[1]
    raise AssertionError("no event line: " + "".join(errors))


def finish(proc: subprocess.Popen[str], errors: list[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=150)
    return proc.returncode, out, "".join(errors) + err


def test_over_the_api_a_consistent_run_passes_and_says_what_it_skipped(
    deployment: runner.Deployment, tmp_path: Path
) -> None:
    errors: list[str] = []
    proc = loadtest(deployment, tmp_path / "out")
    event_of(proc, errors)
    code, summary, err = finish(proc, errors)
    assert code == 0, summary + err[-3000:]
    first = summary.splitlines()[0]
    assert first.startswith("PASS") and "5 check(s) SKIPPED" in first, first
    for name in DIRECT:
        assert f"SKIP  {name}: needs --redis-url and --database-url" in summary, summary
    for name in (
        "committer drained (stats: committed == confirmed)",
        "no oversell (stats: sold + held <= capacity)",
        "every paid order confirmed, with the tickets it held",
        "buyers' tickets as the API shows them, no ticket twice",
        "stats sold == tickets buyers hold, per tier",
        "stats orders and revenue == the confirmed orders",
        "buyers not refused by per-client limits",
    ):
        assert f"PASS  {name}" in summary, summary
    assert "FAIL" not in summary
    assert "checking through the API" in err


def test_over_the_api_a_tampered_event_fails(deployment: runner.Deployment, tmp_path: Path) -> None:
    """A tier's sold count raised directly in Redis while the buyers buy: the stats no
    longer agree with the tickets the buyers hold."""
    errors: list[str] = []
    proc = loadtest(deployment, tmp_path / "out", "--strict")
    event_id = event_of(proc, errors)
    assert deployment.redis_url
    r = redis.Redis.from_url(deployment.redis_url, decode_responses=True)
    tampered = threading.Event()

    def tamper() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            inv = r.hgetall(keys.inventory(event_id))
            tier = inv.get("tiers", "").split()
            if tier and int(inv.get(f"{tier[0]}:sold", 0)) > 0:  # the sale is under way
                r.hincrby(keys.inventory(event_id), f"{tier[0]}:sold", 1)
                tampered.set()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=tamper)
    thread.start()
    code, summary, err = finish(proc, errors)
    thread.join()
    r.close()
    assert tampered.is_set(), err[-2000:]
    assert code == 1, summary + err[-3000:]
    assert summary.startswith("FAIL"), summary
    assert "FAIL  stats sold == tickets buyers hold, per tier" in summary, summary
    assert "(--strict: a skip fails)" in summary.splitlines()[0]


def test_a_rate_limited_generator_is_named_before_the_crowd(tmp_path: Path) -> None:
    limited = {"ONSALE_RATE_LIMIT_EXEMPT": "", "ONSALE_JOINS_PER_MINUTE": "5"}
    with runner.local(1, limited) as d:
        proc = loadtest(d, tmp_path / "out")
        code, summary, err = finish(proc, [])
    assert code == 2, summary + err[-3000:]
    assert "FAIL before the load" in err and "ONSALE_RATE_LIMIT_EXEMPT" in err, err
    assert "joins: 5 a minute" in err, err
    assert not (tmp_path / "out" / "locust_stats.csv").exists()  # no crowd was spawned


def test_a_master_and_a_worker_share_one_run(deployment: runner.Deployment, tmp_path: Path) -> None:
    port = "55731"
    errors: list[str] = []
    master = loadtest(
        deployment, tmp_path / "out", "--expect-workers", "1", "--master-bind-port", port
    )
    event_of(master, errors)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "onsale", "loadtest", "--worker", "--master-port", port],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        code, summary, err = finish(master, errors)
    finally:
        worker.terminate()
        worker_out = worker.communicate(timeout=30)[0]
    assert code == 0, summary + err[-3000:] + worker_out[-2000:]
    assert "PASS  every paid order confirmed, with the tickets it held" in summary, summary
    assert "PASS  stats sold == tickets buyers hold, per tier" in summary, summary
    assert "sold 15 of 15" in summary, summary  # the worker's buyers bought
