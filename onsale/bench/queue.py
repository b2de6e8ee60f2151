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
from onsale.connections import redis_client
from onsale.db import migrate
from onsale.queue.room import WaitingRoom
from onsale.queue.tokens import AdmissionTokens, VisitorTokens
from onsale.servers import bare_serve, gateway_settings, onsale_serve, stores

BARE, JOIN, STATUS, HOLD = "bare", "join", "status", "hold"
TAG = "bench queue"


class Row(msgspec.Struct):
    endpoint: str
    clients: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_bare: float
    #: Answers other than 200 (429s for a too-early poll), not counted in requests_per_s.
    refused: int


class HttpSession:
    """One load process's connections; each client polls its own slice of visitors."""

    def __init__(self, approach: str, url: str, clients: int) -> None:
        base, self.event_id, tokens_path, self.tier = url.split("|")
        self.approach = approach
        self.conns = [Connection(base) for _ in range(clients)]
        self.tokens = Path(tokens_path).read_text().split() if tokens_path else []
        self.next = list(range(clients))
        self.step = clients

    async def open(self) -> None:
        await asyncio.gather(*(c.open() for c in self.conns))
        conn = self.conns[0]
        queue = f"/api/events/{self.event_id}/queue"
        self.bare = conn.build("GET", "/bare")
        self.join = conn.build("POST", queue)
        if self.approach == HOLD:
            body = msgspec.json.encode({"items": [{"tier_id": self.tier, "quantity": 1}]})
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
                if i >= len(self.polls):
                    i = client  # back to this client's first visitor
                self.next[client] = i + self.step
                raw = self.polls[i]
            status, _ = await conn.request(raw)
            if status in (200, 201):
                return attempts
            if attempts > 1000:
                raise Exhausted

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.conns))


def make_session(approach: str, url: str, clients: int) -> Session:
    return HttpSession(approach, url, clients)


async def _event(base: str, admin: str, *, holds: bool = False) -> tuple[str, str]:
    """(event id, tier id). By default a launch in full swing: 10 admissions a second and a
    long line polling as told; with ``holds``, a huge house that admits everyone at once."""
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
        return r.json()["id"], r.json()["tiers"][0]["id"]


async def _visitors(redis_url: str, key: str, event_id: str, count: int, path: Path) -> None:
    """Visitors already in the room, as the status polls need them."""
    redis = redis_client(redis_url, max_connections=32)
    tokens, room = VisitorTokens(signing.load(key)), WaitingRoom(redis)
    issued = [tokens.issue(event_id) for _ in range(count)]
    for i in range(0, count, 500):
        await asyncio.gather(*(room.join(event_id, v) for v, _ in issued[i : i + 500]))
    await redis.aclose()
    path.write_text("\n".join(t for _, t in issued))


async def admitted(
    redis_url: str, key: str, event_id: str, count: int, path: Path, *, cluster: bool = False
) -> None:
    """Admitted buyers and their admission tokens, as the hold requests need them."""
    redis = redis_client(redis_url, cluster=cluster, max_connections=32)
    room, admissions = WaitingRoom(redis), AdmissionTokens(signing.load(key))
    visitors = [f"bench-{i}" for i in range(count)]
    for i in range(0, count, 500):
        await asyncio.gather(*(room.join(event_id, v) for v in visitors[i : i + 500]))
    await room.advance(event_id)
    tokens = []
    for v in visitors:
        place = await room.status(event_id, v)
        assert place.admission_expires_ms, f"{v} was not admitted: {place}"
        tokens.append(admissions.issue(event_id, v, place.admission_expires_ms, int(time.time())))
    await redis.aclose()
    path.write_text("\n".join(tokens))


async def measure(args: argparse.Namespace, redis_url: str, database_url: str) -> list[Row]:
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
        tokens = Path(tmp) / "tokens"
        progress(f"putting {args.visitors} visitors in the room ...", TAG)
        began = time.monotonic()
        await _visitors(redis_url, key, event_id, args.visitors, tokens)
        # A visitor may poll again after half its poll_after (at most 30 s): wait for it,
        # so that the first polls are not refused.
        await asyncio.sleep(max(0.0, 15.5 - (time.monotonic() - began)))
        # Far back, poll_after is 30 s and a poll within half of it is refused: the clients
        # poll their visitors in turn, each visitor about every visitors / rate seconds.
        pool = LoadPool(make_session, args.processes)
        pool.start()
        try:
            for endpoint, url in (
                (BARE, f"{bare_url}|{event_id}||"),
                (STATUS, f"{onsale_url}|{event_id}|{tokens}|"),
                (JOIN, f"{onsale_url}|{event_id}||"),
                (HOLD, f"{onsale_url}|{hold_event}|{admissions}|{hold_tier}"),
            ):
                progress(f"{endpoint}: {args.clients} clients for {args.seconds} s ...", TAG)
                await pool.open(endpoint, url, args.clients)
                results[endpoint] = await pool.run("", args.seconds)
                await pool.close()
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
            )
        )
    return rows


def report(rows: list[Row]) -> str:
    headers = ["endpoint", "clients", "req/s", "p50 ms", "p99 ms", "x bare", "refused"]
    body = [
        [r.endpoint, str(r.clients), f"{r.requests_per_s:,.0f}", f"{r.p50_ms:.2f}",
         f"{r.p99_ms:.2f}", f"{r.ratio_to_bare:.2f}", str(r.refused)]
        for r in rows
    ]  # fmt: skip
    lines = [table(headers, body), ""]
    for endpoint, what in ((STATUS, "status polls"), (HOLD, "holds (admitted buyers)")):
        ratio = next(r for r in rows if r.endpoint == endpoint).ratio_to_bare
        verdict = "met" if ratio >= 0.5 else "NOT met"
        lines.append(f"{what} / bare: {ratio:.2f} (target 0.5: {verdict})")
    return "\n".join(lines)


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
        rows = await measure(args, redis_url, database_url)
    if args.json:
        encode = msgspec.json.encode
        for row in rows:
            print(encode(row).decode())
    else:
        print(report(rows))
    progress(f"done in {time.monotonic() - started:.0f} s", TAG)
    return 0
