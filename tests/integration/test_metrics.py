"""GET /metrics, request ids and JSON logs, over the in-process gateway."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from onsale.logs import JsonFormatter
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.integration.api_support import bearer, hold_for
from tests.integration.stripe_support import signed

Client = AsyncTestClient[Litestar]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "onsale-dashboard.json"


async def scrape(client: Client) -> tuple[set[str], Samples]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(r.text))
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every log record, at DEBUG, as the JSON lines a server would write."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_metrics_after_join_holds_and_webhooks(client: Client, admin: dict[str, str]) -> None:
    _, before = await scrape(client)
    event, _, token = await hold_for(client, admin, capacity=10, qty=2)
    eid, tier = event["id"], event["tiers"][0]["id"]
    too_many = {"items": [{"tier_id": tier, "quantity": 9}]}
    r = await client.post(f"/api/events/{eid}/holds", json=too_many, headers=bearer(token))
    assert r.status_code in (409, 422), r.text
    reason = r.json()["code"]
    body, headers = signed("customer.created", {"id": "pi_x", "metadata": {}})
    assert (await client.post("/api/webhooks/stripe", content=body, headers=headers)).is_success
    headers["Stripe-Signature"] = headers["Stripe-Signature"][:-4] + "0000"
    r = await client.post("/api/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 400

    names, after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("onsale_holds_total") >= 1
    assert delta("onsale_hold_failures_total", reason=reason) >= 1
    assert delta("onsale_webhooks_total", outcome="ignored") >= 1
    assert delta("onsale_webhooks_total", outcome="invalid_signature") >= 1
    assert value(after, "onsale_redis_up") == 1
    assert value(after, "onsale_tickets_capacity", event=eid, tier=tier) == 10
    assert value(after, "onsale_tickets_held", event=eid, tier=tier) == 2
    assert value(after, "onsale_tickets_available", event=eid, tier=tier) == 8
    assert value(after, "onsale_tickets_sold", event=eid, tier=tier) == 0
    assert value(after, "onsale_queue_admitted_total", event=eid) == 1
    assert value(after, "onsale_queue_active", event=eid) == 1
    assert value(after, "onsale_queue_waiting", event=eid) == 0
    assert value(after, "onsale_queue_admit_per_minute", event=eid) == 60_000
    for name in ("pending", "lag_seconds", "batch_size"):
        assert (f"onsale_committer_{name}", frozenset({("event", eid)})) in after
    assert {"onsale_committer_committed", "onsale_committer_dead_letters"} <= names

    # Latency: labelled by route template, never by the raw path.
    routes = {
        dict(labels)["route"]
        for (name, labels) in after
        if name == "onsale_http_request_duration_seconds_count"
    }
    assert "/api/events/{event_id}/queue" in routes
    assert "/api/events/{event_id}/holds" in routes
    assert not any(eid in r for r in routes)
    holds = value(
        after,
        "onsale_http_request_duration_seconds_count",
        route="/api/events/{event_id}/holds",
        method="POST",
        status="4xx",
    )
    assert holds >= 1


async def test_dashboard_queries_only_exported_metrics(
    client: Client, admin: dict[str, str]
) -> None:
    # Per-event families exist while an event is armed, and labelled counters once counted:
    # an event of this test's own with a hold and a refused one (tests forget their events).
    event, _, token = await hold_for(client, admin, capacity=10, qty=2)
    too_many = {"items": [{"tier_id": event["tiers"][0]["id"], "quantity": 9}]}
    r = await client.post(f"/api/events/{event['id']}/holds", json=too_many, headers=bearer(token))
    assert r.status_code in (409, 422), r.text
    dashboard = json.loads(DASHBOARD.read_text())
    assert any(v["type"] == "datasource" for v in dashboard["templating"]["list"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    queried = {m for e in exprs for m in re.findall(r"\bonsale_[a-z_]+", e)}
    _, samples = await scrape(client)
    exported = {name for name, _ in samples}
    assert queried and queried <= exported, queried - exported


async def test_request_id_is_echoed_or_made(client: Client) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123.x_Y"})
    assert r.headers["x-request-id"] == "abc-123.x_Y"
    for bad in ("has space", "x" * 65, "a/b", ""):
        r = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"]), bad
    r = await client.get("/no/such/page")
    assert r.status_code == 404 and r.headers["x-request-id"]


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


async def test_logs_carry_the_request_id_and_no_secrets(
    client: Client, admin: dict[str, str], json_lines: io.StringIO
) -> None:
    body, headers = signed("customer.created", {"id": "pi_x", "metadata": {}})
    headers["X-Request-ID"] = "webhook-req-1"
    r = await client.post("/api/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "webhook-req-1"
    await client.get("/api/events", headers=admin)
    records = lines(json_lines)
    ignored = [x for x in records if "needs nothing from us" in x["message"]]
    assert ignored and ignored[0]["request_id"] == "webhook-req-1"
    assert all({"time", "level", "logger", "message"} <= x.keys() for x in records)
    signature = headers["Stripe-Signature"].split("v1=")[1]
    text = json_lines.getvalue()
    for secret in (ADMIN_TOKEN, WEBHOOK_SECRET, signature):
        assert secret not in text
