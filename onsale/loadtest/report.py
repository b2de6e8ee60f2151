"""The one-screen summary: Locust's CSV stats, the scenario's error codes, the committer
lag sampled while running, and the invariants."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import msgspec

from onsale.bench.figures import percentile
from onsale.loadtest.invariants import Check, passed

#: Error codes of per-client limits on the waiting room (see ``limited``).
LIMIT_CODES = ("rate_limited", "too_many_places")


class Endpoint(msgspec.Struct, frozen=True):
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


def _num(row: dict[str, str], key: str) -> float:
    try:
        return float(row.get(key) or 0)
    except ValueError:  # "N/A" before any request
        return 0.0


def endpoints(stats_csv: Path) -> list[Endpoint]:
    """Rows of Locust's ``<prefix>_stats.csv``, the Aggregated row last."""
    if not stats_csv.exists():
        return []
    with stats_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        Endpoint(
            r["Name"],
            int(_num(r, "Request Count")),
            int(_num(r, "Failure Count")),
            _num(r, "Requests/s"),
            _num(r, "50%"),
            _num(r, "95%"),
            _num(r, "99%"),
        )
        for r in rows
    ]


def latest(history_csv: Path) -> tuple[int, float]:
    """(users, requests/s) from the newest Aggregated line of the stats history."""
    try:
        with history_csv.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"]
    except OSError:
        return 0, 0.0
    if not rows:
        return 0, 0.0
    return int(_num(rows[-1], "User Count")), _num(rows[-1], "Requests/s")


def codes(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(error codes by endpoint, buyer outcomes) written by the scenario."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}, {}
    return dict(doc.get("codes", {})), dict(doc.get("outcomes", {}))


def limited(errors: dict[str, int]) -> dict[str, int]:
    """Joins and polls refused by a per-client limit, by ``"<endpoint> <code>"``."""
    return {
        key: n
        for key, n in errors.items()
        if "/queue" in key and key.rsplit(" ", 1)[-1] in LIMIT_CODES
    }


def limiter_check(errors: dict[str, int], allowed: bool) -> Check:
    """Fails a run whose buyers the gateway's per-client limits refused: it measured the
    limiter, not the sale (unless the run said that is what it wants)."""
    refused = limited(errors)
    total = sum(refused.values())
    if not total:
        return Check("buyers not refused by per-client limits", True, "no join or poll refused")
    detail = (
        f"{total} joins/polls refused ({', '.join(f'{k}: {v}' for k, v in refused.items())}); "
        "every simulated buyer comes from this generator's address: put it in "
        "ONSALE_RATE_LIMIT_EXEMPT on the gateways for a load test"
    )
    return Check(
        "buyers not refused by per-client limits",
        allowed,
        detail + (" (allowed by --allow-rate-limited)" if allowed else ""),
    )


def verdict(checks: list[Check], strict: bool) -> str:
    """The summary's first line: the run's result, and whatever was not checked."""
    failed = [c.name for c in checks if c.verdict == "FAIL"]
    skipped = [c.name for c in checks if c.skipped]
    head = "PASS" if passed(checks, strict) else "FAIL"
    parts = []
    if failed:
        parts.append(f"{len(failed)} of {len(checks)} checks failed")
    if skipped:
        parts.append(
            f"{len(skipped)} check(s) SKIPPED, not proven: {'; '.join(skipped)}"
            + (" (--strict: a skip fails)" if strict else "")
        )
    return f"{head}: " + ("; ".join(parts) if parts else f"all {len(checks)} checks passed")


def buyers(path: Path) -> dict[str, Any]:
    """Everything the scenario's buyers recorded (``codes.json``), or nothing."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return dict(doc)


class Run(msgspec.Struct):
    """What a run measured besides Locust's own stats."""

    scenario: str
    users: int
    tickets: int
    seconds: float
    holds: int
    orders: int
    lag_ms: list[float] = msgspec.field(default_factory=list)
    lag_pending: int = 0


def summary(
    run: Run,
    stats: list[Endpoint],
    errors: dict[str, int],
    outcomes: dict[str, int],
    checks: list[Check],
    strict: bool = False,
) -> str:
    secs = max(run.seconds, 1e-9)
    lag = sorted(run.lag_ms) or [0.0]
    total = next((e for e in stats if e.name == "Aggregated"), None)
    lines = [
        verdict(checks, strict),
        f"onsale loadtest: {run.scenario}, {run.users} buyers for {run.tickets} tickets, "
        f"{run.seconds:.1f} s",
        f"requests/s {total.rps if total else 0:.1f} ({total.requests if total else 0} "
        f"requests, {total.failures if total else 0} failures); holds/s "
        f"{run.holds / secs:.1f} ({run.holds}); orders/s {run.orders / secs:.1f} ({run.orders})",
        "",
        f"{'endpoint':<52} {'reqs':>7} {'fail':>5} {'p50':>6} {'p95':>6} {'p99':>6}  (ms)",
    ]
    for e in stats:
        lines.append(
            f"{e.name[:52]:<52} {e.requests:>7} {e.failures:>5} "
            f"{e.p50:>6.0f} {e.p95:>6.0f} {e.p99:>6.0f}"
        )
    lines.append("")
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))
    lines.append(f"errors by code: {shown or 'none'}")
    refused = sum(limited(errors).values())
    if refused:
        lines.append(
            f"rate limited: {refused} joins/polls refused by per-client limits; "
            "the generator's address belongs in ONSALE_RATE_LIMIT_EXEMPT"
        )
    lines.append(
        "buyers: "
        + (", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "no outcomes recorded")
    )
    if not run.lag_ms:
        lines.append("committer lag: not sampled (needs --redis-url)")
    else:
        lines.append(
            f"committer lag (oldest uncommitted entry): max {max(run.lag_ms):.0f} ms, "
            f"p99 {percentile(lag, 99):.0f} ms, p50 {percentile(lag, 50):.0f} ms "
            f"over {len(run.lag_ms)} samples; most pending {run.lag_pending}"
        )
    lines.append("")
    for c in checks:
        lines.append(f"{c.verdict}  {c.name}: {c.detail}")
    return "\n".join(lines)
