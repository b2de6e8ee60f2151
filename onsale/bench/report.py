"""``onsale bench report``: regenerates docs/performance.md in one command.

Everything in the report is measured in one run on this machine, and every figure that
matters is a ratio to a baseline of the same run (a shared machine drifts; ratios hold):

1. the stampede load test (``onsale loadtest``) beside two Locust baselines under the
   same uvicorn worker count: the bare Litestar endpoint, and a canned-bytes server that
   costs next to nothing (the Locust generator's own ceiling);
2. ``onsale bench queue``'s HTTP micro-benchmarks (status polls, joins, holds vs bare);
3. a py-spy profile of the one gateway worker under the hold load;
4. scaling: gateway workers 1 vs 2, and one Redis vs a three-primary Redis Cluster.

Measuring and rendering are separate: :func:`render` turns :class:`Measurements` into the
Markdown, and is tested on fake measurements without any server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import msgspec

from onsale import signing
from onsale.bench import queue
from onsale.bench.bare import _BODY
from onsale.bench.cluster import redis_servers
from onsale.bench.harness import LoadPool, percentile
from onsale.bench.http import bare_serve, free_port, wait_ready
from onsale.bench.inventory import servers
from onsale.db import migrate
from onsale.embedded import postgres_bin_dir, redis_binary, stop
from onsale.loadtest import report as loadtest_report

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILES = ROOT / "loadtests"
DEFAULT_OUT = ROOT / "docs" / "performance.md"
#: Frames kept in the profile summary: ours and the stack we run on.
PROFILE_PACKAGES = ("onsale", "litestar", "redis", "uvicorn")


# Measurements ------------------------------------------------------------------------


class Route(msgspec.Struct):
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float


class Stampede(msgspec.Struct):
    users: int
    tickets: int
    workers: int
    seconds: float
    holds_per_s: float
    orders_per_s: float
    routes: list[Route]
    #: The load test's own PASS/FAIL lines (invariants).
    checks: list[str]
    exit_code: int


class Baseline(msgspec.Struct):
    """One closed-loop Locust run of GET /bare against one server."""

    server: str
    users: int
    seconds: float
    route: Route | None


class Frame(msgspec.Struct):
    name: str
    #: Share of samples with this function anywhere on the stack.
    inclusive: float
    #: Share of samples where it is the deepest onsale/litestar/redis/uvicorn frame.
    own: float


class Profile(msgspec.Struct):
    load: str
    seconds: float
    samples: int
    frames: list[Frame]
    #: Why there is no profile, if there is none.
    note: str = ""


class ShardRow(msgspec.Struct):
    setup: str
    holds_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    #: Why it was not measured, if it was not.
    note: str = ""


class Machine(msgspec.Struct):
    date: str
    nproc: int
    cpu: str
    system: str
    python: str
    redis: str
    postgres: str
    locust: str


class Measurements(msgspec.Struct):
    command: str
    machine: Machine
    runtime_s: float
    stampede: Stampede | None
    bare: Baseline | None
    ceiling: Baseline | None
    #: ``bench queue`` rows with 1 gateway worker, then with 2.
    queue_1: list[queue.Row]
    queue_2: list[queue.Row]
    bench_clients: int
    bench_seconds: float
    profile: Profile | None
    shards: list[ShardRow]


# Rendering ---------------------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table: the first column left-aligned, the figures right-aligned."""
    align = ["---", *("---:" for _ in headers[1:])]
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def _n(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _route(rows: Sequence[queue.Row], endpoint: str) -> queue.Row | None:
    return next((r for r in rows if r.endpoint == endpoint), None)


def _render_stampede(m: Measurements) -> list[str]:
    s, bare, ceiling = m.stampede, m.bare, m.ceiling
    out = ["## 1. The stampede, beside a bare endpoint and the generator's ceiling", ""]
    if s is None:
        return [*out, "Not measured in this run.", ""]
    b = bare.route if bare else None
    c = ceiling.route if ceiling else None
    out += [
        f"`onsale loadtest --scenario stampede`: {s.users:,} buyers for {s.tickets:,} "
        f"tickets, {s.workers} gateway workers, {s.seconds:.1f} s; **holds/s "
        f"{s.holds_per_s:,.1f}**, orders/s {s.orders_per_s:,.1f}; load test exit code "
        f"{s.exit_code}.",
        "",
        md_table(
            [
                "route",
                "requests",
                "failures",
                "req/s",
                "p50 ms",
                "p99 ms",
                "req/s x bare",
                "p99 x bare",
            ],
            [
                [
                    r.name,
                    f"{r.requests:,}",
                    f"{r.failures:,}",
                    _n(r.rps, 1),
                    _n(r.p50_ms),
                    _n(r.p99_ms),
                    ratio(r.rps, b.rps if b else None),
                    ratio(r.p99_ms, b.p99_ms if b else None),
                ]
                for r in s.routes
            ],
        ),
        "",
        "Baselines, same worker count, Locust FastHttpUser closed loop (no wait) on GET /bare:",
        "",
    ]
    rows = []
    for base in (bare, ceiling):
        if base is None:
            continue
        r = base.route
        rows.append(
            [
                base.server,
                str(base.users),
                f"{base.seconds:.0f}",
                _n(r.rps if r else None),
                _n(r.p50_ms if r else None),
                _n(r.p99_ms if r else None),
                str(r.failures if r else "n/a"),
            ]
        )
    out += [
        md_table(["server", "users", "s", "req/s", "p50 ms", "p99 ms", "failures"], rows),
        "",
        f"- bare Litestar / generator ceiling: **{ratio(*_rps(b, c))}** req/s",
    ]
    hot = [r for r in s.routes if r.name != "Aggregated" and not r.name.startswith("stripe")]
    busiest = max(hot, key=lambda r: r.rps, default=None)
    if busiest is not None:
        out.append(
            f"- busiest stampede route ({busiest.name}) / bare: "
            f"{ratio(busiest.rps, b.rps if b else None)} req/s, "
            f"{ratio(busiest.p99_ms, b.p99_ms if b else None)} p99"
        )
    out += ["", "**Reading it.** " + _stampede_text(s, b, c), ""]
    return out


def _rps(*routes: Route | None) -> list[float | None]:
    return [r.rps if r else None for r in routes]


def _stampede_text(s: Stampede, b: Route | None, c: Route | None) -> str:
    text = (
        "The stampede is not a saturation test: buyers sleep as the server tells them "
        "(poll_after, Retry-After) and stop when sold out, so its request rates are the "
        "demand of the scenario, not the gateway's capacity; compare its p99s with the "
        "bare endpoint's, and its rates with the bare rate only as headroom. "
    )
    if b and c and c.rps:
        share = b.rps / c.rps
        if share >= 0.8:
            text += (
                f"The bare endpoint reached {share:.0%} of what Locust can generate against a "
                "server that does nothing: here the generator, not the server stack, is the "
                "limit, so Locust figures understate the gateway and the micro-benchmarks "
                "below (a lighter client) are the better measure of it."
            )
        else:
            text += (
                f"The bare endpoint reached {share:.0%} of the generator's ceiling, so Locust "
                "was not the limit of the baselines: the server stack was."
            )
    return text


def _render_queue(m: Measurements) -> list[str]:
    out = ["## 2. HTTP micro-benchmarks (`onsale bench queue`)", ""]
    if not m.queue_1:
        return [*out, "Not measured in this run.", ""]
    out += [
        f"One gateway worker, the same uvicorn settings for onsale and the bare app, "
        f"{m.bench_clients} keep-alive clients of the bench's own light HTTP client, "
        f"{m.bench_seconds:g} s per endpoint.",
        "",
        md_table(
            ["endpoint", "req/s", "p50 ms", "p99 ms", "x bare", "refused"],
            [
                [
                    r.endpoint,
                    _n(r.requests_per_s),
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    f"{r.ratio_to_bare:.2f}",
                    str(r.refused),
                ]
                for r in m.queue_1
            ],
        ),
        "",
    ]
    status, join, hold = (_route(m.queue_1, e) for e in (queue.STATUS, queue.JOIN, queue.HOLD))
    parts = [f"{e.endpoint} {e.ratio_to_bare:.2f}x" for e in (status, join, hold) if e]
    out += [
        "**Reading it.** These isolate the gateway: the same client, server and worker count, "
        "with and without onsale's work (token checks, one Redis script, the answer). "
        f"Against the bare endpoint: {', '.join(parts)}. What is missing to 1.0x is onsale's "
        "own cost per request; where it goes is the next section.",
        "",
    ]
    return out


def _render_profile(m: Measurements) -> list[str]:
    p = m.profile
    out = ["## 3. Where the time goes", ""]
    if p is None or not p.frames:
        return [*out, f"Not profiled in this run{': ' + p.note if p and p.note else ''}.", ""]
    out += [
        f"`py-spy record -f raw` of the single gateway worker for {p.seconds:g} s under "
        f"{p.load} ({p.samples:,} samples, idle not sampled). Functions of "
        f"{', '.join(PROFILE_PACKAGES)} only; *inclusive* is the share of samples with the "
        "function anywhere on the stack, *own* the share where it is the deepest of those "
        "frames (its own code plus the stdlib and C it calls directly).",
        "",
        md_table(
            ["function", "inclusive", "own"],
            [[f"`{f.name}`", f"{f.inclusive:.1%}", f"{f.own:.1%}"] for f in p.frames],
        ),
        "",
    ]
    top_own = max(p.frames, key=lambda f: f.own)
    ours = [f for f in p.frames if f.name.startswith("onsale")]
    text = f"**Reading it.** The largest own share is `{top_own.name}` ({top_own.own:.1%}). "
    if ours:
        top_ours = max(ours, key=lambda f: f.inclusive)
        text += (
            f"Of onsale's own code, `{top_ours.name}` is on the stack in "
            f"{top_ours.inclusive:.1%} of samples. "
        )
    text += (
        "Shares of uvicorn and litestar frames are the server stack that the bare endpoint "
        "pays too; redis frames are the client side of the one script per request."
    )
    return [*out, text, ""]


def _render_scaling(m: Measurements) -> list[str]:
    out = ["## 4. Scaling", "", "### Gateway workers", ""]
    rows = []
    for endpoint in (queue.BARE, queue.STATUS, queue.JOIN, queue.HOLD):
        one, two = _route(m.queue_1, endpoint), _route(m.queue_2, endpoint)
        if one is None and two is None:
            continue
        rows.append(
            [
                endpoint,
                _n(one.requests_per_s if one else None),
                _n(two.requests_per_s if two else None),
                ratio(two.requests_per_s if two else None, one.requests_per_s if one else None),
            ]
        )
    out += [
        md_table(["endpoint", "1 worker req/s", "2 workers req/s", "2 / 1"], rows)
        if rows
        else "Not measured in this run.",
        "",
    ]
    hold1, hold2 = _route(m.queue_1, queue.HOLD), _route(m.queue_2, queue.HOLD)
    out += [
        f"**Reading it.** This machine has {m.machine.nproc} cores, shared by the load "
        "generator, the gateway workers and Redis. Holds with 2 workers are "
        f"{ratio(hold2.requests_per_s if hold2 else None, hold1.requests_per_s if hold1 else None)}"
        " of 1 worker: a second worker can only take what the generator and Redis leave "
        "of the two cores, so this measures contention here, not the gateway's scaling on "
        "a machine with cores to spare.",
        "",
        "### Redis shards: one Redis vs a three-primary Redis Cluster",
        "",
        "The same hold benchmark (1 gateway worker, the bench's keep-alive clients), against "
        "one plain Redis and against a 3-primary cluster on loopback (ONSALE_REDIS_CLUSTER=1); "
        "both without persistence, so that only the topology differs.",
        "",
    ]
    srows = [
        [s.setup, _n(s.holds_per_s), _n(s.p50_ms, 2), _n(s.p99_ms, 2), s.note or "measured"]
        for s in m.shards
    ]
    out += [md_table(["Redis", "holds/s", "p50 ms", "p99 ms", "note"], srows), ""]
    single = next((s for s in m.shards if s.setup.startswith("1 ")), None)
    many = next((s for s in m.shards if not s.setup.startswith("1 ")), None)
    if single and many and single.holds_per_s and many.holds_per_s:
        text = (
            f"**Reading it.** Cluster / one Redis: {ratio(many.holds_per_s, single.holds_per_s)} "
            "holds/s. On two cores the three primaries share the same CPUs as the gateway and "
            "the generator, and one hot event's inventory lives in one slot (one primary) by "
            "design, so shards cannot add throughput here; the cluster client's routing "
            "(and no hot-path lanes) costs gateway CPU instead. Shards pay off across many "
            "events on machines with a core per primary; this run does not show that."
        )
    else:
        reason = many.note if many and many.note else "no figures"
        text = f"**Reading it.** The cluster row was not measured: {reason}."
    return [*out, text, ""]


def render(m: Measurements) -> str:
    mc = m.machine
    lines = [
        "# Performance",
        "",
        "Generated by `onsale bench report`; do not edit by hand. Regenerate with:",
        "",
        "```",
        m.command,
        "```",
        "",
        f"Run {mc.date}, {m.runtime_s:.0f} s. Machine: {mc.nproc} cores ({mc.cpu}), "
        f"{mc.system}; Python {mc.python}; Redis {mc.redis}; Postgres {mc.postgres}; "
        f"Locust {mc.locust}.",
        "",
        "A shared machine: absolute figures drift from run to run, ratios measured in the "
        "same run hold. Read the ratios.",
        "",
    ]
    for part in (_render_stampede, _render_queue, _render_profile, _render_scaling):
        lines += part(m)
    return "\n".join(lines).rstrip() + "\n"


# Profile summary -----------------------------------------------------------------------


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(file: str) -> str | None:
    """``package/module.py`` for frames of the kept packages, else None."""
    path = file.replace("\\", "/")
    if "site-packages/" in path:
        path = path.rsplit("site-packages/", 1)[1]
    elif "/onsale/" in path:
        path = "onsale/" + path.rsplit("/onsale/", 1)[1]
    top = path.split("/", 1)[0]
    return path if top in PROFILE_PACKAGES else None


def summarise(raw: str, top: int = 15) -> tuple[int, list[Frame]]:
    """(samples, frames) from ``py-spy record -f raw`` output: one stack a line, frames
    separated by ``;``, the sample count last."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        kept = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame.strip())
            if not match:
                continue
            short = _short(match["file"])
            if short:
                kept.append(f"{short.removesuffix('.py')}:{match['func']}")
        for name in set(kept):
            inclusive[name] += count
        if kept:
            own[kept[-1]] += count
    if not total:
        return 0, []
    names = sorted(inclusive, key=lambda n: (-own[n], -inclusive[n]))[:top]
    frames = [Frame(n, inclusive[n] / total, own[n] / total) for n in names]
    return total, sorted(frames, key=lambda f: -f.inclusive)


# Measuring ---------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"[bench report] {message}", file=sys.stderr, flush=True)


def _version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def machine() -> Machine:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_v = _version([redis_binary(), "--version"])
    found = re.search(r"v=(\S+)", redis_v)
    try:
        pg = _version([str(postgres_bin_dir() / "postgres"), "--version"])
    except Exception:  # no embedded Postgres: say so rather than fail the report
        pg = "unknown"
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        nproc=os.cpu_count() or 0,
        cpu=cpu,
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        redis=found[1] if found else redis_v,
        postgres=pg.removeprefix("postgres (PostgreSQL) "),
        locust=_version([sys.executable, "-m", "locust", "--version"]).split(" from ")[0],
    )


def _routes(stats_csv: Path) -> list[Route]:
    return [
        Route(e.name, e.requests, e.failures, round(e.rps, 1), e.p50, e.p99)
        for e in loadtest_report.endpoints(stats_csv)
    ]


def stampede(args: argparse.Namespace, out: Path) -> Stampede:
    argv = [
        sys.executable, "-m", "onsale", "loadtest", "--scenario", "stampede",
        "--users", str(args.users), "--tickets", str(args.tickets),
        "--workers", str(args.workers), "--duration", str(args.duration),
        "--out", str(out),
    ]  # fmt: skip
    _progress("stampede: " + " ".join(argv[2:]))
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    text = done.stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, text, re.MULTILINE)
        return float(found[1]) if found else 0.0

    return Stampede(
        users=args.users,
        tickets=args.tickets,
        workers=args.workers,
        seconds=number(r"tickets, ([\d.]+) s$"),
        holds_per_s=number(r"holds/s ([\d.]+)"),
        orders_per_s=number(r"orders/s ([\d.]+)"),
        routes=_routes(out / "locust_stats.csv"),
        checks=[ln for ln in text.splitlines() if ln.startswith(("PASS", "FAIL"))],
        exit_code=done.returncode,
    )


def locust(host: str, users: int, seconds: float, out: Path) -> Route | None:
    """Closed-loop GET /bare (loadtests/bare.py); the /bare row of Locust's CSV."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / "bare.py"), "--headless",
        "--host", host, "-u", str(users), "-r", str(users), "-t", f"{int(seconds)}s",
        "--csv", str(out / "locust"), "--only-summary", "--loglevel", "WARNING",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    with open(out / "locust.log", "wb") as log:
        subprocess.run(argv, stdout=log, stderr=log, check=False)
    return next((r for r in _routes(out / "locust_stats.csv") if r.name == "GET /bare"), None)


# The generator's ceiling: canned bytes from a bare asyncio protocol.
_CANNED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class _Canned(asyncio.Protocol):
    """Answers every request head with the same bytes; requests carry no body."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport, self.buffer = cast(asyncio.Transport, transport), b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        heads = self.buffer.count(b"\r\n\r\n")
        if heads:
            self.buffer = self.buffer.rsplit(b"\r\n\r\n", 1)[1]
            self.transport.write(_CANNED * heads)


def canned_main(port: int) -> None:
    """One process of the canned server (several share the port with SO_REUSEPORT)."""
    import uvloop

    async def run() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(_Canned, "127.0.0.1", port, reuse_port=True, backlog=2048)
        await srv.serve_forever()

    uvloop.run(run())


@contextlib.contextmanager
def canned_serve(workers: int) -> Iterator[str]:
    port = free_port()
    code = f"from onsale.bench.report import canned_main; canned_main({port})"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(workers)]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/bare", procs[0])
        yield base
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def baselines(args: argparse.Namespace, out: Path) -> tuple[Baseline, Baseline]:
    users, secs = args.baseline_users, args.baseline_seconds
    _progress(f"bare Litestar, {args.workers} workers: Locust {users} users for {secs:g} s ...")
    with bare_serve(args.workers) as url:
        bare = Baseline(
            "bare Litestar (uvicorn)", users, secs, locust(url, users, secs, out / "bare")
        )
    _progress(f"canned-bytes server, {args.workers} processes: Locust ceiling ...")
    with canned_serve(args.workers) as url:
        ceiling = Baseline(
            "canned bytes (asyncio): generator ceiling",
            users,
            secs,
            locust(url, users, secs, out / "ceiling"),
        )
    return bare, ceiling


def _gateway_env(redis_url: str, database_url: str, *, cluster: bool = False) -> dict[str, str]:
    env = {
        "ONSALE_REDIS_URL": redis_url,
        "ONSALE_DATABASE_URL": database_url,
        "ONSALE_ADMIN_TOKEN": uuid.uuid4().hex,
        "ONSALE_SIGNING_KEY": signing.generate_pem(),
        "ONSALE_RATE_LIMIT_EXEMPT": "127.0.0.1/32",
    }
    if cluster:
        env["ONSALE_REDIS_CLUSTER"] = "1"
    return env


@contextlib.contextmanager
def gateway(env: Mapping[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """``onsale serve --workers 1``: (base URL, PID); with one worker the server process is
    the worker, which is what py-spy must attach to."""
    port = free_port()
    argv = [sys.executable, "-m", "onsale", "serve", "--port", str(port), "--workers", "1"]
    with (
        open(log, "wb") as out,
        subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=out) as proc,
    ):
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base + "/readyz", proc)
            yield base, proc.pid
        finally:
            stop(proc, timeout=20)


async def holds(
    env: Mapping[str, str],
    clients: int,
    seconds: float,
    admitted: int,
    tmp: Path,
    during: Callable[[int], object] | None = None,
) -> queue.Row:
    """Holds by admitted buyers against one gateway worker; ``during(pid)`` (a coroutine
    factory) runs beside the load, e.g. py-spy."""
    cluster = env.get("ONSALE_REDIS_CLUSTER") == "1"
    with gateway(env, tmp / f"gateway-{uuid.uuid4().hex[:6]}.log") as (base, pid):
        event_id, tier = await queue._event(base, env["ONSALE_ADMIN_TOKEN"], holds=True)
        tokens = tmp / f"admissions-{event_id}"
        await queue.admitted(
            env["ONSALE_REDIS_URL"], env["ONSALE_SIGNING_KEY"], event_id, admitted, tokens,
            cluster=cluster,
        )  # fmt: skip
        pool = LoadPool(queue.make_session, 1)
        pool.start()
        try:
            await pool.open(queue.HOLD, f"{base}|{event_id}|{tokens}|{tier}", clients)
            side = during(pid) if during else None
            if asyncio.iscoroutine(side):
                result, _ = await asyncio.gather(pool.run("", seconds), side)
            else:
                result = await pool.run("", seconds)
            await pool.close()
        finally:
            pool.stop()
    ordered = sorted(result.latencies)
    return queue.Row(
        endpoint=queue.HOLD,
        clients=clients,
        requests_per_s=round(result.rate, 1),
        p50_ms=round(percentile(ordered, 50) * 1000, 2),
        p99_ms=round(percentile(ordered, 99) * 1000, 2),
        ratio_to_bare=0.0,
        refused=result.attempts - result.granted,
    )


async def profile(
    args: argparse.Namespace, redis_url: str, database_url: str, tmp: Path
) -> Profile:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    load = f"the hold load ({args.clients} clients)"
    if not Path(spy).exists():
        return Profile(load, 0, 0, [], note="py-spy is not installed")
    raw = tmp / "profile.txt"
    secs = args.profile_seconds
    log = tmp / "py-spy.log"

    async def record(pid: int) -> None:
        await asyncio.sleep(1.0)  # past the warm-up
        with open(log, "wb") as out:
            proc = await asyncio.create_subprocess_exec(
                spy,
                "record",
                "-f",
                "raw",
                "-r",
                "200",
                "-d",
                str(int(secs)),
                "-p",
                str(pid),
                "-o",
                str(raw),
                "--nonblocking",
                stdout=out,
                stderr=out,
            )
            await proc.wait()

    _progress(f"profile: py-spy on the gateway worker for {secs:g} s under {load} ...")
    env = _gateway_env(redis_url, database_url)
    await holds(env, args.clients, secs + 2.5, args.admitted, tmp, during=record)
    if not raw.exists():
        tail = log.read_text(errors="replace")[-300:] if log.exists() else ""
        return Profile(load, secs, 0, [], note=f"py-spy wrote nothing: {tail.strip()}")
    samples, frames = summarise(raw.read_text(errors="replace"))
    return Profile(load, secs, samples, frames)


@contextlib.contextmanager
def redis_nodes(cluster: bool) -> Iterator[str]:
    """One plain Redis, or a three-primary Redis Cluster on loopback; a URL of one node."""
    with redis_servers(cluster) as ports:
        yield f"redis://127.0.0.1:{ports[0]}/0"


async def shards(args: argparse.Namespace, database_url: str, tmp: Path) -> list[ShardRow]:
    rows = []
    for setup, cluster in (("1 Redis", False), ("3-primary Redis Cluster", True)):
        _progress(f"shards: holds against {setup} ...")
        try:
            with redis_nodes(cluster) as url:
                env = _gateway_env(url, database_url, cluster=cluster)
                row = await holds(env, args.clients, args.seconds, args.admitted, tmp)
            rows.append(ShardRow(setup, row.requests_per_s, row.p50_ms, row.p99_ms))
        except Exception as exc:  # report the row as not measured, with the reason
            reason = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
            _progress(f"shards: {setup} {reason}")
            rows.append(ShardRow(setup, None, None, None, note=reason))
    return rows


def _queue_args(args: argparse.Namespace, workers: int) -> argparse.Namespace:
    return argparse.Namespace(
        clients=args.clients,
        seconds=args.seconds,
        workers=workers,
        processes=1,
        visitors=args.visitors,
        admitted=args.admitted,
    )


async def measure_all(args: argparse.Namespace, command: str) -> Measurements:
    began = time.monotonic()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="onsale-report-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)
        st = stampede(args, tmp / "stampede") if not args.skip_stampede else None
        bare, ceiling = baselines(args, tmp) if not args.skip_stampede else (None, None)
        with servers(None, None) as (redis_url, database_url):
            await migrate.apply(database_url)
            queue_1: list[queue.Row] = []
            queue_2: list[queue.Row] = []
            for workers, rows in ((1, queue_1), (2, queue_2)):
                _progress(f"bench queue with {workers} gateway worker(s) ...")
                rows += await queue.measure(_queue_args(args, workers), redis_url, database_url)
            prof = await profile(args, redis_url, database_url, tmp)
            shard_rows = await shards(args, database_url, tmp)
    return Measurements(
        command=command,
        machine=info,
        runtime_s=time.monotonic() - began,
        stampede=st,
        bare=bare,
        ceiling=ceiling,
        queue_1=queue_1,
        queue_2=queue_2,
        bench_clients=args.clients,
        bench_seconds=args.seconds,
        profile=prof,
        shards=shard_rows,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the Markdown to write")
    parser.add_argument("--users", type=int, default=1000, help="stampede buyers")
    parser.add_argument("--tickets", type=int, default=300, help="stampede tickets")
    parser.add_argument("--duration", type=float, default=90, help="stampede seconds at most")
    parser.add_argument("--workers", type=int, default=2, help="workers: stampede, baselines")
    parser.add_argument("--baseline-users", type=int, default=64, help="Locust baseline users")
    parser.add_argument("--baseline-seconds", type=float, default=15, help="per baseline")
    parser.add_argument("--clients", type=int, default=64, help="bench clients (queue, holds)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per bench endpoint")
    parser.add_argument("--visitors", type=int, default=60_000, help="visitors polled")
    parser.add_argument("--admitted", type=int, default=2_000, help="admitted buyers holding")
    parser.add_argument("--profile-seconds", type=float, default=5.0, help="py-spy duration")
    parser.add_argument("--skip-stampede", action="store_true", help="sections 2-4 only")
    parser.add_argument("--json", action="store_true", help="also the measurements as JSON")


def _command(argv: Sequence[str]) -> str:
    return "onsale bench report" + "".join(f" {a}" for a in argv)


async def main(args: argparse.Namespace) -> int:
    began = time.monotonic()
    argv = sys.argv[sys.argv.index("report") + 1 :] if "report" in sys.argv else []
    m = await measure_all(args, _command(argv))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(m))
    if args.json:
        print(msgspec.json.encode(m).decode())
    _progress(f"wrote {out} in {time.monotonic() - began:.0f} s")
    return 0
