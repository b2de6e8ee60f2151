"""Polls answered without Redis (onsale/queue/lobby.py): the same answers as the room's, a
position never better than the truth while the process's read is behind, the batched
"still here" marks keeping pollers in line, and no Redis call per poll over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import keys
from onsale.queue.lobby import Lobby, answer
from onsale.queue.room import State
from onsale.queue.tokens import PRE_GENERAL, Pass
from tests.integration.api_support import create, iso, join
from tests.integration.room_support import OPENS, Clock, room_for

Client = AsyncTestClient[Litestar]


def token_of(place: Any, visitor: str) -> Pass:
    return Pass(visitor, place.number, place.epoch)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    start=st.integers(-120_000, 60_000),
    joins=st.integers(1, 40),
    steps=st.lists(st.integers(0, 20_000), min_size=1, max_size=8),
    rate=st.integers(1, 600),
    capacity=st.integers(1, 60),
)
def test_answers_are_the_rooms_and_never_better_when_behind(
    redis_url: str, start: int, joins: int, steps: list[int], rate: int, capacity: int
) -> None:
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            clock = Clock(OPENS + start)
            event_id, room, _ = await room_for(client, clock, rate=rate, capacity=capacity)
            visitors = [f"v{i}" for i in range(joins)]
            tokens = {}
            for v in visitors:
                tokens[v] = token_of(await room.join(event_id, v), v)
            for step in steps:
                clock.now += step
                board = await room.board(event_id)
                assert board is not None
                for v in visitors:
                    mine = answer(board, clock.now, tokens[v])
                    truth = await room.status(event_id, v)
                    if truth.number:
                        tokens[v] = token_of(truth, v)  # the newest token, as buyers keep
                    if mine is None:
                        continue
                    assert mine == truth, (v, board)
                # Read, then the line moves on: the old read's positions are never better.
                stale = board
                clock.now += 5_000
                await room.advance(event_id)
                for v in visitors:
                    mine = answer(stale, clock.now, tokens[v])
                    truth = await room.status(event_id, v)
                    if mine is not None and mine.state is State.WAITING:
                        assert truth.state is not State.WAITING or (
                            (mine.position or 0) >= (truth.position or 0)
                        ), (v, mine, truth)
        finally:
            await client.aclose()

    asyncio.run(run())


async def test_marks_batched_by_the_lobby_keep_pollers_and_skip_the_gone(redis: Any) -> None:
    clock = Clock(OPENS)
    event_id, room, _ = await room_for(redis, clock, rate=60)
    await redis.hset(keys.onsale(event_id), "paused", 1)
    tokens = {v: token_of(await room.join(event_id, v), v) for v in ("a", "gone", "b")}
    lobby = Lobby(room)
    # While paused, "gone" stops polling; "a" and "b" keep polling as the route does: the
    # lobby answers "b" (and marks it), the room "a" (first: near the cursor, lobby.near).
    by_lobby = 0
    for _ in range(40):
        clock.now += 2_000
        board, now = await lobby.view(event_id)
        assert board is not None
        for v in ("a", "b"):
            place = answer(board, now, tokens[v])
            if place is None:
                assert v == "a"
                place = await room.status(event_id, v)
            else:
                by_lobby += 1
                lobby.seen(event_id, v, place, now)
            assert place.state is State.WAITING
        await lobby.flush()
    assert by_lobby == 40
    await redis.hset(keys.onsale(event_id), "paused", 0)
    clock.now += 3_000
    counts = await room.advance(event_id)
    assert counts is not None
    assert counts.admitted == 2 and counts.skipped == 1 and counts.active == 2
    assert (await room.status(event_id, "gone")).state is State.UNKNOWN
    assert (await room.status(event_id, "a")).state is State.ADMITTED
    await lobby.close()


async def test_pre_queue_polls_then_a_number_at_opening(redis: Any) -> None:
    clock = Clock(OPENS - 60_000)
    event_id, room, _ = await room_for(redis, clock, rate=60)
    place = await room.join(event_id, "early")
    assert (place.state, place.number) == (State.PREQUEUE, PRE_GENERAL)
    lobby = Lobby(room)
    board, now = await lobby.view(event_id)
    assert board is not None
    mine = answer(board, now, token_of(place, "early"))
    assert mine == await room.status(event_id, "early")
    lobby.seen(event_id, "early", mine, now)
    await lobby.flush()
    assert await redis.zscore(keys.queue_forget(event_id), "early")
    # Opened: the rank is drawn in Redis; the lobby cannot tell it, Redis does (once).
    clock.now = OPENS + 1
    assert answer(board, clock.now, token_of(place, "early")) is None
    drawn = await room.status(event_id, "early")
    assert drawn.state is State.WAITING and drawn.number == "1" and drawn.epoch > 0
    await lobby.close()


async def test_http_polls_of_a_waiting_line_make_no_redis_call_each(
    client: Client, admin: dict[str, str]
) -> None:
    event = await create(
        client, admin, onsale={"opens_at": iso(-1), "admit_per_minute": 1, "max_active": 1}
    )
    path = f"/api/events/{event['id']}/queue"
    places = [await join(client, event["id"]) for _ in range(30)]
    services = client.app.state.services
    calls: list[str] = []
    run = services.room.scripts.run

    async def counted(name: str, *args: Any) -> Any:
        calls.append(name)
        return await run(name, *args)

    services.room.scripts.run = counted
    try:
        for place in places[5:]:  # far enough from the cursor (lobby.near)
            services.room.lobby.forget_poll(event["id"], place["visitor_token"].split(".")[1])
            r = await client.get(path, headers={"X-Visitor-Token": place["visitor_token"]})
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "waiting"
            assert r.json()["position"] >= place["position"] - 1
    finally:
        del services.room.scripts.run
    assert "queue_status" not in calls and "queue_join" not in calls, calls
    assert calls.count("queue_board") <= 5  # the refreshes, a few a second


async def test_an_ended_rooms_visitor_state_expires_when_retired(redis_url: str, pool: Any) -> None:
    from onsale.events import retirement
    from onsale.queue.room import ENDED_ROOM_TTL_S, WaitingRoom, per_visitor_keys
    from tests.integration.commit_support import create_event, own_redis

    async with own_redis(redis_url) as mine:
        event = await create_event(pool, mine)
        room = WaitingRoom(mine)
        for i in range(5):
            await room.join(event.id, f"v{i}")
        await mine.hset(keys.onsale(event.id), "closes_ms", 1)  # the sale has closed
        assert await mine.ttl(keys.queue_visitors(event.id)) == -1
        assert event.id in await retirement.retire_ended(mine, pool)
        present = [k for k in per_visitor_keys(event.id) if await mine.exists(k)]
        assert keys.queue_visitors(event.id) in present
        for key in present:
            assert 0 < await mine.ttl(key) <= ENDED_ROOM_TTL_S, key
        # Its counters, schedule and stock stay (reports, a revived event's holds).
        for key in (keys.queue_state(event.id), keys.onsale(event.id)):
            assert await mine.ttl(key) == -1, key


async def test_a_sold_out_answer_leaves_no_mark(redis: Any) -> None:
    clock = Clock(OPENS + 1)
    event_id, room, _ = await room_for(redis, clock, capacity=1)
    place = await room.join(event_id, "late")
    await redis.hset(keys.inventory(event_id), "ga:sold", 1)  # the one ticket, sold
    lobby = Lobby(room)
    board, now = await lobby.view(event_id)
    assert board is not None
    mine = answer(board, now, token_of(place, "late"))
    assert mine is not None and mine.state is State.SOLD_OUT
    assert mine == await room.status(event_id, "late")
    lobby.seen(event_id, "late", mine, now)
    lobby.answered(event_id, "late", mine, now)
    await lobby.flush()
    assert lobby.too_fast(event_id, "late", now) == 0
    await lobby.close()


async def test_joins_on_unknown_events_start_no_refreshing(client: Client) -> None:
    import uuid

    lobby = client.app.state.services.room.lobby
    before = set(lobby._watches)
    for _ in range(5):
        r = await client.post(f"/api/events/{uuid.uuid4()}/queue")
        assert (r.status_code, r.json()["code"]) == (404, "event_not_found")
    assert set(lobby._watches) <= before


async def test_joins_asked_together_go_in_one_call_each_as_alone(redis: Any) -> None:
    clock = Clock(OPENS + 1)
    event_id, room, _ = await room_for(redis, clock, rate=1, capacity=1000)
    calls: list[str] = []
    run = room.scripts.run

    async def counted(name: str, *args: Any) -> Any:
        calls.append(name)
        return await run(name, *args)

    room.scripts.run = counted  # type: ignore[method-assign]
    visitors = [f"v{i}" for i in range(150)]
    places = await asyncio.gather(*(room.join(event_id, v) for v in visitors))
    # In the order asked, one place each; three calls (64 joins a call at most).
    assert [p.position for p in places] == list(range(1, 151))
    assert calls == ["queue_joins"] * 3
    # A join again (a poll, strict) in a batch is refused as alone: too fast.
    again = await asyncio.gather(room.join(event_id, "v3", strict=True), room.join(event_id, "new"))
    assert again[0].state is State.TOO_FAST and again[1].position == 151
