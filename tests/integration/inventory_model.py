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

    def _add_owner(self, owner: str, delta: int) -> None:
        if owner:
            self.owners[owner] = self.owners.get(owner, 0) + delta

    def _finish(self, hold_id: str, state: str) -> None:
        hold = self.live.pop(hold_id)
        self._add_owner(hold.owner, -sum(q for _, q in hold.items))
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
        if owner and owner_limit > 0:
            total = sum(q for _, q in items)
            # As the script does: due holds are expired before an owner is refused.
            if self.owners.get(owner, 0) + total > owner_limit:
                self.expire(ALL)
            used = self.owners.get(owner, 0)
            if used + total > owner_limit:
                return Refusal(Rejection.LIMIT_EXCEEDED, "", owner_limit - used)
        return None

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
        self._add_owner(owner, sum(q for _, q in items))
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
        self, hold_id: str, order_id: str, retake: Items | None
    ) -> Confirmed | Duplicate | Refusal:
        confirmed = f"confirmed:{order_id}"
        hold = self.live.get(hold_id)
        if hold is not None:
            if hold.expires > self.now:
                # Bought tickets keep counting against the owner: no owner change here.
                del self.live[hold_id]
                for tier, qty in hold.items:
                    self.tiers[tier].sold += qty
                return self._append(hold_id, confirmed, retaken=False)
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
        short = self._shortage(retake)
        if short:
            return Refusal(short.reason)
        # As the script does: retaken tickets are not counted against the hold's owner again.
        for tier, qty in retake:
            self.tiers[tier].sold += qty
        return self._append(hold_id, confirmed, retaken=True)

    def _append(self, hold_id: str, confirmed: str, *, retaken: bool) -> Confirmed:
        self.done[hold_id] = confirmed
        self.stream.append(confirmed.split(":", 1)[1])
        return Confirmed(retaken)

    def sweep(self, limit: int) -> int:
        return self.expire(limit)
