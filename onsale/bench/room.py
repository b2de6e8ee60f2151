"""The waiting room ``onsale bench queue`` polls: its fill and its measurement.

A million visitors placed in batches by ``queue_fill.lua``, then what Redis holds for them
(bytes per visitor) and runs for them (commands per status poll), against their targets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from onsale import keys, signing
from onsale.bench.figures import progress
from onsale.connections import redis_client
from onsale.queue.room import WaitingRoom
from onsale.queue.tokens import VisitorTokens

TAG = "bench queue"


class Room(msgspec.Struct):
    """The waiting room the status polls ran against, as Redis holds it."""

    endpoint: str
    visitors: int
    #: MEMORY USAGE of the room's keys (every entry sampled), per visitor in it.
    redis_bytes_per_visitor: float
    #: Commands Redis ran during the status polls (INFO commandstats: every command, those
    #: inside scripts included, all the gateway's background work too), per poll.
    redis_calls_per_poll: float


#: The front of the line left out of the status polls (see ``still_waiting``).
FRONT = 2_000
#: Visitors per fill script (one round trip each).
FILL_BATCH = 2_000


async def fill(redis_url: str, key: str, event_id: str, count: int, path: Path) -> None:
    """Visitors already in the room, as the status polls need them: placed in batches by
    ``queue_fill.lua`` (each as a join from an uncounted client takes its place), with the
    tokens their joins would have given them (carrying their places)."""
    redis = redis_client(redis_url, max_connections=8)
    tokens, room = VisitorTokens(signing.load(key)), WaitingRoom(redis)
    issued = []
    for i in range(0, count, FILL_BATCH):
        batch = [tokens.new_id() for _ in range(min(FILL_BATCH, count - i))]
        places, epoch = await room.fill(event_id, batch)
        issued += [tokens.token(event_id, v, p, epoch) for v, p in zip(batch, places, strict=True)]
        if i % 100_000 == 0 and i:
            progress(f"  {i:,} in the room", TAG)
    await redis.aclose()
    path.write_text("\n".join(issued))


async def still_waiting(redis: Any, event_id: str, tokens: Path) -> None:
    """Keep in ``tokens`` the visitors :data:`FRONT` places or more past the cursor."""
    board = await WaitingRoom(redis).board(event_id)
    cursor = board.cursor if board else 0
    kept = [t for t in tokens.read_text().split() if int(t.split(".")[2]) > cursor + FRONT]
    tokens.write_text("\n".join(kept))


async def room_bytes(redis: Any, event_id: str) -> int:
    """MEMORY USAGE of every key of the room (its schedule and stock left out)."""
    total = 0
    for name in keys.queue_keys(event_id)[2:]:
        total += int(await redis.memory_usage(name, samples=0) or 0)
    return total


async def commands(redis: Any) -> int:
    """Commands Redis has run so far (INFO commandstats), less the INFO calls asking."""
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def room_line(room: Room) -> str:
    bytes_ok = "met" if room.redis_bytes_per_visitor <= 150 else "NOT met"
    calls_ok = "met" if room.redis_calls_per_poll <= 0.05 else "NOT met"
    return (
        f"room: {room.visitors:,} visitors, {room.redis_bytes_per_visitor:.1f} Redis bytes "
        f"each (target at most 150: {bytes_ok}), {room.redis_calls_per_poll:.4f} Redis "
        f"commands per poll (target at most 0.05: {calls_ok})"
    )
