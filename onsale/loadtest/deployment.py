"""The deployment a load test drives: one started on this machine (embedded Redis and
Postgres, the Stripe emulator delivering signed webhooks, gateway processes, committers),
or an existing one named by URL and tokens."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from onsale.bench.figures import progress
from onsale.db import migrate
from onsale.embedded import EmbeddedStripe
from onsale.servers import committer, gateway_settings, onsale_serve, stop_all, stores

WEBHOOK_SECRET = "whsec_onsale_loadtest"


class Deployment:
    """Where the load goes, and what the checks may read."""

    def __init__(
        self,
        base: str,
        admin: str,
        stripe_url: str | None,
        stripe_key: str | None,
        redis_url: str | None,
        database_url: str | None,
    ) -> None:
        self.base, self.admin = base, admin
        self.stripe_url, self.stripe_key = stripe_url, stripe_key
        self.redis_url, self.database_url = redis_url, database_url


def settings(redis_url: str, database_url: str, stripe_url: str) -> dict[str, str]:
    """A gateway under load (:func:`onsale.servers.gateway_settings`) whose buyers pay at
    the Stripe emulator, which delivers signed webhooks."""
    return gateway_settings(redis_url, database_url) | {
        "ONSALE_STRIPE_SECRET_KEY": EmbeddedStripe.SECRET_KEY,
        "ONSALE_STRIPE_PUBLISHABLE_KEY": EmbeddedStripe.PUBLISHABLE_KEY,
        "ONSALE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ONSALE_STRIPE_API_BASE": stripe_url,
    }


@contextlib.contextmanager
def local(workers: int, changes: dict[str, str] | None = None) -> Iterator[Deployment]:
    """A whole deployment on this machine (see the module's docstring), its gateways'
    settings with ``changes``; committers are started per run (:func:`committers`)."""
    with (
        stores(None, None) as (redis_url, database_url),
        tempfile.TemporaryDirectory(prefix="onsale-loadtest-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        stripe = EmbeddedStripe(Path(tmp))
        stripe_url = stack.enter_context(stripe)
        asyncio.run(migrate.apply(database_url))
        env = settings(redis_url, database_url, stripe_url) | (changes or {})
        admin = env["ONSALE_ADMIN_TOKEN"]
        progress(f"starting {workers} gateway process(es) ...")
        with onsale_serve(env, workers) as (base, _):
            stripe.register_webhook(f"{base}/api/webhooks/stripe", WEBHOOK_SECRET)
            yield Deployment(
                base, admin, stripe_url, EmbeddedStripe.SECRET_KEY, redis_url, database_url
            )


@contextlib.contextmanager
def committers(args: argparse.Namespace, d: Deployment, event_id: str, out: Path) -> Iterator[None]:
    if args.target or not (d.redis_url and d.database_url):
        yield
        return
    urls = {"ONSALE_REDIS_URL": d.redis_url, "ONSALE_DATABASE_URL": d.database_url}
    procs = []
    with contextlib.ExitStack() as stack:
        for i in range(args.committers):
            log = stack.enter_context(open(out / f"committer-{i}.log", "wb"))
            procs.append(committer(urls, "--event", event_id, out=log))
        try:
            yield
        finally:
            stop_all(procs, timeout=30)


def limits(base: str, event_id: str, users: int) -> str | None:
    """One join before the crowd: a gateway that rate-limits this address says so in its
    ``RateLimit-*`` headers. The join is left at once. Returns the problem, or None."""
    r = httpx.post(f"{base}/api/events/{event_id}/queue", timeout=30)
    if r.status_code == 200:
        token = r.json().get("visitor_token", "")
        httpx.delete(
            f"{base}/api/events/{event_id}/queue",
            headers={"X-Visitor-Token": token},
            timeout=30,
        )
    elif r.status_code != 429:
        return None  # the run itself will show what is wrong
    limit = r.headers.get("RateLimit-Limit")
    if r.status_code != 429 and limit is None:
        return None  # exempt
    return (
        f"the gateway rate-limits this generator's address (joins: {limit or '?'} a minute "
        f"per client, for {users} simulated buyers); add the address the gateway sees for "
        "this machine to ONSALE_RATE_LIMIT_EXEMPT on the gateways, or pass "
        "--allow-rate-limited to measure the limiter"
    )
