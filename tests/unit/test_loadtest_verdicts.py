"""The load test's verdicts: SKIP is said in the first line and fails under --strict, the
limiter is named, and the checks over the API catch what buyers saw going wrong."""

from __future__ import annotations

from typing import Any

from onsale.loadtest.invariants import Check, passed
from onsale.loadtest.over_api import Order, verdicts
from onsale.loadtest.report import limiter_check, verdict

SKIP = Check("Postgres tickets == Redis sold", False, "needs --database-url", skipped=True)
OK = Check("no oversell", True, "sold 2 of 2")


def test_a_skip_is_named_first_and_fails_only_when_strict() -> None:
    assert passed([OK, SKIP]) and not passed([OK, SKIP], strict=True)
    line = verdict([OK, SKIP], strict=False)
    assert line.startswith("PASS") and "1 check(s) SKIPPED" in line and SKIP.name in line
    assert verdict([OK, SKIP], strict=True).startswith("FAIL")
    assert verdict([OK], strict=True) == "PASS: all 1 checks passed"
    assert verdict([OK, Check("x", False, "")], strict=False).startswith("FAIL: 1 of 2")


def test_the_limiter_is_named_and_fails_the_run_unless_allowed() -> None:
    errors = {"POST /api/events/[id]/queue rate_limited": 709, "POST /api/holds/[id] x": 1}
    refused = limiter_check(errors, allowed=False)
    assert not refused.ok and "709 joins/polls refused" in refused.detail
    assert "ONSALE_RATE_LIMIT_EXEMPT" in refused.detail
    assert limiter_check(errors, allowed=True).ok
    assert limiter_check({"POST /api/holds/[id] sold_out": 3}, allowed=False).ok


def _stats(sold: int, held: int = 0, confirmed: int = 2, revenue: int = 200) -> dict[str, Any]:
    tier = {"id": "t1", "capacity": 2, "sold": sold, "held": held, "available": 0}
    return {"tiers": [tier], "orders": {"confirmed": confirmed, "committed": confirmed},
            "revenue": revenue}  # fmt: skip


def _order(n: int, tickets: list[list[str]] | None = None) -> Order:
    mine = [[f"k{n}", "t1"]]
    o = Order(f"o{n}", "tok", 100, [{"tier_id": "t1", "quantity": 1}], tickets or mine)
    o.status, o.read_back = "confirmed", mine
    return o


def _failed(checks: list[Check]) -> set[str]:
    return {c.name for c in checks if c.verdict == "FAIL"}


NO_REPORT = (404, {"code": "not_found"})


def test_consistent_orders_pass_and_a_missing_report_is_a_skip() -> None:
    checks = verdicts(_stats(2), [_order(1), _order(2)], {"o1", "o2"}, NO_REPORT)
    assert not _failed(checks), checks
    assert [c.name for c in checks if c.skipped] == ["report == the confirmed orders"]


def test_a_sold_count_raised_behind_the_engine_fails() -> None:
    checks = verdicts(_stats(3, revenue=200), [_order(1), _order(2)], {"o1", "o2"}, NO_REPORT)
    assert _failed(checks) == {
        "stats sold == tickets buyers hold, per tier",
        "no oversell (stats: sold + held <= capacity)",
    }


def test_a_ticket_in_two_buyers_hands_fails() -> None:
    twice = _order(2)
    twice.read_back = [["k1", "t1"]]
    checks = verdicts(_stats(2), [_order(1), twice], {"o1", "o2"}, NO_REPORT)
    assert "buyers' tickets as the API shows them, no ticket twice" in _failed(checks)


def test_a_paid_order_left_pending_fails() -> None:
    pending = _order(2)
    pending.status, pending.read_back = "pending", []
    checks = verdicts(_stats(1, confirmed=1, revenue=100), [_order(1), pending], {"o1", "o2"},
                      NO_REPORT)  # fmt: skip
    assert _failed(checks) == {"every paid order confirmed, with the tickets it held"}


def test_a_report_that_disagrees_fails() -> None:
    report = (200, {"sales": {"tickets_sold": 1, "orders": 2, "revenue": 200}})
    checks = verdicts(_stats(2), [_order(1), _order(2)], {"o1", "o2"}, report)
    assert _failed(checks) == {"report == the confirmed orders"}


def test_a_late_payment_refunded_is_an_honest_end() -> None:
    late = _order(2)
    late.status, late.read_back = "refunded", []
    checks = verdicts(_stats(1, confirmed=1, revenue=100), [_order(1), late], {"o1", "o2"},
                      NO_REPORT)  # fmt: skip
    assert not _failed(checks), checks
    assert "1 refunded (paid after the hold ended)" in checks[2].detail
