"""The waiting room's bounds on real Redis, with an injected clock: joining again is a poll,
live places per client are capped, and per-visitor state leaves with the place."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onsale import keys
from onsale.queue import shuffle
from onsale.queue.room import State, WaitingRoom
from tests.integration.room_support import OPENS, Clock, poll_all, room_for

NET = "203.0.113.0"
LIVE = (State.PREQUEUE, State.WAITING, State.ADMITTED)


def key(event_id: str, name: str) -> str:
    return f"{keys.tag(event_id)}:q:{name}"


async def per_visitor_state(redis: Any, event_id: str) -> dict[str, int]:
    """How many entries each per-visitor structure of the room holds."""
    sizes = {}
    for name in ("pre", "active", "forget"):
        sizes[name] = await redis.zcard(key(event_id, name))
    for name in ("vis", "byseq", "seen", "adm", "places"):
        sizes[name] = await redis.hlen(key(event_id, name))
    sizes["line"] = await redis.llen(key(event_id, "line"))
    sizes["alive"] = await redis.strlen(key(event_id, "alive"))  # (bytes)
    return sizes


async def live_places(room: WaitingRoom, event_id: str, visitors: list[str]) -> int:
    places = await poll_all(room, event_id, visitors)
    return sum(p.state in LIVE for p in places.values())


# ---- joining again while holding a place is a poll ------------------------------------------


async def test_joining_again_with_a_place_is_a_throttled_poll(redis: Any) -> None:
    clock = Clock(OPENS + 1)
    event_id, room, _ = await room_for(redis, clock, rate=1)
    for i in range(200):
        joined = await room.join(event_id, f"v{i}")
    again = await room.join(event_id, "v199", strict=True)
    assert again.state is State.TOO_FAST
    assert 1 <= again.poll_after_seconds <= joined.poll_after_seconds
    clock.now += joined.poll_after_seconds * 1000
    same = await room.join(event_id, "v199", strict=True)
    assert same.state is State.WAITING and same.position == joined.position
    # A token without a place (Redis lost it, or the visitor left) is not polling: no throttle.
    assert (await room.join(event_id, "lost", strict=True)).position == 201
    await room.leave(event_id, "v0")
    assert (await room.join(event_id, "v0", strict=True)).position == 202


# ---- live places per client network ----------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cap=st.integers(1, 8),
    first=st.integers(0, 30),
    second=st.integers(0, 30),
    leaving=st.integers(0, 8),
    opened=st.booleans(),
)
def test_concurrent_joins_never_pass_the_cap(
    redis_url: str, cap: int, first: int, second: int, leaving: int, opened: bool
) -> None:
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            clock = Clock(OPENS + 1 if opened else OPENS - 60_000)
            event_id, room, _ = await room_for(client, clock, rate=1)

            def take(visitor: str) -> Any:
                return room.join(event_id, visitor, client=NET, cap=cap)

            batch = [f"a{i}" for i in range(first)]
            places = await asyncio.gather(*(take(v) for v in batch))
            taken = [v for v, p in zip(batch, places, strict=True) if p.state is not State.TOO_MANY]
            assert len(taken) == min(cap, first)
            # Leaves race a second batch of joins: whatever the interleaving, never past the cap.
            later = [f"b{i}" for i in range(second)]
            await asyncio.gather(
                *(room.leave(event_id, v) for v in taken[:leaving]),
                *(take(v) for v in later),
            )
            live = await live_places(room, event_id, batch + later)
            assert live <= cap
            # Refused exactly when the network holds its cap.
            assert ((await take("next")).state is State.TOO_MANY) == (live == cap)
            # Other networks, and uncounted (exempt) clients, are not affected.
            other = await room.join(event_id, "other", client="198.51.100.1", cap=cap)
            free = await room.join(event_id, "free", client="", cap=cap)
            assert other.state in LIVE and free.state in LIVE
        finally:
            await client.aclose()

    asyncio.run(run())


async def test_places_that_end_free_the_cap(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, rate=6000, hold_seconds=30)
    await redis.hset(keys.onsale(event_id), "paused", 1)

    async def take(visitor: str) -> State:
        return (await room.join(event_id, visitor, client=NET, cap=2)).state

    assert [await take(v) for v in ("a", "b", "c")] == [State.WAITING] * 2 + [State.TOO_MANY]
    # While paused, "b" stops polling: abandoned, its place ends when the cursor passes it.
    for _ in range(25):
        clock.now += 2_000
        await room.status(event_id, "a")
    await redis.hset(keys.onsale(event_id), "paused", 0)
    clock.now += 1_000
    assert (await room.status(event_id, "a")).state is State.ADMITTED
    assert await take("c") is State.WAITING
    assert await take("d") is State.TOO_MANY
    # An admission ends: early, when its buyer paid (confirm frees the slot), or at its time.
    await redis.zrem(keys.queue_active(event_id), "a")
    assert await take("d") is State.WAITING
    clock.now += 1_000
    assert (await room.status(event_id, "c")).state is State.ADMITTED
    assert await take("e") is State.TOO_MANY
    clock.now += 151_000  # hold_seconds + 120 s
    await room.advance(event_id)
    assert await take("e") in LIVE
    # The network's list keeps only live places: ended ones go at its next join ...
    assert await redis.hget(key(event_id, "places"), NET) == "e"
    # ... or at a tick, which drops the network once it holds none.
    await room.leave(event_id, "e")
    await room.advance(event_id)
    assert await redis.hlen(key(event_id, "places")) == 0


# ---- per-visitor state leaves with the place -------------------------------------------------

Step = tuple[str, int, int]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    visitors=st.integers(1, 30),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["join", "poll", "leave"]),
            st.integers(0, 29),
            st.integers(0, 120_000),
        ),
        max_size=80,
    ),
    start=st.integers(-1_800_000, 600_000),
)
def test_once_everyone_has_gone_the_room_holds_nothing_of_them(
    redis_url: str, visitors: int, steps: list[Step], start: int
) -> None:
    """Whatever happened (joins before or after opening, polls, leaves, admissions), once
    the visitors stop coming the ticks leave no per-visitor state behind."""
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            clock = Clock(OPENS + start)
            event_id, room, _ = await room_for(client, clock, rate=600, hold_seconds=60)
            ids = [f"v{i}" for i in range(visitors)]
            for v in ids:
                await room.join(event_id, v)
            for action, who, wait in steps:
                v = ids[who % visitors]
                clock.now += wait
                if action == "join":
                    await room.join(event_id, v)
                elif action == "poll":
                    await room.status(event_id, v)
                else:
                    await room.leave(event_id, v)
                await room.advance(event_id)
            # Everyone goes away; time passes past opening, the admissions' and the
            # "left" answers' lifetimes; the gateways' tick runs.
            for _ in range(3):
                clock.now = max(clock.now, OPENS) + 3_600_000
                await room.advance(event_id)
            assert await per_visitor_state(client, event_id) == dict.fromkeys(
                (
                    "pre",
                    "active",
                    "forget",
                    "vis",
                    "byseq",
                    "seen",
                    "adm",
                    "places",
                    "line",
                    "alive",
                ),
                0,
            )
        finally:
            await client.aclose()

    asyncio.run(run())


async def test_the_pre_queue_drops_the_long_gone_before_opening(redis: Any) -> None:
    clock = Clock(OPENS - 3_600_000)
    event_id, room, _ = await room_for(redis, clock, rate=1)
    visitors = [f"early-{i}" for i in range(30)]
    for v in visitors:
        await room.join(event_id, v)
    # Ten go away for twenty minutes; the others poll as told; the tick runs.
    for _ in range(40):
        clock.now += 30_000
        for v in visitors[10:]:
            await room.status(event_id, v)
        await room.advance(event_id)
    state = await per_visitor_state(redis, event_id)
    assert state["pre"] == state["vis"] == 20 and state["seen"] == 40  # alive-until, next poll
    assert (await room.status(event_id, "early-0")).state is State.UNKNOWN
    # Dropping them cost them nothing: back before opening, they rank as they would have.
    for v in visitors[:10]:
        assert (await room.join(event_id, v)).state is State.PREQUEUE
    clock.now = OPENS
    places = await poll_all(room, event_id, visitors)
    assert sorted(visitors, key=lambda v: places[v].position or 0) == shuffle.order(
        "test-seed", visitors
    )
