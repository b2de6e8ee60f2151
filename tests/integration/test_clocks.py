"""Gateways whose clocks are 30 s off Redis's: real ``onsale serve`` processes under
libfaketime, one ahead and one behind, next to one on time, all on the same Redis. Redis's
clock decides when a hold or an admission ends; no gateway's clock may cut either short or
stretch it, and an admission one gateway issues is good at the others."""

from __future__ import annotations

import contextlib
import glob
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

import httpx
import jwt
import pytest
from redis import Redis as SyncRedis

from onsale import keys, signing
from onsale.embedded import EmbeddedStripe, free_port
from onsale.queue.tokens import AdmissionTokens
from onsale.servers import environment, server
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.integration.api_support import BUYER, event, iso
from tests.integration.page_support import admission

SKEW_S = 30
#: Debian's libfaketime (package faketime, which .ci/run installs).
LIBFAKETIME = next(iter(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")), "libfaketime.so.1")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HOLD_SECONDS = 600


class Gateways(NamedTuple):
    ahead: str
    behind: str
    on_time: str
    key: str  # the signing key they share (PEM)


@pytest.fixture(scope="module")
def gateways(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str, stripe_url: str
) -> Iterator[Gateways]:
    logs = tmp_path_factory.mktemp("clocks")
    key = signing.generate_pem()
    settings = {
        "ONSALE_REDIS_URL": redis_url,
        "ONSALE_DATABASE_URL": database_url,
        "ONSALE_ADMIN_TOKEN": ADMIN_TOKEN,
        "ONSALE_SIGNING_KEY": key,
        "ONSALE_STRIPE_SECRET_KEY": EmbeddedStripe.SECRET_KEY,
        "ONSALE_STRIPE_PUBLISHABLE_KEY": EmbeddedStripe.PUBLISHABLE_KEY,
        "ONSALE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ONSALE_STRIPE_API_BASE": stripe_url,
    }
    env = environment(settings, inherit_settings=False)
    base_s = redis_offset_s(redis_url)
    urls = []
    with contextlib.ExitStack() as stack:
        for skew in (SKEW_S, -SKEW_S, 0):
            port = free_port()
            argv = [sys.executable, "-m", "onsale", "serve", "--port", str(port)]
            # The whole process's clock, as a host with a drifting clock has it: time.time(),
            # datetime.now() and the JWT library's checks alike. libfaketime preloaded into
            # the gateway itself (the faketime command forks it, and stopping the command
            # left the gateway running).
            shifted = env | {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": f"{base_s + skew:+d}s"}
            log = logs / f"gateway{skew:+d}.log"
            started = server(argv, shifted if skew else env, port, "/readyz", log)
            urls.append(stack.enter_context(started).url)
            # The gateway's own clock (its Date header) is off Redis's as asked.
            said = parsedate_to_datetime(httpx.get(urls[-1] + "/readyz").headers["date"])
            off = said.timestamp() - redis_now_s(redis_url)
            assert abs(off - skew) < 5, f"gateway{skew:+d}'s clock is {off:+.0f} s off"
        yield Gateways(urls[0], urls[1], urls[2], key)


def redis_now_s(redis_url: str) -> float:
    client = SyncRedis.from_url(redis_url)
    try:
        seconds, micros = client.time()
    finally:
        client.close()
    return float(seconds + micros / 1e6)


def redis_offset_s(redis_url: str) -> int:
    """Redis's clock less the host's real one, in whole seconds: 0, unless this whole run is
    under faketime too (``make test-shifted``), whose offset a child's own faketime would
    otherwise replace."""
    real = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env={k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")},
        capture_output=True,
        text=True,
        check=True,
    )
    return round(redis_now_s(redis_url) - float(real.stdout))


async def redis_ms(redis: Any) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def paid_event(base: str) -> dict[str, Any]:
    body = event(
        tiers=[{"name": "GA", "price": 4500, "capacity": 100, "per_order_limit": 6}],
        onsale={"opens_at": iso(-1), "admit_per_minute": 60_000, "hold_seconds": HOLD_SECONDS},
    )
    r = httpx.post(f"{base}/api/events", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def hold(base: str, event: dict[str, Any], token: str, qty: int = 1) -> httpx.Response:
    body = {"items": [{"tier_id": event["tiers"][0]["id"], "quantity": qty}]}
    return httpx.post(
        f"{base}/api/events/{event['id']}/holds",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def checkout(base: str, hold_id: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/holds/{hold_id}/checkout",
        json=BUYER,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


async def expire_hold_at(redis: Any, event_id: str, hold_id: str, at_ms: int) -> None:
    """Move a hold's end (its record and the expiry index, as hold.lua writes them)."""
    record = await redis.hget(keys.holds_data(event_id), hold_id)
    assert record is not None
    _, rest = record.split("|", 1)
    await redis.hset(keys.holds_data(event_id), hold_id, f"{at_ms}|{rest}")
    await redis.zadd(keys.holds_expiry(event_id), {hold_id: at_ms}, xx=True)


def epoch_ms(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def visitor_of(token: str) -> str:
    sub: str = jwt.decode(token, options={"verify_signature": False})["sub"]
    return sub


async def test_a_hold_ends_at_redis_time_whatever_the_gateway_clock(
    gateways: Gateways, redis: Any
) -> None:
    ev = paid_event(gateways.on_time)
    # Taken at a fast gateway: it ends HOLD_SECONDS after Redis's now, not its own.
    before = await redis_ms(redis)
    r = hold(gateways.ahead, ev, admission(gateways.ahead, ev["id"]))
    assert r.status_code == 201, r.text
    after = await redis_ms(redis)
    ends_ms = epoch_ms(r.json()["expires_at"])
    assert before + HOLD_SECONDS * 1000 - 1000 <= ends_ms <= after + HOLD_SECONDS * 1000

    # Ten seconds left by Redis's clock: the fast gateway (which reads 20 s past the end)
    # still checks it out.
    hold_id = r.json()["hold_id"]
    await expire_hold_at(redis, ev["id"], hold_id, await redis_ms(redis) + 10_000)
    r = checkout(gateways.ahead, hold_id)
    assert r.status_code == 201, r.text

    # Just ended by Redis's clock: the slow gateway (which reads 30 s left) refuses it.
    r = hold(gateways.behind, ev, admission(gateways.behind, ev["id"]))
    assert r.status_code == 201, r.text
    hold_id = r.json()["hold_id"]
    await expire_hold_at(redis, ev["id"], hold_id, await redis_ms(redis) - 1)
    r = checkout(gateways.behind, hold_id)
    assert (r.status_code, r.json().get("code")) == (409, "hold_expired"), r.text


async def test_an_admission_ends_at_redis_time_whatever_the_gateway_clock(
    gateways: Gateways, redis: Any
) -> None:
    ev = paid_event(gateways.on_time)
    active = keys.queue_active(ev["id"])

    # Issued by the fast gateway (its "issued at" 30 s ahead of everyone's): good at the
    # one on time, and it names the end Redis has for the admission.
    token = admission(gateways.ahead, ev["id"])
    visitor = visitor_of(token)
    ends_ms = await redis.zscore(active, visitor)
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == int(ends_ms) // 1000
    r = hold(gateways.on_time, ev, token)
    assert r.status_code == 201, r.text

    # Ten seconds left by Redis's clock: the fast gateway (20 s past the end by its own)
    # lets the buyer hold.
    tokens = AdmissionTokens(signing.load(gateways.key))
    visitor = visitor_of(admission(gateways.on_time, ev["id"]))
    now = await redis_ms(redis)
    await redis.zadd(active, {visitor: now + 10_000}, xx=True)
    r = hold(gateways.ahead, ev, tokens.issue(ev["id"], visitor, now + 10_000, now // 1000))
    assert r.status_code == 201, r.text

    # Just over by Redis's clock: the slow gateway (30 s left by its own) refuses the hold.
    visitor = visitor_of(admission(gateways.on_time, ev["id"]))
    now = await redis_ms(redis)
    await redis.zadd(active, {visitor: now - 1}, xx=True)
    r = hold(gateways.behind, ev, tokens.issue(ev["id"], visitor, now - 1, now // 1000 - 60))
    assert (r.status_code, r.json().get("code")) == (403, "admission_ended"), r.text
    # Long over: every gateway says so, whatever its clock.
    for base in gateways[:3]:
        late = tokens.issue(ev["id"], visitor, now - 300_000, now // 1000 - 900)
        r = hold(base, ev, late)
        assert r.status_code == 403 and r.json()["code"] in (
            "admission_invalid",
            "admission_ended",
        ), r.text
