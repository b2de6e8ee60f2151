"""The inventory engine: atomic multi-tier holds, release, confirm and expiry in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from onsale import keys
from onsale.inventory.models import (
    Confirmation,
    Hold,
    HoldRejected,
    Rejection,
    ReleaseOutcome,
    TierLevel,
    TierSpec,
)
from onsale.scripts import Batches, ScriptClient

Items = Mapping[str, int] | Iterable[tuple[str, int]]


def _pairs(items: Items) -> list[tuple[str, int]]:
    """Merge repeated tiers so the scripts see each tier once."""
    merged: dict[str, int] = {}
    for tier, qty in items.items() if isinstance(items, Mapping) else items:
        merged[tier] = merged.get(tier, 0) + qty
    return list(merged.items())


def _flat(pairs: Sequence[tuple[str, int]]) -> list[Any]:
    out: list[Any] = [len(pairs)]
    for tier, qty in pairs:
        out += [tier, qty]
    return out


def _rejected(reply: Sequence[Any]) -> HoldRejected:
    # For promo_invalid the third field is why (onsale.inventory.PromoWhy), not a tier.
    tier = str(reply[2]) if len(reply) > 2 else ""
    available = int(reply[3]) if len(reply) > 3 else 0
    return HoldRejected(Rejection(reply[1]), tier, available)


#: Holds sent in one script call at most: each holds the event's shard some 25-50 us.
HOLDS_PER_CALL = 32


class Inventory(ScriptClient):
    """Typed async access to one Redis (or Redis Cluster) holding every event's inventory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holds = Batches(self._scripts, "hold", "holds", HOLDS_PER_CALL, self.now)

    async def arm(self, event_id: str, hold_seconds: int, tiers: Sequence[TierSpec]) -> None:
        """Load (or update) an event's tiers; held and sold counts are never reset."""
        args: list[Any] = [hold_seconds * 1000, len(tiers)]
        for t in tiers:
            args += [t.tier_id, t.capacity, t.per_order_limit, t.price]
        reply = await self._scripts.run("arm", keys.inventory_keys(event_id), args)
        if reply != "ok":
            raise _rejected(reply)
        if await self.redis.sadd(keys.ARMED_EVENTS, event_id):
            # Committers watch the generation: a new event's stream is read at once.
            await self.redis.incr(keys.ARMED_GENERATION)

    async def hold(
        self,
        event_id: str,
        items: Items,
        *,
        owner: str = "",
        owner_limit: int = 0,
        admitted: bool = False,
        hold_id: str | None = None,
        promo_code: str = "",
    ) -> Hold:
        """Take every item or none; raises :class:`HoldRejected` with the reason.

        With ``admitted``, ``owner`` is a waiting-room visitor whose admission must be live.
        With ``promo_code`` (a valid code's form, see ``onsale.promo.codes.normal``) the hold
        also takes one of the code's uses, or nothing (``promo_invalid``).
        """
        pairs = _pairs(items)
        if not pairs:
            raise HoldRejected(Rejection.INVALID_QUANTITY)
        hold_id = hold_id or str(uuid.uuid4())
        args = [hold_id, owner, owner_limit, "1" if admitted else "0", *_flat(pairs), promo_code]
        # The holds asked for in the same turn of the event loop go in one round trip.
        reply = await self._holds.call(keys.inventory_keys(event_id), args)
        if reply[0] != "ok":
            raise _rejected(reply)
        return Hold(
            hold_id, event_id, int(reply[2]), tuple(pairs), owner, int(reply[3]),
            promo_code if promo_code else "", int(reply[4]),
        )  # fmt: skip

    async def release(self, event_id: str, hold_id: str) -> ReleaseOutcome:
        reply = await self._scripts.run(
            "release", keys.inventory_keys(event_id), [self.now(), hold_id]
        )
        return ReleaseOutcome(reply)

    async def confirm(
        self,
        event_id: str,
        hold_id: str,
        order_id: str,
        payload: str | bytes,
        *,
        retake_items: Items | None = None,
        owner: str = "",
        owner_limit: int = 0,
        promo_code: str = "",
    ) -> Confirmation:
        """Hold -> sold, and the order onto the event's stream, in one script.

        Confirming the same order again is harmless (``duplicate``). With ``retake_items``
        a hold that expired takes those tickets again if they are free and ``owner`` may
        still have them (its per-tier limits and ``owner_limit``), and a use of
        ``promo_code`` (the order's) if it has one left (else ``promo_invalid``).
        """
        pairs = _pairs(retake_items) if retake_items is not None else []
        args = [
            self.now(), hold_id, order_id, payload, "1" if retake_items else "0", owner,
            owner_limit,
        ]  # fmt: skip
        tail = [promo_code] if promo_code and retake_items else []
        reply = await self._scripts.run(
            "confirm", keys.inventory_keys(event_id), args + _flat(pairs) + tail
        )
        if reply[0] == "ok":
            return Confirmation(order_id, str(reply[1]), retaken=reply[2] == "retaken")
        if reply[0] == "dup":
            return Confirmation(order_id, "")
        raise HoldRejected(Rejection(reply[1]))

    async def sweep(self, event_id: str, limit: int = 10_000) -> int:
        """Expire due holds of one event; returns how many went back to the pool."""
        return int(
            await self._scripts.run("sweep", keys.inventory_keys(event_id), [self.now(), limit])
        )

    async def levels(self, event_id: str) -> list[TierLevel]:
        """Capacity, held and sold per tier, in the order the tiers were armed."""
        inv: dict[str, str] = await self.redis.hgetall(keys.inventory(event_id))
        if not inv:
            return []
        return [
            TierLevel(
                tier_id=t,
                capacity=int(inv[f"{t}:cap"]),
                held=int(inv[f"{t}:held"]),
                sold=int(inv[f"{t}:sold"]),
                per_order_limit=int(inv[f"{t}:limit"]),
                price=int(inv[f"{t}:price"]),
            )
            for t in inv["tiers"].split()
        ]

    async def live_hold(self, event_id: str, hold_id: str) -> Hold | None:
        """A hold that is still recorded as live (it may be due for expiry)."""
        record: str | None = await self.redis.hget(keys.holds_data(event_id), hold_id)
        if record is None:
            return None
        expires, owner, rest = record.split("|", 2)
        words = rest.split()
        items = tuple((words[i], int(words[i + 1])) for i in range(0, len(words), 2))
        promo: str | None = await self.redis.hget(keys.holds_promo(event_id), hold_id)
        code, _, discount = (promo or "").partition("|")
        return Hold(hold_id, event_id, int(expires), items, owner, -1, code, int(discount or 0))

    async def holds_total(self, event_id: str) -> dict[str, int]:
        """Tickets in live holds per tier, summed from the hold records (for invariants)."""
        records: dict[str, str] = await self.redis.hgetall(keys.holds_data(event_id))
        totals: dict[str, int] = {}
        for record in records.values():
            words = record.split("|", 2)[2].split()
            for i in range(0, len(words), 2):
                totals[words[i]] = totals.get(words[i], 0) + int(words[i + 1])
        return totals
