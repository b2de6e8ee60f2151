"""A reconcile's report of one event: its differences and notes, as text."""

from __future__ import annotations

import msgspec


class EventReport(msgspec.Struct):
    event_id: str
    title: str = ""
    differences: list[str] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    tiers: int = 0
    orders: int = 0
    payments: int = 0

    def text(self) -> str:
        name = f"event {self.event_id}" + (f" ({self.title})" if self.title else "")
        if not self.differences:
            head = (f"{name}: clean ({self.tiers} tiers, {self.orders} orders, "
                    f"{self.payments} payments)")  # fmt: skip
        else:
            head = f"{name}: {len(self.differences)} difference(s)"
        return "\n".join([head, *(f"  - {d}" for d in self.differences),
                          *(f"  note: {n}" for n in self.notes)])  # fmt: skip
