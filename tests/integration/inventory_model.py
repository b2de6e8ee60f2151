"""The inventory engine's semantics in plain Python, step for step with the Lua scripts.

The model keeps expired-but-unswept holds as live, exactly as Redis does, and mirrors the
scripts' lazy expiry: which due holds each call expires, and in which order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from onsale.inventory import Rejection, ReleaseOutcome

Items = tuple[tuple[str, int], ...]

#: hold.lua expires this many due holds on every call before it looks at availability.
LAZY_EXPIRY = 16
ALL = 1_000_000


@dataclass(frozen=True)
class Refusal:
    """A rejection as the engine reports it (``HoldRejected``'s fields)."""

    reason: Rejection
    tier_id: str = ""
    available: int = 0


@dataclass(frozen=True)
class Held:
    expires: int
    amount: int


@dataclass(frozen=True)
class Confirmed:
    retaken: bool


@dataclass(frozen=True)
class Duplicate:
    pass


@dataclass
class Tier:
    capacity: int
    limit: int
    price: int
    sold: int = 0


@dataclass
class LiveHold:
    expires: int
    owner: str
    items: Items


@dataclass
class Model:
    """One event's inventory: tiers, live holds (due or not), finished holds, owners, stream,
    and the waiting room's admissions (owner -> expires_ms) that holds may require."""

    now: int
    hold_ms: int = 0
    order: list[str] = field(default_factory=list)
    tiers: dict[str, Tier] = field(default_factory=dict)
    live: dict[str, LiveHold] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)
    stream: list[str] = field(default_factory=list)
    admissions: dict[str, int] = field(default_factory=dict)

    # -- derived state -------------------------------------------------------------------

    def held(self, tier: str) -> int:
        return sum(q for h in self.live.values() for t, q in h.items if t == tier)

    def available(self, tier: str) -> int:
        t = self.tiers[tier]
        return t.capacity - self.held(tier) - t.sold

    def held_totals(self) -> dict[str, int]:
        """What ``Inventory.holds_total`` sums from the live hold records."""
        totals: dict[str, int] = {}
        for h in self.live.values():
            for tier, qty in h.items:
                totals[tier] = totals.get(tier, 0) + qty
        return totals

    def due(self) -> list[str]:
        """Due hold ids in the order ZRANGEBYSCORE gives them: by expiry, then by id."""
        due = sorted((h.expires, hid) for hid, h in self.live.items() if h.expires <= self.now)
        return [hid for _, hid in due]

    # -- the scripts' shared helpers ----------------------------------------------------

    def _count(self, field: str, delta: int) -> None:
        """As HINCRBY then HDEL at zero or below."""
        value = self.owners.get(field, 0) + delta
        if value > 0:
            self.owners[field] = value
        else:
            self.owners.pop(field, None)

    def _add_owner(self, owner: str, items: Items, sign: int) -> None:
        if owner:
            for tier, qty in items:
                self._count(f"{owner} {tier}", sign * qty)
            self._count(owner, sign * sum(q for _, q in items))

    def _over_limit(self, owner: str, owner_limit: int, items: Items) -> Refusal | None:
        """An owner's tickets, held and bought, against each tier's limit and in all."""
        if not owner:
            return None
        for tier, qty in items:
            limit = self.tiers[tier].limit if tier in self.tiers else 0
            used = self.owners.get(f"{owner} {tier}", 0)
            if limit > 0 and used + qty > limit:
                return Refusal(Rejection.LIMIT_EXCEEDED, tier, limit - used)
        used = self.owners.get(owner, 0)
        if owner_limit > 0 and used + sum(q for _, q in items) > owner_limit:
            return Refusal(Rejection.LIMIT_EXCEEDED, "", owner_limit - used)
        return None

    def _finish(self, hold_id: str, state: str) -> None:
        hold = self.live.pop(hold_id)
        self._add_owner(hold.owner, hold.items, -1)
        self.done[hold_id] = state

    def expire(self, limit: int) -> int:
        due = self.due()[:limit]
        for hold_id in due:
            self._finish(hold_id, "expired")
        return len(due)

    def _shortage(self, items: Items) -> Refusal | None:
        for tier, qty in items:
            if tier not in self.tiers:
                return Refusal(Rejection.UNKNOWN_TIER, tier)
            available = self.available(tier)
            if available <= 0:
                return Refusal(Rejection.SOLD_OUT, tier)
            if available < qty:
                return Refusal(Rejection.INSUFFICIENT_INVENTORY, tier, available)
        return None

    # -- the scripts ---------------------------------------------------------------------

    def arm(self, hold_ms: int, tiers: Sequence[tuple[str, int, int, int]]) -> Refusal | None:
        """``tiers``: (tier_id, capacity, per_order_limit, price) in arm order."""
        for tier, capacity, _, _ in tiers:
            taken = self.held(tier) + self.tiers[tier].sold if tier in self.tiers else 0
            if capacity < taken:
                return Refusal(Rejection.CAPACITY_BELOW_TAKEN, tier, taken)
        for tier, capacity, limit, price in tiers:
            sold = self.tiers[tier].sold if tier in self.tiers else 0
            self.tiers[tier] = Tier(capacity, limit, price, sold)
        self.hold_ms = hold_ms
        self.order = [tier for tier, _, _, _ in tiers]
        return None

    def _request_refusal(self, items: Items, owner: str, owner_limit: int) -> Refusal | None:
        """The checks hold.lua makes before its lazy expiry."""
        for tier, qty in items:
            if qty < 1:
                return Refusal(Rejection.INVALID_QUANTITY, tier)
            if tier not in self.tiers:
                return Refusal(Rejection.UNKNOWN_TIER, tier)
            limit = self.tiers[tier].limit
            if 0 < limit < qty:
                return Refusal(Rejection.LIMIT_EXCEEDED, tier, limit)
        over = self._over_limit(owner, owner_limit, items)
        # As the script does: due holds are expired before an owner is refused.
        if over and self.expire(ALL) > 0:
            over = self._over_limit(owner, owner_limit, items)
        return over

    def hold(
        self, hold_id: str, items: Items, owner: str, owner_limit: int, admitted: bool
    ) -> Held | Refusal:
        if not self.hold_ms:
            return Refusal(Rejection.UNKNOWN_EVENT)
        if admitted and self.admissions.get(owner, 0) <= self.now:
            return Refusal(Rejection.ADMISSION_ENDED)
        if hold_id in self.live or hold_id in self.done:
            return Refusal(Rejection.DUPLICATE_HOLD)
        refusal = self._request_refusal(items, owner, owner_limit)
        if refusal:
            return refusal
        self.expire(LAZY_EXPIRY)
        short = self._shortage(items)
        # Before answering "no" the script expires every due hold and looks again.
        if short and self.expire(ALL) > 0:
            short = self._shortage(items)
        if short:
            return short
        expires = self.now + self.hold_ms
        self.live[hold_id] = LiveHold(expires, owner, items)
        self._add_owner(owner, items, 1)
        return Held(expires, sum(q * self.tiers[t].price for t, q in items))

    def release(self, hold_id: str) -> ReleaseOutcome:
        hold = self.live.get(hold_id)
        if hold is not None:
            expired = hold.expires <= self.now
            self._finish(hold_id, "expired" if expired else "released")
            return ReleaseOutcome.EXPIRED if expired else ReleaseOutcome.RELEASED
        state = self.done.get(hold_id)
        if state is None:
            return ReleaseOutcome.NOT_FOUND
        return ReleaseOutcome(state.split(":", 1)[0])

    def confirm(
        self,
        hold_id: str,
        order_id: str,
        retake: Items | None,
        owner: str = "",
        owner_limit: int = 0,
    ) -> Confirmed | Duplicate | Refusal:
        confirmed = f"confirmed:{order_id}"
        hold = self.live.get(hold_id)
        if hold is not None:
            if hold.expires > self.now:
                # Bought tickets keep counting against the owner: no owner change here.
                del self.live[hold_id]
                for tier, qty in hold.items:
                    self.tiers[tier].sold += qty
                return self._append(hold_id, confirmed, hold.owner, retaken=False)
            self._finish(hold_id, "expired")
        state = self.done.get(hold_id)
        if state == confirmed:
            return Duplicate()
        if state is not None and state.startswith("confirmed:"):
            return Refusal(Rejection.HOLD_USED)
        if not retake:
            return Refusal(Rejection.HOLD_EXPIRED)
        if any(qty < 1 for _, qty in retake):
            return Refusal(Rejection.INVALID_QUANTITY)
        self.expire(ALL)
        # The owner's tickets went back with the hold: taking them again counts again.
        over = self._over_limit(owner, owner_limit, retake)
        if over:
            return Refusal(over.reason)
        short = self._shortage(retake)
        if short:
            return Refusal(short.reason)
        for tier, qty in retake:
            self.tiers[tier].sold += qty
        self._add_owner(owner, retake, 1)
        return self._append(hold_id, confirmed, owner, retaken=True)

    def _append(self, hold_id: str, confirmed: str, owner: str, *, retaken: bool) -> Confirmed:
        self.done[hold_id] = confirmed
        self.admissions.pop(owner, None)  # the buyer is done: the checkout slot is free
        self.stream.append(confirmed.split(":", 1)[1])
        return Confirmed(retaken)

    def sweep(self, limit: int) -> int:
        return self.expire(limit)
