"""``onsale bench queue``'s hold_promo figures: slices joined into one run, and the cost line."""

from __future__ import annotations

from onsale.bench.harness import RunResult
from onsale.bench.queue import HOLD, HOLD_PROMO, Row, joined, promo_cost, promo_line


def test_slices_join_into_one_run() -> None:
    parts = [
        RunResult(started_at=10.0, finished_at=12.0, granted=200, attempts=201, latencies=[0.1]),
        RunResult(started_at=50.0, finished_at=51.0, granted=100, attempts=100, latencies=[0.2]),
    ]
    run = joined(parts)
    # The gap between the slices is not counted: 300 in 3 s, not in 41.
    assert run.elapsed == 3.0 and run.rate == 100.0
    assert run.attempts == 301 and run.latencies == [0.1, 0.2]


def _row(endpoint: str, rate: float, p50: float, script_us: float | None) -> Row:
    return Row(endpoint, 64, rate, p50, p50 * 4, 0.5, 0, script_us)


def test_promo_cost_is_the_ratio_of_times_per_request() -> None:
    rows = [_row(HOLD, 1000.0, 10.0, 20.0), _row(HOLD_PROMO, 950.0, 10.5, 24.0)]
    assert round(promo_cost(rows), 4) == round(1000 / 950, 4)
    line = promo_line(rows)
    assert line.startswith("hold_promo / hold cost: 1.053 per request (p50 1.050)")
    assert "target at most 1.10: met" in line and "in Redis 24.0 / 20.0 us" in line
    slow = [_row(HOLD, 1000.0, 10.0, None), _row(HOLD_PROMO, 800.0, 13.0, None)]
    assert "NOT met" in promo_line(slow) and "in Redis" not in promo_line(slow)
