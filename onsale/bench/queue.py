"""``onsale bench queue``: queue polls, joins and holds over HTTP, beside a bare endpoint.

Starts embedded Redis and Postgres (or uses ``--redis-url`` / ``--database-url``), an
``onsale serve`` and a bare Litestar app under the same uvicorn settings, then drives each
with the same closed-loop HTTP clients in the same run. The ratios to the bare endpoint
are what to read: absolute figures drift on a shared machine, ratios hold.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from onsale import signing
from onsale.bench.figures import percentile, progress, table
from onsale.bench.harness import Exhausted, LoadPool, RunResult, Session
from onsale.bench.http import Connection
from onsale.bench.room import TAG, Room, commands, fill, room_bytes, room_line, still_waiting
from onsale.connections import redis_client
from onsale.db import migrate
from onsale.queue.room import WaitingRoom
from onsale.queue.tokens import AdmissionTokens
from onsale.servers import bare_serve, gateway_settings, onsale_serve, stores

BARE, JOIN, STATUS, HOLD, HOLD_PROMO = "bare", "join", "status", "hold", "hold_promo"
#: The code ``hold_promo`` holds with: 10% off, with a (never reached) limit of uses, so the
#: script checks the limit as it would for a real code.
PROMO = {"code": "BENCH10", "percent_off": 10, "max_uses": 1_000_000_000}
#: Every endpoint runs in this many slices, the rounds alternating in order (ABBA).
ROUNDS = 8


class Row(msgspec.Struct):
    endpoint: str
    clients: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_bare: float
    #: Answers other than 200 (429s for a too-early poll), not counted in requests_per_s.
    refused: int
    #: hold and hold_promo: Redis's own time per script call (EVALSHA) during their runs, in
    #: microseconds (INFO commandstats): the script's cost without the HTTP around it.
    script_us: float | None = None


class HttpSession:
    """One load process's connections; each client polls its own slice of visitors."""

    def __init__(self, approach: str, url: str, clients: int) -> None:
        base, self.event_id, tokens_path, self.tier = url.split("|")
        self.approach = approach
        self.conns = [Connection(base) for _ in range(clients)]
        self.tokens = Path(tokens_path).read_text().split() if tokens_path else []
        # Each client polls its own stretch of the line in turn, from its start: the polls
        # come from the whole line evenly, as a crowd's would (not first from its front,
        # which the cursor has reached while the room was filled).
        self.slice = max(1, len(self.tokens) // clients)
        # A run's next slice goes on where its last one stopped (this process remembers):
        # no visitor is polled twice within the run's few seconds (too early: refused).
        self.resume = (url, clients)
        self.next = _RESUME.get(self.resume) or [c * self.slice for c in range(clients)]

    async def open(self) -> None:
        await asyncio.gather(*(c.open() for c in self.conns))
        conn = self.conns[0]
        queue = f"/api/events/{self.event_id}/queue"
        self.bare = conn.build("GET", "/bare")
        self.join = conn.build("POST", queue)
        if self.approach in (HOLD, HOLD_PROMO):
            hold: dict[str, Any] = {"items": [{"tier_id": self.tier, "quantity": 1}]}
            if self.approach == HOLD_PROMO:
                hold["promo_code"] = PROMO["code"]
            body = msgspec.json.encode(hold)
            path = f"/api/events/{self.event_id}/holds"
            self.polls = [
                conn.build("POST", path, {"Authorization": f"Bearer {t}",
                                          "Content-Type": "application/json"}, body)
                for t in self.tokens
            ]  # fmt: skip
        else:
            self.polls = [conn.build("GET", queue, {"X-Visitor-Token": t}) for t in self.tokens]

    async def take(self, client: int, target: str) -> int:
        conn = self.conns[client]
        attempts = 0
        while True:
            attempts += 1
            if self.approach == BARE:
                raw = self.bare
            elif self.approach == JOIN:
                raw = self.join
            else:
                i = self.next[client]
                if i >= min(len(self.polls), (client + 1) * self.slice):
                    i = client * self.slice  # back to this client's first visitor
                self.next[client] = i + 1
                raw = self.polls[i % len(self.polls)]
            status, _ = await conn.request(raw)
            if status in (200, 201):
                return attempts
            if attempts > 1000:
                raise Exhausted

    async def close(self) -> None:
        if self.tokens:
            _RESUME[self.resume] = self.next
        await asyncio.gather(*(c.close() for c in self.conns))


#: (url, clients) -> where each client of the last session on it stopped, in this process.
_RESUME: dict[tuple[str, int], list[int]] = {}


def make_session(approach: str, url: str, clients: int) -> Session:
    return HttpSession(approach, url, clients)


async def _event(
    base: str, admin: str, *, holds: bool = False, promo: bool = False
) -> tuple[str, str]:
    """(event id, tier id). By default a launch in full swing: 10 admissions a second and a
    long line polling as told; with ``holds``, a huge house that admits everyone at once
    (with ``promo`` too, and the :data:`PROMO` code)."""
    now = datetime.now(UTC)
    tier: dict[str, Any] = {"name": "GA", "price": 1000, "capacity": 100_000}
    onsale: dict[str, Any] = {"opens_at": (now - timedelta(seconds=1)).isoformat(),
                              "admit_per_minute": 600}  # fmt: skip
    if holds:
        tier |= {"capacity": 10_000_000, "per_order_limit": 100}
        onsale["admit_per_minute"] = 1_000_000
    body = {
        "title": "bench",
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "currency": "USD",
        "tiers": [tier],
        "onsale": onsale,
    }
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{base}/api/events", json=body, headers={"Authorization": f"Bearer {admin}"}
        )
        r.raise_for_status()
        event_id, tier_id = r.json()["id"], r.json()["tiers"][0]["id"]
        if promo:
            r = await http.post(
                f"{base}/api/events/{event_id}/promo-codes", json=PROMO,
                headers={"Authorization": f"Bearer {admin}"},
            )  # fmt: skip
            r.raise_for_status()
        return event_id, tier_id


async def admitted(
    redis_url: str, key: str, event_id: str, count: int, path: Path, *, cluster: bool = False
) -> None:
    """Admitted buyers and their admission tokens, as the hold requests need them."""
    redis = redis_client(redis_url, cluster=cluster, max_connections=32)
    room, admissions = WaitingRoom(redis), AdmissionTokens(signing.load(key))
    visitors = [f"bench-{i}" for i in range(count)]
    for i in range(0, count, 500):
        await asyncio.gather(*(room.join(event_id, v) for v in visitors[i : i + 500]))
    tokens: list[str] = []
    deadline = time.monotonic() + 30
    await room.advance(event_id)
    while len(tokens) < count:
        place = await room.status(event_id, visitors[len(tokens)])
        if not place.admission_expires_ms:
            # The cursor admits at the event's rate (a million a minute) for the time
            # passed: advance again until everyone is in.
            if time.monotonic() > deadline:
                raise RuntimeError(f"{visitors[len(tokens)]} was not admitted: {place}")
            await asyncio.sleep(0.05)
            await room.advance(event_id)
            continue
        tokens.append(
            admissions.issue(event_id, visitors[len(tokens)], place.admission_expires_ms,
                             int(time.time()))
        )  # fmt: skip
    await redis.aclose()
    path.write_text("\n".join(tokens))


async def measure(args: argparse.Namespace, redis_url: str, database_url: str) -> list[Row]:
    rows, _ = await measure_with_room(args, redis_url, database_url)
    return rows


async def measure_with_room(
    args: argparse.Namespace, redis_url: str, database_url: str
) -> tuple[list[Row], Room]:
    """The rows, and the room the status polls ran against."""
    await migrate.apply(database_url)
    env = gateway_settings(redis_url, database_url)
    key, admin = env["ONSALE_SIGNING_KEY"], env["ONSALE_ADMIN_TOKEN"]
    results: dict[str, RunResult] = {}
    with (
        onsale_serve(env, args.workers) as gateway,
        bare_serve(args.workers) as bare,
        tempfile.TemporaryDirectory() as tmp,
    ):
        onsale_url, bare_url = gateway.url, bare.url
        event_id, _ = await _event(onsale_url, admin)
        hold_event, hold_tier = await _event(onsale_url, admin, holds=True)
        admissions = Path(tmp) / "admissions"
        await admitted(redis_url, key, hold_event, args.admitted, admissions)
        # The same house again, with a code: each hold also takes a use of it.
        promo_event, promo_tier = await _event(onsale_url, admin, holds=True, promo=True)
        promo_admissions = Path(tmp) / "promo-admissions"
        await admitted(redis_url, key, promo_event, args.admitted, promo_admissions)
        tokens = Path(tmp) / "tokens"
        progress(f"putting {args.visitors} visitors in the room ...", TAG)
        began = time.monotonic()
        await fill(redis_url, key, event_id, args.visitors, tokens)
        stats = redis_client(redis_url)
        progress(f"{args.visitors:,} visitors in the room in "
                 f"{time.monotonic() - began:.0f} s", TAG)  # fmt: skip
        per_visitor = await room_bytes(stats, event_id) / max(1, args.visitors)
        # A visitor may poll again after half its poll_after (at most 30 s): wait for it,
        # so that the first polls are not refused.
        await asyncio.sleep(max(0.0, 15.5 - (time.monotonic() - began)))
        # The polls come from those still waiting: the cursor admitted (or passed) the
        # front of the line while the room was filled, and an admitted buyer's poll is
        # another matter (the claim of an admission, in Redis, once each). Nor the next
        # FRONT: not polled since the fill, those near the front (advised to poll every few
        # seconds) count as gone by now, and the cursor skips them as the polls start.
        await still_waiting(stats, event_id, tokens)
        # Far back, poll_after is 30 s and a poll within half of it is refused: the clients
        # poll their visitors in turn, each visitor about every visitors / rate seconds.
        #
        # Every endpoint, the bare one too, runs in ROUNDS slices, the rounds in turn forward
        # and backward (ABBA...): a change in the machine's load during the run weighs on the
        # bare endpoint and on the others alike, so that the ratios hold.
        endpoints = {
            BARE: f"{bare_url}|{event_id}||",
            STATUS: f"{onsale_url}|{event_id}|{tokens}|",
            JOIN: f"{onsale_url}|{event_id}||",
            HOLD: f"{onsale_url}|{hold_event}|{admissions}|{hold_tier}",
            HOLD_PROMO: f"{onsale_url}|{promo_event}|{promo_admissions}|{promo_tier}",
        }
        slices: dict[str, list[RunResult]] = {e: [] for e in endpoints}
        server: dict[str, list[int]] = {HOLD: [0, 0], HOLD_PROMO: [0, 0]}
        poll_calls = 0
        pool = LoadPool(make_session, args.processes)
        pool.start()
        try:
            progress(f"{', '.join(endpoints)}: {args.clients} clients for {args.seconds} s "
                     f"each, in {ROUNDS} alternating slices ...", TAG)  # fmt: skip
            for i in range(ROUNDS):
                order = list(endpoints) if i % 2 == 0 else list(endpoints)[::-1]
                for endpoint in order:
                    await pool.open(endpoint, endpoints[endpoint], args.clients)
                    ran, before = await commands(stats), await _evalsha(stats)
                    part = await pool.run("", args.seconds / ROUNDS)
                    if endpoint == STATUS:
                        poll_calls += await commands(stats) - ran
                    if endpoint in server:
                        after = await _evalsha(stats)
                        server[endpoint] = [
                            n + a - b
                            for n, a, b in zip(server[endpoint], after, before, strict=True)
                        ]
                    slices[endpoint].append(part)
                    await pool.close()
            await stats.aclose()
            for endpoint, parts in slices.items():
                results[endpoint] = joined(parts)
            calls_per_poll = poll_calls / max(1, results[STATUS].attempts)
        finally:
            pool.stop()
    bare_rate = results[BARE].rate
    rows = []
    for endpoint, r in results.items():
        ordered = sorted(r.latencies)
        rows.append(
            Row(
                endpoint=endpoint,
                clients=args.clients,
                requests_per_s=round(r.rate, 1),
                p50_ms=round(percentile(ordered, 50) * 1000, 2),
                p99_ms=round(percentile(ordered, 99) * 1000, 2),
                ratio_to_bare=round(r.rate / bare_rate, 3),
                refused=r.attempts - r.granted,
                script_us=round(server[endpoint][1] / server[endpoint][0], 2)
                if endpoint in server and server[endpoint][0]
                else None,
            )
        )
    room = Room(
        endpoint="room",
        visitors=args.visitors,
        redis_bytes_per_visitor=round(per_visitor, 1),
        redis_calls_per_poll=round(calls_per_poll, 4),
    )
    return rows, room


async def _evalsha(redis: Any) -> list[int]:
    """(calls, microseconds) of EVALSHA so far, as Redis counts them."""
    info = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
    return [int(info.get("calls", 0)), int(info.get("usec", 0))]


def report(rows: list[Row]) -> str:
    headers = ["endpoint", "clients", "req/s", "p50 ms", "p99 ms", "x bare", "refused"]
    body = [
        [r.endpoint, str(r.clients), f"{r.requests_per_s:,.0f}", f"{r.p50_ms:.2f}",
         f"{r.p99_ms:.2f}", f"{r.ratio_to_bare:.2f}", str(r.refused)]
        for r in rows
    ]  # fmt: skip
    lines = [table(headers, body), ""]
    by = {r.endpoint: r for r in rows}
    for endpoint, what, target in (
        (STATUS, "status polls", 0.9),
        (JOIN, "joins", 0.6),
        (HOLD, "holds (admitted buyers)", 0.6),
    ):
        ratio = by[endpoint].ratio_to_bare
        verdict = "met" if ratio >= target else "NOT met"
        lines.append(f"{what} / bare: {ratio:.2f} (target {target}: {verdict})")
    p99 = by[STATUS].p99_ms / by[BARE].p99_ms if by[BARE].p99_ms else 0.0
    verdict = "met" if p99 <= 2 else "NOT met"
    lines.append(f"status polls' p99 / bare's: {p99:.2f} (target at most 2: {verdict})")
    lines.append(promo_line(rows))
    return "\n".join(lines)


def joined(parts: list[RunResult]) -> RunResult:
    """Runs one after another as one: their times and counts added up."""
    return RunResult(
        started_at=0.0,
        finished_at=sum(p.elapsed for p in parts),
        granted=sum(p.granted for p in parts),
        attempts=sum(p.attempts for p in parts),
        latencies=[t for p in parts for t in p.latencies],
    )


def promo_cost(rows: list[Row]) -> float:
    """What a hold with a promo code costs against one without: the ratio of their times per
    request (hold's throughput over hold_promo's), 1.00 when they cost the same."""
    by = {r.endpoint: r for r in rows}
    return by[HOLD].requests_per_s / by[HOLD_PROMO].requests_per_s


def promo_line(rows: list[Row]) -> str:
    by = {r.endpoint: r for r in rows}
    cost = promo_cost(rows)
    verdict = "met" if cost <= 1.10 else "NOT met"
    p50 = by[HOLD_PROMO].p50_ms / by[HOLD].p50_ms if by[HOLD].p50_ms else 0.0
    line = (
        f"hold_promo / hold cost: {cost:.3f} per request (p50 {p50:.3f}) "
        f"(target at most 1.10: {verdict})"
    )
    plain, promo = by[HOLD].script_us, by[HOLD_PROMO].script_us
    if plain and promo:
        line += f"; in Redis {promo:.1f} / {plain:.1f} us per script call"
    return line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="per endpoint")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--processes", type=int, default=1, help="load-generator processes")
    parser.add_argument("--visitors", type=int, default=100_000, help="visitors polled in turn")
    parser.add_argument("--admitted", type=int, default=2_000, help="admitted buyers holding")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--redis-url", help="a running Redis (default: embedded, throwaway)")
    parser.add_argument("--database-url", help="a running Postgres (default: embedded)")


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with stores(args.redis_url, args.database_url) as (redis_url, database_url):
        rows, room = await measure_with_room(args, redis_url, database_url)
    if args.json:
        encode = msgspec.json.encode
        for row in rows:
            print(encode(row).decode())
        print(encode(room).decode())
    else:
        print(report(rows))
        print(room_line(room))
    progress(f"done in {time.monotonic() - started:.0f} s", TAG)
    return 0
