"""The waiting room on real Redis, with an injected clock."""

from __future__ import annotations

import asyncio
import math
import string
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onsale import keys
from onsale.queue import shuffle
from onsale.queue.room import State, WaitingRoom
from tests.integration.room_support import OPENS, Clock, poll_all, room_for


async def test_prequeue_then_fair_order_at_opening(redis: Any) -> None:
    clock = Clock()
    event_id, room, _ = await room_for(redis, clock, rate=1)
    visitors = [f"early-{i}" for i in range(50)]
    for v in visitors:
        place = await room.join(event_id, v)
        assert place.state is State.PREQUEUE and place.position is None
        assert place.eta_seconds == 60  # seconds until opening
    clock.now = OPENS
    places = await poll_all(room, event_id, visitors)
    # Position order is the published shuffle, not arrival order.
    ranked = sorted(visitors, key=lambda v: places[v].position)
    assert ranked == shuffle.order("test-seed", visitors)
    assert ranked != visitors
    assert sorted(p.position for p in places.values()) == list(range(1, 51))


async def test_first_come_first_served_after_opening(redis: Any) -> None:
    clock = Clock(OPENS + 1)
    event_id, room, _ = await room_for(redis, clock, rate=1)
    visitors = [f"late-{i}" for i in range(20)]
    positions = [(await room.join(event_id, v)).position for v in visitors]
    assert positions == list(range(1, 21))
    again = await room.join(event_id, visitors[3])  # one place per visitor
    assert again.position == 4


async def test_ten_thousand_concurrent_joins_get_distinct_places(redis: Any) -> None:
    clock = Clock(OPENS + 1)
    event_id, room, _ = await room_for(redis, clock, rate=1)
    places = await asyncio.gather(*(room.join(event_id, f"v{i}") for i in range(10_000)))
    assert sorted(p.position or 0 for p in places) == list(range(1, 10_001))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rate=st.integers(1, 600),
    steps=st.lists(st.integers(1, 4_000), min_size=1, max_size=15),
    max_active=st.integers(0, 40),
    capacity=st.integers(1, 80),
)
def test_admissions_follow_the_rate(
    redis_url: str, rate: int, steps: list[int], max_active: int, capacity: int
) -> None:
    """After t seconds, floor(rate * t) admitted (within 1), never past max_active or stock."""
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            clock = Clock(OPENS)
            event_id, room, _ = await room_for(
                client, clock, rate=rate, max_active=max_active, capacity=capacity
            )
            visitors = [f"v{i}" for i in range(60)]
            for v in visitors:
                await room.join(event_id, v)
            for step in steps:
                clock.now += step
                for v in visitors:  # everyone keeps polling: nobody abandons
                    await client.hset(keys.queue_keys(event_id)[6], v, clock.now + 10**9)
                counts = await room.advance(event_id)
                assert counts is not None
                elapsed = (clock.now - OPENS) / 60_000
                cap = min(len(visitors), capacity, max_active or len(visitors))
                expected = min(math.floor(rate * elapsed), cap)
                assert counts.active <= cap
                assert abs(counts.admitted - expected) <= 1, (counts, expected)
        finally:
            await client.aclose()

    asyncio.run(run())


async def test_metering_is_smooth_not_a_burst(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, rate=600)  # 10 per second
    visitors = [f"v{i}" for i in range(100)]
    for v in visitors:
        await room.join(event_id, v)
    admitted = []
    for _ in range(10):
        clock.now += 100
        counts = await room.advance(event_id)
        assert counts is not None
        admitted.append(counts.admitted)
    assert admitted == list(range(1, 11))  # one every 100 ms, not ten at once


async def test_max_active_and_expiry_free_slots(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, rate=6000, max_active=3, hold_seconds=60)
    visitors = [f"v{i}" for i in range(6)]
    for v in visitors:
        await room.join(event_id, v)
    clock.now += 5_000
    places = await poll_all(room, event_id, visitors)
    admitted = [v for v, p in places.items() if p.state is State.ADMITTED]
    assert len(admitted) == 3
    # Leaving frees a slot at once; the next in line is admitted at the next decision.
    await room.leave(event_id, admitted[0])
    clock.now += 1_000
    places = await poll_all(room, event_id, visitors)
    assert sum(p.state is State.ADMITTED for p in places.values()) == 3
    # Admissions expire (hold_seconds + 120 s): the slots go to the next ones in line.
    for _ in range(20):
        clock.now += 10_000
        await poll_all(room, event_id, visitors[4:])
    counts = await room.advance(event_id)
    assert counts is not None and counts.admitted == 6 and counts.active == 2


async def test_pause_and_rate_change_take_effect(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, rate=60)
    for i in range(100):
        await room.join(event_id, f"v{i}")
    cfg = keys.onsale(event_id)
    await redis.hset(cfg, "paused", 1)
    clock.now += 10_000
    counts = await room.advance(event_id)
    assert counts is not None and counts.admitted == 0
    place = await room.status(event_id, "v50")
    assert place.state is State.WAITING and place.eta_seconds is None
    await redis.hset(cfg, mapping={"paused": 0, "admit_per_minute": 600})
    clock.now += 2_000
    counts = await room.advance(event_id)
    assert counts is not None and counts.admitted == 20


async def test_abandoned_visitors_are_skipped_and_requeued(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, rate=60)
    await redis.hset(keys.onsale(event_id), "paused", 1)
    for v in ("a", "gone", "b"):
        await room.join(event_id, v)
    # While paused, "gone" stops polling; "a" and "b" keep polling as advised.
    for _ in range(30):
        clock.now += 2_000
        for v in ("a", "b"):
            await room.status(event_id, v)
    await redis.hset(keys.onsale(event_id), "paused", 0)
    for _ in range(3):
        clock.now += 2_000
        for v in ("a", "b"):
            await room.status(event_id, v)
    counts = await room.advance(event_id)
    assert counts is not None
    assert counts.admitted == 2 and counts.skipped == 1 and counts.active == 2
    # Their place ended, and with it their state; joining again is the back of the line.
    assert (await room.status(event_id, "gone")).state is State.UNKNOWN
    back = await room.join(event_id, "gone")
    assert back.state is State.WAITING and back.position == 1  # back of the (now empty) line


async def test_no_shows_expire_and_are_measured(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, rate=6000, hold_seconds=30)
    await room.join(event_id, "ghost")
    clock.now += 1_000
    counts = await room.advance(event_id)
    assert counts is not None and counts.active == 1  # admitted, but never comes back
    clock.now += 151_000
    counts = await room.advance(event_id)
    assert counts is not None
    assert (counts.active, counts.noshow, counts.no_show_rate) == (0, 1, 1.0)


async def test_sold_out_reaches_everyone_and_held_only_is_honest(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, inventory = await room_for(redis, clock, rate=60, capacity=2)
    for v in ("a", "b", "c"):
        await room.join(event_id, v)
    hold = await inventory.hold(event_id, {"ga": 2})
    clock.now += 10_000
    place = await room.status(event_id, "c")
    assert place.state is State.WAITING and place.note == "held_only"
    counts = await room.advance(event_id)
    assert counts is not None and counts.admitted == 0  # nothing to sell now: nobody admitted
    await inventory.confirm(event_id, hold.hold_id, "order-1", "{}")
    for v in ("a", "b", "c"):
        assert (await room.status(event_id, v)).state is State.SOLD_OUT


async def test_closed_after_closes_at(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, closes=OPENS + 60_000)
    await room.join(event_id, "a")
    clock.now = OPENS + 60_000
    assert (await room.status(event_id, "a")).state is State.CLOSED
    assert (await room.join(event_id, "late")).state is State.CLOSED


async def test_too_fast_polls_are_refused(redis: Any) -> None:
    clock = Clock(OPENS + 1)
    event_id, room, _ = await room_for(redis, clock, rate=1)
    for i in range(200):
        joined = await room.join(event_id, f"v{i}")
    assert joined.state is State.WAITING and joined.poll_after_seconds >= 2
    again = await room.status(event_id, "v199", strict=True)
    assert again.state is State.TOO_FAST and again.poll_after_seconds >= 1
    clock.now += joined.poll_after_seconds * 1000
    assert (await room.status(event_id, "v199", strict=True)).state is State.WAITING


async def test_poll_interval_grows_with_distance(redis: Any) -> None:
    clock = Clock(OPENS + 1)
    event_id, room, _ = await room_for(redis, clock, rate=60)
    for i in range(2000):
        await room.join(event_id, f"v{i}")
    near = await room.status(event_id, "v0")
    far = await room.status(event_id, "v1999")
    assert near.poll_after_seconds < far.poll_after_seconds
    assert far.eta_seconds is not None and far.eta_seconds >= 1999  # 1 per second


async def test_unknown_event(redis: Any) -> None:
    room = WaitingRoom(redis)
    assert (await room.join(str(uuid.uuid4()), "v")).state is State.UNKNOWN_EVENT


@settings(max_examples=30, deadline=None)
@given(
    early=st.lists(
        st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=16),
        unique=True,
        max_size=60,
    ),
    late=st.integers(0, 20),
    seed=st.text(min_size=0, max_size=32),
)
def test_fair_start_is_a_permutation_then_fifo(
    redis_url: str, early: list[str], late: int, seed: str
) -> None:
    """Every early visitor exactly once, in the published order; late ones after, FIFO."""
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            clock = Clock()
            event_id, room, _ = await room_for(client, clock, rate=1)
            await client.hset(keys.queue_keys(event_id)[2], "seed", seed)
            for v in early:
                assert (await room.join(event_id, v)).state is State.PREQUEUE
            clock.now = OPENS
            late_ids = [f"late:{i}" for i in range(late)]
            late_positions = [(await room.join(event_id, v)).position for v in late_ids]
            places = {v: (await room.status(event_id, v)).position for v in early}
            assert sorted(places.values()) == list(range(1, len(early) + 1))  # no gaps, no dups
            assert sorted(early, key=lambda v: places[v]) == shuffle.order(seed, early)
            assert late_positions == list(range(len(early) + 1, len(early) + late + 1))
        finally:
            await client.aclose()

    asyncio.run(run())
