"""Preflight's verdicts that need no service: Stripe's keys and webhook endpoint against a
fake account (the emulator cannot list endpoints), Redis's settings read from INFO, and
the report's lines."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from onsale.checkout.stripe_calls import StripeCalls
from onsale.config import StripeSettings
from onsale.preflight import clocks, redis_checks, stripe_checks
from onsale.preflight.result import Check, Report, Status, fail, passed, warn

PUBLIC = "https://tickets.example.com"
ALL_EVENTS = list(stripe_checks.WEBHOOK_EVENTS)


def endpoint(url: str, events: list[str], status: str = "enabled") -> Any:
    return SimpleNamespace(id="we_1", url=url, enabled_events=events, status=status)


def account(endpoints: list[Any]) -> Any:
    async def list_async(params: dict[str, Any]) -> Any:
        return SimpleNamespace(data=endpoints)

    return SimpleNamespace(v1=SimpleNamespace(webhook_endpoints=SimpleNamespace(
        list_async=list_async)))  # fmt: skip


LIVE = StripeSettings(secret_key="sk_live_x", publishable_key="pk_live_x", webhook_secret="whsec_x")


@pytest.mark.parametrize(
    ("endpoints", "status", "says"),
    [
        ([endpoint(PUBLIC + "/api/webhooks/stripe", ALL_EVENTS)], Status.PASS, "we_1 enabled"),
        ([endpoint(PUBLIC + "/api/webhooks/stripe/", ["*"])], Status.PASS, "we_1 enabled"),
        ([endpoint("https://other.example.com/api/webhooks/stripe", ALL_EVENTS)], Status.FAIL,
         "no webhook endpoint for"),
        ([endpoint(PUBLIC + "/api/webhooks/stripe", ALL_EVENTS[:2])], Status.FAIL,
         "lacks charge.refunded"),
        ([endpoint(PUBLIC + "/api/webhooks/stripe", ALL_EVENTS, "disabled")], Status.FAIL,
         "is disabled"),
    ],
)  # fmt: skip
async def test_the_webhook_endpoint_for_the_public_url(
    endpoints: list[Any], status: Status, says: str
) -> None:
    check = await stripe_checks._endpoint(account(endpoints), StripeCalls(), LIVE, PUBLIC)
    assert check.status is status, check
    assert says in check.detail


async def test_a_public_url_stripe_cannot_reach_fails_before_asking() -> None:
    for url in ("http://tickets.example.com", "https://127.0.0.1:8000"):
        check = await stripe_checks._endpoint(account([]), StripeCalls(), LIVE, url)
        assert check.status is Status.FAIL and "Stripe cannot reach it" in check.detail


async def test_keys_of_two_modes_fail_and_the_secret_is_named() -> None:
    mixed = StripeSettings(secret_key="sk_live_x", publishable_key="pk_test_x")
    check = await stripe_checks._keys(account([]), StripeCalls(), mixed)
    assert check.status is Status.FAIL and "live mode" in check.detail
    check = await stripe_checks._keys(account([]), StripeCalls(), StripeSettings(secret_key="x"))
    assert check.status is Status.FAIL
    assert stripe_checks._secret(StripeSettings()).status is Status.FAIL
    assert stripe_checks._secret(StripeSettings(webhook_secret="abc")).status is Status.WARN


@pytest.mark.parametrize(
    ("info", "fsync", "status"),
    [
        ({"aof_enabled": 1}, "everysec", Status.PASS),
        ({"aof_enabled": 1}, "always", Status.PASS),
        ({"aof_enabled": 1}, "no", Status.WARN),
        ({"aof_enabled": 1}, None, Status.WARN),
        ({"aof_enabled": 0, "rdb_last_save_time": 1}, "everysec", Status.FAIL),
    ],
)
def test_persistence(info: dict[str, Any], fsync: str | None, status: Status) -> None:
    assert redis_checks._persistence(info, fsync).status is status


def test_eviction_and_version() -> None:
    assert redis_checks._eviction("noeviction").status is Status.PASS
    for policy in ("allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl"):
        assert redis_checks._eviction(policy).status is Status.FAIL
    assert redis_checks._version_check("7.2.4").status is Status.PASS
    assert redis_checks._version_check("6.2.14").status is Status.PASS
    assert redis_checks._version_check("6.0.9").status is Status.FAIL


def test_memory_for_the_expected_crowd() -> None:
    mib = 1024 * 1024
    memory = {"used_memory": 100 * mib, "maxmemory": 1124 * mib}  # 1 GiB free
    per = redis_checks.BYTES_PER_VISITOR
    fits = (1024 * mib) // per // 4
    assert redis_checks._headroom(memory, None).status is Status.PASS
    assert redis_checks._headroom(memory, fits).status is Status.PASS
    assert redis_checks._headroom(memory, fits * 3).status is Status.WARN
    assert redis_checks._headroom(memory, fits * 5).status is Status.FAIL
    no_limit = {"used_memory": 100 * mib, "maxmemory": 0, "total_system_memory": 0}
    assert redis_checks._headroom(no_limit, None).status is Status.WARN


def test_report_lines_and_summary() -> None:
    checks: list[Check] = [
        passed("redis.reachable", "answers"),
        warn("stripe.webhook", "cannot list", "none"),
        fail("redis.eviction", "allkeys-lru", "set noeviction"),
    ]
    report = Report(checks, seconds=0.25)
    lines = report.text().splitlines()
    assert lines[0] == "PASS  redis.reachable          answers"
    assert lines[2] == "FAIL  redis.eviction           allkeys-lru -> set noeviction"
    assert lines[-1] == "preflight: 1 PASS, 1 WARN, 1 FAIL in 0.2 s; failing: redis.eviction"
    assert report.failed and not Report(checks[:2]).failed


def test_redis_and_postgres_may_each_be_near_this_host_and_far_apart() -> None:
    assert clocks.between(0.8, -0.8).status is Status.FAIL
    assert clocks.between(40.2, 40.0).status is Status.PASS
