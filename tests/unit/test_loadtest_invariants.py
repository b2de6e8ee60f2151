"""``onsale loadtest``'s invariant checker: passes a consistent state, and fails each
crafted inconsistent one for the reason it is inconsistent."""

from __future__ import annotations

from onsale.loadtest.invariants import State, TierState, check


def _tier(sold: int, held: int, tickets: int, capacity: int = 30) -> TierState:
    return TierState("t1", capacity, sold, held, tickets)


def test_the_checker_passes_a_consistent_state() -> None:
    checks = check(State([_tier(30, 0, 30)], pending=0, differences=[], payments=30))
    assert all(c.ok for c in checks), checks


def test_the_checker_fails_when_postgres_and_redis_disagree() -> None:
    checks = {c.name: c for c in check(State([_tier(30, 0, 31)], pending=0, differences=[]))}
    assert not checks["Postgres tickets == Redis sold, per tier"].ok
    assert not checks["no oversell in Postgres (tickets <= capacity)"].ok
    assert (
        "31 tickets > capacity 30" in checks["no oversell in Postgres (tickets <= capacity)"].detail
    )


def test_the_checker_fails_on_an_oversell_in_redis_a_lag_or_a_lost_order() -> None:
    checks = check(
        State([_tier(29, 2, 29)], pending=3, differences=["order x: no such order in Postgres"])
    )
    failed = {c.name for c in checks if not c.ok}
    assert failed == {
        "committer drained",
        "no oversell in Redis (sold+held <= capacity)",
        "every paid order confirmed exactly once, reconcile clean",
    }
