"""The presale's line on real Redis, with an injected clock: its fair start, its access codes
counted under contention, and the general line after it."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onsale import keys
from onsale.queue import access, shuffle
from onsale.queue.room import State, WaitingRoom
from tests.integration.room_support import OPENS, Clock, room_for

PRESALE = OPENS - 30_000


async def presale_room(redis: Any, clock: Clock, **room: Any) -> tuple[str, WaitingRoom]:
    event_id, waiting_room, _ = await room_for(redis, clock, **room)
    await redis.hset(keys.onsale(event_id), "presale_ms", PRESALE)
    return event_id, waiting_room


async def add_code(redis: Any, event_id: str, code: str, max_uses: int, tiers: str = "") -> str:
    digest = access.digest(event_id, code)
    await redis.hset(
        keys.access_codes(event_id),
        mapping={f"{digest}:max": max_uses, f"{digest}:uses": 0, f"{digest}:tiers": tiers},
    )
    return digest


async def test_presale_shuffle_then_general_line_behind_it(redis: Any) -> None:
    clock = Clock(PRESALE - 20_000)
    event_id, room = await presale_room(redis, clock, rate=60)
    code = await add_code(redis, event_id, "FANS-FANS-FANS", 1000)
    fans = [f"fan-{i}" for i in range(40)]
    others = [f"other-{i}" for i in range(15)]
    for v in fans:
        place = await room.join(event_id, v, code_hash=code)
        assert place.state is State.PREQUEUE and place.line == "presale"
        assert place.eta_seconds == 20  # until the presale opens
    for v in others:
        place = await room.join(event_id, v)
        assert place.state is State.PREQUEUE and place.line == ""
        assert place.eta_seconds == 50  # until the general sale opens
    clock.now = PRESALE
    places = {v: await room.status(event_id, v) for v in fans}
    ranked = sorted(fans, key=lambda v: places[v].position or 0)
    # The presale's order is its own published shuffle, by a seed of its own.
    assert ranked == shuffle.order(shuffle.presale_seed("test-seed"), fans)
    assert ranked != shuffle.order("test-seed", fans)
    assert sorted(p.position or 0 for p in places.values()) == list(range(1, 41))
    # The presale's seed is out; the general sale's is not.
    assert await room.revealed_seeds([event_id], presale=True) == {
        event_id: shuffle.presale_seed("test-seed")
    }
    assert await room.revealed_seeds([event_id]) == {}
    for v in others:
        assert (await room.status(event_id, v)).state is State.PREQUEUE
    # A fan arriving during the presale is first come, first served: behind the shuffled.
    late = await room.join(event_id, "fan-late", code_hash=code)
    assert late.state is State.WAITING and late.position == 41 and late.line == "presale"
    # Ten seconds at 60 a minute: the first ten fans (in shuffled order) are admitted.
    clock.now = PRESALE + 10_000
    await room.advance(event_id)
    for v in ranked[:10]:
        place = await room.status(event_id, v)
        assert place.state is State.ADMITTED and place.line == "presale"
    assert (await room.status(event_id, ranked[10])).position == 1
    # (Paused from here: the order at the opening is seen whole, nobody admitted meanwhile.)
    await redis.hset(keys.onsale(event_id), "paused", 1)
    # At the general opening the presale's waiters keep their place ahead of the general
    # line, whose own shuffle follows them.
    clock.now = OPENS
    await room.advance(event_id)
    waiting = {v: await room.status(event_id, v) for v in [*ranked[10:], "fan-late", *others]}
    order = sorted(waiting, key=lambda v: waiting[v].position or 0)
    assert order[: len(ranked) - 10 + 1] == [*ranked[10:], "fan-late"]
    assert order[len(ranked) - 10 + 1 :] == shuffle.order("test-seed", others)
    assert [waiting[v].position for v in order] == list(range(1, len(order) + 1))
    assert all(waiting[v].line == "presale" for v in [*ranked[10:], "fan-late"])
    assert all(waiting[v].line == "" for v in others)


async def test_access_code_uses_never_pass_max_under_contention(redis: Any) -> None:
    clock = Clock(PRESALE - 5_000)
    event_id, _ = await presale_room(redis, clock)
    code = await add_code(redis, event_id, "MANY-MANY-MANY", 50)
    rooms = [WaitingRoom(redis, clock) for _ in range(4)]
    places = await asyncio.gather(
        *(rooms[i % 4].join(event_id, f"v{i}", code_hash=code) for i in range(200))
    )
    states = [p.state for p in places]
    assert states.count(State.PREQUEUE) == 50
    assert states.count(State.CODE_INVALID) == 150
    assert int(await redis.hget(keys.access_codes(event_id), f"{code}:uses")) == 50
    assert await redis.zcard(keys.queue_presale(event_id)) == 50
    # A refused join took nothing: no place, no binding.
    refused = [f"v{i}" for i, p in enumerate(places) if p.state is State.CODE_INVALID]
    assert not await redis.hexists(keys.queue_visitors(event_id), refused[0])
    assert not await redis.hexists(keys.access_visitors(event_id), refused[0])


async def test_a_code_binds_to_its_first_visitor(redis: Any) -> None:
    clock = Clock(PRESALE - 5_000)
    event_id, room = await presale_room(redis, clock)
    code = await add_code(redis, event_id, "ONCE-ONCE-ONCE", 1, tiers="vip")
    # Joined the general pre-queue first; the code moves the visitor to the presale's.
    assert (await room.join(event_id, "ada")).line == ""
    moved = await room.join(event_id, "ada", code_hash=code)
    assert moved.state is State.PREQUEUE and moved.line == "presale"
    assert not await redis.zscore(keys.queue_pre(event_id), "ada")
    # Again, and again with the code: the same place, no second use.
    for _ in range(3):
        again = await room.join(event_id, "ada", code_hash=code)
        assert again.line == "presale"
    assert (await room.join(event_id, "ada")).line == "presale"
    assert int(await redis.hget(keys.access_codes(event_id), f"{code}:uses")) == 1
    # Another visitor: used up. A code never made: the same answer.
    assert (await room.join(event_id, "bob", code_hash=code)).state is State.CODE_INVALID
    unknown = access.digest(event_id, "nope")
    assert (await room.join(event_id, "bob", code_hash=unknown)).state is State.CODE_INVALID
    # Admitted during the presale: the admission names the code's tiers.
    clock.now = PRESALE + 2_000
    await room.advance(event_id)
    place = await room.status(event_id, "ada")
    assert place.state is State.ADMITTED and place.tiers == ("vip",)
    # After the general opening a code is not needed, and not looked at.
    clock.now = OPENS + 1
    late = await room.join(event_id, "cy", code_hash=unknown)
    assert late.state is State.WAITING and late.line == ""


async def test_no_presale_codes_do_nothing(redis: Any) -> None:
    clock = Clock()
    event_id, room, _ = await room_for(redis, clock)
    code = access.digest(event_id, "ANY")
    place = await room.join(event_id, "ada", code_hash=code)
    assert place.state is State.PREQUEUE and place.line == ""
    assert not await redis.exists(keys.access_visitors(event_id))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    arrival=st.permutations([f"fan-{i}" for i in range(12)]),
    again=st.lists(st.integers(0, 11), max_size=10),
    general=st.integers(0, 5),
)
def test_presale_rank_owes_nothing_to_arrival(
    redis_url: str, arrival: list[str], again: list[int], general: int
) -> None:
    """Whatever the order fans arrive in, however often they join again, and whoever waits
    for the general sale: at the presale's opening the line is the published shuffle."""

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            clock = Clock(PRESALE - 10_000)
            event_id, room = await presale_room(client, clock)
            code = await add_code(client, event_id, "FAIR-FAIR-FAIR", 100)
            for i in range(general):
                await room.join(event_id, f"other-{i}")
            for v in arrival:
                await room.join(event_id, v, code_hash=code)
            for i in again:
                clock.now += 1
                await room.join(event_id, arrival[i], code_hash=code)
            clock.now = PRESALE
            places = {v: await room.status(event_id, v) for v in arrival}
            ranked = sorted(arrival, key=lambda v: places[v].position or 0)
            assert ranked == shuffle.order(shuffle.presale_seed("test-seed"), arrival)
            assert [places[v].position for v in ranked] == list(range(1, 13))
            assert int(await client.hget(keys.access_codes(event_id), f"{code}:uses")) == 12
        finally:
            await client.aclose()

    asyncio.run(run())
