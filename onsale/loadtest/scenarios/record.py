"""What a load test's buyers saw, recorded for the run's summary and checks, and the run's
configuration; in Locust's distributed mode, the messages that carry both between the master
and its workers (the configuration out before any buyer starts, the record back in each
worker's reports), and ``codes.json``, written by the master or a standalone run.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # with locust; only Locust runs this
from locust import events


class Config:
    """The run's configuration: from the environment, or from the master (distributed)."""

    FIELDS = ("event_id", "tiers", "opens_at", "stripe_url", "stripe_key")

    def __init__(self) -> None:
        self.event_id = os.environ.get("LOADTEST_EVENT_ID", "")
        self.tiers = [t for t in os.environ.get("LOADTEST_TIERS", "").split(",") if t]
        self.opens_at = float(os.environ.get("LOADTEST_OPENS_AT", "0") or 0)
        self.stripe_url = os.environ.get("LOADTEST_STRIPE_URL", "").rstrip("/")
        self.stripe_key = os.environ.get("LOADTEST_STRIPE_KEY", "")

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def update(self, data: dict[str, Any]) -> None:
        for name in self.FIELDS:
            if name in data:
                setattr(self, name, data[name])


CONFIG = Config()
OUT = os.environ.get("LOADTEST_OUT", "")
REQUESTS_LOG = os.environ.get("LOADTEST_REQUESTS", "")

#: Error codes (the ``code`` of error bodies, or ``http_<status>``) by endpoint name.
CODES: Counter[str] = Counter()
#: Buyers finished (bought, sold out, or gave up), to end the run when all are.
FINISHED = 0
#: Rough completion counters for the run's own summary.
OUTCOMES: Counter[str] = Counter()
#: Orders whose payment a buyer saw succeed, and those it then saw confirmed.
PAID: list[str] = []
CONFIRMED: list[str] = []
#: Every order a buyer checked out: id, token and the items it held; with the tickets it
#: received once confirmed, by order id. The checks read them back through the API.
ORDERS: dict[str, dict[str, Any]] = {}
#: Orders changed since this worker's last report to the master.
CHANGED: set[str] = set()
#: One line per request when ``LOADTEST_REQUESTS`` is set.
REQUESTS: list[str] = []


def finished(runner: Any, count: int) -> None:
    global FINISHED
    FINISHED += count
    options = runner.environment.parsed_options
    wanted = getattr(options, "num_users", None) if options else None
    if wanted and wanted <= FINISHED:
        # Every buyer is done: end the run now rather than at --run-time.
        # Not from this greenlet, which the quit kills.
        gevent.spawn_later(0.2, runner.quit)


@events.user_error.add_listener  # type: ignore[untyped-decorator]  # Locust's is untyped
def _count_exception(user_instance: Any, exception: Exception, tb: Any, **_: Any) -> None:
    CODES[f"exception {type(exception).__name__}"] += 1


@events.request.add_listener  # type: ignore[untyped-decorator]  # Locust's is untyped
def _log_request(name: str, response_time: float, response: Any, exception: Any, **kw: Any) -> None:
    if not REQUESTS_LOG:
        return
    status = int(getattr(response, "status_code", 0) or 0)
    start = kw.get("start_time") or time.time() - response_time / 1000
    failed = 1 if exception is not None else 0
    REQUESTS.append(f"{start:.4f} {response_time / 1000:.4f} {status} {failed} {name}\n")


def _seen() -> dict[str, Any]:
    return {
        "codes": dict(CODES),
        "outcomes": dict(OUTCOMES),
        "paid_orders": PAID,
        "confirmed_orders": CONFIRMED,
        "orders": list(ORDERS.values()),
    }


def _merge(part: dict[str, Any]) -> None:
    """A worker's report, added to the master's own record."""
    CODES.update(part.get("codes", {}))
    OUTCOMES.update(part.get("outcomes", {}))
    PAID.extend(part.get("paid_orders", []))
    CONFIRMED.extend(part.get("confirmed_orders", []))
    ORDERS.update((o["order_id"], o) for o in part.get("orders", []))


@events.init.add_listener  # type: ignore[untyped-decorator]  # Locust's is untyped
def _distributed(environment: Any, **_: Any) -> None:
    from locust.runners import MasterRunner, WorkerRunner

    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message("onsale_config", lambda msg, **_: CONFIG.update(msg.data))
    if isinstance(runner, MasterRunner):
        runner.register_message(
            "onsale_finished", lambda msg, **_: finished(runner, msg.data["buyers"])
        )
        # Sent when the test starts, before the spawn messages on the same connections.
        events.test_start.add_listener(  # type: ignore[no-untyped-call]  # Locust's
            lambda **_: runner.send_message("onsale_config", CONFIG.as_dict())
        )


@events.report_to_master.add_listener  # type: ignore[untyped-decorator]  # Locust's is untyped
def _report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    """A worker sends what its buyers saw since its last report, then forgets it."""
    data["onsale"] = _seen() | {"orders": [ORDERS[o] for o in CHANGED]}
    CODES.clear()
    OUTCOMES.clear()
    del PAID[:], CONFIRMED[:]
    CHANGED.clear()


@events.worker_report.add_listener  # type: ignore[untyped-decorator]  # Locust's is untyped
def _received(client_id: str, data: dict[str, Any], **_: Any) -> None:
    _merge(data.get("onsale", {}))


@events.quitting.add_listener  # type: ignore[untyped-decorator]  # Locust's is untyped
def _write_codes(environment: Any, **_: Any) -> None:
    from locust.runners import WorkerRunner

    if OUT and not isinstance(environment.runner, WorkerRunner):
        Path(OUT, "codes.json").write_text(json.dumps(_seen(), indent=1, sort_keys=True))
    if REQUESTS_LOG:
        Path(REQUESTS_LOG).write_text("".join(REQUESTS))
