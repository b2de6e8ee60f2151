"""The faults of ``onsale loadtest --chaos``, injected while the stampede runs.

In order, a few seconds apart: kill -9 one gateway worker (uvicorn's supervisor respawns
it), kill -9 a committer in the middle of a batch (a supervisor, here the harness, starts
another, which reclaims the dead one's entries), stop Postgres for ``postgres_down_s`` (the
gateways keep selling, the stream grows, the committer catches up) and kill -9 Redis, which
runs with ``appendfsync always``, and start it again on its append-only file. Each fault is
a window from its injection to its healing, and the requests the buyers made are counted
against each window.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from onsale import keys
from onsale.embedded import EmbeddedPostgres, EmbeddedRedis
from onsale.embedded import stop as stop_process
from onsale.loadtest.truth import stream_state
from onsale.servers import committer

Say = Callable[[str], None]


class Plan(msgspec.Struct, frozen=True):
    #: Seconds after the opening before the first fault (in the opening crush), and
    #: between faults.
    first_s: float = 0.3
    gap_s: float = 3.0
    postgres_down_s: float = 10.0
    redis_down_s: float = 3.0

    def seconds(self) -> float:
        """About how long the schedule takes from the opening (for sizing the sale): the
        faults, the gaps, and about 9 s of healing (a worker starting up, a committer
        reclaiming, the committer catching up after Postgres)."""
        return self.first_s + 3 * self.gap_s + 9 + self.postgres_down_s + self.redis_down_s


class Fault(msgspec.Struct):
    name: str
    #: Epoch seconds: injected, and healed (serving, caught up or reclaimed again).
    started: float
    ended: float
    detail: str = ""


class Committers:
    """The committer processes, restarted when one dies, as systemd or Kubernetes would."""

    def __init__(self, args: list[str], env: dict[str, str], out: Path, count: int) -> None:
        self.args, self.env, self.out, self.count = args, env, out, count
        self.procs: list[subprocess.Popen[bytes]] = []
        self.restarts: list[tuple[float, int, int]] = []  # (epoch, dead pid, new pid)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        with open(self.out / f"committer-{i}.log", "ab") as log:
            return committer(self.env, *self.args, out=log)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                for i, proc in enumerate(self.procs):
                    if proc.poll() is not None and not self._stop.is_set():
                        self.procs[i] = self._spawn(i)
                        self.restarts.append((time.time(), proc.pid, self.procs[i].pid))

    @contextlib.contextmanager
    def running(self) -> Iterator[Committers]:
        self.procs = [self._spawn(i) for i in range(self.count)]
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        try:
            yield self
        finally:
            self._stop.set()
            watcher.join()
            for proc in self.procs:
                stop_process(proc, timeout=30)


@dataclasses.dataclass
class Estate:
    """What the faults act on."""

    gateway: Any  # the ``onsale serve`` process (uvicorn's supervisor)
    gateway_log: Path
    redis: EmbeddedRedis
    postgres: EmbeddedPostgres
    committers: Committers
    client: Any  # an async Redis client
    event_id: str
    #: Where Redis and Postgres are started again. Not a passing thread: the embedded
    #: services die with the thread that started them (PR_SET_PDEATHSIG is per thread).
    starter: concurrent.futures.Executor

    async def start(self, service: EmbeddedRedis | EmbeddedPostgres) -> None:
        await asyncio.get_running_loop().run_in_executor(self.starter, service.start)


def _workers(gateway_pid: int) -> list[Any]:
    """uvicorn's worker processes (``psutil.Process``), spawned by multiprocessing."""
    import psutil  # type: ignore[import-untyped]  # with locust; only the chaos run needs it

    found = []
    for child in psutil.Process(gateway_pid).children():
        with contextlib.suppress(psutil.Error):
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
    return found


def _clients(proc: Any) -> int:
    """The worker's established TCP connections (its keep-alive clients)."""
    import psutil

    try:
        return sum(c.status == psutil.CONN_ESTABLISHED for c in proc.net_connections("tcp"))
    except psutil.Error:
        return 0


def _started(log: Path, pid: int) -> bool:
    """Has worker ``pid`` finished its startup (uvicorn says so in the gateway's log)?"""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return False
    at = text.find(f"Started server process [{pid}]")
    return at >= 0 and "Application startup complete" in text[at:]


async def kill_worker(e: Estate, say: Say) -> Fault:
    before = _workers(e.gateway.pid)
    if len(before) < 2:
        raise RuntimeError("killing a gateway worker needs --workers 2 or more")
    clients = {p.pid: _clients(p) for p in before}
    victim = max(before, key=lambda p: clients[p.pid])  # the busiest
    fault = Fault("kill -9 one gateway worker", time.time(), 0.0)
    os.kill(victim.pid, signal.SIGKILL)
    say(f"FAULT kill -9 gateway worker {victim.pid} ({clients[victim.pid]} client connections)")
    known = {p.pid for p in before}
    deadline = time.monotonic() + 60
    new: Any = None
    while time.monotonic() < deadline and new is None:
        await asyncio.sleep(0.05)
        new = next((p for p in _workers(e.gateway.pid) if p.pid not in known), None)
    if new is None:
        fault.ended = time.time()
        fault.detail = f"worker {victim.pid} killed; not respawned within 60 s, others serve"
        say(f"  {fault.detail}")
        return fault
    respawned = time.time() - fault.started
    while time.monotonic() < deadline and not _started(e.gateway_log, new.pid):
        await asyncio.sleep(0.05)
    fault.ended = time.time()
    fault.detail = (
        f"worker {victim.pid} killed with {clients[victim.pid]} client connections (of "
        f"{sum(clients.values())}); uvicorn respawned it as {new.pid} after {respawned:.1f} s, "
        f"started up after {fault.ended - fault.started:.1f} s"
    )
    say(f"  healed: {fault.detail}")
    return fault


async def _pending_by_consumer(e: Estate) -> dict[str, int]:
    summary = await e.client.xpending(keys.orders_stream(e.event_id), keys.COMMITTERS)
    return {str(c["name"]): int(c["pending"]) for c in summary.get("consumers") or []}


async def kill_committer(e: Estate, say: Say, within_s: float = 20) -> Fault:
    """Freeze a committer (SIGSTOP) and look: if its consumer holds entries read and not
    acknowledged it is mid-batch, so kill -9 it there; else let it go on and look again."""
    deadline, caught = time.monotonic() + within_s, 0
    victim = e.committers.procs[0]
    while True:
        victim = e.committers.procs[0]
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            pending = await _pending_by_consumer(e)
        except Exception:
            pending = {}
        caught = sum(n for name, n in pending.items() if f"-{victim.pid}-" in name)
        if caught or time.monotonic() >= deadline:
            break
        os.kill(victim.pid, signal.SIGCONT)
        await asyncio.sleep(0.01)
    name = "kill -9 the committer " + ("mid-batch" if caught else "(between batches)")
    fault = Fault(name, time.time(), 0.0)
    os.kill(victim.pid, signal.SIGKILL)
    where = f"with {caught} entries read and not acknowledged" if caught else "between batches"
    say(f"FAULT kill -9 committer {victim.pid} {where}")
    end = time.monotonic() + 120
    while time.monotonic() < end:
        await asyncio.sleep(0.1)
        restarted = [r for r in e.committers.restarts if r[1] == victim.pid]
        with contextlib.suppress(Exception):
            left = sum(
                n
                for name, n in (await _pending_by_consumer(e)).items()
                if f"-{victim.pid}-" in name
            )
            if restarted and not left:
                break
    fault.ended = time.time()
    restarted = [r for r in e.committers.restarts if r[1] == victim.pid]
    again = (
        f"restarted as {restarted[0][2]} after {restarted[0][0] - fault.started:.1f} s"
        if (restarted)
        else "not restarted"
    )
    fault.detail = (
        f"committer {victim.pid} killed {where}; {again}; its entries reclaimed and "
        f"committed after {fault.ended - fault.started:.1f} s"
    )
    say(f"  healed: {fault.detail}")
    return fault


async def _backlog(e: Estate) -> int:
    in_flight, unread, _ = await stream_state(e.client, e.event_id)
    return in_flight + unread


async def stop_postgres(e: Estate, say: Say, seconds: float) -> Fault:
    fault = Fault(f"stop Postgres for {seconds:g} s", time.time(), 0.0)
    say(f"FAULT stopping Postgres for {seconds:g} s")
    await asyncio.to_thread(e.postgres.stop)
    await asyncio.sleep(max(0.0, fault.started + seconds - time.time()))
    await e.start(e.postgres)
    back = time.time()
    most = backlog = await _backlog(e)
    say(
        f"  Postgres is back after {back - fault.started:.1f} s; {backlog} stream entries to commit"
    )
    end = time.monotonic() + 120
    while backlog and time.monotonic() < end:
        await asyncio.sleep(0.1)
        with contextlib.suppress(Exception):
            backlog = await _backlog(e)
            most = max(most, backlog)
    fault.ended = time.time()
    fault.detail = (
        f"down {back - fault.started:.1f} s; the stream held up to {most} uncommitted entries; "
        f"the committer caught up {fault.ended - back:.1f} s after Postgres returned"
    )
    say(f"  healed: {fault.detail}")
    return fault


async def _redis_state(e: Estate) -> tuple[int, int]:
    """(tickets sold, orders stream length): counters that never go down in this run."""
    inv: dict[str, str] = await e.client.hgetall(keys.inventory(e.event_id))
    sold = sum(int(inv.get(f"{t}:sold", 0)) for t in inv.get("tiers", "").split())
    return sold, int(await e.client.xlen(keys.orders_stream(e.event_id)))


async def restart_redis(e: Estate, say: Say, seconds: float) -> Fault:
    sold, stream = await _redis_state(e)
    fault = Fault(f"kill -9 Redis, restart after {seconds:g} s from its AOF", time.time(), 0.0)
    assert e.redis.proc is not None
    e.redis.proc.kill()
    await asyncio.to_thread(e.redis.proc.wait)
    say(f"FAULT kill -9 Redis (appendfsync always; sold {sold}, {stream} stream entries)")
    await asyncio.sleep(max(0.0, fault.started + seconds - time.time()))
    await e.start(e.redis)
    fault.ended = time.time()
    sold2, stream2 = await _redis_state(e)
    kept = "kept" if sold2 >= sold and stream2 >= stream else "LOST"
    fault.detail = (
        f"back after {fault.ended - fault.started:.1f} s; the AOF {kept} everything: sold "
        f"{sold} -> {sold2}, stream {stream} -> {stream2} entries"
    )
    say(f"  healed: {fault.detail}")
    return fault


async def inject(e: Estate, plan: Plan, opens_at: float, say: Say) -> list[Fault]:
    """The schedule: one fault after another, each once the previous has healed."""
    faults: list[Fault] = []
    await asyncio.sleep(max(0.0, opens_at + plan.first_s - time.time()))
    steps: list[Callable[[], Any]] = [
        lambda: kill_worker(e, say),
        lambda: kill_committer(e, say),
        lambda: stop_postgres(e, say, plan.postgres_down_s),
        lambda: restart_redis(e, say, plan.redis_down_s),
    ]
    for i, step in enumerate(steps):
        if i:
            await asyncio.sleep(plan.gap_s)
        faults.append(await step())
    return faults


class Request(NamedTuple):
    start: float
    end: float
    status: int
    failed: bool
    name: str


def requests(path: Path) -> list[Request]:
    """The buyers' requests to the gateway, from the scenario's log (``LOADTEST_REQUESTS``)."""
    found = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            start, seconds, status, failed, name = line.split(" ", 4)
            if not name.startswith("stripe:"):
                found.append(
                    Request(
                        float(start),
                        float(start) + float(seconds),
                        int(status),
                        failed == "1",
                        name,
                    )
                )
    return found


class During(msgspec.Struct):
    """The requests whose lifetime overlapped a fault's window."""

    total: int = 0
    in_flight: int = 0  # already sent when the fault was injected
    started: int = 0
    finished: int = 0
    failed: int = 0
    by_status: dict[str, int] = msgspec.field(default_factory=dict)

    def text(self) -> str:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        return (
            f"{self.total} requests (in flight at injection {self.in_flight}, started "
            f"{self.started}, finished {self.finished}, failed {self.failed}); by status: "
            f"{statuses or 'none'}"
        )


def during(reqs: Sequence[Request], fault: Fault) -> During:
    d = During()
    statuses: Counter[str] = Counter()
    for r in reqs:
        if r.start > fault.ended or r.end < fault.started:
            continue
        d.total += 1
        d.in_flight += r.start < fault.started <= r.end
        d.started += r.start >= fault.started
        d.finished += r.end <= fault.ended
        d.failed += r.failed
        statuses["no answer" if r.status == 0 else str(r.status)] += 1
    d.by_status = dict(statuses)
    return d
