"""``GET /metrics`` in the Prometheus text format, and the request wrapper that feeds it.

Two sources, so that several gateway processes (``onsale serve --workers N``) add up:

- what happens in a process (request latency, holds, webhook outcomes) is counted with
  ``prometheus_client``; with several workers ``onsale serve`` sets
  ``PROMETHEUS_MULTIPROC_DIR`` and every worker's counts are summed at scrape time;
- what is shared (queue, inventory, committer) is already in Redis and is read, for every
  armed event, when Prometheus scrapes: each gateway answers the same numbers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from litestar import Response, get
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onsale import keys, logs
from onsale.checkout.stream import lag
from onsale.gateway.types import Deps
from onsale.mail import outbox

log = logging.getLogger("onsale.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: A scrape answers within this even when Redis does not (then ``onsale_redis_up`` is 0).
SCRAPE_TIMEOUT_S = 5.0

REQUEST_SECONDS = Histogram(
    "onsale_http_request_duration_seconds",
    "HTTP requests by route template, method and status class",
    ("route", "method", "status"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HOLDS = Counter("onsale_holds", "Holds created")
HOLD_FAILURES = Counter("onsale_hold_failures", "Hold requests refused, by reason", ("reason",))
WEBHOOKS = Counter("onsale_webhooks", "Stripe webhook deliveries, by outcome", ("outcome",))
# Present at 0 from the start: rate() needs a first sample, and dashboards a series.
for _outcome in (
    "confirmed",
    "failed",
    "duplicate",
    "ignored",
    "invalid_signature",
    "refunded",
    "mismatch",
):
    WEBHOOKS.labels(_outcome)
for _reason in ("sold_out", "insufficient_inventory", "limit_exceeded", "admission_required"):
    HOLD_FAILURES.labels(_reason)
#: The bot tax (onsale/botgate): new joins whose proof-of-work was spent, or refused why.
POW_JOINS = Counter("onsale_pow_joins", "New queue joins checked for a proof-of-work", ("outcome",))
for _outcome in ("spent", "pow_required", "pow_invalid"):
    POW_JOINS.labels(_outcome)

#: Routes not matched (404s, scanners) share one label: the raw path is never a label.
UNMATCHED = "<unmatched>"
_STATUS = {n: f"{n}xx" for n in range(1, 6)}


class RequestObserver:
    """ASGI wrapper: the ``X-Request-ID`` (taken or made, echoed, on log records) and the
    latency histogram. Hot path: one header scan, one clock pair, a cached histogram child."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._children: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = logs.valid_request_id(value.decode("latin-1"))
                break
        rid = rid or logs.new_request_id()
        token = logs.request_id.set(rid)
        header = (b"x-request-id", rid.encode())
        status = 500  # what the client sees if nothing is sent

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("path_template") or UNMATCHED
            key = (route, scope["method"], _STATUS.get(status // 100, "other"))
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = REQUEST_SECONDS.labels(*key)
            child.observe(elapsed)
            logs.request_id.reset(token)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _family(
    kind: type[GaugeMetricFamily | CounterMetricFamily], name: str, doc: str, labels: list[str]
) -> Any:
    return kind(name, doc, labels=labels)


async def _event_rows(services: Any, event_id: str) -> tuple[str, Any, Any, Any, Any]:
    counts, levels, behind, rate = await asyncio.gather(
        # A scrape is one more tick: the cursor moves as the periodic tick would move it.
        services.room.advance(event_id),
        services.inventory.levels(event_id),
        lag(services.redis, event_id),
        services.redis.hget(keys.onsale(event_id), "admit_per_minute"),
    )
    return event_id, counts, levels, behind, rate


async def shared_families(services: Any) -> list[Metric]:
    """Queue, inventory and committer of every armed event, read from Redis now."""
    g, c = GaugeMetricFamily, CounterMetricFamily
    ev, tier = ["event"], ["event", "tier"]
    fams = {
        "waiting": _family(g, "onsale_queue_waiting", "Visitors waiting (or in the pre-queue)", ev),
        "active": _family(g, "onsale_queue_active", "Admitted buyers shopping now", ev),
        "admitted": _family(c, "onsale_queue_admitted", "Visitors admitted since the start", ev),
        "noshow": _family(c, "onsale_queue_noshow", "Admissions nobody used", ev),
        "rate": _family(g, "onsale_queue_admit_per_minute", "Configured admission rate", ev),
        "sold": _family(g, "onsale_tickets_sold", "Tickets sold", tier),
        "held": _family(g, "onsale_tickets_held", "Tickets in live holds", tier),
        "available": _family(g, "onsale_tickets_available", "Tickets left to hold", tier),
        "capacity": _family(g, "onsale_tickets_capacity", "Tickets on sale", tier),
        "pending": _family(g, "onsale_committer_pending", "Orders not yet in Postgres", ev),
        "oldest": _family(
            g, "onsale_committer_lag_seconds", "Age of the oldest order not in Postgres", ev
        ),
        "committed": _family(c, "onsale_committer_committed", "Orders written to Postgres", ev),
        "dead": _family(c, "onsale_committer_dead_letters", "Orders dead-lettered", ev),
        "batch": _family(g, "onsale_committer_batch_size", "Orders in the last batch", ev),
    }
    up = GaugeMetricFamily("onsale_redis_up", "1 if Redis answered this scrape")
    armed = GaugeMetricFamily("onsale_events_armed", "Events live in Redis (walked every second)")
    retired = GaugeMetricFamily(
        "onsale_events_retired", "Ended events retired from the armed set (kept, bounded)"
    )
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_S):
            # Armed events only: ended ones are retired (onsale/events/retirement.py), so a
            # scrape costs what the live events cost, not every event ever created.
            events = sorted(await services.redis.smembers(keys.ARMED_EVENTS))
            rows = await asyncio.gather(*(_event_rows(services, e) for e in events))
            retired.add_metric([], await services.redis.zcard(keys.RETIRED_EVENTS))
    except Exception as exc:  # the scrape still answers, and says Redis did not
        log.warning("metrics: Redis unavailable: %s", exc)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    armed.add_metric([], len(events))
    for event_id, counts, levels, behind, rate in rows:
        if counts is not None:
            fams["waiting"].add_metric([event_id], counts.waiting)
            fams["active"].add_metric([event_id], counts.active)
            fams["admitted"].add_metric([event_id], counts.admitted)
            fams["noshow"].add_metric([event_id], counts.skipped + counts.noshow)
        if rate is not None:
            fams["rate"].add_metric([event_id], int(rate))
        for t in levels:
            for name in ("sold", "held", "available", "capacity"):
                fams[name].add_metric([event_id, t.tier_id], getattr(t, name))
        fams["pending"].add_metric([event_id], behind.pending)
        fams["oldest"].add_metric([event_id], behind.oldest_ms / 1000)
        fams["committed"].add_metric([event_id], behind.committed)
        fams["dead"].add_metric([event_id], behind.dead)
        fams["batch"].add_metric([event_id], behind.batch)
    return [up, armed, retired, *fams.values()]


def process_text() -> bytes:
    """This process's counters, or every worker's summed in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


#: Postgres is asked for the outbox with a short deadline: a slow database must not hold
#: the scrape, and a down one only leaves the outbox out of it.
OUTBOX_TIMEOUT_S = 1.0


async def outbox_families(services: Any) -> list[Metric]:
    """The e-mail outbox's depth and the age of its oldest unsent message, from Postgres;
    nothing when Postgres does not answer in time."""
    try:
        async with asyncio.timeout(OUTBOX_TIMEOUT_S):
            depth, age = await outbox.backlog(services.pool)
    except Exception as exc:
        log.warning("metrics: outbox unavailable: %s", exc)
        return []
    pending = GaugeMetricFamily("onsale_mail_outbox_pending", "E-mails in the outbox not yet sent")
    pending.add_metric([], depth)
    oldest = GaugeMetricFamily(
        "onsale_mail_outbox_oldest_seconds", "Age of the oldest unsent e-mail (0: none)"
    )
    oldest.add_metric([], age)
    return [pending, oldest]


async def render(services: Any) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    families = await asyncio.gather(shared_families(services), outbox_families(services))
    registry.register(_Families([*families[0], *families[1]]))
    return process_text() + generate_latest(registry)


@get("/metrics", include_in_schema=False)
async def metrics(services: Deps) -> Response[bytes]:
    """Unauthenticated, like /healthz: keep it off the public load balancer."""
    return Response(await render(services), media_type=CONTENT_TYPE)


ROUTES = [metrics]
