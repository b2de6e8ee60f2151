"""A thousand buyers at once: the inventory never oversells under real concurrency.

Every call goes through real EVALSHA on real Redis, from several clients (as several gateways
would), each with a pool of connections, so the scripts really interleave at the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from onsale import keys
from onsale.connections import redis_client
from onsale.inventory import (
    Confirmation,
    Hold,
    HoldRejected,
    Inventory,
    Rejection,
    ReleaseOutcome,
    TierSpec,
)
from onsale.scripts import source
from tests.integration.inventory_support import FUTURE_MS as T0
from tests.integration.inventory_support import Clock

pytestmark = pytest.mark.slow

HOLDERS = 1_200
CAPACITY = 100
HOLD_SECONDS = 600
CLIENTS = 4


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Several gateways' clients, as the gateway builds them: 50 connections each, so a
    thousand calls in flight queue for a connection and really overlap at the server."""
    made = [redis_client(redis_url, max_connections=50) for _ in range(CLIENTS)]
    yield made
    for client in made:
        await client.aclose()


async def settle(calls: Sequence[Awaitable[Any]]) -> list[Any]:
    """Run every call at once; engine refusals are results, anything else fails the test."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    unexpected = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, HoldRejected)
    ]
    assert not unexpected, unexpected[:3]
    return results


def split(results: list[Any]) -> tuple[list[Hold], list[HoldRejected]]:
    held = [r for r in results if isinstance(r, Hold)]
    rejected = [r for r in results if isinstance(r, HoldRejected)]
    assert len(held) + len(rejected) == len(results)
    return held, rejected


@pytest.mark.parametrize("flush", [False, True], ids=["scripts-loaded", "after-script-flush"])
async def test_exactly_capacity_holds_succeed(
    clients: list[aioredis.Redis], event: str, redis: aioredis.Redis, flush: bool
) -> None:
    inventories = [Inventory(client) for client in clients]
    await inventories[0].arm(event, HOLD_SECONDS, [TierSpec("ga", CAPACITY)])
    # Holds asked for together go in batches (``holds``, see scripts.Batches).
    sha = hashlib.sha1(source("holds").encode()).hexdigest()
    if flush:
        # The Inventories exist and the scripts ran (arm): now every in-flight EVALSHA meets
        # NOSCRIPT, and the engine must load the script and retry without losing a call.
        await redis.script_flush()
        assert await redis.script_exists(sha) == [False]

    calls = [inventories[i % CLIENTS].hold(event, {"ga": 1}) for i in range(HOLDERS)]
    held, rejected = split(await settle(calls))

    assert len(held) == CAPACITY
    assert len({h.hold_id for h in held}) == CAPACITY
    assert len(rejected) == HOLDERS - CAPACITY
    assert Counter((r.reason, r.tier_id, r.available) for r in rejected) == {
        (Rejection.SOLD_OUT, "ga", 0): HOLDERS - CAPACITY
    }
    [level] = await inventories[0].levels(event)
    assert (level.capacity, level.held, level.sold) == (CAPACITY, CAPACITY, 0)
    assert await inventories[0].holds_total(event) == {"ga": CAPACITY}
    assert await redis.script_exists(sha) == [True]


async def test_multi_tier_holds_are_all_or_nothing(
    clients: list[aioredis.Redis], event: str
) -> None:
    capacities = {"floor": 30, "seated": 20, "vip": 10}
    inventories = [Inventory(client) for client in clients]
    await inventories[0].arm(
        event, HOLD_SECONDS, [TierSpec(t, cap) for t, cap in capacities.items()]
    )
    rng = random.Random(1234)
    requests: list[dict[str, int]] = []
    for _ in range(HOLDERS):
        tiers = rng.sample(sorted(capacities), rng.randint(1, len(capacities)))
        requests.append({tier: rng.randint(1, 3) for tier in tiers})

    calls = [
        inventories[i % CLIENTS].hold(event, request, hold_id=f"h{i}")
        for i, request in enumerate(requests)
    ]
    results = await settle(calls)
    held, _ = split(results)
    assert held, "some holds must succeed"

    inventory = inventories[0]
    levels = {lv.tier_id: lv for lv in await inventory.levels(event)}
    taken: Counter[str] = Counter()
    for hold in held:
        taken.update(dict(hold.items))
    for tier, cap in capacities.items():
        assert levels[tier].sold == 0
        assert levels[tier].held == taken[tier] <= cap
    assert await inventory.holds_total(event) == {t: n for t, n in taken.items() if n}

    final = {tier: lv.available for tier, lv in levels.items()}
    for i, (request, result) in enumerate(zip(requests, results, strict=True)):
        record = await inventory.live_hold(event, f"h{i}")
        if isinstance(result, Hold):
            # The whole request is recorded, every tier of it: nothing partial.
            assert record is not None
            assert dict(record.items) == request
            continue
        assert record is None
        assert result.reason in (Rejection.SOLD_OUT, Rejection.INSUFFICIENT_INVENTORY)
        assert result.tier_id in request
        # Availability only fell during the race, so what the script saw was at least the
        # final availability, and short of what was asked.
        assert final[result.tier_id] <= result.available < request[result.tier_id]
        assert (result.reason is Rejection.SOLD_OUT) == (result.available == 0)


async def test_late_payments_and_new_holds_share_the_freed_tickets(
    clients: list[aioredis.Redis], event: str
) -> None:
    """Expired holds' late payments (retake) race fresh holders for the same tickets."""
    capacity = 50
    clock = Clock(T0)
    inventories = [Inventory(client, clock=clock) for client in clients]
    await inventories[0].arm(event, HOLD_SECONDS, [TierSpec("ga", capacity)])
    first = [(await inventories[0].hold(event, {"ga": 1})).hold_id for _ in range(capacity)]
    clock.now = T0 + HOLD_SECONDS * 1000  # every hold is due now, none swept yet

    calls: list[tuple[str, Awaitable[Any]]] = [
        ("late", inventories[i % CLIENTS].confirm(event, h, f"o{i}", "{}", retake_items={"ga": 1}))
        for i, h in enumerate(first)
    ]
    calls += [
        ("fresh", inventories[i % CLIENTS].hold(event, {"ga": 1})) for i in range(2 * capacity)
    ]
    random.Random(7).shuffle(calls)
    # Started one by one, each sent before the next starts: holds asked for in the same turn
    # would go out together after the payments (scripts.Batches), and the payments win all.
    started = []
    for _, call in calls:
        started.append(asyncio.ensure_future(call))
        await asyncio.sleep(0)
    results = await settle(started)
    late = [r for (kind, _), r in zip(calls, results, strict=True) if kind == "late"]
    fresh = [r for (kind, _), r in zip(calls, results, strict=True) if kind == "fresh"]

    retaken = [r for r in late if isinstance(r, Confirmation)]
    assert all(r.retaken and not r.duplicate for r in retaken)
    assert {r.reason for r in late if isinstance(r, HoldRejected)} <= {Rejection.SOLD_OUT}
    held, rejected = split(fresh)
    assert {r.reason for r in rejected} == {Rejection.SOLD_OUT}
    # The freed tickets went to someone, each to one: late payers and new holders together.
    assert len(retaken) + len(held) == capacity
    assert retaken and held, "both kinds must win some, or the race proved nothing"
    [level] = await inventories[0].levels(event)
    assert (level.held, level.sold) == (len(held), len(retaken))
    assert await clients[0].xlen(keys.orders_stream(event)) == len(retaken)


def outcome(result: Any) -> str:
    """One call's result as a short word, for the per-hold bookkeeping."""
    if isinstance(result, ReleaseOutcome):
        return f"release:{result.value}"
    if isinstance(result, Confirmation):
        kind = "dup" if result.duplicate else ("retaken" if result.retaken else "ok")
        return f"confirm:{result.order_id}:{kind}"
    if isinstance(result, HoldRejected):
        return f"refused:{result.reason.value}"
    return "sweep"


async def test_confirm_release_and_sweep_race_ends_each_hold_once(
    clients: list[aioredis.Redis], event: str
) -> None:
    """Every hold is confirmed twice by its order, once by a rival order, released twice and
    swept, all at once: it must end in exactly one final state, won by exactly one call."""
    per_batch = 150
    clock = Clock(T0)
    inventories = [Inventory(client, clock=clock) for client in clients]
    inventory = inventories[0]
    await inventory.arm(event, HOLD_SECONDS, [TierSpec("ga", 4 * per_batch)])
    hold_ms = HOLD_SECONDS * 1000
    due = [(await inventory.hold(event, {"ga": 2})).hold_id for _ in range(per_batch)]
    clock.now = T0 + hold_ms // 2
    live = [(await inventory.hold(event, {"ga": 2})).hold_id for _ in range(per_batch)]
    clock.now = T0 + hold_ms  # the first batch is due to the millisecond, the second is live

    calls: list[tuple[str, Awaitable[Any]]] = []
    for n, hold_id in enumerate(due + live):
        inv = inventories[n % CLIENTS]
        # A late payment for a due hold takes its tickets again (retake); a live one needs none.
        retake = {"ga": 2} if hold_id in due else None
        calls += [
            (hold_id, inv.confirm(event, hold_id, f"o-{hold_id}", "{}", retake_items=retake)),
            (hold_id, inv.confirm(event, hold_id, f"o-{hold_id}", "{}", retake_items=retake)),
            (hold_id, inv.confirm(event, hold_id, f"rival-{hold_id}", "{}")),
            (hold_id, inv.release(event, hold_id)),
            (hold_id, inv.release(event, hold_id)),
        ]
    calls += [("", inventories[i % CLIENTS].sweep(event, limit=7)) for i in range(40)]
    random.Random(99).shuffle(calls)
    results = await settle([call for _, call in calls])

    outcomes: dict[str, Counter[str]] = {h: Counter() for h in due + live}
    for (hold_id, _), result in zip(calls, results, strict=True):
        if hold_id:
            outcomes[hold_id][outcome(result)] += 1

    done = await clients[0].hgetall(keys.holds_done(event))
    assert await clients[0].hlen(keys.holds_data(event)) == 0
    assert await clients[0].zcard(keys.holds_expiry(event)) == 0
    assert set(done) == set(due + live)

    confirmed = 0
    for hold_id in due:
        order = f"o-{hold_id}"
        # Due before anyone touched it: it can never be released or confirmed as a hold,
        # only retaken by its own late payment, once.
        assert done[hold_id] == f"confirmed:{order}"
        seen = outcomes[hold_id]
        assert seen[f"confirm:{order}:retaken"] == 1
        assert seen[f"confirm:{order}:dup"] == 1
        assert seen["release:ok"] == 0
        assert set(seen) <= {
            f"confirm:{order}:retaken",
            f"confirm:{order}:dup",
            "refused:hold_expired",  # the rival, before the retake
            "refused:hold_used",  # the rival, after it
            "release:expired",
            "release:confirmed",
        }
        confirmed += 1
    for hold_id in live:
        seen = outcomes[hold_id]
        winners = [o for o in seen if o == "release:ok" or o.endswith(":ok")]
        assert len(winners) == 1 and seen[winners[0]] == 1, seen
        [winner] = winners
        if winner == "release:ok":
            assert done[hold_id] == "released"
            # A payment for a released hold is refused like an expired one.
            expected = {"release:ok": 1, "release:released": 1, "refused:hold_expired": 3}
        elif winner == f"confirm:o-{hold_id}:ok":
            assert done[hold_id] == f"confirmed:o-{hold_id}"
            expected = {
                winner: 1,
                f"confirm:o-{hold_id}:dup": 1,
                "refused:hold_used": 1,  # the rival
                "release:confirmed": 2,
            }
            confirmed += 1
        else:
            assert done[hold_id] == f"confirmed:rival-{hold_id}"
            expected = {winner: 1, "refused:hold_used": 2, "release:confirmed": 2}
            confirmed += 1
        assert seen == Counter(expected), (hold_id, seen)

    [level] = await inventory.levels(event)
    assert (level.held, level.sold) == (0, 2 * confirmed)
    stream = await clients[0].xrange(keys.orders_stream(event))
    orders = [fields["order"] for _, fields in stream]
    assert len(orders) == len(set(orders)) == confirmed


async def test_holds_sent_together_answer_as_one_by_one(redis: aioredis.Redis) -> None:
    """Holds asked for in the same turn go to Redis in one script call (scripts.Batches):
    each still answers exactly as it would alone, its refusal its own, in order; a hold
    whose script fails (here a malformed promo code record) fails alone."""
    tiers = [TierSpec("a", 5, per_order_limit=2, price=1000), TierSpec("b", 3, price=500)]
    rng = random.Random(11)
    requests: list[tuple[str, dict[str, int], str, str]] = []
    for i in range(48):
        items = rng.choice([{"a": 1}, {"a": 2}, {"b": 1}, {"a": 1, "b": 1}, {"c": 1}, {"a": 3}])
        hold_id = "h5" if i == 9 else f"h{i}"  # one id again: duplicate_hold
        code = rng.choice(["", "", "TEN", "NOPE", "BAD"])  # 3 uses of TEN; BAD is broken
        requests.append((hold_id, items, f"o{i % 7}", code))

    def outcome(result: Any) -> tuple[Any, ...]:
        if isinstance(result, Hold):
            return ("held", result.hold_id, tuple(result.items), result.amount, result.discount)
        if isinstance(result, HoldRejected):
            return ("refused", result.reason, result.tier_id, result.available)
        return ("failed", type(result).__name__)

    async def hold(
        event_id: str, hold_id: str, items: dict[str, int], owner: str, code: str
    ) -> Any:
        try:
            return await inventory.hold(
                event_id, items, owner=owner, owner_limit=3, admitted=True, hold_id=hold_id,
                promo_code=code,
            )  # fmt: skip
        except (HoldRejected, aioredis.ResponseError) as exc:
            return exc

    inventory = Inventory(redis)
    together, alone = uuid4().hex, uuid4().hex
    try:
        for event_id in (together, alone):
            await inventory.arm(event_id, HOLD_SECONDS, tiers)
            await redis.hset(keys.promo(event_id), mapping={"TEN": "p|10|3|0|0|", "BAD": "x"})
            # Every owner admitted but o6, whose holds are refused (admission_ended).
            far = 2**50
            await redis.zadd(keys.queue_active(event_id), {f"o{i}": far for i in range(6)})
        calls_before = await _evalsha_calls(redis)
        batched = await asyncio.gather(*(hold(together, *r) for r in requests))
        calls = await _evalsha_calls(redis) - calls_before
        one_by_one = [await hold(alone, *r) for r in requests]
        assert [outcome(r) for r in batched] == [outcome(r) for r in one_by_one]
        kinds = Counter(outcome(r)[0] for r in batched)
        assert set(kinds) == {"held", "refused", "failed"}, kinds
        reasons = {r.reason for r in batched if isinstance(r, HoldRejected)}
        assert {Rejection.ADMISSION_ENDED, Rejection.PROMO_INVALID} <= reasons
        assert any(isinstance(r, Hold) and r.discount for r in batched)
        assert calls <= 2, f"{len(requests)} holds took {calls} script calls"
        assert await inventory.levels(together) == await inventory.levels(alone)
    finally:
        from tests.integration.inventory_support import forget

        await forget(redis, together)
        await forget(redis, alone)


async def _evalsha_calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
